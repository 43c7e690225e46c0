import Foundation
import XCTest
@testable import Net

final class DataImageTests: XCTestCase {
    func testPNGRoundTripGray() throws {
        let image = grayImage(width: 5, height: 3, seed: 250)
        XCTAssertEqual(try Image.decode(image.pngData()), image)
    }

    func testPNGRoundTripRGB() throws {
        let image = Image(width: 2, height: 2, channels: 3, pixels: (0..<12).map { UInt8($0 * 21) })
        XCTAssertEqual(try Image.decode(image.pngData()), image)
    }

    func testWritePNGReplacesFileAtomically() throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/out.png"
        try grayImage(width: 2, height: 2).writePNG(toFile: path)
        let second = grayImage(width: 3, height: 1, seed: 7)
        try second.writePNG(toFile: path)
        XCTAssertEqual(try Image(contentsOfFile: path), second)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["out.png"], "temporary file left behind")
    }

    func testPNGOtherDepthsAndColorTypes() throws {
        // 16-bit gray, written by Pillow: samples 255 + 4096 k become round(v / 257).
        let gray16 = try Image.decode(bytes(hex: """
            89504e470d0a1a0a0000000d4948445200000004000000041000000000dc0a1de10000001649444154789c6364f82fc020c020c0c0\
            e2c0808b01003cde028dc300fc380000000049454e44ae426082
            """))
        XCTAssertEqual(gray16.channels, 1)
        XCTAssertEqual(gray16.pixels, (0..<16).map { UInt8(((Double(255 + 4096 * $0)) / 257).rounded()) })
        // 1-bit palette (red, blue) becomes RGB.
        let palette = try Image.decode(bytes(hex: """
            89504e470d0a1a0a0000000d4948445200000002000000010103000000ceecedc900000006504c5445ff00000000ff6ca1fd8e0000\
            000a49444154789c63700000004200412937f4ef0000000049454e44ae426082
            """))
        XCTAssertEqual(palette, Image(width: 2, height: 1, channels: 3, pixels: [255, 0, 0, 0, 0, 255]))
        // 1-bit gray (0, 1, 0) becomes (0, 255, 0).
        let bits = try Image.decode(bytes(hex: """
            89504e470d0a1a0a0000000d4948445200000003000000010100000000339b29190000000a49444154789c63700000004200412937\
            f4ef0000000049454e44ae426082
            """))
        XCTAssertEqual(bits, Image(width: 3, height: 1, channels: 1, pixels: [0, 255, 0]))
        // RGBA (10, 20, 30, 0), (100, 110, 120, 128): alpha dropped, colors kept as stored.
        let rgba = try Image.decode(bytes(hex: """
            89504e470d0a1a0a0000000d4948445200000002000000010806000000f4227f8a0000001149444154789c63e4129163888a8a6a00\
            00054c01cc6fbdc0dc0000000049454e44ae426082
            """))
        XCTAssertEqual(rgba, Image(width: 2, height: 1, channels: 3, pixels: [10, 20, 30, 100, 110, 120]))
    }

    func testJPEGDecodes() throws {
        let image = try Image.decode(smallJPEG)
        XCTAssertEqual(image.shape, ImageShape(channels: 3, height: 8, width: 8))
        XCTAssertEqual(Array(image.pixels[0..<3]).map(Int.init), [200, 41, 38], "Pillow decodes (200, 41, 38)")
    }

    func testCorruptPNGThrowsNamingTheFile() throws {
        var png = try [UInt8](grayImage(width: 8, height: 8).pngData())
        png[png.count - 20] ^= 0xFF  // inside IDAT: the CRC no longer matches
        assertDataError(try Image.decode(png, name: "broken.png"), mentions: "broken.png", "cannot decode")
        let directory = try makeTemporaryDirectory()
        try write(Array(png.prefix(40)), to: directory + "/short.png")
        assertDataError(try Image(contentsOfFile: directory + "/short.png"), mentions: directory + "/short.png")
    }

    func testTruncatedJPEGThrows() {
        assertDataError(try Image.decode(Array(smallJPEG.prefix(smallJPEG.count - 20)), name: "cut.jpg"),
                        mentions: "cut.jpg", "truncated")
        assertDataError(try Image.decode(Array(smallJPEG.prefix(100)), name: "header.jpg"), mentions: "header.jpg")
    }

    func testUnknownFormatAndMissingFile() {
        assertDataError(try Image.decode([UInt8]("GIF89a".utf8), name: "x.png"), mentions: "x.png", "not a PNG or JPEG")
        assertDataError(try Image(contentsOfFile: "/nonexistent/x.png"), mentions: "/nonexistent/x.png")
    }

    func testGrayscaleIsRoundedBT601Luma() {
        let rgb = Image(width: 5, height: 1, channels: 3,
                        pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 255, 255, 255])
        // 76.245, 149.685, 29.07, 18.15, 255
        XCTAssertEqual(rgb.grayscale().pixels, [76, 150, 29, 18, 255])
        XCTAssertEqual(rgb.grayscale().grayscale(), rgb.grayscale())
    }

    func testGrayToRGBReplicates() {
        let gray = Image(width: 2, height: 1, channels: 1, pixels: [7, 200])
        XCTAssertEqual(gray.rgb().pixels, [7, 7, 7, 200, 200, 200])
    }

    func testBilinearResizeUsesHalfPixelCentres() {
        // Enlarging 2 -> 4 samples at -0.25 (clamped to 0), 0.25, 0.75, 1.25 (edge repeated).
        let row = Image(width: 2, height: 1, channels: 1, pixels: [0, 100])
        XCTAssertEqual(row.resized(width: 4, height: 1).pixels, [0, 25, 75, 100])
        let square = Image(width: 2, height: 2, channels: 1, pixels: [0, 100, 200, 40])
        XCTAssertEqual(square.resized(width: 4, height: 4).pixels, [
            0, 25, 75, 100,
            50, 59, 76, 85,  // 58.75 -> 59, 76.25 -> 76
            150, 126, 79, 55,  // 126.25 -> 126, 78.75 -> 79
            200, 160, 80, 40,
        ])
        // Shrinking 4 -> 2 samples at 0.5 and 2.5: the mean of each pair, no wider filter.
        let wide = Image(width: 4, height: 1, channels: 1, pixels: [0, 10, 100, 255])
        XCTAssertEqual(wide.resized(width: 2, height: 1).pixels, [5, 178])  // 177.5 -> 178
    }

    func testPlanarBytesConvertChannelsThenSize() {
        let rgb = Image(width: 2, height: 1, channels: 3, pixels: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(rgb.planarBytes(ImageShape(channels: 3, height: 1, width: 2)), [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(Image(planar: [1, 4, 2, 5, 3, 6][...], shape: rgb.shape), rgb)
        let gray = Image(width: 2, height: 1, channels: 1, pixels: [0, 100])
        XCTAssertEqual(gray.planarBytes(ImageShape(channels: 3, height: 1, width: 4)),
                       [0, 25, 75, 100, 0, 25, 75, 100, 0, 25, 75, 100])
    }
}
