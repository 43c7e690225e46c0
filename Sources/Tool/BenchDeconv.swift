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

    /// A projector on the model and the index of `layer` in it.
    func load() throws -> (Projector, Int) {
        workerOptions.apply()
        let model = try checkpoint.map { try Sequential.load(contentsOf: $0).model }
            ?? Sequential(spec: try preset.spec(), inputShape: preset.defaultInputShape, classes: 10, activation: preset.activation, seed: 1)
        let projector = try Projector(model: model)
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

    func validate() throws {
        guard projections > 0 else { throw ValidationError("--projections must be positive") }
    }

    func run() throws {
        let (projector, index) = try options.load()
        let shape = projector.model.inputShape
        let images = randomImages(16, shape, seed: 2)
        var result = [Float](repeating: 0, count: shape.count)
        func project(_ count: Int, back: Bool = true) {
            result.withUnsafeMutableBufferPointer { out in
                for i in 0..<count {
                    images[i % images.count].withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: index) }
                    let unit = projector.strongest(in: index, image: 0).unit
                    if back { projector.project([unit], from: index, method: options.method, into: out.baseAddress!) }
                }
            }
        }
        project(20)
        let ms = Timing(repeats: options.repeats) { project(projections) }.median * 1e3 / Double(projections)
        let forwardMs = Timing(repeats: options.repeats) { project(projections, back: false) }.median * 1e3 / Double(projections)
        if options.json {
            /// One line of `bench project --json`.
            struct Result: Encodable {
                var task = "bench-project", model: String, layer: String, method: String, msPerProjection: Double, forwardMs: Double, workers: Int
                enum CodingKeys: String, CodingKey {
                    case task, model, layer, method, msPerProjection = "ms_per_projection", forwardMs = "forward_ms", workers
                }
            }
            print(jsonString(Result(model: options.modelName, layer: options.layer, method: options.method.rawValue,
                                    msPerProjection: rounded(ms, 4), forwardMs: rounded(forwardMs, 4), workers: Workers.count)))
        } else {
            print(String(format: "%@ %@ %@: %.3f ms per projection including its forward pass (forward and choice alone %.3f ms; median of %d x %d)",
                         options.modelName, options.layer, options.method.rawValue, ms, forwardMs, options.repeats, projections))
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
                var task = "bench-top", model: String, layer: String, images: Int, channels: Int, k: Int, seconds: Double, workers: Int
            }
            print(jsonString(Result(model: options.modelName, layer: options.layer, images: dataset.count, channels: channels.count, k: k,
                                    seconds: rounded(seconds, 3), workers: Workers.count)))
        } else {
            print(String(format: "%@ %@: top %d of %d images for %d channels, winners projected: %.2f s (median of %d)",
                         options.modelName, options.layer, k, dataset.count, channels.count, seconds, options.repeats))
        }
    }
}

/// `count` random images of `shape` with pixels uniform in [0, 1].
func randomImages(_ count: Int, _ shape: ImageShape, seed: UInt64) -> [[Float]] {
    var random = SeededRandom(seed: seed)
    return (0..<count).map { _ in (0..<shape.count).map { _ in random.uniform() } }
}
