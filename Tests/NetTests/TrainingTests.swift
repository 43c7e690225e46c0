import XCTest
@testable import Net
@testable import NetKernels

/// Optimizers, schedules, specs, and the training loop's promises: reproducibility, divergence
/// handling, and resuming.
final class TrainingTests: XCTestCase {
    /// A small separable data set: class c has a bright c-th row.
    func stripes(count: Int, classes: Int = 3, size: Int = 6, seed: UInt64 = 1) -> Dataset {
        var random = SeededRandom(seed: seed)
        var pixels: [UInt8] = []
        var labels: [Int32] = []
        for i in 0..<count {
            let c = i % classes
            for y in 0..<size {
                for _ in 0..<size { pixels.append(y == c * 2 ? 200 : UInt8(random.int(below: 60))) }
            }
            labels.append(Int32(c))
        }
        return Dataset(shape: ImageShape(channels: 1, height: size, width: size), pixels: pixels, labels: labels,
                       classNames: (0..<classes).map(String.init))
    }

    /// A trainer of a new model of `spec` (seed 1, `config`'s activation and optimizer) on `data`, tested on `data`.
    func newTrainer(_ spec: String, config: TrainConfig, data: Dataset, run: String) throws -> Trainer {
        let model = try Sequential(spec: try ModelSpec(parsing: spec), inputShape: data.shape, classes: data.classNames.count,
                                   activation: config.activation, seed: 1)
        return try Trainer(model: model, optimizer: Optimizer(config.optimizer, parameterCount: model.parameterCount), config: config,
                           train: data, test: data, runDirectory: run)
    }

    /// A trainer that continues the run in `run` from its checkpoint, as `train --resume` does.
    func resumedTrainer(_ run: String, config: TrainConfig, data: Dataset) throws -> Trainer {
        let loaded = try Sequential.load(contentsOf: run + "/checkpoint.safetensors")
        XCTAssertTrue(loaded.checkpoint.tensors.allSatisfy { $0.name.hasPrefix("optimizer.") }, "the model's tensors are in the model only")
        let optimizer = Optimizer(config.optimizer, parameterCount: loaded.model.parameterCount)
        try optimizer.restore(from: loaded.checkpoint)
        return try Trainer(model: loaded.model, optimizer: optimizer, config: config, train: data, test: data, runDirectory: run,
                           startEpoch: loaded.epoch, startStep: loaded.step,
                           firstLoss: loaded.checkpoint.metadata[CheckpointKey.firstLoss].flatMap { Float($0) })
    }

    func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "deconvnet-test-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testAdamFirstStepsMatchPyTorchFormula() {
        let optimizer = Optimizer(.adam, parameterCount: 1)
        var p: [Float] = [1]
        var g: [Float] = [0.5]
        var (m, v): (Double, Double) = (0, 0)
        var expected = 1.0
        for t in 1...3 {
            p.withUnsafeMutableBufferPointer { pp in g.withUnsafeMutableBufferPointer { optimizer.step(parameters: pp, gradients: $0, lr: 0.1) } }
            m = 0.9 * m + 0.1 * 0.5
            v = 0.999 * v + 0.001 * 0.25
            expected -= 0.1 * (m / (1 - pow(0.9, Double(t)))) / ((v / (1 - pow(0.999, Double(t)))).squareRoot() + 1e-8)
            XCTAssertEqual(Double(p[0]), expected, accuracy: 1e-5)
        }
    }

    func testAdamOverLanesAndTailMatchesTheScalarRuleBitForBit() {
        var random = SeededRandom(seed: 4)
        let count = 21  // two full lanes of 8 and a tail of 5
        let (lr, wd): (Float, Float) = (0.01, 0.1)
        let optimizer = Optimizer(.adam, parameterCount: count, weightDecay: wd)
        var p = (0..<count).map { _ in random.uniform(-1, 1) }
        var g = (0..<count).map { _ in random.uniform(-1, 1) }
        var expected = p
        var (m, v) = ([Float](repeating: 0, count: count), [Float](repeating: 0, count: count))
        for t in 1...3 {
            p.withUnsafeMutableBufferPointer { pp in g.withUnsafeMutableBufferPointer { optimizer.step(parameters: pp, gradients: $0, lr: lr) } }
            let (c1, c2) = (1 - pow(Float(0.9), Float(t)), 1 - pow(Float(0.999), Float(t)))
            let (stepSize, rc2) = (lr / c1, 1 / c2.squareRoot())
            for i in 0..<count {
                let gi = g[i] + wd * expected[i]
                m[i] = 0.9 * m[i] + (1 - 0.9) * gi
                v[i] = 0.999 * v[i] + (1 - 0.999) * gi * gi
                expected[i] -= stepSize * m[i] / (v[i].squareRoot() * rc2 + 1e-8)
            }
            XCTAssertEqual(p, expected, "step \(t)")
        }
    }

    func testMomentumAndRMSpropAndAdagradUpdates() {
        for (kind, expected) in [(OptimizerKind.sgd, 1 - 0.1 * 0.5), (.momentum, 1 - 0.1 * 0.5 - 0.1 * (0.9 * 0.5 + 0.5)),
                                 (.adagrad, 1 - 0.1 - 0.1 * 0.5 / (0.5 * 2.0.squareRoot())),
                                 (.rmsprop, 1 - 0.1 * 0.5 / (0.01 * 0.25).squareRoot() - 0.1 * 0.5 / (0.0199 * 0.25).squareRoot())] {
            let optimizer = Optimizer(kind, parameterCount: 1)
            var p: [Float] = [1]
            var g: [Float] = [0.5]
            for _ in 0..<(kind == .sgd ? 1 : 2) {
                p.withUnsafeMutableBufferPointer { pp in g.withUnsafeMutableBufferPointer { optimizer.step(parameters: pp, gradients: $0, lr: 0.1) } }
            }
            XCTAssertEqual(Double(p[0]), expected, accuracy: 1e-4, "\(kind)")
        }
    }

    func testSchedules() throws {
        XCTAssertEqual(try Schedule(parsing: "step:2:0.5").rate(base: 1, epoch: 4.5, total: 10), 0.25)
        XCTAssertEqual(try Schedule(parsing: "cosine").rate(base: 1, epoch: 5, total: 10), 0.5, accuracy: 1e-6)
        let warmup = try Schedule(parsing: "warmup:2:0.1")
        XCTAssertEqual(warmup.rate(base: 1, epoch: 0, total: 10), 0.1, accuracy: 1e-6)
        XCTAssertEqual(warmup.rate(base: 1, epoch: 1, total: 10), 0.55, accuracy: 1e-6)
        XCTAssertEqual(warmup.rate(base: 1, epoch: 2, total: 10), 1, accuracy: 1e-6)
        XCTAssertEqual(warmup.rate(base: 1, epoch: 6, total: 10), 0.55, accuracy: 1e-6)
        XCTAssertThrowsError(try Schedule(parsing: "step:0:0.5"))
        XCTAssertThrowsError(try Schedule(parsing: "linear")) { error in
            XCTAssertEqual(error as? ConfigurationError, .badSchedule("linear"))
            XCTAssertFalse(error.localizedDescription.contains("model spec"), error.localizedDescription)
        }
        XCTAssertEqual(try Augmentation.list(parsing: "shift,flip"), [.shift, .flip])
        XCTAssertThrowsError(try Augmentation.list(parsing: "flip,blur")) { XCTAssertEqual($0 as? ConfigurationError, .unknownAugmentation("blur")) }
    }

    /// The configuration stored in checkpoints keeps its JSON form: a schedule is its text and the
    /// augmentations are names, so checkpoints written before these were typed still load.
    func testTrainConfigReadsItsStoredForm() throws {
        var config = TrainConfig()
        config.schedule = .step(every: 3, gamma: 0.5)
        config.augment = [.flip, .shift]
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any]
        XCTAssertEqual(json?["schedule"] as? String, "step:3:0.5")
        XCTAssertEqual(json?["augment"] as? [String], ["flip", "shift"])
        XCTAssertEqual(try JSONDecoder().decode(TrainConfig.self, from: JSONEncoder().encode(config)), config)
        let old = #"{"model":"lenet5","spec":"conv:6:5:same,maxpool:2,fc","activation":"relu","optimizer":"adam","lr":0.001,"schedule":"warmup:1.0:0.1","initialization":"pytorch","loss":"ce","batch_size":100,"weight_decay":0,"augment":["shift"],"seed":0,"log_every":50,"logging":true,"data":"d","grayscale":false}"#
        let decoded = try JSONDecoder().decode(TrainConfig.self, from: Data(old.utf8))
        XCTAssertEqual(decoded.schedule, .warmup(peak: 1, low: 0.1))
        XCTAssertEqual(decoded.augment, [.shift])
        XCTAssertThrowsError(try JSONDecoder().decode(TrainConfig.self, from: Data(old.replacingOccurrences(of: "warmup:1.0:0.1", with: "sideways").utf8)))
    }

    func testPresetsAndSpecs() throws {
        let lenet = try Sequential(spec: try ModelSpec.preset("lenet5"), inputShape: ImageShape(channels: 1, height: 28, width: 28), classes: 10)
        XCTAssertEqual(lenet.layers.map(\.name), ["conv1", "pool1", "conv2", "pool2", "fc1", "dropout1", "fc2"])
        XCTAssertEqual(lenet.views.map(\.name), ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        XCTAssertEqual(lenet.views[4].shape, [1024, 3136])
        let classic = try Sequential(spec: try ModelSpec.preset("lenet5-classic"), inputShape: ImageShape(channels: 3, height: 32, width: 32), classes: 10)
        XCTAssertEqual(classic.views.first { $0.name == "fc1.weight" }?.shape, [120, 400])
        let small = try Sequential(spec: try ModelSpec.preset("lenet5", kernel: 3), inputShape: ImageShape(channels: 1, height: 28, width: 28), classes: 10)
        XCTAssertEqual(small.views[0].shape, [32, 1, 3, 3])
        let conv5 = try Sequential(spec: try ModelSpec.preset("conv5"), inputShape: ImageShape(channels: 1, height: 28, width: 28), classes: 10)
        XCTAssertEqual(conv5.layers.filter { $0 is AvgPool2D }.count, 5)
        XCTAssertEqual(conv5.layers[9].outputShape, [64, 23, 23])
        let spec = try ModelSpec(parsing: "conv:8:3:1,maxpool:2:2,avgpool:3:1,fc:12,dropout:0.25,fc")
        XCTAssertEqual(try ModelSpec(parsing: spec.description), spec)
        XCTAssertThrowsError(try ModelSpec(parsing: "conv:8"))
        XCTAssertThrowsError(try ModelSpec(parsing: "pool:2"))
        XCTAssertThrowsError(try ModelSpec.preset("lenet7"))
        XCTAssertThrowsError(try Sequential(spec: try ModelSpec(parsing: "conv:4:9:valid,fc"), inputShape: ImageShape(channels: 1, height: 5, width: 5), classes: 3))
        XCTAssertThrowsError(try Sequential(spec: try ModelSpec(parsing: "fc:4"), inputShape: ImageShape(channels: 1, height: 5, width: 5), classes: 3))
    }

    /// A pass from a later layer, on the output of the layer before it, gives the whole pass's logits bit for bit.
    func testForwardFromALaterLayerMatchesTheWholePass() throws {
        let shape = ImageShape(channels: 1, height: 12, width: 12)
        let model = try Sequential(spec: try ModelSpec(parsing: "conv:4:3:same,maxpool:2,conv:6:3:same,fc:8,dropout:0.5,fc"), inputShape: shape, classes: 3, seed: 5)
        var random = SeededRandom(seed: 6)
        let x = (0..<(2 * shape.count)).map { _ in random.uniform() }
        let (whole, part) = (ForwardRecord(model), ForwardRecord(model))
        let logits = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: model.forward($0.baseAddress!, batch: 2, training: false, into: whole), count: 6)) }
        for first in 1..<model.layers.count {
            let out = model.forward(whole.output(of: first - 1), batch: 2, training: false, from: first, into: part)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: out, count: 6)), logits, "from layer \(first)")
            XCTAssertEqual(part.start, first)
        }
    }

    func testSameSeedSameWeightsBitForBit() throws {
        let data = stripes(count: 30)
        func train() throws -> [Float] {
            var config = TrainConfig()
            config.batchSize = 8
            config.seed = 42
            config.augment = [.flip, .shift]
            let model = try Sequential(spec: try ModelSpec(parsing: "conv:3:3:same,maxpool:2,fc:8,dropout:0.5,fc"), inputShape: data.shape, classes: 3, seed: 42)
            let trainer = try Trainer(model: model, optimizer: Optimizer(.adam, parameterCount: model.parameterCount), config: config,
                                      train: data, test: data, runDirectory: temporaryDirectory())
            try trainer.run(untilEpoch: 2)
            return Array(model.parameters)
        }
        XCTAssertEqual(try train(), try train())
    }

    func testTrainingLearnsAndResumeCarriesOn() throws {
        let data = stripes(count: 60)
        let run = temporaryDirectory()
        var config = TrainConfig()
        config.batchSize = 10
        config.lr = 0.01
        config.saveEvery = 1
        let model = try Sequential(spec: try ModelSpec(parsing: "conv:4:3:same,maxpool:2,fc:16,fc"), inputShape: data.shape, classes: 3, seed: 1)
        let trainer = try Trainer(model: model, optimizer: Optimizer(.adam, parameterCount: model.parameterCount), config: config,
                                  train: data, test: data, runDirectory: run)
        let first = try trainer.run(untilEpoch: 3)
        XCTAssertEqual(first.map(\.epoch), [1, 2, 3])
        XCTAssertEqual(first.last?.step, 18)
        XCTAssertGreaterThan(first.last!.testAcc!, 0.9)

        let loaded = try Sequential.load(contentsOf: run + "/checkpoint.safetensors")
        XCTAssertEqual(Array(loaded.model.parameters), Array(model.parameters))
        XCTAssertEqual(loaded.epoch, 3)
        let optimizer = Optimizer(.adam, parameterCount: loaded.model.parameterCount)
        try optimizer.restore(from: loaded.checkpoint)
        XCTAssertEqual(optimizer.steps, 18)
        let resumed = try Trainer(model: loaded.model, optimizer: optimizer, config: config, train: data, test: data,
                                  runDirectory: run, startEpoch: loaded.epoch, startStep: loaded.step)
        let second = try resumed.run(untilEpoch: 5)
        XCTAssertEqual(second.map(\.epoch), [4, 5])
        XCTAssertEqual(second.map(\.step), [24, 30])
        let lines = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 5)
        let epochs = try lines.map { try JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)).epoch }
        XCTAssertEqual(epochs, [1, 2, 3, 4, 5])
        for key in ["epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"] {
            XCTAssertTrue(lines[0].contains("\"\(key)\""), key)
        }
        for epoch in 1...5 { XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/checkpoints/epoch-\(epoch).safetensors")) }
        let events = try FileManager.default.contentsOfDirectory(atPath: run + "/tensorboard")
        XCTAssertEqual(events.count, 1, "a resumed run appends to the same event file")
    }

    func testDivergenceStopsAndKeepsTheLastGoodCheckpoint() throws {
        let data = stripes(count: 40)
        let run = temporaryDirectory()
        var config = TrainConfig()
        config.batchSize = 10
        config.lr = 1e6
        config.optimizer = .sgd
        config.loss = .mse
        config.divergenceFactor = 1e30  // so that the loss overflows before it passes the bound
        let model = try Sequential(spec: try ModelSpec(parsing: "fc:16,fc"), inputShape: data.shape, classes: 3, activation: .sigmoid, seed: 1)
        let trainer = try Trainer(model: model, optimizer: Optimizer(.sgd, parameterCount: model.parameterCount), config: config,
                                  train: data, test: data, runDirectory: run)
        XCTAssertThrowsError(try trainer.run(untilEpoch: 5)) { error in
            guard case let .diverged(epoch, step, loss, _, _)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertFalse(loss.isFinite)
            XCTAssertGreaterThanOrEqual(epoch, 1)
            XCTAssertGreaterThan(step, 0)
            XCTAssertTrue(error.localizedDescription.contains("epoch \(epoch), step \(step)"))
        }
        let kept = try Sequential.load(contentsOf: run + "/checkpoint.safetensors")
        XCTAssertTrue(kept.model.parameters.allSatisfy(\.isFinite))
    }

    /// A loss that stays finite but grows past the bound stops the run in the epoch where it does,
    /// before that epoch can replace the last good checkpoint; `best.safetensors` and the metrics stay
    /// at the last good epoch, and `diverged.txt` holds the error's line.
    func testDivergenceBoundStopsAFiniteBlowUpAndKeepsTheLastGoodEpoch() throws {
        let data = stripes(count: 60)
        let run = temporaryDirectory()
        var config = TrainConfig()
        config.batchSize = 10
        config.lr = 0.01
        config.schedule = .step(every: 1, gamma: 1000)  // epoch 1 at 0.01, epoch 2 at 10
        config.optimizer = .sgd
        config.loss = .mse
        config.activation = .tanh
        let trainer = try newTrainer("conv:4:3:same,maxpool:2,fc:16,fc", config: config, data: data, run: run)
        XCTAssertThrowsError(try trainer.run(untilEpoch: 5)) { error in
            guard case let .diverged(epoch, step, loss, bound, _)? = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertEqual(epoch, 2)
            XCTAssertGreaterThan(step, 6)
            XCTAssertTrue(loss.isFinite, "caught by the bound, before the loss overflowed")
            XCTAssertEqual(bound, trainer.firstLoss! * TrainConfig.defaultDivergenceFactor)
            XCTAssertGreaterThan(loss, bound!)
            XCTAssertEqual(try? String(contentsOfFile: run + "/diverged.txt", encoding: .utf8), error.localizedDescription + "\n")
        }
        let kept = try Sequential.load(contentsOf: run + "/checkpoint.safetensors")
        XCTAssertEqual(kept.epoch, 1)
        XCTAssertEqual(kept.checkpoint.metadata[CheckpointKey.firstLoss], String(trainer.firstLoss!))
        XCTAssertEqual(try Sequential.load(contentsOf: run + "/best.safetensors").epoch, 1)
        XCTAssertEqual(try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").count, 1)

        // A resumed run takes the stored first loss for its bound, and a fresh start clears the mark.
        config.schedule = .constant
        let resumed = try resumedTrainer(run, config: config, data: data)
        XCTAssertEqual(resumed.divergenceBound, trainer.divergenceBound)
        try resumed.run(untilEpoch: 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/diverged.txt"))
    }

    /// `best.safetensors` holds the epoch of the best test accuracy, and a start restores it from the
    /// checkpoint when a kill came between the two writes.
    func testBestCheckpointFollowsTheBestTestAccuracy() throws {
        let data = stripes(count: 60)
        let run = temporaryDirectory()
        var config = TrainConfig()
        config.batchSize = 10
        config.lr = 0.01
        let history = try newTrainer("conv:4:3:same,maxpool:2,fc:16,fc", config: config, data: data, run: run).run(untilEpoch: 4)
        let best = history.max { $0.testAcc! < $1.testAcc! }!
        let bestEpoch = history.first { $0.testAcc == best.testAcc }!.epoch
        XCTAssertEqual(try Sequential.load(contentsOf: run + "/best.safetensors").epoch, bestEpoch, "the first epoch of the best accuracy")

        try FileManager.default.removeItem(atPath: run + "/best.safetensors")
        try resumedTrainer(run, config: config, data: data).run(untilEpoch: 4)  // nothing to train: the start alone restores the best model
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: run + "/best.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: run + "/checkpoint.safetensors")))
    }

    /// Whatever a kill left in metrics.jsonl, a resume continues it one line per epoch: a torn last
    /// line and lines after the checkpoint's epoch are cut off, and the checkpoint's own line is
    /// restored when the kill came between the checkpoint and the metrics write.
    func testResumeRepairsMetricsToTheCheckpointsEpoch() throws {
        let data = stripes(count: 30)
        let run = temporaryDirectory()
        var config = TrainConfig()
        config.batchSize = 10
        config.logging = false
        try newTrainer("fc:8,fc", config: config, data: data, run: run).run(untilEpoch: 2)
        let metricsPath = run + "/metrics.jsonl"
        let lines = try String(contentsOfFile: metricsPath, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2)

        func resume(_ metricsText: String) throws -> [Int] {
            try metricsText.write(toFile: metricsPath, atomically: true, encoding: .utf8)
            let resumed = try resumedTrainer(run, config: config, data: data)
            try resumed.run(untilEpoch: resumed.epoch)
            let text = try String(contentsOfFile: metricsPath, encoding: .utf8)
            XCTAssertTrue(text.hasSuffix("\n"))
            return try text.split(separator: "\n").map { try JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)).epoch }
        }
        XCTAssertEqual(try resume(lines[0] + "\n" + lines[1].prefix(30)), [1, 2], "a torn last line")
        XCTAssertEqual(try resume(lines[0] + "\n"), [1, 2], "killed after the checkpoint, before its metrics line")
        XCTAssertEqual(try String(contentsOfFile: metricsPath, encoding: .utf8), lines[0] + "\n" + lines[1] + "\n", "restored from the checkpoint")
        XCTAssertEqual(try resume(lines.joined(separator: "\n") + "\n" + lines[1].replacingOccurrences(of: "\"epoch\":2", with: "\"epoch\":3") + "\n"), [1, 2],
                       "a line after the checkpoint's epoch")
    }

    func testMismatchedCheckpointIsAClearError() throws {
        let run = temporaryDirectory()
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let model = try Sequential(spec: try ModelSpec(parsing: "fc:4,fc"), inputShape: ImageShape(channels: 1, height: 2, width: 2), classes: 2)
        var checkpoint = model.checkpoint(classNames: ["a", "b"], epoch: 0, step: 0)
        checkpoint.metadata[CheckpointKey.spec] = "fc:5,fc"
        try checkpoint.write(to: run + "/bad.safetensors")
        XCTAssertThrowsError(try Sequential.load(contentsOf: run + "/bad.safetensors")) { error in
            XCTAssertTrue(error.localizedDescription.contains("fc1.weight"), error.localizedDescription)
        }
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: run + "/junk.safetensors"))
        XCTAssertThrowsError(try Sequential.load(contentsOf: run + "/junk.safetensors"))
    }
}
