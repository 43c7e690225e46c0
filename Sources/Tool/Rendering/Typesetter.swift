import CFreeType
import Foundation

/// Why figures cannot be drawn: no font to set their text in.
enum FontError: LocalizedError, Equatable {
    case missing(looked: [String])
    case unreadable(String, code: Int32)

    var errorDescription: String? {
        switch self {
        case let .missing(looked):
            return "no font for the figures' text: install Debian's fonts-dejavu-core (looked for \(looked.joined(separator: ", ")) and asked fontconfig for DejaVu Sans)"
        case let .unreadable(path, code):
            return "FreeType cannot read the font \(path) (error \(code))"
        }
    }
}

/// How a line of text in a figure looks: its pixel size (the em square, in pixels), weight and colour.
struct TextStyle: Hashable {
    var size: Int
    var bold = false
    var color: RGB = .text

    /// A figure's title.
    static let title = TextStyle(size: 16, bold: true)
    /// Captions, headers and labels.
    static let label = TextStyle(size: 12)
    /// The note lines at a figure's bottom.
    static let note = TextStyle(size: 11, color: .faint)
    /// Colour-bar ticks.
    static let tick = TextStyle(size: 11)
}

/// Sets text for figures with FreeType: DejaVu Sans (Debian's `fonts-dejavu-core`), antialiased with
/// light hinting, and WenQuanYi Micro Hei (`fonts-wqy-microhei`, 5 MB installed; the smallest Debian
/// font that covers Chinese, Japanese and Korean) for the characters DejaVu lacks. A character neither
/// face has draws as DejaVu's missing-glyph box. No shaping: one glyph per Unicode scalar of the
/// NFC-normalised text, no kerning, so a line's width is the sum of its glyphs' advances.
///
/// Fonts are found at their Debian paths, else through fontconfig. `shared` loads them once; when no
/// font is found, `requireFonts()` throws and the figure writers refuse to write (layout still runs on
/// estimated widths, so nothing else needs to know).
final class Typesetter: @unchecked Sendable {
    /// A rendered glyph: an 8-bit coverage bitmap `(rows, width)` placed `left` pixels right of the pen
    /// and `top` pixels above the baseline; the pen then moves `advance` pixels.
    private struct Glyph {
        var advance: Int, left: Int, top: Int, width: Int, rows: Int
        var coverage: [UInt8]
    }

    private struct GlyphKey: Hashable {
        var scalar: UInt32, size: Int, bold: Bool
    }

    private struct Face {
        var face: FT_Face
        var family: String
    }

    static let shared = Typesetter()

    /// The regular faces in fallback order (DejaVu Sans first), and the bold ones.
    private var regular: [Face] = []
    private var bold: [Face] = []
    private var library: FT_Library?
    private var glyphs: [GlyphKey: Glyph] = [:]
    private var metrics: [TextStyle: (ascent: Int, height: Int)] = [:]
    private let lock = NSLock()
    private let loadError: FontError?

    static let debianPaths = (
        regular: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        bold: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        cjk: "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    )

    private init() {
        var library: FT_Library?
        guard FT_Init_FreeType(&library) == 0, let library else {
            loadError = .unreadable("(FreeType itself)", code: -1)
            return
        }
        self.library = library
        func open(_ path: String) throws -> Face {
            var face: FT_Face?
            let code = FT_New_Face(library, path, 0, &face)
            guard code == 0, let face else { throw FontError.unreadable(path, code: code) }
            return Face(face: face, family: face.pointee.family_name.map { String(cString: $0) } ?? "sans-serif")
        }
        func locate(_ debian: String, _ pattern: String, covering character: UInt32 = 0) -> String? {
            if FileManager.default.isReadableFile(atPath: debian) { return debian }
            var path = [CChar](repeating: 0, count: 4096)
            guard deconvnet_fontconfig_file(pattern, character, &path, Int32(path.count)) == 0 else { return nil }
            return String(cString: path)
        }
        do {
            let paths = Self.debianPaths
            guard let regularPath = locate(paths.regular, "DejaVu Sans:style=Book") else { throw FontError.missing(looked: [paths.regular]) }
            let regularFace = try open(regularPath)
            let boldFace = try locate(paths.bold, "DejaVu Sans:style=Bold").map(open) ?? regularFace
            let cjk = try locate(paths.cjk, ":lang=zh-cn", covering: 0x732B).map(open)
            regular = [regularFace] + (cjk.map { [$0] } ?? [])
            bold = [boldFace] + (cjk.map { [$0] } ?? [])
            loadError = nil
        } catch {
            loadError = error as? FontError ?? .missing(looked: [Self.debianPaths.regular])
        }
    }

    /// Throws when no font could be loaded (figures would have no text).
    func requireFonts() throws {
        if let loadError { throw loadError }
    }

    /// Whether some loaded face has a glyph for `scalar` (else it draws as the missing-glyph box).
    func hasGlyph(_ scalar: Unicode.Scalar) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return regular.contains { FT_Get_Char_Index($0.face, FT_ULong(scalar.value)) != 0 }
    }

    /// Font families in fallback order, for SVG's `font-family`.
    var families: [String] { regular.map(\.family) }

    /// The line box of `style`: pixels from its top to the baseline, and its height.
    func lineMetrics(_ style: TextStyle) -> (ascent: Int, height: Int) {
        lock.lock()
        defer { lock.unlock() }
        return lockedMetrics(style)
    }

    private func lockedMetrics(_ style: TextStyle) -> (ascent: Int, height: Int) {
        if let known = metrics[style] { return known }
        var result = (ascent: style.size * 93 / 100 + 1, height: style.size * 117 / 100 + 1)  // DejaVu's proportions, when no font loaded
        if let face = (style.bold ? bold : regular).first?.face, FT_Set_Pixel_Sizes(face, 0, FT_UInt(style.size)) == 0 {
            let m = face.pointee.size.pointee.metrics
            let ascent = Int((m.ascender + 63) >> 6), descent = Int((-m.descender + 63) >> 6)
            result = (ascent, ascent + descent)
        }
        metrics[style] = result
        return result
    }

    /// Width in pixels of `text` on one line in `style` (the sum of its glyphs' advances).
    func width(_ text: String, _ style: TextStyle) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return text.precomposedStringWithCanonicalMapping.unicodeScalars.reduce(0) { $0 + glyph($1.value, style).advance }
    }

    /// Draws `text` with the top of its line box at `(x, y)` into `pixels` `(height, width, 3)`,
    /// blending `style.color` over what is there by each glyph's coverage; clipped at the borders.
    func draw(_ text: String, x: Int, y: Int, _ style: TextStyle, into pixels: inout [UInt8], width: Int, height: Int) {
        lock.lock()
        defer { lock.unlock() }
        let baseline = y + lockedMetrics(style).ascent
        let color = [Int(style.color.r), Int(style.color.g), Int(style.color.b)]
        var pen = x
        for scalar in text.precomposedStringWithCanonicalMapping.unicodeScalars {
            let g = glyph(scalar.value, style)
            let (left, top) = (pen + g.left, baseline - g.top)
            for row in max(0, -top)..<max(0, min(g.rows, height - top)) {
                for column in max(0, -left)..<max(0, min(g.width, width - left)) {
                    let a = Int(g.coverage[row * g.width + column])
                    guard a > 0 else { continue }
                    let i = ((top + row) * width + left + column) * 3
                    for c in 0..<3 { pixels[i + c] = UInt8((Int(pixels[i + c]) * (255 - a) + color[c] * a + 127) / 255) }
                }
            }
            pen += g.advance
        }
    }

    /// `text` broken into lines no wider than `width` pixels: at spaces where it can, inside a word
    /// that is itself too wide; explicit newlines are kept.
    func wrap(_ text: String, width: Int, _ style: TextStyle) -> [String] {
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = ""
            for word in paragraph.split(separator: " ", omittingEmptySubsequences: false).map(String.init) {
                let candidate = line.isEmpty ? word : line + " " + word
                if self.width(candidate, style) <= width { line = candidate; continue }
                if !line.isEmpty { lines.append(line) }
                line = ""
                for character in word {
                    if !line.isEmpty && self.width(line + String(character), style) > width {
                        lines.append(line)
                        line = ""
                    }
                    line.append(character)
                }
            }
            lines.append(line)
        }
        return lines
    }

    /// The glyph of `scalar` from the first face that has it (the lock is held).
    private func glyph(_ scalar: UInt32, _ style: TextStyle) -> Glyph {
        let key = GlyphKey(scalar: scalar, size: style.size, bold: style.bold)
        if let known = glyphs[key] { return known }
        let faces = style.bold ? bold : regular
        var result = Glyph(advance: style.size * 6 / 10, left: 0, top: 0, width: 0, rows: 0, coverage: [])  // when no font loaded
        if let primary = faces.first?.face {
            let (face, index) = faces.lazy.map { ($0.face, FT_Get_Char_Index($0.face, FT_ULong(scalar))) }.first { $0.1 != 0 } ?? (primary, 0)
            if FT_Set_Pixel_Sizes(face, 0, FT_UInt(style.size)) == 0, FT_Load_Glyph(face, index, deconvnet_ft_render_light()) == 0 {
                let slot = face.pointee.glyph.pointee
                let bitmap = slot.bitmap
                let (rows, columns, pitch) = (Int(bitmap.rows), Int(bitmap.width), Int(bitmap.pitch))
                var coverage = [UInt8](repeating: 0, count: rows * columns)
                if let buffer = bitmap.buffer {
                    for r in 0..<rows {
                        for c in 0..<columns { coverage[r * columns + c] = buffer[r * pitch + c] }
                    }
                }
                result = Glyph(advance: Int((slot.advance.x + 32) >> 6), left: Int(slot.bitmap_left), top: Int(slot.bitmap_top),
                               width: columns, rows: rows, coverage: coverage)
            }
        }
        glyphs[key] = result
        return result
    }
}
