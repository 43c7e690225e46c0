import XCTest
import TestSupport
@testable import Net

/// What a training run records besides metrics, read back by the real TensorBoard reader.
final class TrainingLogTests: XCTestCase {
    func testStatisticsOfKnownValues() {
        let values: [Float] = [0, 0, 1, 2, 3, 6]
        let stats = values.withUnsafeBufferPointer { ActivationStatistics($0) }
        XCTAssertEqual(stats.mean, 2)
        XCTAssertEqual(stats.std, (Float(50) / 6 - 4).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(stats.min, 0)
        XCTAssertEqual(stats.max, 6)
        XCTAssertEqual(stats.median, 1)
        XCTAssertEqual(stats.zeroFraction, 2 / 6, accuracy: 1e-7)
    }

    func testSelectionAgreesWithSorting() {
        var random = SeededRandom(seed: 4)
        for count in [1, 2, 7, 100, 1001] {
            var values = (0..<count).map { _ in Float(random.int(below: 20)) }  // many ties
            let sorted = values.sorted()
            for k in Set([0, count / 2, (count - 1) / 2, count - 1]) {
                XCTAssertEqual(values.withUnsafeMutableBufferPointer { select($0, rank: k) }, sorted[k], "count \(count) rank \(k)")
            }
        }
    }

    func testRunRecordsStatisticsFiltersAndEventsThatTensorBoardReads() throws {
        let run = NSTemporaryDirectory() + "deconvnet-log-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: run) }
        var random = SeededRandom(seed: 9)
        let data = Dataset(shape: ImageShape(channels: 1, height: 6, width: 6), pixels: (0..<24 * 36).map { _ in UInt8(random.int(below: 256)) },
                           labels: (0..<24).map { Int32($0 % 2) }, classNames: ["a", "b"])
        var config = TrainConfig()
        config.batchSize = 8
        config.logEvery = 1
        let spec = try ModelSpec(parsing: "conv:3:3:same,maxpool:2,fc")
        let model = try Sequential(spec: spec, inputShape: data.shape, classes: 2, seed: 3)
        // one gray pixel per weight of the first input channel's top row: `train` draws with its filterRow
        let draw: FilterDrawing = { _, shape in Image(width: shape[0], height: shape[2], channels: 1, pixels: [UInt8](repeating: 128, count: shape[0] * shape[2])) }
        let first = try Trainer(model: model, optimizer: Optimizer(.adam, parameterCount: model.parameterCount), config: config,
                                train: data, test: data, runDirectory: run)
        first.drawFilters = draw
        var metrics = try first.run(untilEpoch: 2)
        let resumed = try Trainer(model: model, optimizer: first.optimizer, config: config, train: data, test: data,
                                  runDirectory: run, startEpoch: 2, startStep: 6)
        resumed.drawFilters = draw
        metrics += try resumed.run(untilEpoch: 3)

        let records = try String(contentsOfFile: run + "/activations.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONDecoder().decode(ActivationRecord.self, from: Data($0.utf8)) }
        XCTAssertEqual(records.map(\.epoch), [0, 1, 2, 3])
        XCTAssertEqual(records.map(\.step), [0, 3, 6, 9])
        XCTAssertEqual(Array(records[0].layers.keys), ["conv1"])
        let strip = try Image(contentsOfFile: run + "/filters/strip.png")
        XCTAssertEqual(strip.height, 4 * 3 + 3, "one 3-pixel row of the three 3x3 filters per epoch 0…3, 1-pixel gaps")

        try Python.require("tensorboard")
        func scalars(_ value: (EpochMetrics) -> Float?) -> [[String: Any]] {
            metrics.map { ["step": $0.epoch, "value": Double(value($0)!)] }
        }
        let epochs = (0...3).map { ["step": $0] }
        let expectations: [String: Any] = [
            "scalars": ["train/loss": scalars { $0.trainLoss }, "train/accuracy": scalars { $0.trainAcc },
                        "test/loss": scalars { $0.testLoss }, "test/accuracy": scalars { $0.testAcc }, "train/lr": scalars { $0.lr },
                        "train/batch_loss": (1...9).map { ["step": $0] }],
            "histograms": ["activations/conv1": epochs.map { $0.merging(["num": 24 * 108]) { a, _ in a } },
                           "weights/conv1.weight": epochs, "weights/fc1.bias": epochs],
            "images": ["filters/conv1": epochs.map { $0.merging(["width": 3, "height": 3]) { a, _ in a } }],
        ]
        let path = run + "/expectations.json"
        try JSONSerialization.data(withJSONObject: expectations).write(to: URL(fileURLWithPath: path))
        let result = Python.run([Python.script("check_tensorboard.py"), run + "/tensorboard", path])
        XCTAssertEqual(result.status, 0, result.output)
    }
}
