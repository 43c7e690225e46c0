import Net

/// An 8-bit RGB colour.
struct RGB: Equatable {
    var r, g, b: UInt8

    static let white = RGB(r: 255, g: 255, b: 255)
    static let black = RGB(r: 0, g: 0, b: 0)
    static let text = RGB(r: 20, g: 20, b: 20)
    static let faint = RGB(r: 90, g: 90, b: 90)
    static let highlight = RGB(r: 230, g: 40, b: 40)
}

/// An RGB picture under construction: tiles, rectangles and 5x7 text drawn at pixel positions,
/// clipped at the borders. Written out through `Image.writePNG(toFile:)`, which is atomic.
struct Canvas {
    let width: Int
    let height: Int
    /// `(H, W, 3)` bytes.
    private(set) var pixels: [UInt8]

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

    mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ color: RGB) {
        for row in max(y, 0)..<max(min(y + h, height), max(y, 0)) {
            for column in max(x, 0)..<max(min(x + w, width), max(x, 0)) { self[column, row] = color }
        }
    }

    /// A one-pixel (times `thickness`) rectangle outline whose outer edge is the given box.
    mutating func outline(x: Int, y: Int, width w: Int, height h: Int, _ color: RGB, thickness: Int = 1) {
        fill(x: x, y: y, width: w, height: thickness, color)
        fill(x: x, y: y + h - thickness, width: w, height: thickness, color)
        fill(x: x, y: y, width: thickness, height: h, color)
        fill(x: x + w - thickness, y: y, width: thickness, height: h, color)
    }

    /// Copies `other` with its top-left corner at `(x, y)`.
    mutating func draw(_ other: Canvas, x: Int, y: Int) {
        for row in 0..<other.height {
            for column in 0..<other.width { self[x + column, y + row] = other[column, row] }
        }
    }

    /// `text` in the 5x7 font with its top-left corner at `(x, y)`, each font pixel `scale` pixels wide.
    mutating func text(_ text: String, x: Int, y: Int, _ color: RGB = .text, scale: Int = 1) {
        for (i, character) in text.enumerated() {
            let glyph = Font5x7.glyph(character)
            let left = x + i * Font5x7.advance * scale
            for (row, bits) in glyph.enumerated() {
                for column in 0..<Font5x7.width where bits & (0x10 >> UInt8(column)) != 0 {
                    fill(x: left + column * scale, y: y + row * scale, width: scale, height: scale, color)
                }
            }
        }
    }

    /// Every pixel repeated `factor` times in each direction (nearest neighbour), so small tiles stay visible.
    func upscaled(_ factor: Int) -> Canvas {
        guard factor > 1 else { return self }
        var out = Canvas(width: width * factor, height: height * factor)
        for y in 0..<out.height {
            for x in 0..<out.width { out[x, y] = self[x / factor, y / factor] }
        }
        return out
    }

    /// The picture as an RGB `Image`.
    var image: Image { Image(width: width, height: height, channels: 3, pixels: pixels) }

    /// Writes a PNG atomically.
    func writePNG(to path: String) throws {
        try image.writePNG(toFile: path)
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

    /// A line of text on its own canvas, with `margin` pixels around it.
    static func label(_ text: String, scale: Int = 1, color: RGB = .text, margin: Int = 2) -> Canvas {
        var out = Canvas(width: Font5x7.width(of: text, scale: scale) + 2 * margin, height: Font5x7.height * scale + 2 * margin)
        out.text(text, x: margin, y: margin, color, scale: scale)
        return out
    }

    /// This canvas with `caption` centred above it (or below when `above` is false).
    func captioned(_ caption: String, above: Bool = true, scale: Int = 1) -> Canvas {
        let text = Canvas.label(caption, scale: scale)
        var out = Canvas(width: max(width, text.width), height: height + text.height)
        out.draw(text, x: (out.width - text.width) / 2, y: above ? 0 : height)
        out.draw(self, x: (out.width - width) / 2, y: above ? text.height : 0)
        return out
    }
}
