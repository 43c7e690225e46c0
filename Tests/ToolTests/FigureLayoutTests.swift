import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
import Deconv
import Net
@testable import Tool

/// The figures' layout, checked on the text boxes the builders return rather than on pixels: every
/// line of text inside its figure and no two overlapping, with 40-character class names, 100 and 256
/// channels, long titles and notes, and colour bars over awkward ranges; non-ASCII names set in real
/// glyphs; SVG output that an XML parser accepts.
final class FigureLayoutTests: XCTestCase {
    /// 40 characters, with and without spaces to break at.
    private let longNames = ["a class name of exactly forty characters", "Supercalifragilisticexpialidocious-boots",
                             "ångström-sized sandals, 猫 and ﬁligree ok", "猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫猫"]

    override func setUpWithError() throws {
        try Typesetter.shared.requireFonts()
    }

    /// Every text box lies inside `canvas`, has some width, and meets no other.
    private func assertCleanLayout(_ canvas: Canvas, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let runs = canvas.texts.filter { !$0.text.isEmpty }
        XCTAssertFalse(runs.isEmpty, "\(what): no text", file: file, line: line)
        for run in runs {
            XCTAssertTrue(canvas.bounds.contains(run.box), "\(what): '\(run.text)' at \(run.box) leaves the \(canvas.width)x\(canvas.height) figure", file: file, line: line)
            XCTAssertGreaterThan(run.box.width, 0, "\(what): '\(run.text)' has no width", file: file, line: line)
        }
        // sweep by x so 256-channel figures stay quick
        let sorted = runs.sorted { $0.box.x < $1.box.x }
        for (i, a) in sorted.enumerated() {
            for b in sorted[(i + 1)...] {
                if b.box.x >= a.box.x + a.box.width { break }
                XCTAssertFalse(a.box.intersects(b.box), "\(what): '\(a.text)' \(a.box) overlaps '\(b.text)' \(b.box)", file: file, line: line)
            }
        }
    }

    private func gray(_ side: Int, scale: Int) -> Canvas {
        tile([Float](repeating: 0.3, count: side * side), channels: 1, height: side, width: side, .range(0, 1), scale: scale)
    }

    func testTitlesAndNotesWrapToTheFigure() {
        let title = "conv2 channel 13: top 9 of 10000 test images of " + longNames.joined(separator: " and ")
        let note = "columns: channels by their largest activation (" + (0..<40).map { "\($0): 1.446 at (9, 6)" }.joined(separator: ", ") + ")"
        let canvas = figure(title: title, gray(28, scale: 3), notes: [note, longNames[1] + longNames[3]], extras: [colorBar(.heat, lo: 0, hi: 1, unit: "activation")])
        assertCleanLayout(canvas, "figure")
        XCTAssertLessThanOrEqual(canvas.width, 360 + 24, "text wraps to the minimum width of a figure with a narrow body")
        XCTAssertGreaterThan(canvas.texts.filter { $0.style == .title }.count, 1, "the long title wraps")
        XCTAssertGreaterThan(canvas.texts.filter { $0.style == .note }.count, 4, "the long notes wrap")
    }

    func testGridsOfManyChannelsAndLongNames() {
        // 256 columns with channel headers and 40-character row headers (evolution, featuremaps --images)
        let rows = longNames.map { _ in (0..<256).map { _ in gray(5, scale: 4) as Canvas? } }
        assertCleanLayout(Grid(rows: rows, columnHeaders: (0..<256).map(String.init), rowHeaders: longNames).render(), "256 columns")
        // 100 tiles, each captioned with a long class name (top's captions)
        let captions = (0..<100).map { "#\(1000 + $0) " + longNames[$0 % longNames.count] }
        assertCleanLayout(Grid(wrapping: (0..<100).map { _ in gray(14, scale: 2) }, captions: captions, columns: 10).render(), "100 captions")
        // headers wider than the tiles ("ch 13" over 12-pixel tiles)
        let inspectLike = Grid(rows: [(0..<100).map { _ in gray(6, scale: 2) as Canvas? }], columnHeaders: (0..<100).map { "ch \($0)" }, rowHeaders: ["deconvnet"]).render()
        assertCleanLayout(inspectLike, "100 headers over small tiles")
    }

    func testFeatureMapFiguresWith256Channels() {
        let shape = ImageShape(channels: 1, height: 28, width: 28)
        for images in [1, 3] {
            let figure = FeatureMapFigure(activations: (0..<(images * 256 * 7 * 7)).map { Float($0 % 97) / 9 }, mapShape: [256, 7, 7],
                                          inputs: [[Float]](repeating: [Float](repeating: 0.5, count: shape.count), count: images),
                                          names: Array(longNames.prefix(images)), inputShape: shape)
            assertCleanLayout(figure.render(title: "conv2: 256 feature maps 7x7 for " + longNames[0]), "\(images) image(s), 256 maps")
        }
    }

    func testTopBlocksAndLegendsWithLongClassNames() {
        let shape = ImageShape(channels: 1, height: 28, width: 28)
        let field = ReceptiveField(size: 14, jump: 4, offset: -5)
        let hits = (0..<9).map { TopActivation(image: 1000 + $0, unit: FeatureUnit(channel: 3, y: $0 % 7, x: $0 / 2), value: Float($0) * 1.234) }
        let block = TopBlock(hits: hits, projections: hits.map { _ in [Float](repeating: 0.1, count: shape.count) },
                             images: hits.map { _ in [Float](repeating: 0.5, count: shape.count) }, shape: shape, field: field,
                             labels: hits.indices.map { longNames[$0 % longNames.count] })
        assertCleanLayout(figure(title: "conv2 channel 3", block.render(scale: 6, captions: true), notes: ProjectionStyle.notes, extras: [symmetricKey(unit: "projection")]), "top block")
        let overview = Grid(wrapping: (0..<64).map { block.render(scale: 2, captions: false).captioned("channel \($0)") }, columns: 8).render()
        assertCleanLayout(overview, "top overview")
        let legend = OcclusionStyle.legend(Array(0..<10), names: (0..<10).map { longNames[$0 % longNames.count] }, counts: [0: 400, 3: 41])
        assertCleanLayout(legend, "class legend")
    }

    func testColorBarTicksNeverMeet() {
        for (lo, hi) in [(Float(0), Float(1)), (0.99901, 0.99987), (-3e-5, 7e-4), (-12345, 67890), (0.25, 0.25), (0, 1e-9), (-1, 1), (0.0010251, 0.0010254), (12.34561, 12.34568), (3e6, 3.0002e6)] {
            let bar = colorBar(.heat, lo: lo, hi: hi, unit: "probability")
            assertCleanLayout(bar, "colour bar \(lo)...\(hi)")
            let ticks = bar.texts.filter { $0.style == .tick }
            XCTAssertGreaterThanOrEqual(ticks.count, lo < hi ? 2 : 1, "\(lo)...\(hi): \(ticks.map(\.text))")
            XCTAssertEqual(Set(ticks.map(\.text)).count, ticks.count, "\(lo)...\(hi): repeated tick labels \(ticks.map(\.text))")
        }
        assertCleanLayout(symmetricKey(unit: "projection"), "symmetric key")
    }

    func testRangesReadDifferentlyAtTheirEnds() {
        XCTAssertEqual(formatRange(0.0010251, 0.0010254), "0.0010251 to 0.0010254")
        XCTAssertEqual(formatRange(-1.5, 2), "-1.5 to 2")
        XCTAssertEqual(formatRange(0.25, 0.25), "0.25 to 0.25")
    }

    func testNonASCIINamesGetRealGlyphs() throws {
        let type = Typesetter.shared
        for character in ["å", "ö", "猫", "é", "∂", "Δ"] {
            XCTAssertTrue(type.hasGlyph(character.unicodeScalars.first!), "no face has \(character)")
        }
        XCTAssertFalse(type.hasGlyph("\u{E000}"), "a private-use character has no glyph")
        // the cat is drawn, and differently from the missing-glyph box
        func ink(_ text: String) -> [UInt8] {
            var canvas = Canvas(width: 40, height: 24)
            canvas.text(text, x: 4, y: 4)
            return canvas.image.pixels
        }
        let (cat, missing, blank) = (ink("猫"), ink("\u{E000}"), Canvas(width: 40, height: 24).pixels)
        XCTAssertNotEqual(cat, blank)
        XCTAssertNotEqual(cat, missing)
        XCTAssertEqual(type.width("ångström", .label), type.width("a\u{30A}ngstro\u{308}m", .label), "decomposed text is set as composed")
    }

    func testSVGIsWellFormedWithVectorText() throws {
        let names = ["ångström", "猫", "a < b & \"c\""]
        let canvas = figure(title: "filters of " + names.joined(separator: ", "), Grid(wrapping: names.map { _ in gray(5, scale: 8) }, captions: names, columns: 3).render(),
                            notes: ["one scale"], extras: [colorBar(.heat, lo: 0, hi: 2, unit: "activation")])
        let svg = try canvas.svg()
        final class Collector: NSObject, XMLParserDelegate {
            var texts: [String] = [], images = 0
            private var current: String?
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                if name == "text" { current = "" }
                if name == "image", attributes["xlink:href"]?.hasPrefix("data:image/png;base64,") == true { images += 1 }
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { current? += string }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
                if name == "text", let current { texts.append(current) }
                current = nil
            }
        }
        let parser = XMLParser(data: Data(svg.utf8))
        let collector = Collector()
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        XCTAssertEqual(collector.images, 1, "the pixels as one embedded PNG")
        XCTAssertEqual(collector.texts, canvas.texts.filter { !$0.text.isEmpty }.map(\.text), "every line of text as <text>")
        for name in names { XCTAssertTrue(collector.texts.contains(name), "\(name) is not in the SVG's text") }
    }
}
