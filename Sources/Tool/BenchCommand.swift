import ArgumentParser
import Foundation
import Net

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure steady-state speed on synthetic inputs (use a release build).",
        subcommands: [BenchTrain.self, BenchProject.self, BenchTop.self, BenchOcclusion.self, BenchExplore.self]
    )
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training throughput: adam steps on random inputs of the model's shape.")

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var workerOptions: WorkerOptions

    @OptionGroup var inputOptions: InputShapeOptions

    @Option(name: .customLong("batch-size"), help: "Images per step.")
    var batchSize: Int = 100

    @Option(help: "Timed steps (after 5 warm-up steps).")
    var steps: Int = 50

    @Option(help: "Repeat the timing this many times and report the median.")
    var repeats: Int = 3

    @Flag(help: "Print one JSON line.")
    var json = false

    @Flag(help: "Also print the time of each layer's forward and backward pass.")
    var profile = false

    @Option(name: .customLong("conv-path"),
            help: "Compute every convolution with this path (auto: each layer's own). A layer that cannot take it stops the run.")
    var convPath: ConvPathChoice = .auto

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard steps > 0, repeats > 0 else { throw ValidationError("--steps and --repeats must be positive") }
    }

    func run() throws {
        workerOptions.apply()
        let shape = inputOptions.shape(default: modelOptions.defaultInputShape)
        let model = try Sequential(spec: try modelOptions.spec(), inputShape: shape, classes: 10, activation: modelOptions.activation, seed: 1)
        try convPath.apply(to: model)
        do { try model.checkBatch(batchSize, for: "--batch-size \(batchSize)") } catch { throw ValidationError(error.localizedDescription) }
        let optimizer = Optimizer(.adam, parameterCount: model.parameterCount)
        var random = SeededRandom(seed: 2)
        let input = (0..<batchSize * shape.count).map { _ in random.uniform() }
        let labels = (0..<batchSize).map { _ in Int32(random.int(below: 10)) }
        var gradient = [Float](repeating: 0, count: batchSize * 10)
        let record = ForwardRecord(model)
        func run(_ count: Int) {
            input.withUnsafeBufferPointer { x in
                labels.withUnsafeBufferPointer { y in
                    gradient.withUnsafeMutableBufferPointer { g in
                        for _ in 0..<count {
                            _ = model.trainStep(x.baseAddress!, labels: y.baseAddress!, batch: batchSize, loss: .ce,
                                                optimizer: optimizer, lr: 1e-3, clipNorm: nil, logitGradient: g.baseAddress!, record: record)
                        }
                    }
                }
            }
        }
        run(5)
        let median = Double(batchSize * steps) / Timing(repeats: repeats) { run(steps) }.median
        if profile {
            input.withUnsafeBufferPointer { x in
                gradient.withUnsafeMutableBufferPointer { g in
                    g.update(repeating: 1e-3)
                    for (name, forward, backward) in model.profile(x.baseAddress!, batch: batchSize, logitGradient: g.baseAddress!, repeats: steps) {
                        print("  \(name.padding(toLength: 10, withPad: " ", startingAt: 0)) forward \(String(format: "%7.2f", forward * 1e3)) ms  backward \(String(format: "%7.2f", backward * 1e3)) ms")
                    }
                }
            }
        }
        let macs = model.layers.reduce(0) { $0 + $1.multiplyAdds }
        // forward, weight gradient and input gradient: three multiply-adds per forward one (2 FLOP each)
        let gflops = median * Double(macs) * 6 / 1e9
        if json {
            /// One line of `bench train --json`; a recurrent model counts sequences, not images.
            struct Result: Encodable {
                var task = "bench-train", model: String, batchSize: Int, imagesPerSecond: Int?, sequencesPerSecond: Int?, gflops: Double, workers: Int, convPath: String, blas = blasKernels
                enum CodingKeys: String, CodingKey {
                    case task, model, batchSize = "batch_size", imagesPerSecond = "images_per_s", sequencesPerSecond = "sequences_per_s", gflops, workers, convPath = "conv_path", blas
                }
            }
            print(jsonString(Result(model: modelOptions.model, batchSize: batchSize, imagesPerSecond: model.cell == nil ? Int(median) : nil,
                                    sequencesPerSecond: model.cell == nil ? nil : Int(median), gflops: rounded(gflops, 1), workers: Workers.count,
                                    convPath: convPath.rawValue)))
        } else {
            print("\(modelOptions.model): \(Int(median)) \(model.cell == nil ? "images" : "sequences")/s (median of \(repeats)), ~\(String(format: "%.1f", gflops)) GFLOP/s, \(Workers.count) workers (OpenBLAS \(blasKernels))\(convPath == .auto ? "" : ", conv path \(convPath.rawValue)")")
        }
    }
}

/// `--conv-path`: each convolution's own path (`Conv2D.preferredPath`), or one path for all of them,
/// to measure the paths against each other. A layer that cannot take the path given stops the run
/// (exit 64) instead of falling back, so that a timing never mixes paths unnoticed.
enum ConvPathChoice: String, CaseIterable, ExpressibleByArgument {
    case auto, im2col, winograd, direct

    /// Makes every convolution of `model` take the path; throws `ValidationError` naming the first
    /// layer that cannot, before any layer changes.
    func apply(to model: Sequential) throws {
        guard let path = ConvolutionPath(rawValue: rawValue) else { return }
        let convolutions = model.layers.compactMap { $0 as? Conv2D }
        if let conv = convolutions.first(where: { $0.reasonItCannotTake(path) != nil }) {
            throw ValidationError("--conv-path \(rawValue): \(conv.name) cannot take it (\(conv.reasonItCannotTake(path)!))")
        }
        for conv in convolutions { conv.take(path) }
    }
}

/// The wall-clock and CPU seconds of repeated runs of a benchmark's body; the one timer of `bench`.
struct Timing {
    /// Wall-clock seconds of each run, ascending.
    var wall: [Double]
    /// CPU seconds of all the process's threads in each run, ascending; on a shared machine the CPU time
    /// of a parallel region divided by the workers estimates its wall time on idle cores.
    var cpu: [Double]

    /// Times `repeats` runs of `body`.
    init(repeats: Int, _ body: () throws -> Void) rethrows {
        precondition(repeats > 0)
        (wall, cpu) = ([], [])
        for _ in 0..<repeats {
            let (start, cpuStart) = (DispatchTime.now().uptimeNanoseconds, cpuSeconds(CLOCK_PROCESS_CPUTIME_ID))
            try body()
            wall.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            cpu.append(cpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - cpuStart)
        }
        wall.sort()
        cpu.sort()
    }

    /// The median wall-clock seconds (the upper one of an even count).
    var median: Double { wall[wall.count / 2] }
    var cpuMedian: Double { cpu[cpu.count / 2] }
}

/// `value` rounded to `digits` decimals, for JSON lines that state only the digits that mean something.
func rounded(_ value: Double, _ digits: Int) -> Double {
    let scale = pow(10, Double(digits))
    return (value * scale).rounded() / scale
}
