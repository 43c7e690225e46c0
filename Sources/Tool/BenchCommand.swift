import ArgumentParser
import Foundation
import Net

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure steady-state speed on synthetic inputs (use a release build).",
        subcommands: [BenchTrain.self, BenchProject.self, BenchTop.self, BenchOcclusion.self]
    )
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training throughput: adam steps on random inputs of the model's shape.")

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var workerOptions: WorkerOptions

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

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard steps > 0, repeats > 0 else { throw ValidationError("--steps and --repeats must be positive") }
    }

    func run() throws {
        workerOptions.apply()
        let shape = modelOptions.defaultInputShape
        let model = try Sequential(spec: try modelOptions.spec(), inputShape: shape, classes: 10, activation: modelOptions.activation, seed: 1)
        do { try model.checkBatch(batchSize, for: "--batch-size \(batchSize)") } catch { throw ValidationError(error.localizedDescription) }
        let optimizer = Optimizer(.adam, parameterCount: model.parameterCount)
        var random = SeededRandom(seed: 2)
        let input = (0..<batchSize * shape.count).map { _ in random.uniform() }
        let labels = (0..<batchSize).map { _ in Int32(random.int(below: 10)) }
        var gradient = [Float](repeating: 0, count: batchSize * 10)
        func run(_ count: Int) {
            input.withUnsafeBufferPointer { x in
                labels.withUnsafeBufferPointer { y in
                    gradient.withUnsafeMutableBufferPointer { g in
                        for _ in 0..<count {
                            _ = model.trainStep(x.baseAddress!, labels: y.baseAddress!, batch: batchSize, loss: .ce,
                                                optimizer: optimizer, lr: 1e-3, clipNorm: nil, logitGradient: g.baseAddress!)
                        }
                    }
                }
            }
        }
        run(5)
        let median = Double(batchSize * steps) / medianSeconds(repeats: repeats) { run(steps) }
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
            let unit = model.cell == nil ? "images_per_s" : "sequences_per_s"
            print(#"{"task":"bench-train","model":"\#(modelOptions.model)","batch_size":\#(batchSize),"\#(unit)":\#(Int(median)),"gflops":\#(String(format: "%.1f", gflops)),"workers":\#(Workers.count)}"#)
        } else {
            print("\(modelOptions.model): \(Int(median)) \(model.cell == nil ? "images" : "sequences")/s (median of \(repeats)), ~\(String(format: "%.1f", gflops)) GFLOP/s, \(Workers.count) workers")
        }
    }
}

/// Median wall-clock seconds of `repeats` runs of `body`.
func medianSeconds(repeats: Int, _ body: () -> Void) -> Double {
    var times: [Double] = []
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return times.sorted()[times.count / 2]
}
