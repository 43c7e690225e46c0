import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
import Net

/// `deconvnet inspect` end to end on a tiny trained model: a page whose pictures exist, with every
/// section and caption; an image file of another size and colour converted and described; one clear
/// error line for bad input; a recurrent model's page; the invariance chart as valid SVG.
final class InspectCommandTests: XCTestCase {
    private let sections = ["Input", "Prediction", "Occlusion", "Projections of the strongest features", "Saliency", "Feature maps"]

    /// The first group of every match of `pattern` in `text`.
    private func captures(_ pattern: String, in text: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { String(text[Range($0.range(at: 1), in: text)!]) }
    }

    /// The page in `directory`, after checking that every picture it shows is a PNG file beside it (or
    /// in its `tiles/` folder), that every figure has a caption, and that no picture carries text (its
    /// words are on the page); returns the HTML and the pictures' file names.
    private func page(_ directory: String, file: StaticString = #filePath, line: UInt = #line) throws -> (html: String, pictures: [String]) {
        let html = try String(contentsOfFile: directory + "/index.html", encoding: .utf8)
        let sources = captures(#"<img src="([^"]+)""#, in: html)
        XCTAssertFalse(sources.isEmpty, file: file, line: line)
        for source in sources {
            XCTAssertFalse(source.replacingOccurrences(of: "tiles/", with: "").contains("/") || source.contains(":"), "\(source) is not a file beside the page", file: file, line: line)
            XCTAssertNoThrow(try Image(contentsOfFile: directory + "/" + source), "\(source) is not a readable PNG", file: file, line: line)
        }
        let captions = captures("<figcaption>([^<]+)</figcaption>", in: html)
        XCTAssertEqual(captions.count, captures("(<figure>)", in: html).count, "one caption per figure", file: file, line: line)
        XCTAssertFalse(html.contains("<text") && !html.contains("<svg"), "text only as HTML or inline SVG", file: file, line: line)
        for caption in captions { XCTAssertGreaterThan(caption.count, 30, caption, file: file, line: line) }
        for section in sections { XCTAssertTrue(html.contains("<h2>\(section)</h2>"), "no section \(section)", file: file, line: line) }
        XCTAssertFalse(html.contains("http://") || html.contains("https://"), "the page must not need the network", file: file, line: line)
        return (html, sources)
    }

    func testInspectPage() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let trained = try CLI.run(["train", "--data", dir + "/data", "--model", "conv:4:3:same,maxpool:2,conv:6:3:same,maxpool:2,fc",
                                   "--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--run", dir + "/run"])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let checkpoint = dir + "/run/checkpoint.safetensors"

        let inspect = try CLI.run(["inspect", "--checkpoint", checkpoint, "--data", dir + "/data", "--index", "2", "--features", "4", "--out", dir + "/page"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains(dir + "/page/index.html"), inspect.stdout)
        let (html, pictures) = try page(dir + "/page")
        for file in ["input.png", "occlusion-predicted.png", "occlusion-predicted-map.png", "saliency.png", "saliency-gradient.png", "tiles/featuremap-5.png"] {
            XCTAssertTrue(pictures.contains(file), "\(file) is not on the page")
        }
        for method in ["deconvnet", "guided", "gradient"] {
            XCTAssertEqual(Set(pictures.filter { $0.hasPrefix("tiles/\(method)-ch") }).count, 4, "one \(method) tile per projected feature map")
        }
        XCTAssertEqual(Set(pictures.filter { $0.hasPrefix("tiles/featuremap-") }).count, 6, "one tile per feature map of conv2")
        XCTAssertEqual(captures(#"<th>(ch \d+): "#, in: html).count, 4, "one column header per projected feature map, as page text")
        XCTAssertEqual(captures(#"<div class="key">(<svg) "#, in: html).count, 4, "colour bars of the occlusion, projections, saliency and feature maps as inline SVG")
        XCTAssertTrue(html.contains("True class: class 0"), "test image 2 is of class 0")
        XCTAssertTrue(html.contains("the 4 feature maps with the largest activations"))
        XCTAssertTrue(html.contains("guided-backprop and gradient projections"))
        XCTAssertTrue(html.contains("read as the model&#39;s input 1x12x12") || html.contains("read as the model's input 1x12x12"))
        XCTAssertEqual(captures(#"<tr(?: class="best")?><td class="num">(\d)"#, in: html), ["1", "2", "3"], "top-5 of 3 classes lists 3")
        try assertRendersInBrowser(dir + "/page")

        // A colour image of another size: converted to the model's 1x12x12 input, and the page says how.
        var pixels = [UInt8](repeating: 0, count: 30 * 20 * 3)
        for i in 0..<(30 * 20) { (pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]) = (UInt8(i % 256), 200, UInt8(i / 30 * 10)) }
        try Image(width: 30, height: 20, channels: 3, pixels: pixels).writePNG(toFile: dir + "/color.png")
        let fromFile = try CLI.run(["inspect", "--checkpoint", checkpoint, "--image", dir + "/color.png", "--out", dir + "/file"])
        XCTAssertEqual(fromFile.status, 0, fromFile.stderr)
        let (fileHTML, filePictures) = try page(dir + "/file")
        XCTAssertTrue(fileHTML.contains("30x20 RGB → BT.601 grayscale"), "the page does not describe the conversion")
        XCTAssertTrue(fileHTML.contains("bilinear resize to 12x12 → model input 1x12x12"))
        XCTAssertTrue(fileHTML.contains("No true class: an --image file has no label"))
        XCTAssertFalse(filePictures.contains("occlusion-true.png"))
        let input = try Image(contentsOfFile: dir + "/file/input.png")
        XCTAssertEqual(input.width, 12 * 14, "the 12x12 model input, upscaled 14x")

        // Bad input: one clear line each.
        let notAnImage = dir + "/not-an-image.png"
        try Data("hello".utf8).write(to: URL(fileURLWithPath: notAnImage))
        try assertCleanFailure(["inspect", "--checkpoint", checkpoint, "--image", notAnImage, "--out", dir + "/bad"], mentions: "not-an-image.png")
        try assertCleanFailure(["inspect", "--checkpoint", checkpoint, "--data", dir + "/data", "--index", "99", "--out", dir + "/bad"],
                               mentions: "--index 99 is out of range")
        try assertCleanFailure(["inspect", "--checkpoint", checkpoint, "--data", dir + "/data", "--out", dir + "/bad"], mentions: "--index")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/bad/index.html"))
    }

    func testRecurrentModelPage() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let checkpoint = try writeUntrainedCheckpoint("lstm:8,fc", in: dir, seed: 2)
        let inspect = try CLI.run(["inspect", "--checkpoint", checkpoint, "--data", dir + "/data", "--index", "0", "--out", dir + "/page"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let (html, pictures) = try page(dir + "/page")
        XCTAssertTrue(html.contains("has no convolution to project through"))
        XCTAssertTrue(pictures.contains("occlusion-predicted.png") && pictures.contains("saliency.png"))
        XCTAssertFalse(pictures.contains { $0.hasPrefix("tiles/") }, "no projection or feature-map tiles")
    }

    /// `invariance.svg` is well-formed XML holding its three charts (`LineChart`s nested side by side).
    func testInvarianceChartIsOneSVGWithThreeCharts() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let checkpoint = try writeUntrainedCheckpoint("conv:4:3:same,maxpool:2,fc:8,fc", in: dir, seed: 3)
        let result = try CLI.run(["invariance", "--checkpoint", checkpoint, "--data", dir + "/data", "--index", "1", "--transform", "scale",
                                  "--range=0.8:1.2:0.1", "--out", dir + "/inv"])
        XCTAssertEqual(result.status, 0, result.stderr)

        final class Counter: NSObject, XMLParserDelegate {
            var charts = 0, svgs = 0, titles: [String] = []
            private var inTitle = false
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                if name == "svg" { svgs += 1 }
                if name == "svg", attributes["class"] == "chart" { charts += 1 }
                inTitle = name == "title"
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { if inTitle { titles.append(string) } }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { inTitle = false }
        }
        let parser = try XCTUnwrap(XMLParser(contentsOf: URL(fileURLWithPath: dir + "/inv/invariance.svg")))
        let counter = Counter()
        parser.delegate = counter
        XCTAssertTrue(parser.parse(), "invariance.svg is not well-formed XML: \(String(describing: parser.parserError))")
        XCTAssertEqual(counter.charts, 3)
        XCTAssertEqual(counter.svgs, 4, "one outer SVG around three charts")
        XCTAssertEqual(counter.titles.filter { !$0.isEmpty }.reduce(into: [String]()) { if $0.last != $1 { $0.append($1) } },
                       ["conv1: distance to original", "fc1: distance to original", "p(0)"], "each chart and its line carry its title")
    }
}
