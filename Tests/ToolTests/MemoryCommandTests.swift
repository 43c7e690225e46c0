import Foundation
import XCTest
import Net

/// The command line under hostile sizes: one line, exit 1 for a file and 64 for a flag, and bounded memory.
final class MemoryCommandTests: XCTestCase {
    /// Asserts that `arguments` exit with `status` and print one line on stderr containing every fragment.
    private func assertFails(_ arguments: [String], status: Int32, mentions fragments: String...,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try CLI.run(arguments)
        XCTAssertEqual(result.status, status, "\(arguments): \(result.stderr)", file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "stderr was: \(result.stderr)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(result.stderr.contains(fragment), "\"\(result.stderr)\" does not mention \"\(fragment)\"", file: file, line: line)
        }
    }

    func testFlagsThatWouldAllocateTooMuchAreRefused() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir)
        try assertFails(["summary", "--model", "conv:99999999:3,fc"], status: 64, mentions: "99999999", "16777216")
        try assertFails(["summary", "--model", "lstm", "--hidden", "100000000"], status: 64, mentions: "100000000")
        try assertFails(["summary", "--model", "conv:16777216:3,fc"], status: 64, mentions: "conv:16777216:3", "--max-memory")
        try assertFails(["summary", "--max-memory", "1M"], status: 64, mentions: "fc:1024", "1.00 MiB")
        try assertFails(["summary", "--max-memory", "lots"], status: 64, mentions: "--max-memory", "lots")
        try assertFails(["train", "--data", dir, "--size", "100000"], status: 64, mentions: "--size", "16384")
        // 24 training images of 1x12x12 a step (not 100): 15.1 KiB of buffers for this model
        try assertFails(["train", "--data", dir, "--model", "fc:4,fc", "--batch-size", "100", "--max-memory", "12K", "--run", dir + "/r"],
                        status: 64, mentions: "--batch-size 100", "24 images", "12.0 KiB")
        // the convolution's scratch, 22.1 KiB a worker beside 211 KiB of buffers, fits once (1 worker) but not 24 times
        let conv = ["train", "--data", dir, "--model", "conv:16:5,fc", "--batch-size", "24", "--steps", "1", "--no-logging", "--max-memory", "300K"]
        XCTAssertEqual(try CLI.run(conv + ["--workers", "1", "--run", dir + "/r1"]).status, 0)
        try assertFails(conv + ["--workers", "24", "--run", dir + "/r24"], status: 64, mentions: "--batch-size 24", "--workers 24", "300 KiB")
        // a model too large for images of their own size (issue 13: 4000x4000 images without --size)
        try assertFails(["train", "--data", dir, "--model", "fc:64,fc", "--max-memory", "12K", "--run", dir + "/r2"],
                        status: 1, mentions: "'fc:64' on 1x12x12 inputs", "--size N reads the images resized")
    }

    func testBatchesLargerThanTheDataTrainOnTheData() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir)
        for batch in ["1000000000", "9223372036854775807"] {
            let result = try CLI.run(["train", "--data", dir, "--model", "fc:16,fc", "--batch-size", batch, "--steps", "1",
                                      "--no-logging", "--max-memory", "64M", "--run", dir + "/run-\(batch)"])
            XCTAssertEqual(result.status, 0, result.stderr)
        }
    }

    func testFilesThatWouldAllocateTooMuchAreRefused() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir, size: 64)
        try assertFails(["data", dir, "--max-memory", "40K"], status: 1, mentions: dir, "images of 1x64x64", "40.0 KiB")
        let result = try CLI.run(["data", dir, "--size", "8", "--max-memory", "40K"])
        XCTAssertEqual(result.status, 0, "resized as read, the same images fit: \(result.stderr)")
        let checkpoint = try writeUntrainedCheckpoint("fc:8,fc", in: dir, seed: 1)
        try assertFails(["predict", "--checkpoint", checkpoint, "--image", "\(dir)/Test/0/Image00000.png", "--max-memory", "1K"],
                        status: 1, mentions: checkpoint, "1.00 KiB")
    }

    func testNonFiniteWeightsAreRefused() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir)
        let path = try writeUntrainedCheckpoint("fc:8,fc", in: dir, seed: 1)
        var checkpoint = try Checkpoint.read(from: path)
        checkpoint.tensors[0].tensor.data[3] = .nan
        try checkpoint.write(to: path)
        try assertFails(["predict", "--checkpoint", path, "--image", "\(dir)/Test/0/Image00000.png"], status: 1,
                        mentions: path, "fc1.weight", "nan")
    }
}
