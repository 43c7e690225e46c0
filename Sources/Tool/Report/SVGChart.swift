import Foundation

/// A line chart as inline SVG: a title, axes with ticks and labels, lines (solid or dashed), shaded
/// bands, and a legend under the plot that wraps onto as many rows as it needs.
///
/// Points with a non-finite y break the line. Sizes are in CSS pixels.
struct LineChart {
    struct Series {
        var label: String
        var color: String
        var points: [(x: Double, y: Double)]
        var dash: Dash = .solid
        var width = 1.6
    }

    enum Dash: String {
        case solid = "", dashed = "5 3", dotted = "1.5 2.5"
    }

    /// A shaded region between two curves sharing x values.
    struct Band {
        var color: String
        var points: [(x: Double, lower: Double, upper: Double)]
    }

    struct LegendEntry {
        var label: String
        var color: String
        var dash: Dash = .solid
        var band = false
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var width = 420
    var plotHeight = 190
    var series: [Series] = []
    var bands: [Band] = []
    var legend: [LegendEntry] = []
    /// Fixed y range (e.g. 0...1 for accuracies); otherwise the data's range, widened to round ticks.
    var yDomain: ClosedRange<Double>?
    /// Plot y on a log scale when all values are positive and span more than two decades (losses and
    /// learning rates, where one diverging run would otherwise flatten every other line).
    var autoLogY = false
    /// Ticks on whole numbers only (epochs, steps).
    var integerX = true
    /// Room for at least this many title lines, so that small multiples line up.
    var titleLineSlots = 1
    /// Highlight the chart's frame (the best run among small multiples).
    var highlighted = false

    private let left = 58.0, right = 14.0, axisBand = 40.0

    /// Small charts get a smaller title.
    private var titleSize: Double { width < 300 ? 11 : 13 }

    /// The title broken at spaces or underscores into lines that fit the chart's width.
    private var titleLines: [String] {
        let maxCharacters = max(8, Int((Double(width) - 8 - right) / (titleSize * 0.58)))
        var lines: [String] = [], line = ""
        var word = ""
        for ch in title + " " {
            word.append(ch)
            guard ch == " " || ch == "_" else { continue }
            if line.count + word.count - (ch == " " ? 1 : 0) > maxCharacters, !line.isEmpty {
                lines.append(line.trimmingCharacters(in: .whitespaces))
                line = ""
            }
            line += word
            word = ""
        }
        lines.append(line.trimmingCharacters(in: .whitespaces))
        return lines.filter { !$0.isEmpty }
    }

    /// Space above the plot: the title's lines.
    private var top: Double { 12 + Double(max(titleLines.count, titleLineSlots)) * (titleSize + 3) }

    /// The chart's full height in CSS pixels: title, plot, axis labels and legend.
    var height: Int { Int(top + Double(plotHeight) + axisBand + Double(legendLayout(maxWidth: Double(width) - left - right).count) * 16 + 4) }

    /// Styles for the class names the charts use (`title`, `tick`, `label`, `legend`, `grid`, `frame`);
    /// the HTML report embeds them in its style sheet, a standalone SVG in a `<style>` element.
    static let css = """
    svg.chart { background: #fff; overflow: visible; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
    svg .title { font-weight: 600; fill: #222; } svg .tick { font-size: 10px; fill: #555; }
    svg .label { font-size: 11px; fill: #333; } svg .legend { font-size: 11px; fill: #333; }
    svg .grid { stroke: #ececec; stroke-width: 1; } svg .frame { fill: none; stroke: #999; stroke-width: 1; }
    """

    /// A self-contained SVG file holding `charts` side by side (nested `<svg>` elements at x offsets)
    /// under `title`: no scripts, fonts or external references.
    static func document(title: String, charts: [LineChart], gap: Int = 16) -> String {
        let heading = 28
        let width = charts.map(\.width).reduce(0, +) + gap * max(charts.count - 1, 0)
        let height = heading + (charts.map(\.height).max() ?? 0)
        var out = #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(width)" height="\#(height)" viewBox="0 0 \#(width) \#(height)" font-family="system-ui, sans-serif">"# + "\n"
        out += "<style>\(css)</style>\n"
        out += #"<rect width="100%" height="100%" fill="white"/><text class="title" x="8" y="19" font-size="15">\#(escape(title))</text>"# + "\n"
        var x = 0
        for chart in charts {
            out += chart.svg.replacingOccurrences(of: "<svg ", with: #"<svg x="\#(x)" y="\#(heading)" "#, options: .anchored) + "\n"
            x += chart.width + gap
        }
        return out + "</svg>\n"
    }

    var svg: String {
        let plotWidth = Double(width) - left - right
        let allX = series.flatMap { $0.points.map(\.x) } + bands.flatMap { $0.points.map(\.x) }
        let allY = series.flatMap { $0.points.map(\.y) } + bands.flatMap { $0.points.flatMap { [$0.lower, $0.upper] } }
        let finiteY = allY.filter(\.isFinite)
        let log = autoLogY && yDomain == nil && !finiteY.isEmpty && finiteY.allSatisfy { $0 > 0 } && finiteY.max()! / finiteY.min()! > 100
        func ty(_ y: Double) -> Double { log ? (y > 0 ? log10(y) : -.infinity) : y }
        let xRange = paddedRange(allX.min() ?? 0, allX.max() ?? 1)
        let yTicks: [Double]
        let yRange: ClosedRange<Double>
        if let yDomain {
            yRange = yDomain
            yTicks = niceTicks(yDomain.lowerBound, yDomain.upperBound, count: 5)
        } else if log {
            yRange = floor(log10(finiteY.min()!))...ceil(log10(finiteY.max()!))
            let every = max(1, Int(ceil((yRange.upperBound - yRange.lowerBound) / 6)))
            yTicks = stride(from: Int(yRange.lowerBound), through: Int(yRange.upperBound), by: every).map { pow(10, Double($0)) }
        } else {
            let raw = paddedRange(finiteY.min() ?? 0, finiteY.max() ?? 1)
            let step = niceStep((raw.upperBound - raw.lowerBound) / 5)
            yRange = (floor(raw.lowerBound / step) * step)...(ceil(raw.upperBound / step) * step)
            yTicks = niceTicks(yRange.lowerBound, yRange.upperBound, count: 5)
        }
        let xTicks = niceTicks(xRange.lowerBound, xRange.upperBound, count: max(2, Int(plotWidth / 70)), integers: integerX)
        let h = Double(plotHeight)
        let lines = titleLines
        let top = self.top
        func px(_ x: Double) -> Double { left + (x - xRange.lowerBound) / (xRange.upperBound - xRange.lowerBound) * plotWidth }
        func py(_ y: Double) -> Double {
            let clamped = Swift.min(Swift.max(ty(y), yRange.lowerBound), yRange.upperBound)
            return top + h - (clamped - yRange.lowerBound) / (yRange.upperBound - yRange.lowerBound) * h
        }
        let legendRows = legendLayout(maxWidth: Double(width) - left - right)
        let totalHeight = Double(height)

        var out = #"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="\#(width)" height="\#(Int(totalHeight))" viewBox="0 0 \#(width) \#(Int(totalHeight))" role="img">"#
        out += "<title>\(escape(title))</title>"
        for (i, line) in lines.enumerated() {
            out += #"<text class="title" x="8" y="\#(f(titleSize + 2 + Double(i) * (titleSize + 3)))" font-size="\#(titleSize)">\#(escape(line))</text>"#
        }
        if highlighted { out += #"<rect x="1" y="1" width="\#(width - 2)" height="\#(Int(totalHeight) - 2)" fill="none" stroke="goldenrod" stroke-width="2.5" rx="4"/>"# }
        for t in yTicks {
            out += #"<line class="grid" x1="\#(f(left))" x2="\#(f(left + plotWidth))" y1="\#(f(py(t)))" y2="\#(f(py(t)))"/>"#
            out += #"<text class="tick" x="\#(f(left - 6))" y="\#(f(py(t) + 3.5))" text-anchor="end">\#(log ? powerLabel(t) : tickLabel(t, ticks: yTicks))</text>"#
        }
        for t in xTicks {
            out += #"<line class="grid" x1="\#(f(px(t)))" x2="\#(f(px(t)))" y1="\#(f(top))" y2="\#(f(top + h))"/>"#
            out += #"<text class="tick" x="\#(f(px(t)))" y="\#(f(top + h + 14))" text-anchor="middle">\#(tickLabel(t, ticks: xTicks))</text>"#
        }
        out += #"<rect class="frame" x="\#(f(left))" y="\#(f(top))" width="\#(f(plotWidth))" height="\#(f(h))"/>"#
        out += #"<text class="label" x="\#(f(left + plotWidth / 2))" y="\#(f(top + h + 32))" text-anchor="middle">\#(escape(xLabel))</text>"#
        out += #"<text class="label" transform="translate(13 \#(f(top + h / 2))) rotate(-90)" text-anchor="middle">\#(escape(yLabel + (log ? " (log scale)" : "")))</text>"#
        for band in bands where !band.points.isEmpty {
            let upper = band.points.map { "\(f(px($0.x))),\(f(py($0.upper)))" }
            let lower = band.points.reversed().map { "\(f(px($0.x))),\(f(py($0.lower)))" }
            out += #"<polygon points="\#((upper + lower).joined(separator: " "))" fill="\#(band.color)" fill-opacity="0.18" stroke="none"/>"#
        }
        for s in series {
            out += #"<g><title>\#(escape(s.label))</title>"#
            var d = "", pen = false
            for p in s.points {
                guard ty(p.y).isFinite else { pen = false; continue }
                d += "\(pen ? "L" : "M")\(f(px(p.x))),\(f(py(p.y)))"
                pen = true
            }
            let dash = s.dash == .solid ? "" : #" stroke-dasharray="\#(s.dash.rawValue)""#
            out += #"<path d="\#(d)" fill="none" stroke="\#(s.color)" stroke-width="\#(s.width)"\#(dash) stroke-linejoin="round"/>"#
            if s.points.count <= 25 {
                for p in s.points where ty(p.y).isFinite {
                    out += #"<circle cx="\#(f(px(p.x)))" cy="\#(f(py(p.y)))" r="2.2" fill="\#(s.color)"/>"#
                }
            }
            out += "</g>"
        }
        var y = top + h + axisBand + 8
        for row in legendRows {
            for (entry, x) in row {
                let sx = left + x
                if entry.band {
                    out += #"<rect x="\#(f(sx))" y="\#(f(y - 5))" width="20" height="10" fill="\#(entry.color)" fill-opacity="0.25"/>"#
                } else {
                    let dash = entry.dash == .solid ? "" : #" stroke-dasharray="\#(entry.dash.rawValue)""#
                    out += #"<line x1="\#(f(sx))" x2="\#(f(sx + 20))" y1="\#(f(y))" y2="\#(f(y))" stroke="\#(entry.color)" stroke-width="2"\#(dash)/>"#
                }
                out += #"<text class="legend" x="\#(f(sx + 25))" y="\#(f(y + 4))">\#(escape(entry.label))</text>"#
            }
            y += 16
        }
        return out + "</svg>"
    }

    /// Legend entries placed left to right, wrapping to a new row when the next would overflow.
    private func legendLayout(maxWidth: Double) -> [[(LegendEntry, Double)]] {
        var rows: [[(LegendEntry, Double)]] = []
        var row: [(LegendEntry, Double)] = [], x = 0.0
        for entry in legend {
            let w = 25 + textWidth(entry.label) + 16
            if x + w > maxWidth, !row.isEmpty {
                rows.append(row)
                row = []
                x = 0
            }
            row.append((entry, x))
            x += w
        }
        if !row.isEmpty { rows.append(row) }
        return rows
    }
}

/// Approximate width of `text` at the legend's 11 px sans-serif font.
private func textWidth(_ text: String) -> Double { Double(text.count) * 6.2 }

private func paddedRange(_ lo: Double, _ hi: Double) -> ClosedRange<Double> {
    if hi > lo { return lo...hi }
    let pad = lo == 0 ? 1 : abs(lo) * 0.1
    return (lo - pad)...(hi + pad)
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
private func niceStep(_ raw: Double) -> Double {
    guard raw > 0, raw.isFinite else { return 1 }
    let power = pow(10, floor(log10(raw)))
    for m in [1.0, 2, 5, 10] where m * power >= raw * 0.999 { return m * power }
    return 10 * power
}

/// About `count` round values within lo...hi.
func niceTicks(_ lo: Double, _ hi: Double, count: Int, integers: Bool = false) -> [Double] {
    var step = niceStep((hi - lo) / Double(max(1, count)))
    if integers { step = max(1, step.rounded(.up)) }
    var ticks: [Double] = []
    var t = ceil(lo / step - 1e-9) * step
    while t <= hi + step * 1e-9 {
        ticks.append(abs(t) < step * 1e-9 ? 0 : t)
        t += step
    }
    return ticks
}

/// A tick value with as many decimals as the tick spacing needs, so that neighbouring ticks never read
/// the same; thousands as "k". Very large or very small values, and spacings finer than 1e-6, take
/// `%g` with as many significant digits as the spacing needs (at least two).
func tickLabel(_ value: Double, ticks: [Double]) -> String {
    let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
    let largest = ticks.map(abs).max() ?? 0
    let stepExponent = Int(floor(log10(step) + 1e-9))
    if largest >= 1e6 || (largest > 0 && largest < 1e-3) || stepExponent < -6 {
        let digits = max(2, Int(floor(log10(largest) + 1e-9)) - stepExponent + 1)
        return value == 0 ? "0" : String(format: "%.\(digits)g", value)
    }
    if largest >= 10_000 && step >= 1000 { return value == 0 ? "0" : String(format: "%gk", value / 1000) }
    return String(format: "%.\(max(0, -stepExponent))f", value)
}

/// A power of ten as a plain number from 0.001 to 1000, else as 1e-5.
private func powerLabel(_ value: Double) -> String {
    let exponent = Int(log10(value).rounded())
    return abs(exponent) <= 3 ? String(format: "%g", value) : "1e\(exponent)"
}

private func f(_ v: Double) -> String { String(format: "%.1f", v) }

/// Escapes text for XML and HTML content and attribute values.
func escape(_ text: String) -> String {
    var out = ""
    for ch in text {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(ch)
        }
    }
    return out
}
