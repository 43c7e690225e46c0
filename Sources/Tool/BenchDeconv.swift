import ArgumentParser
import Deconv
import Dispatch
import Foundation
import Net

/// The model a deconvnet benchmark runs on: a checkpoint, or a random-weight preset at its default shape.
struct BenchModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A checkpoint to use instead of a random-weight model.", valueName: "file"))
    var checkpoint: String?

    @OptionGroup var preset: ModelOptions

    @Option(help: "Layer to project from.")
    var layer: String = "conv2"

    @Option(help: "deconvnet, guided or gradient.")
    var method: ProjectionMethod = .deconvnet

    @Option(help: "Repeat the timing this many times and report the median.")
    var repeats: Int = 5

    @OptionGroup var workerOptions: WorkerOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    func validate() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
    }

    /// A projector on the model and the index of `layer` in it; an unknown or unprojectable layer is a
    /// bad value (`ProjectionError`, exit 64).
    func load() throws -> (Projector, Int) {
        workerOptions.apply()
        let projector = try Projector(model: try benchModel(checkpoint: checkpoint, preset: preset))
        return (projector, try projector.layerIndex(named: layer))
    }

    var modelName: String { checkpoint ?? preset.model }
}

struct BenchProject: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "project",
        abstract: "Projection latency: one image forward to the layer, pick its strongest activation, project it to pixels.")

    @OptionGroup var options: BenchModelOptions

    @Option(help: "Timed projections per repeat (after 20 warm-up ones).")
    var projections: Int = 500

    @Option(help: "Project the strongest unit of this channel (default: the strongest unit of the layer).")
    var channel: Int?

    @Option(help: ArgumentHelp("Project the unit at this position of the feature map, row first, in the strongest channel there "
                               + "(or --channel's): the cost of a projection depends on how much of its receptive field is inside the image.",
                               valueName: "y,x"))
    var position: Position?

    @Flag(help: "Also print the time of each layer's forward pass over the whole model (inference mode, one image).")
    var profile = false

    func validate() throws {
        guard projections > 0 else { throw ValidationError("--projections must be positive") }
        if let channel, channel < 0 { throw ValidationError("--channel must be 0 or more") }
    }

    func run() throws {
        let (projector, index) = try options.load()
        if let channel {
            do { try projector.validate(FeatureUnit(channel: channel, y: 0, x: 0), in: index) } catch { throw ValidationError("--channel: \(error.localizedDescription)") }
        }
        if let position {
            do { try projector.validate(FeatureUnit(channel: 0, y: position.y, x: position.x), in: index) } catch { throw ValidationError("--position: \(error.localizedDescription)") }
        }
        let model = projector.model, shape = model.inputShape
        let images = randomImages(16, shape, seed: 2)
        var result = [Float](repeating: 0, count: shape.count)
        // a given position: the forward pass over its receptive field alone
        let at = position.map { (y: $0.y, x: $0.x) }
        func project(_ count: Int, back: Bool = true) {
            result.withUnsafeMutableBufferPointer { out in
                for i in 0..<count {
                    images[i % images.count].withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: index, at: at) }
                    let unit = projector.unit(in: index, image: 0, channel: channel, position: at)
                    if back { projector.project([unit], from: index, method: options.method, into: out.baseAddress!) }
                }
            }
        }
        project(20)
        images[0].withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: index, at: at) }
        let firstUnit = projector.unit(in: index, image: 0, channel: channel, position: at)
        let ms = Timing(repeats: options.repeats) { project(projections) }.median * 1e3 / Double(projections)
        let forwardMs = Timing(repeats: options.repeats) { project(projections, back: false) }.median * 1e3 / Double(projections)
        // the whole model on one image, to the logits: the figure to set beside a framework's forward pass
        let record = ForwardRecord(model)
        func classify(_ count: Int) {
            for i in 0..<count { images[i % images.count].withUnsafeBufferPointer { _ = model.forward($0.baseAddress!, batch: 1, training: false, into: record) } }
        }
        classify(3)
        let modelForwardMs = Timing(repeats: options.repeats) { classify(projections) }.median * 1e3 / Double(projections)
        if profile {
            images[0].withUnsafeBufferPointer { x in
                for (name, forward, _) in model.profile(x.baseAddress!, batch: 1, logitGradient: nil, repeats: options.repeats * projections) {
                    print("  \(name.padding(toLength: 10, withPad: " ", startingAt: 0)) forward \(String(format: "%8.3f", forward * 1e3)) ms")
                }
            }
        }
        let peak = peakResidentMiB()
        if options.json {
            /// One line of `bench project --json`; times in milliseconds, memory in MiB.
            struct Result: Encodable {
                var task = "bench-project", model: String, layer: String, method: String, msPerProjection: Double, forwardMs: Double
                var modelForwardMs: Double, peakRSSMiB: Double, workers: Int, blas = blasKernels
                /// The unit projected in the first image: channel, y, x.
                var unit: [Int]
                enum CodingKeys: String, CodingKey {
                    case task, model, layer, method, unit, msPerProjection = "ms_per_projection", forwardMs = "forward_ms"
                    case modelForwardMs = "model_forward_ms", peakRSSMiB = "peak_rss_mib", workers, blas
                }
            }
            print(jsonString(Result(model: options.modelName, layer: options.layer, method: options.method.rawValue,
                                    msPerProjection: rounded(ms, 4), forwardMs: rounded(forwardMs, 4), modelForwardMs: rounded(modelForwardMs, 4),
                                    peakRSSMiB: rounded(peak, 1), workers: Workers.count, unit: [firstUnit.channel, firstUnit.y, firstUnit.x])))
        } else {
            print(String(format: "%@ %@ %@: %.3f ms per projection including its forward pass (forward and choice alone %.3f ms; whole model forward %.3f ms; median of %d x %d); peak memory %.1f MiB; %d workers (OpenBLAS %@)",
                         options.modelName, options.layer, options.method.rawValue, ms, forwardMs, modelForwardMs, options.repeats, projections, peak,
                         Workers.count, blasKernels))
        }
    }
}

struct BenchTop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Top-k search and projection of the winners for every channel of a layer over a data set.")

    @OptionGroup var options: BenchModelOptions

    @Option(help: ArgumentHelp("Search this data set's train split instead of synthetic random images.", valueName: "dir"))
    var data: String?

    @Option(help: "Synthetic images (or the first N of --data).")
    var images: Int = 10_000

    @Option(help: "Images per channel.")
    var k: Int = 9

    @Option(name: .customLong("batch-size"), help: "Images per forward pass.")
    var batchSize: Int = 256

    func validate() throws {
        guard images > 0, k > 0, batchSize > 0 else { throw ValidationError("--images, --k and --batch-size must be positive") }
    }

    func run() throws {
        let (projector, index) = try options.load()
        let shape = projector.model.inputShape
        var dataset: Dataset
        if let data {
            dataset = try loadSplit(data, .train, for: projector.model)
            if images < dataset.count { dataset = slice(dataset, 0..<images) }
        } else {
            var random = SeededRandom(seed: 3)
            dataset = Dataset(shape: shape, pixels: (0..<images * shape.count).map { _ in UInt8(random.int(below: 256)) },
                              labels: [Int32](repeating: 0, count: images), classNames: ["random"])
        }
        let channels = Array(0..<projector.shape(of: index)[0])
        let seconds = Timing(repeats: options.repeats) {
            let top = projector.topActivations(in: dataset, layer: index, channels: channels, k: k, batchSize: batchSize)
            _ = projector.project(top.flatMap { $0 }, in: dataset, layer: index, method: options.method, batchSize: batchSize)
        }.median
        if options.json {
            /// One line of `bench top --json`.
            struct Result: Encodable {
                var task = "bench-top", model: String, layer: String, images: Int, channels: Int, k: Int, seconds: Double, workers: Int, blas = blasKernels
            }
            print(jsonString(Result(model: options.modelName, layer: options.layer, images: dataset.count, channels: channels.count, k: k,
                                    seconds: rounded(seconds, 3), workers: Workers.count)))
        } else {
            print(String(format: "%@ %@: top %d of %d images for %d channels, winners projected: %.2f s (median of %d); %d workers (OpenBLAS %@)",
                         options.modelName, options.layer, k, dataset.count, channels.count, seconds, options.repeats, Workers.count, blasKernels))
        }
    }
}

/// The model an analysis benchmark runs on, its parameters fixed: `checkpoint`'s (`loadForAnalysis`),
/// or `preset`'s spec with random weights at its default shape.
func benchModel(checkpoint: String?, preset: ModelOptions) throws -> Sequential {
    if let checkpoint { return try loadForAnalysis(checkpoint).model }
    let model = try Sequential(spec: try preset.spec(), inputShape: preset.defaultInputShape, classes: 10, activation: preset.activation, seed: 1)
    try model.fixParameters()
    return model
}

/// The process's peak resident memory so far, in MiB (`getrusage`'s `ru_maxrss`, KiB on Linux).
func peakResidentMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// `count` random images of `shape` with pixels uniform in [0, 1].
func randomImages(_ count: Int, _ shape: ImageShape, seed: UInt64) -> [[Float]] {
    var random = SeededRandom(seed: seed)
    return (0..<count).map { _ in (0..<shape.count).map { _ in random.uniform() } }
}
