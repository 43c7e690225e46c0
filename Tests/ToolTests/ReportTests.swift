import Foundation
import XCTest
import Net
@testable import Tool

/// Run loading, the grid parser, the tables, and the report, compare and sweep commands' output on fake runs.
final class ReportTests: XCTestCase {
    func testResumedRunIsOneRunWithLaterLinesWinning() throws {
        let run = try temporaryDirectory() + "/run"
        try FakeRun.write(run, epochs: 3)
        // A resume from the epoch-2 checkpoint appends epoch 3 again, then epoch 4.
        let appended = [FakeRun.metricsLine(epoch: 3, quality: 0.5), FakeRun.metricsLine(epoch: 4, quality: 0.5)]
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: run + "/metrics.jsonl"))
        handle.seekToEndOfFile()
        handle.write(Data((appended.joined(separator: "\n") + "\n\n").utf8))
        try handle.close()

        let record = try RunRecord.load(run)
        XCTAssertEqual(record.name, "run")
        XCTAssertEqual(record.metrics.map(\.epoch), [1, 2, 3, 4])
        let third = try JSONDecoder().decode(EpochMetrics.self, from: Data(appended[0].utf8))
        XCTAssertEqual(record.metrics[2], third, "the resumed line for epoch 3 replaces the first")
        XCTAssertEqual(record.activations.map(\.epoch), [0, 1, 2, 3])
        XCTAssertEqual(record.activations[0].layers["conv2"]?.zeroFraction ?? -1, 0.3, accuracy: 1e-6)
        XCTAssertEqual(record.activationLayers(order: ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2"]), ["conv1", "conv2", "fc1"])
        XCTAssertEqual(record.model?.spec, "conv:6:5:same,maxpool:2:2,fc:32,fc")
        XCTAssertEqual(record.model?.classNames.count, 3)
        XCTAssertEqual(record.config?.lr, 0.001)
        XCTAssertEqual(record.filterImage, run + "/filters/strip.png")
        XCTAssertFalse(record.diverged)
        let best = try XCTUnwrap(record.bestTestAcc)
        XCTAssertEqual(best.epoch, 2, "epoch 2 of the first attempt beats the weaker resumed epochs")

        let summary = ModelCatalog().summary(record)
        XCTAssertEqual(summary.epochs, 4)
        XCTAssertEqual(summary.steps, 2400)
        XCTAssertEqual(summary.parameters, 6 * 25 + 6 + 6 * 6 * 6 * 32 + 32 + 32 * 3 + 3)
        XCTAssertEqual(summary.seconds, 11 + 12 + 10 + 11, accuracy: 1e-9, "epochs 1, 2, then the resumed 3 and 4")
    }

    func testBadFilesGiveOneLineNamingFileAndLine() throws {
        let dir = try temporaryDirectory()
        XCTAssertThrowsError(try RunRecord.load(dir)) { error in
            XCTAssertEqual(error.localizedDescription, "\(dir) is not a run directory (no metrics.jsonl or checkpoint.safetensors)")
        }
        try (FakeRun.metricsLine(epoch: 1, quality: 1) + "\n{\"epoch\":2,\"step\":5}\n").write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunRecord.load(dir)) { error in
            let text = error.localizedDescription
            XCTAssertTrue(text.hasPrefix(dir + "/metrics.jsonl:2: "), text)
            XCTAssertTrue(text.contains("train_loss"), text)
        }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/checkpoint.safetensors"))
        try FakeRun.metricsLine(epoch: 1, quality: 1).write(toFile: dir + "/metrics.jsonl", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunRecord.load(dir)) { error in
            XCTAssertTrue(error.localizedDescription.contains("checkpoint.safetensors"), error.localizedDescription)
        }
        try assertCleanFailure(["report", dir + "/nothing", "--out", dir + "/out"], mentions: "not a run directory")
        try assertCleanFailure(["compare", dir], mentions: "checkpoint.safetensors")
    }

    func testGridParser() throws {
        let grid = try SweepGrid(parsing: " lr=0.1,0.01,0.001  activation=sigmoid,tanh\nloss=mse,ce ")
        XCTAssertEqual(grid.axes.map(\.key), ["lr", "activation", "loss"])
        let combinations = grid.combinations
        XCTAssertEqual(combinations.count, 12)
        XCTAssertEqual(SweepGrid.name(combinations[0]), "lr=0.1_activation=sigmoid_loss=mse")
        XCTAssertEqual(SweepGrid.name(combinations[1]), "lr=0.1_activation=sigmoid_loss=ce")
        XCTAssertEqual(SweepGrid.name(combinations[11]), "lr=0.001_activation=tanh_loss=ce")
        XCTAssertEqual(Set(combinations.map(SweepGrid.name)).count, 12)
        XCTAssertEqual(SweepGrid.arguments(combinations[0]), ["--lr", "0.1", "--activation", "sigmoid", "--loss", "mse"])

        let augment = try SweepGrid(parsing: "augment=none,flip+shift batch_size=8 init=he")
        XCTAssertEqual(augment.axes.map(\.key), ["augment", "batch-size", "init"])
        XCTAssertEqual(SweepGrid.arguments(augment.combinations[0]), ["--batch-size", "8", "--init", "he"])
        XCTAssertEqual(SweepGrid.arguments(augment.combinations[1]), ["--augment", "flip,shift", "--batch-size", "8", "--init", "he"])

        let bad: [(String, GridError)] = [
            ("", .empty), ("lr", .notKeyValues("lr")), ("=0.1", .notKeyValues("=0.1")), ("dropout=0.5", .unknownKey("dropout")),
            ("lr=0.1 lr=0.2", .repeatedKey("lr")), ("lr=0.1,,0.2", .emptyValue(key: "lr")), ("lr=", .emptyValue(key: "lr")),
            ("seed=1,1", .repeatedValue(key: "seed", value: "1")), ("model=a/b", .badCharacter(key: "model", value: "a/b")),
        ]
        for (text, expected) in bad {
            XCTAssertThrowsError(try SweepGrid(parsing: text), text) { XCTAssertEqual($0 as? GridError, expected, text) }
        }
        XCTAssertTrue(GridError.unknownKey("dropout").localizedDescription.contains("weight-decay"))
    }

    func testSweepRejectsBadInputWithOneLine() throws {
        let dir = try temporaryDirectory()
        try writeCourseData(dir + "/data", perClass: 2, size: 8)
        let common = ["sweep", "--out", dir + "/sweep", "--data", dir + "/data"]
        try assertCleanFailure(common + ["--grid", "lr=0.1 dropout=0.5"], mentions: "unknown key 'dropout'")
        try assertCleanFailure(common + ["--grid", "lr0.1"], mentions: "'lr0.1' is not KEY=VALUE")
        try assertCleanFailure(common + ["--grid", "activation=relu,swish"], mentions: "swish")
        try assertCleanFailure(common + ["--grid", "lr=0.1,0.2", "--lr", "0.3"], mentions: "--lr is given both")
        try assertCleanFailure(common + ["--grid", "lr=0.1", "--run", dir], mentions: "--run")
        try assertCleanFailure(["sweep", "--out", dir + "/s", "--grid", "lr=0.1", "--data", dir + "/missing"], mentions: "missing")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/sweep"), "nothing is written for bad input")
    }

    func testTablesQuoteAndAlign() {
        let table = TextTable(header: ["run", "note", "acc"], rows: [["a", "x, \"y\"", "1.5"], ["bb", "p|q", "10.25"]], leftAligned: [0, 1])
        XCTAssertEqual(table.csv, "run,note,acc\na,\"x, \"\"y\"\"\",1.5\nbb,p|q,10.25\n")
        XCTAssertEqual(table.markdown, "| run | note | acc |\n|---|---|---:|\n| a | x, \"y\" | 1.5 |\n| bb | p\\|q | 10.25 |\n")
        XCTAssertEqual(table.text, "run  note      acc\na    x, \"y\"    1.5\nbb   p|q     10.25\n")
        XCTAssertEqual(grouped(3274634), "3,274,634")
        XCTAssertEqual(grouped(-1000), "-1,000")
    }

    func testCompareJSONAndTable() throws {
        let dir = try temporaryDirectory()
        try FakeRun.write(dir + "/cnn", epochs: 4, quality: 0.95)
        try FakeRun.write(dir + "/mlp", epochs: 2, quality: 0.6, model: "fc:16,fc")
        let result = try CLI.run(["compare", dir + "/cnn", dir + "/mlp", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["run"] as? String }, ["cnn", "mlp"])
        XCTAssertEqual(rows.map { $0["model"] as? String }, ["conv:6:5:same,maxpool:2,fc:32,fc", "fc:16,fc"])
        XCTAssertEqual(rows.map { $0["epochs"] as? Int }, [4, 2])
        XCTAssertEqual(rows[1]["parameters"] as? Int, 144 * 16 + 16 + 16 * 3 + 3)
        let best = try XCTUnwrap(rows[0]["best_test_acc"] as? Double)
        XCTAssertEqual(best, 0.3 + 0.65 * 0.95 * (1 - exp(-4.0 / 3)) - 0.03, accuracy: 1e-5)
        for key in ["final_test_acc", "final_train_loss", "final_test_loss", "seconds_per_epoch", "images_per_s", "diverged"] {
            XCTAssertNotNil(rows[0][key], key)
        }

        let text = try CLI.run(["compare", dir + "/cnn", dir + "/mlp"])
        XCTAssertEqual(text.status, 0, text.stderr)
        let lines = text.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines[0].hasPrefix("run ") && lines[0].contains("best test acc") && lines[0].contains("images/s"), text.stdout)
        XCTAssertTrue(lines[2].hasPrefix("mlp ") && lines[2].contains("fc:16,fc"), text.stdout)
    }

    func testReportOfSeveralRunsMarksTheBestAndRendersInChromium() throws {
        let dir = try temporaryDirectory()
        try FakeRun.write(dir + "/runs/a", epochs: 6, quality: 0.7)
        try FakeRun.write(dir + "/runs/b", epochs: 8, quality: 0.9, lr: 0.01)
        try FakeRun.write(dir + "/runs/c", epochs: 3, quality: 0.4, test: false, extras: false)
        let result = try CLI.run(["report", dir + "/runs/a", dir + "/runs/b", dir + "/runs/c", "--out", dir + "/out"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let html = try String(contentsOfFile: dir + "/out/index.html", encoding: .utf8)
        XCTAssertEqual(html.components(separatedBy: "<tr class=\"best\">").count, 2, "one best row")
        let bestRow = try XCTUnwrap(html.components(separatedBy: "<tr class=\"best\">").last?.components(separatedBy: "</tr>").first)
        XCTAssertTrue(bestRow.contains(">b <span class=\"star\""), bestRow)
        for needle in ["<title>Loss</title>", "<title>Accuracy</title>", "<title>Learning rate at epoch end</title>", "<title>Seconds per epoch</title>",
                       "<title>Throughput</title>", "conv2: activations", "conv2: fraction of zeros", "data:image/png;base64,",
                       "<th class=\"text\" title=\"sort\">lr</th>", "accuracy (%)", "multiply-adds"] {
            XCTAssertTrue(html.contains(needle), "missing \(needle)")
        }
        XCTAssertFalse(html.contains("class=\"multiples\""), "three runs share charts")
        XCTAssertFalse(html.contains("src=\"http") || html.contains("href=\"http") || html.contains("<link"), "no network")
        try assertRendersInBrowser(dir + "/out")
    }

    func testReportOfManyRunsUsesSmallMultiples() throws {
        let dir = try temporaryDirectory()
        let paths = (0..<12).map { "\(dir)/sweep/run\($0)" }
        for (i, path) in paths.enumerated() { try FakeRun.write(path, epochs: 3 + i % 3, quality: 0.3 + 0.05 * Double(i), extras: i == 11) }
        let page = ReportPage(runs: try loadRuns(paths))
        XCTAssertEqual(page.bestIndex, 11)
        let html = page.html
        XCTAssertEqual(html.components(separatedBy: "<div class=\"multiple\"").count - 1, 24, "accuracy and loss for each of 12 runs")
        XCTAssertFalse(html.contains("<title>Learning rate at epoch end</title>"), "no 12-colour overlays")
        XCTAssertTrue(html.contains("Shown for the best run only"))
        try writeReport(page, to: dir + "/out")
        try assertRendersInBrowser(dir + "/out")
    }
}
