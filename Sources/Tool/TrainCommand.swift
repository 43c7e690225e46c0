import ArgumentParser
import Foundation
import Net

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a data set, evaluating on its test split after every epoch.",
        discussion: """
        Writes RUN/metrics.jsonl (one line per epoch), RUN/checkpoint.safetensors after every epoch, \
        RUN/best.safetensors (the best test accuracy so far), RUN/tensorboard/ event files and, with \
        --save-every N, RUN/checkpoints/epoch-N.safetensors. One process at a time trains a run: a \
        second one on the same RUN stops with the first one's process id. \
        --resume CKPT continues a run with its stored settings for --epochs more epochs; epoch and step \
        numbers, metrics and event files carry on. The worker count is recorded too (a resumed run keeps \
        its own unless --workers is given): the same --seed and --workers give the same weights bit for bit.
        """)

    @Option(help: "Data set directory (see `deconvnet data`).")
    var data: String?

    @OptionGroup var settings: TrainingOptions

    @Option(help: "Epochs to train (more epochs, with --resume).")
    var epochs = 10

    @Option(help: "Stop after this many steps instead.")
    var steps: Int?

    @Option(name: .customLong("run"), help: "Run directory (default runs/MODEL).")
    var runDirectory: String?

    @Option(help: "Continue from this checkpoint.")
    var resume: String?

    @Option(name: .customLong("divergence-factor"),
            help: "Stop as diverged (exit 3) when a step's loss exceeds this many times the first step's (default \(Int(TrainConfig.defaultDivergenceFactor))).")
    var divergenceFactor: Float?

    @OptionGroup var workerOptions: WorkerOptions

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        guard epochs > 0 else { throw ValidationError("--epochs must be positive") }
        if let steps, steps <= 0 { throw ValidationError("--steps must be positive") }
        if let divergenceFactor, !(divergenceFactor > 1 && divergenceFactor.isFinite) {
            throw ValidationError("--divergence-factor must be a number above 1")
        }
        if resume == nil && data == nil { throw ValidationError("--data is required (or --resume a run)") }
    }

    func run() throws {
        let (trainer, lock) = try makeTrainer()
        defer { withExtendedLifetime(lock) {} }
        trainer.drawFilters = { filterRow($0, shape: $1) }
        let total = trainer.epoch + epochs
        let progress = ProgressLine()
        if let sweep = ProcessInfo.processInfo.environment[SweepJob.parentVariable].flatMap({ pid_t($0) }) {
            trainer.stopRequest = { getppid() == sweep ? nil : "the sweep that started this run has ended" }
        }
        trainer.onEvent = { event in
            switch event {
            case let .step(epoch, batch, batches, loss):
                progress.update("epoch \(epoch)/\(total)", done: batch, of: batches, suffix: String(format: "loss %.4f", loss))
            case .epoch(let m):
                progress.finish()
                var line = String(format: "epoch %d/%d  step %d  train loss %.4f acc %@", m.epoch, total, m.step, m.trainLoss, percent(m.trainAcc))
                if let l = m.testLoss, let a = m.testAcc { line += String(format: "  test loss %.4f acc %@", l, percent(a)) }
                line += String(format: "  lr %.3g  %.1f s (%.0f images/s)", m.lr, m.seconds, m.imagesPerSecond)
                print(line)
                fflush(stdout)
            }
        }
        do {
            try trainer.run(untilEpoch: total, maxSteps: steps)
        } catch {
            progress.finish()
            throw error
        }
        print("checkpoint: \(trainer.checkpointPath)")
    }

    /// The trainer, and the lock on its run directory that it runs under.
    private func makeTrainer() throws -> (Trainer, RunLock) {
        if let resume {
            let directory = runDirectory ?? URL(fileURLWithPath: resume).deletingLastPathComponent().path
            let lock = try RunLock(directory: directory)
            let loaded = try Sequential.load(contentsOf: resume)
            guard let json = loaded.checkpoint.metadata[CheckpointKey.config],
                  var config = try? JSONDecoder().decode(TrainConfig.self, from: Data(json.utf8)) else {
                throw CheckpointError.invalidMetadata(path: resume, reason: "has no training configuration to resume from")
            }
            if let data { config.data = absolutePath(data) }
            config.workers = workerOptions.workers ?? config.workers
            config.divergenceFactor = divergenceFactor ?? config.divergenceFactor
            if let count = config.workers {
                guard (1...Workers.maximum).contains(count) else {
                    throw CheckpointError.invalidMetadata(path: resume, reason: "asks for \(count) workers; give --workers 1 to \(Workers.maximum)")
                }
                Workers.set(count)
            }
            let splits = try loadData(config.data, for: loaded.model)
            let optimizer = Optimizer(config.optimizer, parameterCount: loaded.model.parameterCount, weightDecay: config.weightDecay)
            try optimizer.restore(from: loaded.checkpoint)
            print("resuming \(config.model) at epoch \(loaded.epoch), step \(loaded.step) in \(directory)")
            return (try Trainer(model: loaded.model, optimizer: optimizer, config: config, train: try split(splits, .train, path: config.data),
                                test: splits.test, runDirectory: directory, startEpoch: loaded.epoch, startStep: loaded.step,
                                firstLoss: loaded.checkpoint.metadata[CheckpointKey.firstLoss].flatMap { Float($0) }), lock)
        }
        workerOptions.apply()
        var config = try settings.config(data: absolutePath(data!), workers: Workers.count)
        config.divergenceFactor = divergenceFactor
        let directory = runDirectory ?? "runs/\(config.model.contains(":") ? "custom" : config.model)"
        let made = Self.madeByLock(directory)
        let lock = try RunLock(directory: directory)
        do {
            return (try newTrainer(config, in: directory), lock)
        } catch {
            // a new run that could not start leaves nothing behind: what the lock created goes
            if let made { try? FileManager.default.removeItem(atPath: made) }
            throw error
        }
    }

    /// What `RunLock(directory:)` creates for `directory`: its outermost missing folder, or the lock file
    /// in a folder that exists; nil when both exist.
    private static func madeByLock(_ directory: String) -> String? {
        let files = FileManager.default
        var url = URL(fileURLWithPath: directory).standardizedFileURL
        guard files.fileExists(atPath: url.path) else {
            while !files.fileExists(atPath: url.deletingLastPathComponent().path) { url.deleteLastPathComponent() }
            return url.path
        }
        let lock = url.path + "/" + RunLock.fileName
        return files.fileExists(atPath: lock) ? nil : lock
    }

    /// The trainer of a new run of `config` in `directory`, whose lock the caller holds. Its one mapping of
    /// errors, by cause: a batch whose buffers exceed the memory budget is a bad flag (exit 64); a model that
    /// does not fit its data is a run-time error (exit 1), with a hint at `--size` when it is too large for them;
    /// both name the model and the image shape.
    private func newTrainer(_ config: TrainConfig, in directory: String) throws -> Trainer {
        if FileManager.default.fileExists(atPath: directory + "/checkpoint.safetensors") {
            throw SetupError.runExists(directory)
        }
        let splits = try DataLoader.load(config.data, grayscale: config.grayscale, size: config.size)
        let train = try split(splits, .train, path: config.data)
        let model: Sequential
        do {
            model = try Sequential(spec: try settings.model.spec(), inputShape: train.shape, classes: train.classNames.count,
                                   activation: config.activation, seed: config.seed)
            try model.checkBatch(min(config.batchSize, train.count), evaluating: splits.test?.count ?? 0, for: "--batch-size \(config.batchSize)")
        } catch let error as MemoryBudgetError {
            throw ValidationError("\(config.model) on \(train.shape) images: \(error.localizedDescription)")
        } catch let error as ModelError {
            var reason = error.localizedDescription
            if case .overBudget = error, config.size == nil { reason += "; --size N reads the images resized to N x N" }
            throw SetupError.modelDoesNotFit(model: config.model, shape: train.shape, reason: reason)
        }
        model.initialize(config.initialization, seed: config.seed)
        print("training \(config.model) (\(model.parameterCount) parameters) on \(train.count) \(train.shape) images, \(splits.test?.count ?? 0) test images -> \(directory)")
        return try Trainer(model: model, optimizer: Optimizer(config.optimizer, parameterCount: model.parameterCount, weightDecay: config.weightDecay),
                           config: config, train: train, test: splits.test, runDirectory: directory)
    }
}

/// The settings of a training run that `TrainConfig` stores: the model, optimisation, augmentation,
/// logging and how images are read. `train` builds its `TrainConfig` from these alone.
struct TrainingOptions: ParsableArguments {
    @Flag(help: "Convert images to grayscale (BT.601 luma).")
    var grayscale = false

    @Option(help: "Resize images to N x N (bilinear).")
    var size: Int?

    @OptionGroup var model: ModelOptions

    @Option(help: "Optimizer: sgd, momentum, adam, adagrad, rmsprop.")
    var optimizer: OptimizerKind = .adam

    @Option(help: "(Peak) learning rate.", transform: finiteNumber)
    var lr: Float = 0.001

    @Option(help: "Learning-rate schedule: constant, step:EVERY:GAMMA, cosine, warmup:PEAK:LOW.", transform: { try Schedule(parsing: $0) })
    var schedule = Schedule.constant

    @Option(name: .customLong("init"), help: "Initialisation: pytorch, glorot, he, truncated-normal.")
    var initialization: Initialization = .pytorch

    @Option(help: "Loss: ce (softmax cross-entropy) or mse (on logits vs one-hot).")
    var loss: Loss = .ce

    @Option(name: .customLong("batch-size"))
    var batchSize = 100

    @Option(help: "Seed for initialisation, shuffling, dropout and augmentation.")
    var seed: UInt64 = 0

    @Option(name: .customLong("weight-decay"), help: "L2 weight decay.", transform: finiteNumber)
    var weightDecay: Float = 0

    @Option(help: "Comma-separated augmentations of training images: flip, shift.", transform: { try Augmentation.list(parsing: $0) })
    var augment: [Augmentation] = []

    @Option(name: .customLong("clip-norm"), help: "Clip the global gradient norm.", transform: finiteNumber)
    var clipNorm: Float?

    @Option(name: .customLong("save-every"), help: "Also keep a checkpoint every N epochs.")
    var saveEvery: Int?

    @Option(name: .customLong("log-every"), help: "TensorBoard batch loss every N steps.")
    var logEvery = 50

    @Flag(name: .customLong("no-logging"), help: "Skip TensorBoard events, activation statistics and filter snapshots.")
    var noLogging = false

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard lr > 0 else { throw ValidationError("--lr must be a positive number") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must be 0 or more") }
        if let saveEvery, saveEvery <= 0 { throw ValidationError("--save-every must be positive") }
        if let clipNorm, !(clipNorm > 0) { throw ValidationError("--clip-norm must be positive") }
        try validateSizeFlag(size)
        guard logEvery > 0 else { throw ValidationError("--log-every must be positive") }
    }

    /// The configuration of a new run on the data set at `data` (an absolute path), split over `workers` threads.
    func config(data: String, workers: Int) throws -> TrainConfig {
        var config = TrainConfig()
        config.model = model.model
        config.spec = try model.spec().description
        config.activation = model.activation
        config.optimizer = optimizer
        config.lr = lr
        config.schedule = schedule
        config.initialization = initialization
        config.loss = loss
        config.batchSize = batchSize
        config.weightDecay = weightDecay
        config.augment = augment
        config.clipNorm = clipNorm
        config.seed = seed
        config.saveEvery = saveEvery
        config.logEvery = logEvery
        config.logging = !noLogging
        config.data = data
        config.grayscale = grayscale
        config.size = size
        config.workers = workers
        return config
    }
}

/// A one-line progress bar on a terminal; silent when standard error is not a terminal (plain
/// per-epoch lines are printed instead).
final class ProgressLine {
    private let enabled = isatty(2) != 0
    private var lastDraw = Date.distantPast
    private var drawn = false

    func update(_ label: String, done: Int, of total: Int, suffix: String) {
        guard enabled, done == total || Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        let width = 30
        let filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(done)/\(total) \(suffix)\u{1B}[K".utf8))
        drawn = true
    }

    func finish() {
        guard drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        drawn = false
    }
}

extension TrainingError: StatusError {
    /// A diverged run ends `train` with status 3, which `sweep` reads.
    var exitStatus: ExitStatus {
        if case .diverged = self { return .diverged }
        return .failure
    }
}
