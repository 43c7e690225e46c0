import Foundation

/// How the values of a tile become intensities in [0, 1] before colouring. Every figure states the
/// rule it used in a note line at its bottom (`description`).
enum Normalization {
    /// Per tile, symmetric around zero: `v ↦ ½ + v / (2·max|v|)`, so 0 is mid-gray and the sign of
    /// a projection shows; its overall scale does not (projections are drawn this way).
    case symmetric
    /// Per tile: the tile's minimum ↦ 0, its maximum ↦ 1.
    case minMax
    /// One fixed range for every tile: `lo ↦ 0`, `hi ↦ 1`, clamped (images in [0, 1], feature maps on a shared scale).
    case range(Float, Float)

    /// The values mapped to 0 and 1 for a tile holding `values`.
    func bounds(_ values: [Float]) -> (lo: Float, hi: Float) {
        switch self {
        case .symmetric:
            let m = values.reduce(0) { max($0, abs($1)) }
            return (-m, m)
        case .minMax:
            return (values.min() ?? 0, values.max() ?? 0)
        case let .range(lo, hi):
            return (lo, hi)
        }
    }

    var description: String {
        switch self {
        case .symmetric: return "each tile scaled symmetrically: 0 = mid-gray, +max|v| = white, -max|v| = black"
        case .minMax: return "each tile scaled from its min (dark) to its max (bright)"
        case let .range(lo, hi): return "one scale for all tiles: \(formatValue(lo)) to \(formatValue(hi))"
        }
    }
}

/// Colours for single-channel tiles, indexed by t in [0, 1].
enum ColorMap {
    /// Black to white.
    case gray
    /// Black, red, yellow, white: for activations and occlusion maps.
    case heat

    func color(_ t: Float) -> RGB {
        let t = min(max(t.isNaN ? 0 : t, 0), 1)
        switch self {
        case .gray:
            let v = UInt8((t * 255).rounded())
            return RGB(r: v, g: v, b: v)
        case .heat:
            func channel(_ start: Float) -> UInt8 { UInt8((min(max((t - start) * 3, 0), 1) * 255).rounded()) }
            return RGB(r: channel(0), g: channel(1.0 / 3), b: channel(2.0 / 3))
        }
    }
}

/// A number in at most 4 significant digits, for labels.
func formatValue(_ v: Float) -> String {
    String(format: "%.4g", Double(v))
}

/// Integer upscaling that makes a `side`-pixel tile about `target` pixels wide (nearest neighbour):
/// 28 → 2, 14 → 5, 5 → 14.
func tileScale(_ side: Int, target: Int = 72) -> Int { max(1, target / max(side, 1)) }

/// A `(C, H, W)` array drawn as a tile and upscaled by `scale`. Three channels are drawn as RGB with
/// one normalisation over all three (so colours keep their balance); one channel through `colorMap`.
func tile(_ values: [Float], channels: Int, height: Int, width: Int, _ normalization: Normalization, colorMap: ColorMap = .gray, scale: Int = 1) -> Canvas {
    precondition(values.count == channels * height * width && (channels == 1 || channels == 3), "a tile has 1 or 3 channels")
    let (lo, hi) = normalization.bounds(values)
    let span = hi - lo
    func t(_ v: Float) -> Float { span > 0 ? (v - lo) / span : (lo == 0 && hi == 0 && isSymmetric(normalization) ? 0.5 : 0) }
    var out = Canvas(width: width, height: height)
    let plane = height * width
    for y in 0..<height {
        for x in 0..<width {
            let i = y * width + x
            if channels == 3 {
                func byte(_ v: Float) -> UInt8 { UInt8((min(max(t(v), 0), 1) * 255).rounded()) }
                out[x, y] = RGB(r: byte(values[i]), g: byte(values[plane + i]), b: byte(values[2 * plane + i]))
            } else {
                out[x, y] = colorMap.color(t(values[i]))
            }
        }
    }
    return out.upscaled(scale)
}

private func isSymmetric(_ n: Normalization) -> Bool {
    if case .symmetric = n { return true }
    return false
}

/// A horizontal colour bar `width` pixels wide for `colorMap` from `lo` to `hi`, labelled at both ends.
func colorBar(_ colorMap: ColorMap, lo: Float, hi: Float, width: Int = 160, caption: String) -> Canvas {
    var bar = Canvas(width: width, height: 10)
    for x in 0..<width {
        let c = colorMap.color(Float(x) / Float(max(width - 1, 1)))
        bar.fill(x: x, y: 0, width: 1, height: 10, c)
    }
    bar.outline(x: 0, y: 0, width: width, height: 10, .faint)
    let left = Canvas.label(formatValue(lo)), right = Canvas.label(formatValue(hi))
    var ends = Canvas(width: max(width, left.width + right.width + 4), height: left.height)
    ends.draw(left, x: 0, y: 0)
    ends.draw(right, x: ends.width - right.width, y: 0)
    return Canvas.row([Canvas.column([bar, ends], gap: 1), .label(caption)], gap: 6)
}

/// Tiles in rows and columns, each with an optional caption under it, optional headers over the
/// columns and left of the rows. Missing cells stay blank.
struct Grid {
    var cells: [[Canvas?]]
    var captions: [[String]]? = nil
    var columnHeaders: [String]? = nil
    var rowHeaders: [String]? = nil
    var gap = 4

    /// `tiles` in rows of `columns`, captions likewise.
    init(wrapping tiles: [Canvas], captions: [String]? = nil, columns: Int) {
        let columns = max(columns, 1)
        cells = stride(from: 0, to: tiles.count, by: columns).map { start in
            (start..<start + columns).map { $0 < tiles.count ? tiles[$0] : nil }
        }
        self.captions = captions.map { c in
            stride(from: 0, to: c.count, by: columns).map { Array(c[$0..<min($0 + columns, c.count)]) }
        }
    }

    init(rows: [[Canvas?]], captions: [[String]]? = nil, columnHeaders: [String]? = nil, rowHeaders: [String]? = nil) {
        cells = rows
        self.captions = captions
        self.columnHeaders = columnHeaders
        self.rowHeaders = rowHeaders
    }

    func render() -> Canvas {
        let columns = cells.map(\.count).max() ?? 0
        let captionHeight = captions == nil ? 0 : Font5x7.height + 3
        var cellWidth = cells.flatMap { $0.compactMap { $0?.width } }.max() ?? 1
        if let captions { cellWidth = max(cellWidth, captions.flatMap { $0 }.map { Font5x7.width(of: $0) }.max() ?? 0) }
        let cellHeight = (cells.flatMap { $0.compactMap { $0?.height } }.max() ?? 1) + captionHeight
        let headerHeight = columnHeaders == nil ? 0 : Font5x7.height + 4
        let headerWidth = rowHeaders.map { ($0.map { Font5x7.width(of: $0) }.max() ?? 0) + 6 } ?? 0
        var out = Canvas(width: headerWidth + columns * (cellWidth + gap), height: headerHeight + cells.count * (cellHeight + gap))
        for (c, header) in (columnHeaders ?? []).enumerated() where c < columns {
            out.text(header, x: headerWidth + c * (cellWidth + gap) + (cellWidth - Font5x7.width(of: header)) / 2, y: 1)
        }
        for (r, row) in cells.enumerated() {
            let top = headerHeight + r * (cellHeight + gap)
            if let rowHeaders, r < rowHeaders.count {
                out.text(rowHeaders[r], x: 1, y: top + (cellHeight - captionHeight - Font5x7.height) / 2)
            }
            for (c, cell) in row.enumerated() {
                let left = headerWidth + c * (cellWidth + gap)
                if let cell { out.draw(cell, x: left + (cellWidth - cell.width) / 2, y: top) }
                if let captions, r < captions.count, c < captions[r].count {
                    let text = captions[r][c]
                    out.text(text, x: left + (cellWidth - Font5x7.width(of: text)) / 2, y: top + cellHeight - captionHeight + 2, .faint)
                }
            }
        }
        return out
    }
}

/// A finished figure: a title (double size) over `body`, then one line per note, with a margin.
func figure(title: String, _ body: Canvas, notes: [String] = [], extras: [Canvas] = []) -> Canvas {
    let parts = [Canvas.label(title, scale: 2)] + [body] + extras + notes.map { Canvas.label($0, color: .faint) }
    let content = Canvas.column(parts, gap: 6)
    var out = Canvas(width: content.width + 16, height: content.height + 16)
    out.draw(content, x: 8, y: 8)
    return out
}
