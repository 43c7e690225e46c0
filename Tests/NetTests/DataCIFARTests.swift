import Foundation
import XCTest
@testable import Net

final class DataCIFARTests: XCTestCase {
    /// A batch of `labels.count` records; record `n`'s pixel `i` is `(n + i) % 256`.
    private func batch(_ labels: [UInt8]) -> [UInt8] {
        labels.enumerated().flatMap { n, label in [label] + (0..<3072).map { UInt8((n + $0) % 256) } }
    }

    func testReadsBatchesWithStandardNames() throws {
        let directory = try makeTemporaryDirectory()
        try write(batch([3, 1]), to: directory + "/data_batch_1.bin")
        try write(batch([9]), to: directory + "/data_batch_2.bin")
        try write(batch([0]), to: directory + "/test_batch.bin")
        let data = try DataLoader.load(directory)
        XCTAssertEqual(data.format, "cifar10-binary")
        let train = try XCTUnwrap(data.train)
        XCTAssertEqual(train.labels, [3, 1, 9])
        XCTAssertEqual(train.shape, ImageShape(channels: 3, height: 32, width: 32))
        XCTAssertEqual(Array(train.pixels[3072..<3075]), [1, 2, 3])
        XCTAssertEqual(train.classNames[3], "cat")
        XCTAssertEqual(data.test?.count, 1)
    }

    func testMetaNamesAndGrayscale() throws {
        let directory = try makeTemporaryDirectory()
        try write(batch([1]), to: directory + "/test_batch.bin")
        try write([UInt8]("first\nsecond\n\n".utf8), to: directory + "/batches.meta.txt")
        let test = try XCTUnwrap(DataLoader.load(directory, grayscale: true).test)
        XCTAssertEqual(test.classNames, ["first", "second"])
        XCTAssertEqual(test.shape, ImageShape(channels: 1, height: 32, width: 32))
        // Pixel 0 is (R, G, B) = (0, 1024 % 256, 2048 % 256) = (0, 0, 0); pixel 1 is (1, 1, 1).
        XCTAssertEqual(Array(test.pixels[0..<2]), [0, 1])
    }

    func testTruncatedBatchAndBadLabelThrow() throws {
        let directory = try makeTemporaryDirectory()
        try write(Array(batch([1, 2]).dropLast(10)), to: directory + "/data_batch_1.bin")
        assertDataError(try DataLoader.load(directory), mentions: "data_batch_1.bin", "truncated", "6146")
        try write(batch([10]), to: directory + "/data_batch_1.bin")
        assertDataError(try DataLoader.load(directory), mentions: "label 10")
    }
}
