import Foundation
import Net

/// An 8-bit RGB colour.
struct RGB: Hashable {
    var r, g, b: UInt8

    static let white = RGB(r: 255, g: 255, b: 255)
    static let black = RGB(r: 0, g: 0, b: 0)
    static let text = RGB(r: 20, g: 20, b: 20)
    static let faint = RGB(r: 85, g: 85, b: 85)
    static let highlight = RGB(r: 230, g: 40, b: 40)

    /// `#rrggbb`.
    var hex: String { String(format: "#%02x%02x%02x", r, g, b) }
}

/// A rectangle in pixels: `x`, `y` its top-left corner.
struct Box: Equatable, CustomStringConvertible {
    var x, y, width, height: Int

    func contains(_ other: Box) -> Bool {
        other.x >= x && other.y >= y && other.x + other.width <= x + width && other.y + other.height <= y + height
    }

    func intersects(_ other: Box) -> Bool {
        x < other.x + other.width && other.x < x + width && y < other.y + other.height && other.y < y + height
    }

    var description: String { "(\(x), \(y)) \(width)x\(height)" }
}

/// One line of text placed on a canvas: its line box (top-left at `x`, `y`; as wide as the text's
/// advances and as high as the style's line) and how it is set.
struct TextRun: Equatable {
    var text: String
    var box: Box
    var style: TextStyle
}

/// Output format of a figure.
enum FigureFormat: String, CaseIterable {
    /// Pixels, text set by FreeType.
    case png
    /// Vector text over the figure's pixels (tiles, bars, outlines) embedded as one PNG `data:` URI.
    case svg
}

/// An RGB picture under construction: tiles, rectangles and lines of text at pixel positions, clipped
/// at the borders. Text is kept as `TextRun`s until the picture is written, so a PNG gets it set by
/// `Typesetter` and an SVG gets it as `<text>`; `texts` lets tests check the layout. Written through
/// `write(to:format:)`, which is atomic.
struct Canvas {
    let width: Int
    let height: Int
    /// `(H, W, 3)` bytes: everything but the text.
    private(set) var pixels: [UInt8]
    /// The text on the canvas, in drawing order.
    private(set) var texts: [TextRun] = []

    init(width: Int, height: Int, background: RGB = .white) {
        self.width = max(width, 1)
        self.height = max(height, 1)
        pixels = [UInt8](repeating: 0, count: self.width * self.height * 3)
        fill(x: 0, y: 0, width: self.width, height: self.height, background)
    }

    subscript(x: Int, y: Int) -> RGB {
        get {
            let i = (y * width + x) * 3
            return RGB(r: pixels[i], g: pixels[i + 1], b: pixels[i + 2])
        }
        set {
            guard x >= 0, x < width, y >= 0, y < height else { return }
            let i = (y * width + x) * 3
            (pixels[i], pixels[i + 1], pixels[i + 2]) = (newValue.r, newValue.g, newValue.b)
        }
    }

    /// The whole canvas as a box.
    var bounds: Box { Box(x: 0, y: 0, width: width, height: height) }

    mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ color: RGB) {
        let (x0, x1) = (max(x, 0), min(x + w, width))
        guard x1 > x0 else { return }
        for row in max(y, 0)..<max(min(y + h, height), max(y, 0)) {
            for column in x0..<x1 {
                let i = (row * width + column) * 3
                (pixels[i], pixels[i + 1], pixels[i + 2]) = (color.r, color.g, color.b)
            }
        }
    }

    /// A one-pixel (times `thickness`) rectangle outline whose outer edge is the given box.
    mutating func outline(x: Int, y: Int, width w: Int, height h: Int, _ color: RGB, thickness: Int = 1) {
        fill(x: x, y: y, width: w, height: thickness, color)
        fill(x: x, y: y + h - thickness, width: w, height: thickness, color)
        fill(x: x, y: y, width: thickness, height: h, color)
        fill(x: x + w - thickness, y: y, width: thickness, height: h, color)
    }

    /// Copies `other`, its pixels and its text, with its top-left corner at `(x, y)`.
    mutating func draw(_ other: Canvas, x: Int, y: Int) {
        let (c0, c1) = (max(0, -x), min(other.width, width - x))
        if c1 > c0 {
            for row in max(0, -y)..<max(max(0, -y), min(other.height, height - y)) {
                let source = (row * other.width + c0) * 3, target = ((y + row) * width + x + c0) * 3
                pixels.replaceSubrange(target..<target + (c1 - c0) * 3, with: other.pixels[source..<source + (c1 - c0) * 3])
            }
        }
        texts += other.texts.map { run in
            var moved = run
            (moved.box.x, moved.box.y) = (run.box.x + x, run.box.y + y)
            return moved
        }
    }

    /// One line of `text` with the top-left of its line box at `(x, y)`.
    mutating func text(_ text: String, x: Int, y: Int, _ style: TextStyle = .label) {
        let type = Typesetter.shared
        texts.append(TextRun(text: text, box: Box(x: x, y: y, width: type.width(text, style), height: type.lineMetrics(style).height), style: style))
    }

    /// Every pixel repeated `factor` times in each direction (nearest neighbour), so small tiles stay
    /// visible. For tiles: a canvas with text cannot be upscaled.
    func upscaled(_ factor: Int) -> Canvas {
        precondition(texts.isEmpty, "only tiles without text are upscaled")
        guard factor > 1 else { return self }
        var out = Canvas(width: width * factor, height: height * factor)
        for y in 0..<out.height {
            let source = (y / factor) * width
            for x in 0..<out.width {
                let (i, o) = ((source + x / factor) * 3, (y * out.width + x) * 3)
                (out.pixels[o], out.pixels[o + 1], out.pixels[o + 2]) = (pixels[i], pixels[i + 1], pixels[i + 2])
            }
        }
        return out
    }

    /// The picture with its text set, as an RGB `Image`.
    var image: Image {
        var out = pixels
        for run in texts {
            Typesetter.shared.draw(run.text, x: run.box.x, y: run.box.y, run.style, into: &out, width: width, height: height)
        }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }

    /// The picture as SVG: its pixels (without text) as one embedded PNG drawn pixel for pixel, and
    /// each line of text as `<text>`, stretched to the width it has in the PNG so layouts agree. Not
    /// `standalone`: without the XML declaration and namespaces, for inline SVG in HTML (whose parser
    /// supplies them).
    func svg(standalone: Bool = true) throws -> String {
        let background = try Image(width: width, height: height, channels: 3, pixels: pixels).pngData().base64EncodedString()
        let families = (Typesetter.shared.families + ["sans-serif"]).map { $0 == "sans-serif" ? $0 : "'\($0)'" }.joined(separator: ", ")
        var out = (standalone ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" : "") + """
            <svg\(standalone ? " xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\"" : "") width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)">
            <image x="0" y="0" width="\(width)" height="\(height)" preserveAspectRatio="none" style="image-rendering:pixelated" xlink:href="data:image/png;base64,\(background)"/>
            <g font-family="\(families)" style="font-kerning:none">

            """
        for run in texts where !run.text.isEmpty {
            let baseline = run.box.y + Typesetter.shared.lineMetrics(run.style).ascent
            let text = String(String.UnicodeScalarView(run.text.unicodeScalars.filter { $0.value >= 0x20 || $0 == "\t" }))
            out += "<text x=\"\(run.box.x)\" y=\"\(baseline)\" font-size=\"\(run.style.size)\"\(run.style.bold ? " font-weight=\"bold\"" : "") fill=\"\(run.style.color.hex)\""
                + " textLength=\"\(run.box.width)\" lengthAdjust=\"spacingAndGlyphs\" xml:space=\"preserve\">\(escape(text))</text>\n"
        }
        return out + "</g>\n</svg>\n"
    }

    /// Writes the picture as a PNG or an SVG, atomically; throws before writing anything when no font
    /// could be loaded.
    func write(to path: String, format: FigureFormat = .png) throws {
        try Typesetter.shared.requireFonts()
        switch format {
        case .png: try image.writePNG(toFile: path)
        case .svg: try writeAtomically(Array(try svg().utf8), to: path)
        }
    }

    /// Canvases side by side, tops aligned, `gap` white pixels apart.
    static func row(_ parts: [Canvas], gap: Int = 8) -> Canvas {
        var out = Canvas(width: parts.map(\.width).reduce(0, +) + gap * max(parts.count - 1, 0), height: parts.map(\.height).max() ?? 1)
        var x = 0
        for part in parts {
            out.draw(part, x: x, y: 0)
            x += part.width + gap
        }
        return out
    }

    /// Canvases stacked, left edges aligned, `gap` white pixels apart.
    static func column(_ parts: [Canvas], gap: Int = 8) -> Canvas {
        var out = Canvas(width: parts.map(\.width).max() ?? 1, height: parts.map(\.height).reduce(0, +) + gap * max(parts.count - 1, 0))
        var y = 0
        for part in parts {
            out.draw(part, x: 0, y: y)
            y += part.height + gap
        }
        return out
    }

    /// `text` on its own canvas with `margin` pixels around it, wrapped to `maxWidth` pixels of text
    /// when given (each line centred when `centred`).
    static func label(_ text: String, _ style: TextStyle = .label, maxWidth: Int? = nil, centred: Bool = false, margin: Int = 2) -> Canvas {
        let type = Typesetter.shared
        let lines = maxWidth.map { type.wrap(text, width: max($0, 1), style) } ?? [text]
        let widths = lines.map { type.width($0, style) }
        let lineHeight = type.lineMetrics(style).height
        let textWidth = max(widths.max() ?? 0, maxWidth.map { centred ? $0 : 0 } ?? 0)
        var out = Canvas(width: textWidth + 2 * margin, height: lines.count * lineHeight + 2 * margin)
        for (i, line) in lines.enumerated() {
            out.text(line, x: margin + (centred ? (textWidth - widths[i]) / 2 : 0), y: margin + i * lineHeight, style)
        }
        return out
    }

    /// This canvas with `caption` centred above it, wrapped to the canvas's width (at least 96 pixels,
    /// so narrow tiles keep readable captions).
    func captioned(_ caption: String) -> Canvas { Canvas.panels([(self, caption)]) }

    /// Canvases side by side, `gap` apart, each under its caption (centred, wrapped to the canvas's
    /// width or 96 pixels, whichever is more; an empty caption takes no line). Captions end on one line,
    /// so the canvases' tops align however many lines each caption takes.
    static func panels(_ items: [(canvas: Canvas, caption: String)], gap: Int = 12) -> Canvas {
        let captions = items.map { $0.caption.isEmpty ? nil : label($0.caption, maxWidth: max($0.canvas.width, 96) - 4, centred: true) }
        let captionHeight = captions.map { $0?.height ?? 0 }.max() ?? 0
        return row(zip(items, captions).map { item, caption in
            var out = Canvas(width: max(item.canvas.width, caption?.width ?? 0), height: captionHeight + item.canvas.height)
            if let caption { out.draw(caption, x: (out.width - caption.width) / 2, y: captionHeight - caption.height) }
            out.draw(item.canvas, x: (out.width - item.canvas.width) / 2, y: captionHeight)
            return out
        }, gap: gap)
    }
}
