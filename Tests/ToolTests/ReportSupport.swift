import Foundation
import XCTest
import TestSupport
import Net

/// Fake run directories written file by file, as `deconvnet train` would leave them, without training.
enum FakeRun {
    /// One metrics.jsonl line; accuracy and loss follow a smooth curve set by `quality` (0…1).
    static func metricsLine(epoch: Int, quality: Double, test: Bool = true) -> String {
        let progress = 1 - exp(-Double(epoch) / 3)
        let trainAcc = 0.3 + 0.65 * quality * progress, testAcc = trainAcc - 0.03
        var line = #"{"epoch":\#(epoch),"step":\#(epoch * 600),"train_loss":\#(2.3 * (1 - 0.8 * progress)),"train_acc":\#(trainAcc),"#
        if test { line += #""test_loss":\#(2.3 * (1 - 0.75 * progress)),"test_acc":\#(testAcc),"# }
        return line + #""lr":\#(0.001 * pow(0.5, Double(epoch / 3))),"seconds":\#(10 + Double(epoch % 3)),"images_per_s":\#(6000 - 100 * epoch)}"#
    }

    /// One activations.jsonl line for layers conv1, conv2 and fc1.
    static func activationsLine(epoch: Int) -> String {
        let layers = ["conv1", "conv2", "fc1"].enumerated().map { i, name in
            let mean = 0.2 + 0.05 * Double(epoch) + 0.1 * Double(i)
            return #""\#(name)":{"mean":\#(mean),"std":\#(0.1 + 0.02 * Double(epoch)),"min":0,"max":\#(mean * 4),"median":\#(mean * 0.8),"zero_fraction":\#(0.3 + 0.03 * Double(epoch))}"#
        }
        return #"{"epoch":\#(epoch),"step":\#(epoch * 600),"layers":{\#(layers.joined(separator: ","))}}"#
    }

    /// Writes a run in `directory`: `epochs` metrics lines (test metrics unless `test` is false),
    /// activation statistics, a checkpoint of a small CNN with its training configuration, and a filter strip.
    static func write(_ directory: String, epochs: Int, quality: Double = 0.9, lr: Float = 0.001, model: String = "conv:6:5:same,maxpool:2,fc:32,fc",
                      test: Bool = true, extras: Bool = true) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let metrics = (1...epochs).map { metricsLine(epoch: $0, quality: quality, test: test) }
        try (metrics.joined(separator: "\n") + "\n").write(toFile: directory + "/metrics.jsonl", atomically: true, encoding: .utf8)
        guard extras else { return }
        try ((0...epochs).map(activationsLine).joined(separator: "\n") + "\n").write(toFile: directory + "/activations.jsonl", atomically: true, encoding: .utf8)
        let net = try Sequential(spec: try ModelSpec(parsing: model), inputShape: ImageShape(channels: 1, height: 12, width: 12), classes: 3)
        var config = TrainConfig()
        config.model = model
        config.lr = lr
        config.data = "data"
        try net.checkpoint(classNames: ["0", "1", "2"], epoch: epochs, step: epochs * 600, extra: [CheckpointKey.config: jsonString(config)])
            .write(to: directory + "/checkpoint.safetensors")
        try FileManager.default.createDirectory(atPath: directory + "/filters", withIntermediateDirectories: true)
        let width = 6 * 6, height = (epochs + 1) * 6
        let pixels = (0..<width * height).map { UInt8(($0 * 37 + $0 / width * 11) % 256) }
        try Image(width: width, height: height, channels: 1, pixels: pixels).writePNG(toFile: directory + "/filters/strip.png")
    }
}

extension XCTestCase {
    /// The repository's root (the directory holding Package.swift), found from this file's path.
    var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// Runs Tests/browser/check_report.sh on `directory` when Chromium is installed; skips otherwise. The page
    /// and its screenshot are kept in `$TMPDIR/deconvnet-report-check/<test>/` for a person to look at.
    func assertRendersInBrowser(_ directory: String, file: StaticString = #filePath, line: UInt = #line) throws {
        guard ["/usr/bin/chromium", "/usr/bin/chromium-browser"].contains(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw XCTSkip("chromium is not installed (apt-get install chromium); the browser check did not run")
        }
        let (status, text) = runProcess("/bin/sh", [packageRoot + "/Tests/browser/check_report.sh", directory])
        XCTAssertEqual(status, 0, "check_report.sh: \(text)", file: file, line: line)
        let keep = NSTemporaryDirectory() + "deconvnet-report-check/" + name.filter { $0.isLetter || $0.isNumber }
        try? FileManager.default.removeItem(atPath: keep)
        try FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
        for file in ["index.html", "screenshot.png"] { try? FileManager.default.copyItem(atPath: directory + "/" + file, toPath: keep + "/" + file) }
    }
}
