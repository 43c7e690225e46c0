import Foundation
import XCTest
import Net
@testable import Tool

/// The filter snapshots `train` records: drawn by Tool's `filterRow`, stacked one row per epoch by the
/// training log.
final class FilterRowTests: XCTestCase {
    func testFilterRowNormalisesEachFilter() {
        let weights: [Float] = [-1, 1, 0, 0.5,  10, 20, 30, 40]  // two 1-channel 2x2 filters
        let row = filterRow(weights, shape: [2, 1, 2, 2], scale: 1)
        XCTAssertEqual(row.width, 5)
        XCTAssertEqual(row.height, 2)
        XCTAssertEqual(Array(row.pixels[0..<5]), [0, 255, 40, 0, 85])
        XCTAssertEqual(Array(row.pixels[5..<10]), [128, 191, 40, 170, 255])
    }

    func testTrainWritesOneRowPerEpoch() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let result = try CLI.run(["train", "--data", dir + "/data", "--model", "conv:2:3:same,fc", "--epochs", "1", "--batch-size", "8", "--run", dir + "/run"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let strip = try Image(contentsOfFile: dir + "/run/filters/strip.png")
        XCTAssertEqual(strip.width, 2 * (3 * 4 + 1) - 1, "two 3x3 filters at 4 pixels per weight, a 1-pixel gap")
        XCTAssertEqual(strip.height, 2 * 3 * 4 + 1, "epochs 0 and 1")
    }
}
