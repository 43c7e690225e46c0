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
        case let .range(lo, hi): return "one scale for all tiles: \(formatRange(lo, hi))"
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

/// "`lo` to `hi`" with as many significant digits (4 to 9, where a `Float` ends) as it takes for the two
/// to read differently when they differ.
func formatRange(_ lo: Float, _ hi: Float) -> String {
    let digits = (4...9).first { String(format: "%.\($0)g", Double(lo)) != String(format: "%.\($0)g", Double(hi)) } ?? 4
    return String(format: "%.\(digits)g to %.\(digits)g", Double(lo), Double(hi))
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

/// A horizontal colour bar `width` pixels wide for `colorMap` from `lo` (left) to `hi` (right), with
/// ticks at round values, their labels under them, and `unit` (what the colours measure) beside it.
func colorBar(_ colorMap: ColorMap, lo: Float, hi: Float, width: Int = 200, unit: String) -> Canvas {
    let (a, b) = (Double(lo), Double(hi))
    guard b > a, a.isFinite, b.isFinite else { return colorBar(colorMap, ticks: [(0.5, formatValue(lo))], width: width, unit: unit) }
    let values = niceTicks(a, b, count: 6)
    let ticks: [(position: Double, label: String)] = values.count < 2
        ? [(0, formatValue(lo)), (1, formatValue(hi))] : values.map { (($0 - a) / (b - a), tickLabel($0, ticks: values)) }
    return colorBar(colorMap, ticks: ticks, width: width, unit: unit)
}

/// The key to tiles scaled symmetrically one by one: gray from −max|v| through 0 to +max|v| of each tile.
func symmetricKey(unit: String) -> Canvas {
    colorBar(.gray, ticks: [(0, "−max|v|"), (0.5, "0"), (1, "+max|v|")], width: 160, unit: unit + " (each tile on its own scale)")
}

/// A colour bar with ticks at `position`s in [0, 1] along it, labelled; labels are thinned (every
/// other one dropped) until neighbours stand at least 8 pixels apart.
func colorBar(_ colorMap: ColorMap, ticks: [(position: Double, label: String)], width: Int, unit: String) -> Canvas {
    let type = Typesetter.shared
    let (barHeight, tickLength, style) = (12, 4, TextStyle.tick)
    func boxes(_ ticks: [(position: Double, label: String)]) -> [(x: Int, left: Int, width: Int)] {
        ticks.map { tick in
            let x = Int((tick.position * Double(width - 1)).rounded()), w = type.width(tick.label, style)
            return (x, x - w / 2, w)
        }
    }
    var kept = ticks
    while kept.count > 2, zip(boxes(kept), boxes(kept).dropFirst()).contains(where: { $0.left + $0.width + 8 > $1.left }) {
        kept = stride(from: 0, to: kept.count, by: 2).map { kept[$0] }
    }
    let placed = boxes(kept)
    let margin = max(1, placed.map { -$0.left }.max() ?? 0)
    let lineHeight = type.lineMetrics(style).height
    let unitX = margin + max(width, placed.map { $0.left + $0.width }.max() ?? 0) + 12
    var out = Canvas(width: unitX + type.width(unit, .label) + 2, height: max(barHeight + tickLength + 1 + lineHeight, type.lineMetrics(.label).height))
    for x in 0..<width { out.fill(x: margin + x, y: 0, width: 1, height: barHeight, colorMap.color(Float(x) / Float(max(width - 1, 1)))) }
    out.outline(x: margin, y: 0, width: width, height: barHeight, .faint)
    for (tick, box) in zip(kept, placed) {
        out.fill(x: margin + box.x, y: barHeight, width: 1, height: tickLength, .faint)
        out.text(tick.label, x: margin + box.left, y: barHeight + tickLength + 1, style)
    }
    out.text(unit, x: unitX, y: 0, .label)
    return out
}

/// Tiles in rows and columns, each with an optional caption under it (wrapped to the cell's width),
/// optional headers over the columns and left of the rows. Cells are as wide as the widest tile or
/// column header, so no two labels meet. Missing cells stay blank.
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
        let type = Typesetter.shared
        let (headerStyle, captionStyle) = (TextStyle.label, TextStyle.note)
        let columns = cells.map(\.count).max() ?? 0
        let tileWidth = cells.flatMap { $0.compactMap { $0?.width } }.max() ?? 1
        let tileHeight = cells.flatMap { $0.compactMap { $0?.height } }.max() ?? 1
        var cellWidth = max(tileWidth, (columnHeaders ?? []).map { type.width($0, headerStyle) }.max() ?? 0)
        if let captions {
            cellWidth = max(cellWidth, min(captions.joined().map { type.width($0, captionStyle) }.max() ?? 0, max(tileWidth, 96)))
        }
        let wrapped = captions?.map { $0.map { type.wrap($0, width: cellWidth, captionStyle) } }
        let captionLine = type.lineMetrics(captionStyle).height, headerLine = type.lineMetrics(headerStyle).height
        let captionHeight = wrapped.map { ($0.joined().map(\.count).max() ?? 0) * captionLine + 2 } ?? 0
        let cellHeight = max(tileHeight + captionHeight, rowHeaders == nil ? 0 : headerLine)
        let headerHeight = columnHeaders == nil ? 0 : headerLine + 2
        let headerWidth = rowHeaders.map { ($0.map { type.width($0, headerStyle) }.max() ?? 0) + 8 } ?? 0
        var out = Canvas(width: headerWidth + columns * (cellWidth + gap) - gap, height: headerHeight + cells.count * (cellHeight + gap) - gap)
        for (c, header) in (columnHeaders ?? []).enumerated() where c < columns {
            out.text(header, x: headerWidth + c * (cellWidth + gap) + (cellWidth - type.width(header, headerStyle)) / 2, y: 0, headerStyle)
        }
        for (r, row) in cells.enumerated() {
            let top = headerHeight + r * (cellHeight + gap)
            if let rowHeaders, r < rowHeaders.count {
                out.text(rowHeaders[r], x: 0, y: top + max(0, (tileHeight - headerLine) / 2), headerStyle)
            }
            for (c, cell) in row.enumerated() {
                let left = headerWidth + c * (cellWidth + gap)
                if let cell { out.draw(cell, x: left + (cellWidth - cell.width) / 2, y: top) }
                if let wrapped, r < wrapped.count, c < wrapped[r].count {
                    for (i, line) in wrapped[r][c].enumerated() {
                        out.text(line, x: left + (cellWidth - type.width(line, captionStyle)) / 2, y: top + tileHeight + 2 + i * captionLine, captionStyle)
                    }
                }
            }
        }
        return out
    }
}

/// A finished figure: a title over `body`, then `extras` (colour bars), then one paragraph per note,
/// with a margin; the title and notes wrap to the figure's width (at least 360 pixels).
func figure(title: String, _ body: Canvas, notes: [String] = [], extras: [Canvas] = []) -> Canvas {
    let width = max(360, ([body.width] + extras.map(\.width)).max() ?? 0)
    let noteBlock = Canvas.column(notes.map { Canvas.label($0, .note, maxWidth: width - 4) }, gap: 2)
    let parts = [Canvas.label(title, .title, maxWidth: width - 4), body] + extras + (notes.isEmpty ? [] : [noteBlock])
    let content = Canvas.column(parts, gap: 8)
    let margin = 12
    var out = Canvas(width: content.width + 2 * margin, height: content.height + 2 * margin)
    out.draw(content, x: margin, y: margin)
    return out
}
