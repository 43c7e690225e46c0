import Foundation
import XCTest
import Net
@testable import Tool

/// Bad values of flags (exit 64), run-time failures (exit 1) and what the tool prints of names it
/// reads from files.
final class CommandLineInputTests: XCTestCase {
    func testNonFiniteAndOutOfRangeValuesAreBadFlags() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let data = dir + "/data"
        for (flag, value) in [("--weight-decay", "nan"), ("--weight-decay", "-1"), ("--lr", "nan"), ("--lr", "inf"), ("--clip-norm", "nan"), ("--clip-norm", "-inf")] {
            try assertCleanFailure(["train", "--data", data, flag, value], mentions: flag, status: 64)
        }
        try assertCleanFailure(["train", "--data", data, "--augment", "flip,blur"], mentions: "blur", status: 64)
        let schedule = try CLI.run(["train", "--data", data, "--schedule", "sideways"])
        XCTAssertEqual(schedule.status, 64)
        XCTAssertTrue(schedule.stderr.contains("schedule 'sideways' is not one of"), schedule.stderr)
        XCTAssertFalse(schedule.stderr.contains("model spec"), schedule.stderr)

        let checkpoint = try writeUntrainedCheckpoint("conv:2:3:same,maxpool:2,fc", in: dir, seed: 1)
        let image = data + "/Test/1/Image00000.png"
        try assertCleanFailure(["predict", "--checkpoint", checkpoint, "--image", image, "--top", "0"], mentions: "--top", status: 64)
        // the model reads 12x12 images: half the side is 6
        try assertCleanFailure(["inspect", "--checkpoint", checkpoint, "--image", image, "--window", "7", "--out", dir + "/page"], mentions: "--window", status: 64)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/page"), "nothing is written for a bad flag")
        for range in ["inf:inf:1", "0:1:nan", "0:1e30:1e-30"] {
            try assertCleanFailure(["invariance", "--checkpoint", checkpoint, "--image", image, "--transform", "translate", "--range", range, "--out", dir + "/inv"],
                                   mentions: "--range", status: 64)
        }
    }

    func testDataThatDoesNotFitTheModelIsARunTimeError() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/two", classes: 2)
        let checkpoint = try writeUntrainedCheckpoint("conv:2:3:same,maxpool:2,fc", in: dir, seed: 1)
        try assertCleanFailure(["eval", "--checkpoint", checkpoint, "--data", dir + "/two"], mentions: "has 2 classes but the model has 3", status: 1)
        try assertCleanFailure(["train", "--data", dir + "/two", "--model", "conv:2:9:valid,conv:2:9:valid,fc"], mentions: "does not fit", status: 1)
    }

    func testFoundationErrorsNameThePathAndTheCause() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let folder = dir + "/folder.safetensors"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try assertCleanFailure(["eval", "--checkpoint", folder, "--data", dir + "/data"], mentions: "folder.safetensors", status: 1)
        try assertCleanFailure(["eval", "--checkpoint", folder, "--data", dir + "/data"], mentions: "Is a directory")

        // a run directory below a plain file cannot be created (root may write into read-only directories)
        let file = dir + "/plain"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let result = try CLI.run(["train", "--data", dir + "/data", "--model", "fc:4,fc", "--epochs", "1", "--run", file + "/run"])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains(file + "/run") && result.stderr.contains("Not a directory"), result.stderr)
        XCTAssertFalse(result.stderr.contains("NSCocoaErrorDomain"), result.stderr)
        let checkpoint = try writeUntrainedCheckpoint("conv:2:3:same,maxpool:2,fc", in: dir, seed: 1)
        try assertCleanFailure(["inspect", "--checkpoint", checkpoint, "--data", dir + "/data", "--index", "0", "--out", file + "/page"],
                               mentions: "Not a directory", status: 1)
    }

    func testResumeFindsDataTrainedWithARelativePathFromAnotherDirectory() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let first = try CLI.run(["train", "--data", "data", "--model", "fc:4,fc", "--epochs", "1", "--batch-size", "8", "--run", "run"], in: dir)
        XCTAssertEqual(first.status, 0, first.stderr)
        let json = try XCTUnwrap(try Checkpoint.read(from: dir + "/run/checkpoint.safetensors").metadata[CheckpointKey.config])
        let stored = try JSONDecoder().decode(TrainConfig.self, from: Data(json.utf8)).data
        XCTAssertEqual(URL(fileURLWithPath: stored).standardizedFileURL, URL(fileURLWithPath: dir + "/data").standardizedFileURL)
        XCTAssertTrue(stored.hasPrefix("/"), stored)
        let resumed = try CLI.run(["train", "--resume", dir + "/run/checkpoint.safetensors", "--epochs", "1"], in: NSTemporaryDirectory())
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("epoch 2/2"), resumed.stdout)
    }

    func testNamesFromFilesArePrintedWithoutControlCharacters() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let hostile = "\u{1B}[31mred\u{1B}]0;title\u{07}"
        for split in ["Train", "Test"] {
            try FileManager.default.moveItem(atPath: "\(dir)/data/\(split)/1", toPath: "\(dir)/data/\(split)/\(hostile)")
        }
        let data = try CLI.run(["data", dir + "/data"])
        XCTAssertEqual(data.status, 0, data.stderr)
        XCTAssertTrue(data.stdout.contains("\\x1B[31mred\\x1B]0;title\\x07"), data.stdout)
        XCTAssertFalse(data.stdout.unicodeScalars.contains { $0.properties.generalCategory == .control && $0 != "\n" }, data.stdout)

        let model = try Sequential(spec: try ModelSpec(parsing: "fc:4,fc"), inputShape: ImageShape(channels: 1, height: 12, width: 12), classes: 3)
        let checkpoint = dir + "/model.safetensors"
        try model.checkpoint(classNames: ["0", hostile, "2"], epoch: 0, step: 0).write(to: checkpoint)
        for command in [["predict", "--checkpoint", checkpoint, "--image", dir + "/data/Test/0/Image00000.png", "--top", "3"],
                        ["eval", "--checkpoint", checkpoint, "--data", dir + "/data"]] {
            let result = try CLI.run(command)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.contains("\\x1B[31mred"), result.stdout)
            XCTAssertFalse(result.stdout.contains("\u{1B}"), result.stdout)
        }
        XCTAssertEqual(printable(hostile), "\\x1B[31mred\\x1B]0;title\\x07")
    }
}
