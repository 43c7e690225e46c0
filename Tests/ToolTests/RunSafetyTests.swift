import Foundation
import XCTest
import Net

/// `train` under faults, as separate processes: every worker count finishes (a hang fails by its
/// deadline), one process owns a run directory and its lock dies with it, a kill leaves a run that
/// resumes to an exact epoch, and a diverging run exits 3 keeping its last good checkpoint.
final class RunSafetyTests: XCTestCase {
    private let spec = "conv:16:3:same,maxpool:2,fc"

    /// A first batch of 64 images of 16 channels gives max pooling a region of 1024 parts, and the dense
    /// layer of 1024 features over 16x14x14 inputs regions of 1024 matrix products (OpenBLAS ran out of
    /// work buffers there and corrupted the heap when every part had a thread of its own). Nothing on
    /// stderr: OpenBLAS warns when its buffer table overflows, before it crashes.
    func testTrainingFinishesAtEveryWorkerCount() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data", perClass: 24, size: 28)
        let train = ["train", "--data", dir + "/data", "--model", "conv:16:3:same,maxpool:2,fc:1024,fc", "--epochs", "1",
                     "--batch-size", "64", "--no-logging"]
        for workers in [1, ProcessInfo.processInfo.activeProcessorCount, 256, Workers.maximum] {
            let result = try CLI.run(train + ["--run", dir + "/run-\(workers)", "--workers", String(workers)], timeout: 180)
            XCTAssertFalse(result.timedOut, "\(workers) workers: no end within the deadline")
            XCTAssertEqual(result.status, 0, "\(workers) workers: \(result.stderr)")
            XCTAssertEqual(result.stderr, "", "\(workers) workers")
            XCTAssertTrue(result.stdout.contains("epoch 1/1"), result.stdout)
        }
        try assertCleanFailure(train + ["--run", dir + "/run-over", "--workers", String(Workers.maximum + 1)],
                               mentions: "--workers must be between 1 and \(Workers.maximum)")
    }

    /// A new run that cannot start leaves nothing behind: not the folders its lock made (a model that does not
    /// fit its data, exit 1), nor a lock file in a folder that was there before (a batch over the budget, exit 64).
    func testANewRunThatCannotStartLeavesNothingBehind() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")  // 12x12 images
        let files = FileManager.default
        let misfit = try CLI.run(["train", "--data", dir + "/data", "--model", "conv:2:13,fc", "--run", dir + "/runs/misfit"])
        XCTAssertEqual(misfit.status, 1, misfit.stderr)
        XCTAssertFalse(files.fileExists(atPath: dir + "/runs"), "the folders the lock made are gone")
        try files.createDirectory(atPath: dir + "/existing", withIntermediateDirectories: false)
        let over = try CLI.run(["train", "--data", dir + "/data", "--model", "fc:4,fc", "--batch-size", "100", "--max-memory", "12K",
                                "--run", dir + "/existing"])
        XCTAssertEqual(over.status, 64, over.stderr)
        XCTAssertEqual(try files.contentsOfDirectory(atPath: dir + "/existing"), [], "the lock file is gone, the folder stays")
    }

    func testOneProcessOwnsARunAndAKilledOneResumesToAnExactEpoch() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data", perClass: 4, size: 8)
        let run = dir + "/run"
        let train = ["train", "--data", dir + "/data", "--model", spec, "--batch-size", "4", "--run", run]
        let holder = try CLI.start(train + ["--epochs", "100000"], capturing: false)
        addTeardownBlock { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }
        let started = Date()
        while !FileManager.default.fileExists(atPath: run + "/metrics.jsonl"), Date().timeIntervalSince(started) < 60 { usleep(20_000) }
        XCTAssertTrue(holder.isRunning)

        for second in [train + ["--epochs", "1"], ["train", "--resume", run + "/checkpoint.safetensors", "--epochs", "1"]] {
            let refused = try CLI.run(second, timeout: 60)
            XCTAssertEqual(refused.status, 1, refused.stdout + refused.stderr)
            XCTAssertEqual(refused.stderr, "Error: \(run) is in use by process \(holder.processIdentifier) (\(run)/train.lock): one process trains a run at a time\n")
        }

        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        // what a kill inside a checkpoint write leaves, and a metrics line whose write was cut short
        let leftover = run + "/.checkpoint.safetensors.tmp-\(holder.processIdentifier)-12345"
        XCTAssertTrue(FileManager.default.createFile(atPath: leftover, contents: Data(count: 1 << 20)))
        let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
        try (metrics + #"{"epoch":99,"images_per_s":1"#).write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let torn = metrics.split(separator: "\n").count + 1
        for command in [["report", run, "--out", dir + "/report"], ["compare", run]] {
            let result = try CLI.run(command)
            XCTAssertEqual(result.status, 0, "\(command[0]): \(result.stderr)")
            XCTAssertEqual(result.stderr, "warning: \(run)/metrics.jsonl:\(torn): skipped a torn last line (a write cut short)\n", command[0])
        }

        let resumed = try CLI.run(["train", "--resume", run + "/checkpoint.safetensors", "--epochs", "1"], timeout: 120)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover), "the interrupted write was removed")
        let epoch = try Sequential.load(contentsOf: run + "/checkpoint.safetensors").epoch
        let epochs = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)).epoch }
        XCTAssertEqual(epochs, Array(1...epoch), "one line per epoch up to the checkpoint's")
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/best.safetensors"))
    }

    /// The rate jumps a thousandfold after epoch 1; the run stops in epoch 2 with status 3, naming
    /// the epoch and the bound, and keeps epoch 1's checkpoint.
    func testDivergedRunExitsThreeWithTheLastGoodCheckpoint() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data")
        let run = dir + "/run"
        let result = try CLI.run(["train", "--data", dir + "/data", "--model", "conv:4:3:same,maxpool:2,fc:16,fc", "--activation", "tanh",
                                  "--loss", "mse", "--optimizer", "sgd", "--lr", "0.01", "--schedule", "step:1:1000", "--epochs", "4",
                                  "--batch-size", "4", "--run", run, "--no-logging"])
        XCTAssertEqual(result.status, 3, result.stdout + result.stderr)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, result.stderr)
        XCTAssertTrue(lines[0].contains("at epoch 2, step") && lines[0].contains("over the divergence bound"), result.stderr)
        XCTAssertEqual(try Sequential.load(contentsOf: run + "/checkpoint.safetensors").epoch, 1)
        XCTAssertEqual(try String(contentsOfFile: run + "/diverged.txt", encoding: .utf8), "\(lines[0].dropFirst("Error: ".count))\n")
        try assertCleanFailure(["train", "--data", dir + "/data", "--divergence-factor", "1", "--run", dir + "/other"],
                               mentions: "--divergence-factor must be a number above 1")
    }
}
