import Foundation
import XCTest
@testable import Net

final class DataFolderTests: XCTestCase {
    func testCourseLayoutSortsNumericClassesAsNumbers() throws {
        let directory = try makeTemporaryDirectory()
        for (split, perClass) in [("Train", 2), ("Test", 1)] {
            for label in [0, 2, 10] {
                for k in 0..<perClass {
                    try grayImage(width: 3, height: 2, seed: 10 * label + k)
                        .writePNG(toFile: try folder(directory, split, "\(label)") + "/Image\(k).png")
                }
            }
        }
        let data = try DataLoader.load(directory)
        XCTAssertEqual(data.format, "course-folders")
        let train = try XCTUnwrap(data.train)
        XCTAssertEqual(train.classNames, ["0", "2", "10"])
        XCTAssertEqual(train.labels, [0, 0, 1, 1, 2, 2])
        XCTAssertEqual(train.shape, ImageShape(channels: 1, height: 2, width: 3))
        XCTAssertEqual(Array(train.pixels[6..<12]), grayImage(width: 3, height: 2, seed: 1).pixels)
        XCTAssertEqual(data.test?.labels, [0, 1, 2])

        let summary = DataSummary(data, path: directory).description
        XCTAssertTrue(summary.contains("format:  course-folders"), summary)
        XCTAssertTrue(summary.contains("shape:   1x2x3"), summary)
        XCTAssertTrue(summary.contains("splits:  train 6 images, test 3 images"), summary)
        XCTAssertTrue(summary.contains("  10          2       1"), summary)
    }

    func testClassNamedFoldersWithPNGAndJPEG() throws {
        let directory = try makeTemporaryDirectory()
        try write(smallJPEG, to: try folder(directory, "train", "zebra") + "/a.jpg")
        try write(smallJPEG, to: try folder(directory, "train", "zebra") + "/b.JPEG")
        try grayImage(width: 8, height: 8).writePNG(toFile: try folder(directory, "train", "ant") + "/a.png")
        try write([UInt8]("notes".utf8), to: try folder(directory, "train", "ant") + "/README.txt")
        try write(smallJPEG, to: try folder(directory, "TEST", "ant") + "/misnamed.png")  // decoded by content
        let data = try DataLoader.load(directory)
        XCTAssertEqual(data.format, "class-folders")
        let train = try XCTUnwrap(data.train)
        XCTAssertEqual(train.classNames, ["ant", "zebra"])
        XCTAssertEqual(train.labels, [0, 1, 1])
        // The gray PNG is promoted to RGB because the other images are color.
        XCTAssertEqual(train.shape, ImageShape(channels: 3, height: 8, width: 8))
        XCTAssertEqual(Array(train.pixels[0..<64]), Array(train.pixels[64..<128]))
        XCTAssertEqual(data.test?.labels, [0])

        let gray = try XCTUnwrap(DataLoader.load(directory, grayscale: true, size: 4).train)
        XCTAssertEqual(gray.shape, ImageShape(channels: 1, height: 4, width: 4))
        let expected = try Image.decode(smallJPEG).grayscale().resized(width: 4, height: 4).pixels
        XCTAssertEqual(Array(gray.pixels[16..<32]), expected)
    }

    func testMixedSizesNeedAConversion() throws {
        let directory = try makeTemporaryDirectory()
        try grayImage(width: 4, height: 4).writePNG(toFile: try folder(directory, "train", "a") + "/1.png")
        try grayImage(width: 5, height: 4).writePNG(toFile: try folder(directory, "train", "b") + "/2.png")
        assertDataError(try DataLoader.load(directory), mentions: "1.png is 1x4x4", "2.png is 1x4x5", "--size")
        XCTAssertEqual(try DataLoader.load(directory, size: 3).train?.shape, ImageShape(channels: 1, height: 3, width: 3))
    }

    func testEmptyClassFolderAndBadImageThrow() throws {
        let directory = try makeTemporaryDirectory()
        try grayImage(width: 2, height: 2).writePNG(toFile: try folder(directory, "train", "a") + "/1.png")
        let empty = try folder(directory, "train", "b")
        assertDataError(try DataLoader.load(directory), mentions: empty, "no .png")
        try write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0], to: empty + "/bad.png")
        assertDataError(try DataLoader.load(directory), mentions: empty + "/bad.png", "cannot decode")
    }

    func testMissingPathAndUnknownLayout() throws {
        assertDataError(try DataLoader.load("/nonexistent/data"), mentions: "/nonexistent/data", "no such")
        let directory = try makeTemporaryDirectory()
        try write([1, 2, 3], to: directory + "/something.bin")
        assertDataError(try DataLoader.load(directory), mentions: directory, "idx:", "cifar10-binary:", "Train/<0-9>")
    }

    func testRealCourseMNIST() throws {
        let path = "/work/shared/data/MNIST"
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("the course's MNIST folders are not at \(path)")
        }
        let data = try DataLoader.load(path)
        XCTAssertEqual(data.format, "course-folders")
        XCTAssertEqual(data.train?.count, 10_000)
        XCTAssertEqual(data.test?.count, 1_000)
        XCTAssertEqual(data.shape, ImageShape(channels: 1, height: 28, width: 28))
        XCTAssertEqual(data.classNames, (0..<10).map(String.init))
    }

    /// Creates `directory/split/name` and returns its path.
    private func folder(_ directory: String, _ split: String, _ name: String) throws -> String {
        let path = "\(directory)/\(split)/\(name)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
