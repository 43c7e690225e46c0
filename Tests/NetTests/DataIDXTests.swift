import Foundation
import XCTest
@testable import Net

final class DataIDXTests: XCTestCase {
    /// Three 2x3 images whose pixel `i` of image `n` is `10 n + i`, labels 2, 0, 9.
    private let pixels = (0..<3).flatMap { n in (0..<6).map { UInt8(10 * n + $0) } }
    private let labels: [UInt8] = [2, 0, 9]

    private func writeSplit(_ prefix: String, in directory: String, compressed: Bool) throws {
        let suffix = compressed ? ".gz" : ""
        let images = idxFile(dimensions: [3, 2, 3], values: pixels)
        let labelFile = idxFile(dimensions: [3], values: labels)
        try write(compressed ? gzip(images) : images, to: "\(directory)/\(prefix)-images-idx3-ubyte\(suffix)")
        try write(compressed ? gzip(labelFile) : labelFile, to: "\(directory)/\(prefix)-labels-idx1-ubyte\(suffix)")
    }

    func testReadsPlainAndGzipFiles() throws {
        for compressed in [false, true] {
            let directory = try makeTemporaryDirectory()
            try writeSplit("train", in: directory, compressed: compressed)
            try writeSplit("t10k", in: directory, compressed: compressed)
            let data = try DataLoader.load(directory)
            XCTAssertEqual(data.format, "idx")
            for split in [data.train, data.test] {
                let split = try XCTUnwrap(split)
                XCTAssertEqual(split.shape, ImageShape(channels: 1, height: 2, width: 3))
                XCTAssertEqual(split.pixels, pixels)
                XCTAssertEqual(split.labels, [2, 0, 9])
                XCTAssertEqual(split.classNames, (0..<10).map(String.init))
            }
        }
    }

    /// A split not asked for is not read: a broken train split does not stop reading the test split alone.
    func testReadsOnlyTheSplitAskedFor() throws {
        let directory = try makeTemporaryDirectory()
        try writeSplit("train", in: directory, compressed: false)
        try writeSplit("t10k", in: directory, compressed: false)
        let train = try DataLoader.load(directory, splits: .train)
        XCTAssertNil(train.test)
        XCTAssertEqual(train.train?.labels, [2, 0, 9])
        try write(Array(idxFile(dimensions: [3, 2, 3], values: pixels).prefix(20)), to: "\(directory)/train-images-idx3-ubyte")
        assertDataError(try DataLoader.load(directory), mentions: "train-images-idx3-ubyte", "truncated")
        let test = try DataLoader.load(directory, splits: .test)
        XCTAssertNil(test.train)
        XCTAssertEqual(test.test?.pixels, pixels)
        XCTAssertEqual(test.test?.labels, [2, 0, 9])
    }

    func testFashionNamesAndResize() throws {
        let directory = try makeTemporaryDirectory() + "/fashion-tiny"
        try writeSplit("t10k", in: directory, compressed: false)
        let data = try DataLoader.load(directory, size: 4)
        XCTAssertNil(data.train)
        let test = try XCTUnwrap(data.test)
        XCTAssertEqual(test.classNames.last, "Ankle boot")
        XCTAssertEqual(test.shape, ImageShape(channels: 1, height: 4, width: 4))
        let first = Image(width: 3, height: 2, channels: 1, pixels: Array(pixels[0..<6]))
        XCTAssertEqual(Array(test.pixels[0..<16]), first.resized(width: 4, height: 4).pixels)
    }

    func testTruncatedFileThrows() throws {
        for compressed in [false, true] {
            let directory = try makeTemporaryDirectory()
            let images = Array(idxFile(dimensions: [3, 2, 3], values: pixels).dropLast(5))
            try write(compressed ? gzip(images) : images, to: directory + "/train-images-idx3-ubyte")
            try write(idxFile(dimensions: [3], values: labels), to: directory + "/train-labels-idx1-ubyte")
            assertDataError(try DataLoader.load(directory), mentions: "train-images-idx3-ubyte", "truncated", "needs at least 34")
        }
    }

    func testTruncatedGzipStreamThrows() throws {
        let directory = try makeTemporaryDirectory()
        let compressed = gzip(idxFile(dimensions: [3, 2, 3], values: pixels))
        try write(Array(compressed.prefix(compressed.count / 2)), to: directory + "/train-images-idx3-ubyte.gz")
        try write(idxFile(dimensions: [3], values: labels), to: directory + "/train-labels-idx1-ubyte")
        assertDataError(try DataLoader.load(directory), mentions: "train-images-idx3-ubyte.gz", "truncated")
    }

    func testBadMagicAndCountMismatchThrow() throws {
        let directory = try makeTemporaryDirectory()
        var images = idxFile(dimensions: [3, 2, 3], values: pixels)
        images[2] = 0x0D  // float data
        try write(images, to: directory + "/train-images-idx3-ubyte")
        try write(idxFile(dimensions: [2], values: [1, 2]), to: directory + "/train-labels-idx1-ubyte")
        assertDataError(try DataLoader.load(directory), mentions: "train-images-idx3-ubyte", "magic")
        try write(idxFile(dimensions: [3, 2, 3], values: pixels), to: directory + "/train-images-idx3-ubyte")
        assertDataError(try DataLoader.load(directory), mentions: "2 labels", "3 images")
    }

    func testRealFashionMNISTTestSplit() throws {
        let source = "/usr/share/datasets/fashion-mnist"
        let names = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        guard names.allSatisfy({ FileManager.default.fileExists(atPath: "\(source)/\($0)") }) else {
            throw XCTSkip("Fashion-MNIST is not installed at \(source) (Debian package dataset-fashion-mnist)")
        }
        let directory = try makeTemporaryDirectory() + "/fashion-test"  // the test split alone, linked
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in names {
            try FileManager.default.createSymbolicLink(atPath: "\(directory)/\(name)", withDestinationPath: "\(source)/\(name)")
        }
        let test = try XCTUnwrap(DataLoader.load(directory).test)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(test.shape, ImageShape(channels: 1, height: 28, width: 28))
        XCTAssertEqual(test.classNames, IDXReader.fashionClassNames)
        XCTAssertEqual(Set(test.labels), Set(0..<10))
        XCTAssertEqual(test.labels.prefix(3), [9, 2, 1], "Fashion-MNIST's test set starts ankle boot, pullover, trouser")
    }
}
