/// Everything that defines a training run; stored as JSON in every checkpoint's metadata so that a
/// resumed run continues with the same settings.
public struct TrainConfig: Codable, Equatable, Sendable {
    public var model = "lenet5"
    /// The resolved spec string of `model`.
    public var spec = ""
    public var activation = Activation.relu
    public var optimizer = OptimizerKind.adam
    public var lr: Float = 0.001
    /// A `Schedule` in its text form.
    public var schedule = "constant"
    public var initialization = Initialization.pytorch
    public var loss = Loss.ce
    public var batchSize = 100
    public var weightDecay: Float = 0
    /// Augmentations of training images: "flip", "shift".
    public var augment: [String] = []
    /// Clip the global gradient norm to this value.
    public var clipNorm: Float?
    public var seed: UInt64 = 0
    /// Also keep `checkpoints/epoch-N.safetensors` every this many epochs.
    public var saveEvery: Int?
    /// Write `train/batch_loss` to TensorBoard every this many steps.
    public var logEvery = 50
    /// TensorBoard events, activation statistics and filter snapshots (metrics and checkpoints are always written).
    public var logging = true
    public var data = ""
    public var grayscale = false
    public var size: Int?
    /// Worker threads the batches were split over (nil in checkpoints from before it was recorded). A
    /// run is reproducible bit for bit for a given seed and worker count.
    public var workers: Int?
    /// A step loss over this many times the run's first step loss stops it as diverged (nil:
    /// `defaultDivergenceFactor`; infinity: only NaN and infinite losses do).
    public var divergenceFactor: Float?

    /// The divergence factor of a run that does not set one.
    public static let defaultDivergenceFactor: Float = 100

    public init() {}

    enum CodingKeys: String, CodingKey {
        case model, spec, activation, optimizer, lr, schedule, initialization, loss, batchSize = "batch_size"
        case weightDecay = "weight_decay", augment, clipNorm = "clip_norm", seed, saveEvery = "save_every"
        case logEvery = "log_every", logging, data, grayscale, size, workers, divergenceFactor = "divergence_factor"
    }
}

/// One line of `RUN/metrics.jsonl`: the state after an epoch.
public struct EpochMetrics: Codable, Equatable, Sendable {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Float
    public var trainAcc: Float
    public var testLoss: Float?
    public var testAcc: Float?
    public var lr: Float
    /// Wall-clock seconds of the epoch's training (without evaluation).
    public var seconds: Double
    public var imagesPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case epoch, step, trainLoss = "train_loss", trainAcc = "train_acc", testLoss = "test_loss", testAcc = "test_acc"
        case lr, seconds, imagesPerSecond = "images_per_s"
    }

    /// The accuracy that ranks epochs and runs: test accuracy, else training accuracy.
    public var rankingAccuracy: Float { testAcc ?? trainAcc }
}
