import ArgumentParser
import Foundation
import Net
import Occlusion

extension OcclusionSweep.Mode: ExpressibleByArgument {}

struct BenchOcclusion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "occlusion",
        abstract: "Occlusion sweep speed: all four maps of one random image (class score, feature activity, most probable class, attribution).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Use this trained checkpoint instead of random weights.")
    var checkpoint: String?

    @Option(help: "Occluder side in pixels.")
    var window = 8

    @Option(help: "Occluder step in pixels.")
    var stride = 1

    @Option(help: "The layer whose feature map is tracked (default: the last convolution).")
    var layer: String?

    @Option(help: "incremental (recompute only what the occluder changes) or full (every layer for every position).")
    var mode: OcclusionSweep.Mode = .incremental

    @Option(help: "Timed sweeps (after 3 warm-up sweeps); the median is reported.")
    var repeats = 21

    @Option(name: .customLong("worker-batch"), help: "Positions one worker updates per matrix product (tuning).")
    var workerBatch: Int?

    @Option(name: .customLong("batch-size"), help: "Positions through the fully computed layers at once (tuning).")
    var batchSize: Int?

    @OptionGroup var workerOptions: WorkerOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    @Flag(help: "Also print where a sweep spends its time.")
    var profile = false

    func validate() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be positive") }
        guard window > 0 else { throw ValidationError("--window must be positive") }
        guard stride > 0 else { throw ValidationError("--stride must be at least 1") }
    }

    func run() throws {
        workerOptions.apply()
        let model = try benchModel(checkpoint: checkpoint, preset: modelOptions)
        if let layer, model.layer(named: layer) == nil {
            throw ValidationError("--layer: \(OcclusionError.layerNotFound(layer, available: model.layers.map(\.name)).localizedDescription)")
        }
        let (height, width) = (model.inputShape.height, model.inputShape.width)
        guard window <= min(height, width) else { throw ValidationError("--window \(window) does not fit the model's \(height)x\(width) input") }
        var random = SeededRandom(seed: 2)
        let image = (0..<model.inputShape.count).map { _ in random.uniform() }
        let sweep = OcclusionSweep(model: model, mode: mode)
        if let workerBatch { sweep.workerBatch = max(1, workerBatch) }
        if let batchSize { sweep.batchSize = max(1, batchSize) }
        var options = OcclusionOptions()
        options.window = window
        options.stride = stride
        options.featureLayer = layer
        for _ in 0..<3 { _ = try sweep.run(image, options: options) }
        sweep.resetProfile()
        var (positions, featureLayerName) = (0, "")
        let timing = try Timing(repeats: repeats) {
            let maps = try sweep.run(image, options: options)
            (positions, featureLayerName) = (maps.grid.count, maps.featureLayerName)
        }
        let (median, cpu) = (timing.median * 1e3, timing.cpuMedian * 1e3)
        let (fastest, slowest) = (timing.wall.first! * 1e3, timing.wall.last! * 1e3)
        let peak = peakResidentMiB()
        if profile {
            let total = sweep.profile.reduce(0) { $0 + $1.seconds }
            for (name, seconds) in sweep.profile where seconds > 0 {
                print("  \(name.padding(toLength: 26, withPad: " ", startingAt: 0)) \(String(format: "%7.2f", seconds * 1e3 / Double(repeats))) CPU ms  \(String(format: "%5.1f", 100 * seconds / total))%")
            }
        }
        if json {
            /// One line of `bench occlusion --json`; times in milliseconds, memory in MiB.
            struct Result: Encodable {
                var task = "bench-occlusion", model: String, mode: String, window: Int, stride: Int, positions: Int, layer: String
                var msPerImage: Double, msMin: Double, msMax: Double, cpuMsPerImage: Double, peakRSSMiB: Double, repeats: Int, workers: Int, blas = blasKernels
                enum CodingKeys: String, CodingKey {
                    case task, model, mode, window, stride, positions, layer, msPerImage = "ms_per_image", msMin = "ms_min", msMax = "ms_max"
                    case cpuMsPerImage = "cpu_ms_per_image", peakRSSMiB = "peak_rss_mib", repeats, workers, blas
                }
            }
            print(jsonString(Result(model: checkpoint ?? modelOptions.model, mode: mode.rawValue, window: window, stride: stride, positions: positions,
                                    layer: featureLayerName, msPerImage: rounded(median, 2), msMin: rounded(fastest, 2), msMax: rounded(slowest, 2),
                                    cpuMsPerImage: rounded(cpu, 2), peakRSSMiB: rounded(peak, 1), repeats: repeats, workers: Workers.count)))
        } else {
            print("\(checkpoint ?? modelOptions.model) \(model.inputShape), \(window)x\(window) occluder, stride \(stride): \(positions) positions, \(String(format: "%.2f", median)) ms_per_image (median of \(repeats); min \(String(format: "%.2f", fastest)), max \(String(format: "%.2f", slowest))), \(mode.rawValue), \(Workers.count) workers (OpenBLAS \(blasKernels)); CPU time \(String(format: "%.2f", cpu)) ms (median); feature layer \(featureLayerName); peak memory \(String(format: "%.1f", peak)) MiB")
        }
    }
}
