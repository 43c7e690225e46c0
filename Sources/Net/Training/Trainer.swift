import Foundation

/// Why a training run stopped early.
public enum TrainingError: LocalizedError, Equatable {
    /// The loss of the step `step` (in epoch `epoch`) was NaN, infinite, or over `bound` (see
    /// `Trainer.divergenceBound`); `lastCheckpoint` still holds the last epoch that stayed below it.
    case diverged(epoch: Int, step: Int, loss: Float, bound: Float?, lastCheckpoint: String)
    case emptyData(String)
    /// `Trainer.stopRequest` gave `reason` during epoch `epoch`.
    case stopped(reason: String, epoch: Int, lastCheckpoint: String)

    public var errorDescription: String? {
        switch self {
        case let .diverged(epoch, step, loss, bound, lastCheckpoint):
            let over = bound.map { loss.isFinite ? ", over the divergence bound \($0)" : "" } ?? ""
            return "the loss became \(loss) at epoch \(epoch), step \(step)\(over): training stopped; the last good checkpoint is \(lastCheckpoint)"
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
/// (`RUN/checkpoint.safetensors`, `RUN/best.safetensors` of the best accuracy so far, plus
/// `RUN/checkpoints/epoch-N.safetensors` with `saveEvery`). Epoch and step numbers continue from
/// `startEpoch`/`startStep` when a run is resumed.
///
/// The checkpoint is the commit point of an epoch: it is written first, then `best.safetensors`,
/// the metrics line and the event scalars. A start puts the run directory back in step with its
/// checkpoint, so that a process killed anywhere resumes to an exact epoch: lines of `metrics.jsonl`
/// and `activations.jsonl` after the checkpoint's epoch (and a torn last line, one without its
/// newline) are cut off, a metrics line the checkpoint has but the file lacks is restored from the
/// checkpoint's metadata, and so is a best model that was not written yet. Callers that may run
/// concurrently hold the directory with `RunLock`.
///
/// A step whose loss is NaN, infinite, or over `divergenceBound` stops the run with
/// `TrainingError.diverged` before the epoch's checkpoint replaces the last good one, and leaves
/// the error's line in `RUN/diverged.txt` (removed when the run is started again).
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
    /// Draws the first convolution's filters for `RUN/filters/` and TensorBoard; nil (the default)
    /// records no filter snapshots. `train` passes its `filterRow`.
    public var drawFilters: FilterDrawing?
    private var events: EventWriter?
    private var log: TrainingLog?
    /// The loss of the run's first step, which the divergence bound is a multiple of.
    public private(set) var firstLoss: Float?
    /// The accuracy of `best.safetensors` (`EpochMetrics.rankingAccuracy`).
    private var bestAccuracy: Float?

    public var checkpointPath: String { runDirectory + "/checkpoint.safetensors" }
    public var bestPath: String { runDirectory + "/best.safetensors" }
    public var metricsPath: String { runDirectory + "/metrics.jsonl" }
    public var divergedPath: String { runDirectory + "/diverged.txt" }

    /// The largest step loss that does not stop the run: `config.divergenceFactor` (default
    /// `TrainConfig.defaultDivergenceFactor`) times `firstLoss`; nil before the first step.
    public var divergenceBound: Float? { firstLoss.map { $0 * (config.divergenceFactor ?? TrainConfig.defaultDivergenceFactor) } }

    /// `firstLoss` is the first step's loss of a resumed run (`CheckpointKey.firstLoss` of its
    /// checkpoint); nil for a new run, or a checkpoint without it, takes the next step's.
    public init(model: Sequential, optimizer: Optimizer, config: TrainConfig, train: Dataset, test: Dataset?,
                runDirectory: String, startEpoch: Int = 0, startStep: Int = 0, firstLoss: Float? = nil) throws {
        guard train.count > 0 else { throw TrainingError.emptyData("the training split is empty") }
        self.model = model
        self.optimizer = optimizer
        self.config = config
        self.train = train
        self.test = test
        self.runDirectory = runDirectory
        epoch = startEpoch
        step = startStep
        self.firstLoss = firstLoss
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
    }

    /// The learning rate at the current step, for a run of `totalEpochs`.
    private func rate(batch: Int, batches: Int, totalEpochs: Int) -> Float {
        config.schedule.rate(base: config.lr, epoch: Double(epoch) + Double(batch) / Double(batches), total: Double(totalEpochs))
    }

    /// Trains until epoch `untilEpoch` (or until `maxSteps` more steps), evaluating and saving after each
    /// epoch. Throws `TrainingError.diverged` on a loss that is not finite or over `divergenceBound`,
    /// keeping the last good checkpoint.
    @discardableResult
    public func run(untilEpoch totalEpochs: Int, maxSteps: Int? = nil) throws -> [EpochMetrics] {
        unlink(divergedPath)
        let committed = try committedMetrics()
        try cutLines(metricsPath, after: epoch, restoring: committed)
        try cutLines(runDirectory + "/activations.jsonl", after: epoch)
        try restoreBest(committed)
        if config.logging {
            let events = try EventWriter(appendingTo: runDirectory + "/tensorboard")
            self.events = events
            log = TrainingLog(model: model, runDirectory: runDirectory, events: events, probe: test ?? train, drawFilters: drawFilters)
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
        try model.checkBatch(n, evaluating: test?.count ?? 0, for: "the batch size \(config.batchSize)")
        let shape = train.shape
        var input = [Float](repeating: 0, count: n * shape.count)
        var labels = [Int32](repeating: 0, count: n)
        var logitGradient = [Float](repeating: 0, count: n * model.classes)
        let passes = ForwardRecord(model)
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
                    for a in config.augment { a.apply(x.baseAddress!, count: count, shape: shape, random: &random) }
                }
                for (row, index) in indices.enumerated() { labels[row] = train.labels[index] }
                let lr = rate(batch: batch, batches: batches, totalEpochs: totalEpochs)
                let result = input.withUnsafeBufferPointer { x in
                    labels.withUnsafeBufferPointer { y in
                        logitGradient.withUnsafeMutableBufferPointer { g in
                            model.trainStep(x.baseAddress!, labels: y.baseAddress!, batch: count, loss: config.loss, optimizer: optimizer,
                                            lr: lr, clipNorm: config.clipNorm, logitGradient: g.baseAddress!, record: passes)
                        }
                    }
                }
                step += 1
                if firstLoss == nil, result.loss.isFinite { firstLoss = result.loss }
                guard result.loss.isFinite, divergenceBound.map({ result.loss <= $0 }) ?? true else {
                    try? events?.flush()
                    let error = TrainingError.diverged(epoch: epoch + 1, step: step, loss: result.loss, bound: divergenceBound, lastCheckpoint: checkpointPath)
                    try? writeAtomically(Data((error.localizedDescription + "\n").utf8), to: divergedPath)
                    throw error
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

    /// Saves the checkpoints, then appends the epoch's line to metrics.jsonl and logs its scalars.
    private func record(_ metrics: EpochMetrics) throws {
        try save(metrics: metrics)
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
    }

    /// Writes `checkpoint.safetensors` (the commit point), `checkpoints/epoch-N.safetensors` when due,
    /// and `best.safetensors` when `metrics` beat the best so far.
    private func save(metrics: EpochMetrics? = nil) throws {
        var extra = [CheckpointKey.config: jsonString(config)]
        if let metrics { extra[CheckpointKey.metrics] = jsonString(metrics) }
        if let firstLoss { extra[CheckpointKey.firstLoss] = String(firstLoss) }
        let checkpoint = model.checkpoint(classNames: train.classNames, epoch: epoch, step: step, optimizer: optimizer, extra: extra)
        try checkpoint.write(to: checkpointPath)
        if let every = config.saveEvery, epoch % every == 0 {
            try FileManager.default.createDirectory(atPath: runDirectory + "/checkpoints", withIntermediateDirectories: true)
            try checkpoint.write(to: runDirectory + "/checkpoints/epoch-\(epoch).safetensors")
        }
        if let accuracy = metrics?.rankingAccuracy, bestAccuracy.map({ accuracy > $0 }) ?? true {
            try checkpoint.write(to: bestPath)
            bestAccuracy = accuracy
        }
    }

    /// The metrics stored in `checkpoint.safetensors` when it is the checkpoint of the start epoch and step.
    private func committedMetrics() throws -> EpochMetrics? {
        guard FileManager.default.fileExists(atPath: checkpointPath) else { return nil }
        let meta = try Checkpoint.readMetadata(from: checkpointPath)
        guard meta[CheckpointKey.epoch] == String(epoch), meta[CheckpointKey.step] == String(step) else { return nil }
        return meta[CheckpointKey.metrics].flatMap { try? JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }
    }

    /// Reads the best accuracy so far from `best.safetensors`, and copies `checkpoint.safetensors` over
    /// it when the checkpoint's `committed` metrics are better (a kill between the two writes).
    private func restoreBest(_ committed: EpochMetrics?) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: bestPath) {
            let meta = try Checkpoint.readMetadata(from: bestPath)
            bestAccuracy = meta[CheckpointKey.metrics].flatMap { try? JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }?.rankingAccuracy
        }
        guard let accuracy = committed?.rankingAccuracy, bestAccuracy.map({ accuracy > $0 }) ?? true else { return }
        try writeAtomically(try Data(contentsOf: URL(fileURLWithPath: checkpointPath)), to: bestPath)
        bestAccuracy = accuracy
    }
}

/// Cuts the JSON-lines file at `path` back to its lines of epochs up to `epoch` (a line's `"epoch"`;
/// lines without one are kept), dropping a torn last line (one without its newline), and appends
/// `restoring` when it is of `epoch` and the file stops short of it. Rewrites the file atomically,
/// and only when something changes; a missing file stays missing unless there is a line to restore.
func cutLines(_ path: String, after epoch: Int, restoring: EpochMetrics? = nil) throws {
    struct Line: Decodable { var epoch: Int? }
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    let complete = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()  // the part after the last newline is torn or empty
    let kept = complete.filter { line in
        (try? JSONDecoder().decode(Line.self, from: Data(line.utf8)))?.epoch.map { $0 <= epoch } ?? true
    }
    var lines = kept.map(String.init)
    let lastEpoch = kept.compactMap { try? JSONDecoder().decode(Line.self, from: Data($0.utf8)).epoch }.last ?? 0
    if let restoring, restoring.epoch == epoch, lastEpoch < epoch { lines.append(jsonString(restoring)) }
    let repaired = lines.map { $0 + "\n" }.joined()
    guard repaired != text else { return }
    try writeAtomically(Data(repaired.utf8), to: path)
}
