import Foundation
import Net

/// A table of text cells with one header row, rendered as aligned text, CSV, Markdown or HTML.
struct TextTable {
    var header: [String]
    var rows: [[String]]
    /// Columns aligned left in text and Markdown (the rest, numbers, align right).
    var leftAligned: Set<Int> = [0]

    /// Columns padded to their widest cell, two spaces apart.
    var text: String {
        let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { c, cell in
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                return leftAligned.contains(c) ? cell + pad : pad + cell
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n") + "\n"
    }

    /// RFC 4180 CSV: cells holding a comma, quote or line break are quoted, quotes doubled.
    var csv: String {
        func quoted(_ cell: String) -> String {
            cell.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : cell
        }
        return ([header] + rows).map { $0.map(quoted).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// A GitHub-flavoured Markdown table; `|` in cells is escaped.
    var markdown: String {
        func line(_ cells: [String]) -> String { "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |" }
        let rule = header.indices.map { leftAligned.contains($0) ? "---" : "---:" }
        return ([line(header), "|" + rule.joined(separator: "|") + "|"] + rows.map(line)).joined(separator: "\n") + "\n"
    }
}

/// The per-layer table of `deconvnet summary`: layer, output shape, parameters, multiply-adds per image, and totals.
func layerTable(_ model: Sequential) -> TextTable {
    var rows = model.layers.map { layer in
        let params = layer.parameterShapes.reduce(0) { $0 + $1.shape.reduce(1, *) }
        return [layer.name, layer.outputShape.map(String.init).joined(separator: "x"), grouped(params), grouped(layer.multiplyAdds)]
    }
    rows.append(["total", "", grouped(model.parameterCount), grouped(model.layers.reduce(0) { $0 + $1.multiplyAdds })])
    return TextTable(header: ["layer", "output", "parameters", "multiply-adds"], rows: rows, leftAligned: [0])
}

/// `n` with thousands separators: 3274634 → "3,274,634".
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = n < 0 ? "-" : ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return out
}

/// A loss with four decimals (in exponent form from 10,000 up), or "" when absent.
func lossText(_ value: Float?) -> String { value.map { String(format: abs($0) < 10_000 ? "%.4f" : "%.3e", $0) } ?? "" }

/// An accuracy in percent with two decimals, or "" when absent.
func percentText(_ value: Float?) -> String { value.map(percent) ?? "" }
