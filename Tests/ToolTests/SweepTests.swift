import Foundation
import XCTest
import Net

/// `deconvnet sweep` end to end on a tiny data set: children, summaries, the report, divergence, and
/// continuing an interrupted sweep.
final class SweepTests: XCTestCase {
    func testSweepContinuesOnlyUnfinishedRuns() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data", perClass: 4, size: 8)
        let out = dir + "/sweep"
        let arguments = ["sweep", "--grid", "lr=0.01,0.02,1e30", "--out", out, "--jobs", "2", "--data", dir + "/data",
                         "--model", "conv:2:3:same,maxpool:2,fc", "--optimizer", "sgd", "--loss", "mse", "--epochs", "2", "--batch-size", "4", "--save-every", "1", "--max-memory", "1G"]
        let first = try CLI.run(arguments)
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        XCTAssertTrue(first.stdout.contains("0 already done, 3 to train"), first.stdout)
        XCTAssertTrue(first.stdout.contains("lr=1e30: diverged"), first.stdout)

        let csv = try String(contentsOfFile: out + "/summary.csv", encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(csv.count, 4)
        XCTAssertEqual(csv[0], "name,lr,epochs,final_train_loss,final_train_acc,final_test_loss,final_test_acc,best_train_loss,best_train_acc,best_test_loss,best_test_acc,seconds,diverged")
        XCTAssertTrue(csv[1].hasPrefix("lr=0.01,0.01,2,") && csv[1].hasSuffix(",no"), csv[1])
        XCTAssertTrue(csv[3].hasPrefix("lr=1e30,1e30,") && csv[3].hasSuffix(",yes"), csv[3])
        let md = try String(contentsOfFile: out + "/summary.md", encoding: .utf8)
        XCTAssertTrue(md.hasPrefix("| run | lr | epochs | final train loss |"), md)
        XCTAssertEqual(md.split(separator: "\n").count, 5)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/report/index.html"))
        let log = try String(contentsOfFile: out + "/lr=0.02/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("epoch 2/2"), log)
        XCTAssertTrue(log.contains("--workers \(max(1, Workers.count / 2))"), "two jobs share the cores: " + log)

        // Interrupt by hand: lr=0.01 lost its directory, lr=0.02 is back at its epoch-1 checkpoint.
        let fm = FileManager.default
        try fm.removeItem(atPath: out + "/lr=0.01")
        let partial = out + "/lr=0.02"
        try fm.removeItem(atPath: partial + "/checkpoint.safetensors")
        try fm.copyItem(atPath: partial + "/checkpoints/epoch-1.safetensors", toPath: partial + "/checkpoint.safetensors")
        let firstLine = try String(contentsOfFile: partial + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")[0]
        try (firstLine + "\n").write(toFile: partial + "/metrics.jsonl", atomically: true, encoding: .utf8)
        let divergedLog = try String(contentsOfFile: out + "/lr=1e30/train.log", encoding: .utf8)

        let second = try CLI.run(arguments)
        XCTAssertEqual(second.status, 0, second.stdout + second.stderr)
        XCTAssertTrue(second.stdout.contains("1 already done, 2 to train"), second.stdout)
        XCTAssertTrue(second.stdout.contains("start lr=0.02 (resuming)"), second.stdout)
        XCTAssertEqual(try String(contentsOfFile: out + "/lr=1e30/train.log", encoding: .utf8), divergedLog, "the diverged run was left alone")
        let restarted = try String(contentsOfFile: out + "/lr=0.01/train.log", encoding: .utf8)
        XCTAssertEqual(restarted.components(separatedBy: "$ deconvnet train").count, 2, restarted)
        let resumedLog = try String(contentsOfFile: partial + "/train.log", encoding: .utf8)
        XCTAssertEqual(resumedLog.components(separatedBy: "$ deconvnet train").count, 3, resumedLog)
        XCTAssertTrue(resumedLog.contains("--resume \(partial)/checkpoint.safetensors --epochs 1"), resumedLog)
        XCTAssertTrue(resumedLog.contains("--max-memory 1G"), "the budget goes to resumed runs too: " + resumedLog)
        let epochs = try String(contentsOfFile: partial + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)).epoch }
        XCTAssertEqual(epochs, [1, 2])

        let third = try CLI.run(arguments)
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertTrue(third.stdout.contains("3 already done, 0 to train"), third.stdout)
    }

    /// The sweep tells a diverged run (its `train` exited 3) from a failed one (any other status): the
    /// diverged one is reported, the failed one makes the sweep exit 4 with one line, after it has
    /// written its summaries. Kernel 5 does not fit lenet5-classic on 12x12 images, so that run fails.
    func testFailedRunsEndTheSweepWithFourAndDivergedOnesDoNot() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data", perClass: 4)
        let out = dir + "/sweep"
        let result = try CLI.run(["sweep", "--grid", "kernel=3,5", "--out", out, "--data", dir + "/data", "--model", "lenet5-classic",
                                  "--optimizer", "sgd", "--lr", "1e30", "--epochs", "1", "--batch-size", "4"])
        XCTAssertEqual(result.status, 4, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("kernel=3: diverged"), result.stdout)
        XCTAssertTrue(result.stdout.contains("kernel=5: failed with status 1,"), result.stdout)
        XCTAssertEqual(result.stderr, "Error: 1 run failed: see \(out)/kernel=5/train.log\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/kernel=3/diverged.txt"))
        let csv = try String(contentsOfFile: out + "/summary.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertTrue(csv[1].hasPrefix("kernel=3,3,") && csv[1].hasSuffix(",yes"), String(csv[1]))
    }

    /// A run started by a sweep that is gone (here: a parent id that is not its parent) stops after
    /// its first step with one line, instead of training on unwatched.
    func testOrphanedSweepRunStops() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data", perClass: 4, size: 8)
        let result = try CLI.run(["train", "--data", dir + "/data", "--model", "conv:2:3:same,maxpool:2,fc", "--epochs", "2",
                                  "--batch-size", "4", "--run", dir + "/run"],
                                 environment: ["DECONVNET_SWEEP_PARENT": String(getpid() + 100_000)])
        XCTAssertEqual(result.status, 1, result.stdout)
        XCTAssertTrue(result.stderr.contains("the sweep that started this run has ended; stopped in epoch 1"), result.stderr)
        XCTAssertFalse(result.stdout.contains("epoch 1/2"), "no epoch finished: " + result.stdout)
    }
}
