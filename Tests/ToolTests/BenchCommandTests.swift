import XCTest

/// `bench train --conv-path`: a path every convolution can take is taken and named in the output; one
/// that a layer cannot take stops the run with one line and exit 64 (a bad value for this model).
final class BenchCommandTests: XCTestCase {
    func testConvPathIsTakenOrRefused() throws {
        let quick = ["--batch-size", "2", "--steps", "1", "--repeats", "1", "--json"]
        let taken = try CLI.run(["bench", "train", "--model", "lenet5-classic", "--conv-path", "winograd"] + quick)
        XCTAssertEqual(taken.status, 0, taken.stderr)
        XCTAssertTrue(taken.stdout.contains(#""conv_path":"winograd""#), taken.stdout)
        let refused = ["bench", "train", "--model", "conv5", "--conv-path", "winograd"] + quick
        try assertCleanFailure(refused, mentions: "conv1 cannot take it")
        XCTAssertEqual(try CLI.run(refused).status, 64)
    }
}
