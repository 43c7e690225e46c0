import Foundation

/// Why a training run stopped early.
public enum TrainingError: LocalizedError, Equatable {
    case diverged(epoch: Int, step: Int, loss: Float, lastCheckpoint: String)
    case emptyData(String)
    /// `Trainer.stopRequest` gave `reason` during epoch `epoch`.
    case stopped(reason: String, epoch: Int, lastCheckpoint: String)

    public var errorDescription: String? {
        switch self {
        case let .diverged(epoch, step, loss, lastCheckpoint):
            return "the loss became \(loss) at epoch \(epoch), step \(step): training stopped; the last good checkpoint is \(lastCheckpoint)"
        case .emptyData(let what):
            return what
        case let .stopped(reason, epoch, lastCheckpoint):
            return "\(reason); stopped in epoch \(epoch), the last epoch's checkpoint is \(lastCheckpoint)"
        }
    }
}

/// What the training loop reports while it runs.
public enum TrainingEvent {
    /// After each step: epoch, batch index within the epoch, batches per epoch, running mean loss.
    case step(epoch: Int, batch: Int, batches: Int, loss: Float)
    /// After each epoch's evaluation.
    case epoch(EpochMetrics)
}

/// The training loop: shuffled mini-batches, augmentation, optimisation, evaluation after every epoch,
/// `RUN/metrics.jsonl`, TensorBoard events in `RUN/tensorboard/`, and atomic checkpoints
/// (`RUN/checkpoint.safetensors`, plus `RUN/checkpoints/epoch-N.safetensors` with `saveEvery`).
/// Epoch and step numbers continue from `startEpoch`/`startStep` when a run is resumed.
public final class Trainer {
    public let model: Sequential
    public let optimizer: Optimizer
    public let config: TrainConfig
    public let train: Dataset
    public let test: Dataset?
    public let runDirectory: String
    public private(set) var epoch: Int
    public private(set) var step: Int
    public var onEvent: ((TrainingEvent) -> Void)?
    /// Asked after every step; a reason stops the run with `TrainingError.stopped` (the partial epoch
    /// is dropped, the last epoch's checkpoint stays).
    public var stopRequest: (() -> String?)?
    private let schedule: Schedule
    private let augmentations: [Augmentation]
    private var events: EventWriter?
    private var log: TrainingLog?

    public var checkpointPath: String { runDirectory + "/checkpoint.safetensors" }
    public var metricsPath: String { runDirectory + "/metrics.jsonl" }

    public init(model: Sequential, optimizer: Optimizer, config: TrainConfig, train: Dataset, test: Dataset?,
                runDirectory: String, startEpoch: Int = 0, startStep: Int = 0) throws {
        guard train.count > 0 else { throw TrainingError.emptyData("the training split is empty") }
        self.model = model
        self.optimizer = optimizer
        self.config = config
        self.train = train
        self.test = test
        self.runDirectory = runDirectory
        epoch = startEpoch
        step = startStep
        schedule = try Schedule(parsing: config.schedule)
        augmentations = try config.augment.map {
            guard let a = Augmentation(rawValue: $0) else { throw ModelError.badSpec("unknown augmentation '\($0)' (flip, shift)") }
            return a
        }
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
    }

    /// The learning rate at the current step, for a run of `totalEpochs`.
    private func rate(batch: Int, batches: Int, totalEpochs: Int) -> Float {
        schedule.rate(base: config.lr, epoch: Double(epoch) + Double(batch) / Double(batches), total: Double(totalEpochs))
    }

    /// Trains until epoch `untilEpoch` (or until `maxSteps` more steps), evaluating and saving after each
    /// epoch. Throws `TrainingError.diverged` on a non-finite loss, keeping the last good checkpoint.
    @discardableResult
    public func run(untilEpoch totalEpochs: Int, maxSteps: Int? = nil) throws -> [EpochMetrics] {
        if config.logging {
            let events = try EventWriter(appendingTo: runDirectory + "/tensorboard")
            self.events = events
            log = TrainingLog(model: model, runDirectory: runDirectory, events: events, probe: test ?? train)
        }
        defer {
            try? events?.close()
            events = nil
            log = nil
        }
        if !FileManager.default.fileExists(atPath: checkpointPath) {
            try save()
            try log?.record(epoch: epoch, step: step)
        }
        let n = min(config.batchSize, train.count)  // buffers for the batch that can happen, not the one asked for
        try model.checkBatch(n, for: "the batch size \(config.batchSize)")
        let shape = train.shape
        var input = [Float](repeating: 0, count: n * shape.count)
        var labels = [Int32](repeating: 0, count: n)
        var logitGradient = [Float](repeating: 0, count: n * model.classes)
        var history: [EpochMetrics] = []
        let stepLimit = maxSteps.map { step + $0 }
        while epoch < totalEpochs, stepLimit.map({ step < $0 }) ?? true {
            var random = SeededRandom(seed: config.seed &+ UInt64(epoch + 1) &* 0x5851_F42D_4C95_7F2D)
            var order = Array(0..<train.count)
            order.shuffle(using: &random)
            let batches = (train.count + n - 1) / n
            var lossSum: Double = 0, correct = 0, seen = 0
            let start = Date()
            for batch in 0..<batches {
                if let stepLimit, step >= stepLimit { break }
                let indices = order[batch * n..<min(train.count, (batch + 1) * n)]
                let count = indices.count
                input.withUnsafeMutableBufferPointer { x in
                    train.fill(x.baseAddress!, indices: indices)
                    for a in augmentations { a.apply(x.baseAddress!, count: count, shape: shape, random: &random) }
                }
                for (row, index) in indices.enumerated() { labels[row] = train.labels[index] }
                let lr = rate(batch: batch, batches: batches, totalEpochs: totalEpochs)
                let result = input.withUnsafeBufferPointer { x in
                    labels.withUnsafeBufferPointer { y in
                        logitGradient.withUnsafeMutableBufferPointer { g in
                            model.trainStep(x.baseAddress!, labels: y.baseAddress!, batch: count, loss: config.loss, optimizer: optimizer,
                                            lr: lr, clipNorm: config.clipNorm, logitGradient: g.baseAddress!)
                        }
                    }
                }
                step += 1
                guard result.loss.isFinite else {
                    try? events?.flush()
                    throw TrainingError.diverged(epoch: epoch + 1, step: step, loss: result.loss, lastCheckpoint: checkpointPath)
                }
                lossSum += Double(result.loss) * Double(count)
                correct += result.correct
                seen += count
                if step % max(1, config.logEvery) == 0 { try events?.addScalar("train/batch_loss", result.loss, step: step) }
                onEvent?(.step(epoch: epoch + 1, batch: batch + 1, batches: batches, loss: Float(lossSum / Double(seen))))
                if let reason = stopRequest?() {
                    try? events?.flush()
                    throw TrainingError.stopped(reason: reason, epoch: epoch + 1, lastCheckpoint: checkpointPath)
                }
            }
            let seconds = Date().timeIntervalSince(start)
            epoch += 1
            let evaluation = test.map { model.evaluate($0, loss: config.loss) }
            let metrics = EpochMetrics(
                epoch: epoch, step: step, trainLoss: Float(lossSum / Double(max(1, seen))), trainAcc: Float(correct) / Float(max(1, seen)),
                testLoss: evaluation?.loss, testAcc: evaluation?.accuracy, lr: rate(batch: 0, batches: 1, totalEpochs: totalEpochs),
                seconds: seconds, imagesPerSecond: Double(seen) / max(seconds, 1e-9))
            try record(metrics)
            try log?.record(epoch: epoch, step: step)
            history.append(metrics)
            onEvent?(.epoch(metrics))
        }
        return history
    }

    /// Appends the epoch's line to metrics.jsonl, logs its scalars, and saves the checkpoints.
    private func record(_ metrics: EpochMetrics) throws {
        try appendLine(jsonString(metrics), to: metricsPath)
        if let events {
            try events.addScalar("train/loss", metrics.trainLoss, step: metrics.epoch)
            try events.addScalar("train/accuracy", metrics.trainAcc, step: metrics.epoch)
            if let loss = metrics.testLoss, let acc = metrics.testAcc {
                try events.addScalar("test/loss", loss, step: metrics.epoch)
                try events.addScalar("test/accuracy", acc, step: metrics.epoch)
            }
            try events.addScalar("train/lr", metrics.lr, step: metrics.epoch)
            try events.flush()
        }
        try save(metrics: metrics)
    }

    private func save(metrics: EpochMetrics? = nil) throws {
        var extra = [CheckpointKey.config: jsonString(config)]
        if let metrics { extra[CheckpointKey.metrics] = jsonString(metrics) }
        let checkpoint = model.checkpoint(classNames: train.classNames, epoch: epoch, step: step, optimizer: optimizer, extra: extra)
        try checkpoint.write(to: checkpointPath)
        if let every = config.saveEvery, epoch % every == 0 {
            try FileManager.default.createDirectory(atPath: runDirectory + "/checkpoints", withIntermediateDirectories: true)
            try checkpoint.write(to: runDirectory + "/checkpoints/epoch-\(epoch).safetensors")
        }
    }
}
