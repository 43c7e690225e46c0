import Foundation

/// One panel of an SVG line chart: a series of (x, y) points with a title and axis labels.
struct ChartPanel {
    var title: String
    var xLabel: String
    var yLabel: String
    var points: [(x: Float, y: Float)]
    /// Fixed y range (e.g. 0...1 for probabilities); nil: from 0 (or the minimum, if negative) to the maximum.
    var yRange: ClosedRange<Float>? = nil
}

/// A self-contained SVG with `panels` side by side, each a line chart with axes, five ticks per axis
/// and a marker on every point. No scripts, fonts or external references.
func lineChartSVG(title: String, panels: [ChartPanel], panelWidth: Int = 300, panelHeight: Int = 220) -> String {
    let (left, right, top, bottom) = (56, 16, 40, 44)
    let width = panels.count * (panelWidth + left + right), height = panelHeight + top + bottom + 24
    func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
    func num(_ v: Float) -> String { String(format: "%.4g", Double(v)) }
    var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(width / 2)" y="18" text-anchor="middle" font-size="14">\(esc(title))</text>

        """
    for (p, panel) in panels.enumerated() {
        let x0 = p * (panelWidth + left + right) + left, y0 = top + 24
        let xs = panel.points.map(\.x), ys = panel.points.map(\.y)
        let (xMin, xMax) = (xs.min() ?? 0, xs.max() ?? 1)
        let range = panel.yRange ?? (min(0, ys.min() ?? 0)...max(ys.max() ?? 1, 1e-6))
        let (yMin, yMax) = (range.lowerBound, range.upperBound)
        func px(_ x: Float) -> Float { Float(x0) + (xMax > xMin ? (x - xMin) / (xMax - xMin) : 0.5) * Float(panelWidth) }
        func py(_ y: Float) -> Float { Float(y0 + panelHeight) - (yMax > yMin ? (y - yMin) / (yMax - yMin) : 0.5) * Float(panelHeight) }
        svg += "<text x=\"\(x0 + panelWidth / 2)\" y=\"\(y0 - 8)\" text-anchor=\"middle\" font-size=\"12\">\(esc(panel.title))</text>\n"
        svg += "<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(panelWidth)\" height=\"\(panelHeight)\" fill=\"none\" stroke=\"#444\"/>\n"
        for i in 0...4 {
            let xv = xMin + (xMax - xMin) * Float(i) / 4, yv = yMin + (yMax - yMin) * Float(i) / 4
            svg += "<line x1=\"\(num(px(xv)))\" y1=\"\(y0 + panelHeight)\" x2=\"\(num(px(xv)))\" y2=\"\(y0 + panelHeight + 4)\" stroke=\"#444\"/>"
            svg += "<text x=\"\(num(px(xv)))\" y=\"\(y0 + panelHeight + 16)\" text-anchor=\"middle\">\(num(xv))</text>\n"
            svg += "<line x1=\"\(x0 - 4)\" y1=\"\(num(py(yv)))\" x2=\"\(x0 + panelWidth)\" y2=\"\(num(py(yv)))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(x0 - 6)\" y=\"\(num(py(yv) + 4))\" text-anchor=\"end\">\(num(yv))</text>\n"
        }
        svg += "<text x=\"\(x0 + panelWidth / 2)\" y=\"\(y0 + panelHeight + 34)\" text-anchor=\"middle\">\(esc(panel.xLabel))</text>\n"
        svg += "<text transform=\"translate(\(x0 - 44),\(y0 + panelHeight / 2)) rotate(-90)\" text-anchor=\"middle\">\(esc(panel.yLabel))</text>\n"
        let path = panel.points.map { "\(num(px($0.x))),\(num(py($0.y)))" }.joined(separator: " ")
        svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n"
        for point in panel.points {
            svg += "<circle cx=\"\(num(px(point.x)))\" cy=\"\(num(py(point.y)))\" r=\"2.5\" fill=\"#1f77b4\"/>"
        }
        svg += "\n"
    }
    return svg + "</svg>\n"
}
