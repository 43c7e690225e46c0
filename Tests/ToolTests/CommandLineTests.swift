import Foundation
import XCTest
import Net

/// The `deconvnet` executable end to end: training, resuming, evaluating, predicting, and one clear
/// error line for bad input.
final class CommandLineTests: XCTestCase {
    func testTrainResumeEvalPredict() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let run = dir + "/run"
        let spec = "conv:4:3:same,maxpool:2,fc:16,fc"
        let first = try CLI.run(["train", "--data", dir + "/data", "--model", spec, "--epochs", "2", "--batch-size", "8",
                                 "--lr", "0.01", "--run", run, "--save-every", "1", "--workers", "1"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(try trainConfig(run + "/checkpoint.safetensors").workers, 1, "the worker count is part of the run's configuration")
        XCTAssertTrue(first.stdout.contains("epoch 2/2"), first.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/checkpoints/epoch-2.safetensors"))

        let again = try CLI.run(["train", "--data", dir + "/data", "--model", spec, "--run", run])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("already holds a run"), again.stderr)

        let resumed = try CLI.run(["train", "--resume", run + "/checkpoint.safetensors", "--epochs", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("epoch 3/3"), resumed.stdout)
        XCTAssertEqual(try trainConfig(run + "/checkpoint.safetensors").workers, 1, "a resumed run keeps its worker count")
        let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").count, 3)

        let eval = try CLI.run(["eval", "--checkpoint", run + "/checkpoint.safetensors", "--data", dir + "/data", "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let evaluation = try JSONDecoder().decode(Evaluation.self, from: Data(eval.stdout.utf8))
        XCTAssertEqual(evaluation.count, 24)
        XCTAssertGreaterThan(evaluation.accuracy, 0.6)

        let exported = dir + "/weights.safetensors"
        let export = try CLI.run(["export", "--checkpoint", run + "/checkpoint.safetensors", "--out", exported])
        XCTAssertEqual(export.status, 0, export.stderr)
        let weights = try Checkpoint.read(from: exported)
        XCTAssertFalse(weights.tensors.contains { $0.name.hasPrefix("optimizer.") })
        let original = try Checkpoint.read(from: run + "/checkpoint.safetensors")
        XCTAssertEqual(original.tensors.filter { !$0.name.hasPrefix("optimizer.") }, weights.tensors)
        XCTAssertEqual(original.metadata.filter { ![CheckpointKey.optimizer, CheckpointKey.optimizerSteps].contains($0.key) }, weights.metadata)
        try assertCleanFailure(["train", "--resume", exported, "--epochs", "1", "--run", dir + "/other"], mentions: "optimizer")

        let image = dir + "/data/Test/1/Image00000.png"
        let predict = try CLI.run(["predict", "--checkpoint", run + "/checkpoint.safetensors", "--image", image, "--json"])
        XCTAssertEqual(predict.status, 0, predict.stderr)
        XCTAssertTrue(predict.stdout.contains("\"probabilities\""), predict.stdout)
    }

    func testSummaryTotals() throws {
        let result = try CLI.run(["summary", "--model", "lenet5"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("3,274,634"), result.stdout)
        XCTAssertTrue(result.stdout.contains("13,883,904"), result.stdout)
        XCTAssertTrue(result.stdout.contains("activation relu"), result.stdout)
        let recurrent = try CLI.run(["summary", "--model", "lstm"])
        XCTAssertEqual(recurrent.status, 0, recurrent.stderr)
        XCTAssertFalse(recurrent.stdout.contains("activation"), "an LSTM preset applies no --activation: " + recurrent.stdout)
    }

    private func trainConfig(_ checkpoint: String) throws -> TrainConfig {
        let json = try XCTUnwrap(try Checkpoint.read(from: checkpoint).metadata[CheckpointKey.config])
        return try JSONDecoder().decode(TrainConfig.self, from: Data(json.utf8))
    }

    func testBadInputGivesOneClearLine() throws {
        let dir = try temporaryDirectory()
        try assertCleanFailure(["train", "--data", dir + "/missing"], mentions: "missing")
        try assertCleanFailure(["train", "--data", dir, "--epochs", "0"], mentions: "--epochs")
        try assertCleanFailure(["train", "--data", dir, "--model", "lenet7"], mentions: "lenet7")
        try assertCleanFailure(["train", "--data", dir, "--schedule", "sideways"], mentions: "sideways")
        try assertCleanFailure(["train", "--data", dir, "--optimizer", "sgdd"], mentions: "sgdd")
        try assertCleanFailure(["train", "--data", dir, "--workers", "0"], mentions: "--workers")
        try assertCleanFailure(["eval", "--checkpoint", dir + "/none.safetensors", "--data", dir], mentions: "none.safetensors")

        let junk = dir + "/junk.safetensors"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: junk))
        try assertCleanFailure(["predict", "--checkpoint", junk, "--image", junk], mentions: "junk.safetensors")

        let model = try Sequential(spec: try ModelSpec(parsing: "fc:4,fc"), inputShape: ImageShape(channels: 1, height: 4, width: 4), classes: 2)
        let good = dir + "/good.safetensors"
        try model.checkpoint(classNames: ["a", "b"], epoch: 0, step: 0).write(to: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: junk))
        try assertCleanFailure(["eval", "--checkpoint", junk, "--data", dir], mentions: "junk.safetensors")

        let notImage = dir + "/photo.png"
        try Data("definitely not a png".utf8).write(to: URL(fileURLWithPath: notImage))
        try assertCleanFailure(["predict", "--checkpoint", good, "--image", notImage], mentions: "photo.png")
    }

    func testFashionMNISTFromTheDebianPackage() throws {
        let path = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)") }
        let result = try CLI.run(["data", path, "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("60000") && result.stdout.contains("10000"), result.stdout)
        let dir = try temporaryDirectory()
        let train = try CLI.run(["train", "--data", path, "--steps", "30", "--run", dir + "/run", "--model", "lenet5-classic", "--batch-size", "50"])
        XCTAssertEqual(train.status, 0, train.stderr)
        let line = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8)
        let metrics = try JSONDecoder().decode(EpochMetrics.self, from: Data(line.utf8))
        XCTAssertEqual(metrics.step, 30)
        XCTAssertGreaterThan(metrics.testAcc ?? 0, 0.4, "30 steps of lenet5-classic on Fashion-MNIST should beat chance by far")
    }
}
