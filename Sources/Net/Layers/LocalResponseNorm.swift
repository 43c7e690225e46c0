/// Local response normalisation across channels, PyTorch's `LocalResponseNorm(size, alpha, beta, k)`
/// (the contrast normalisation of Zeiler & Fergus and AlexNet), on `(C, H, W)` inputs:
/// `b_c = a_c / (k + α/size · Σ_{c'} a_{c'}²)^β`, the sum over channels `c − ⌊size/2⌋ … c + ⌊(size−1)/2⌋`
/// that exist (`lrnForward`). No parameters. The forward pass leaves its input, sums and divisors in
/// the caller's memory for `backward` and `backwardData`.
public final class LocalResponseNorm: Layer {
    public let name: String
    public let inputShape: [Int]
    public let parameters: LRNParameters

    /// What a forward pass leaves: its input, `s` and `s^β`, each `(n, C, H, W)`.
    final class Saved {
        var input: [Float] = []
        var scale: [Float] = []
        var divisor: [Float] = []
    }

    public init(name: String, inputShape: [Int], parameters: LRNParameters) {
        precondition(inputShape.count == 3, "local response normalisation needs (C, H, W) inputs")
        self.name = name
        self.inputShape = inputShape
        self.parameters = parameters
    }

    public var outputShape: [Int] { inputShape }
    /// Per output: `size` squares summed, then one scale and one division.
    public var multiplyAdds: Int { outputCount * (min(parameters.size, inputShape[0]) + 2) }
    /// 1×1: each output reads only its own position (of every channel in its window).
    public var window: ConvGeometry? { ConvGeometry(inChannels: inputShape[0], height: inputShape[1], width: inputShape[2], kernel: 1) }
    public var isContrastNormalization: Bool { true }

    private var plane: Int { inputShape[1] * inputShape[2] }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        let saved = memory.state(Saved.init)
        let count = n * inputCount
        if saved.input.count < count {
            saved.input = [Float](repeating: 0, count: count)
            saved.scale = saved.input
            saved.divisor = saved.input
        }
        let (c, p, lrn) = (inputShape[0], plane, parameters)
        saved.input.withUnsafeMutableBufferPointer { copy in
            saved.scale.withUnsafeMutableBufferPointer { s in
                saved.divisor.withUnsafeMutableBufferPointer { d in
                    copy.baseAddress!.update(from: input, count: count)
                    parallelRanges(n) { images, _ in
                        let at = images.lowerBound * c * p
                        lrnForward(input + at, images: images.count, channels: c, plane: p, lrn, output + at,
                                   scale: s.baseAddress! + at, divisor: d.baseAddress! + at)
                    }
                }
            }
        }
    }

    /// The gradient of the normalisation at the forward pass's input (`lrnBackward`): the input gradient
    /// in training, and Captum's choice in projections. When `channels` is a subset, `signal` is spread
    /// into zeros for the other channels first (the normalisation mixes channels).
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        let (c, p, lrn) = (inputShape[0], plane, parameters)
        if let channels, channels.count < c {
            var full = [Float](repeating: 0, count: n * c * p)
            for b in 0..<n {
                for (j, ch) in channels.enumerated() {
                    for i in 0..<p { full[(b * c + ch) * p + i] = signal[(b * channels.count + j) * p + i] }
                }
            }
            backwardData(full, channels: nil, inputGradient, batch: n, memory: memory, workspace: workspace)
            return
        }
        let saved = memory.state(Saved.init)
        precondition(saved.input.count >= n * inputCount, "run forward with this memory first")
        workspace.reserve(c * p, workers: workerCount(n))
        saved.input.withUnsafeBufferPointer { a in
            saved.scale.withUnsafeBufferPointer { s in
                saved.divisor.withUnsafeBufferPointer { d in
                    parallelRanges(n) { images, worker in
                        let at = images.lowerBound * c * p
                        lrnBackward(signal + at, input: a.baseAddress! + at, scale: s.baseAddress! + at, divisor: d.baseAddress! + at,
                                    images: images.count, channels: c, plane: p, lrn, inputGradient + at,
                                    scratch: workspace.floats(c * p, worker: worker))
                    }
                }
            }
        }
    }

    /// The changed outputs of a box are the box itself: the normalisation of the box's values.
    public func boxUpdate(byChange: Bool) -> (any BoxUpdate)? { LRNBoxes(channels: inputShape[0], parameters: parameters) }
}

/// Local response normalisation of each copy's changed box, `(C, box.h, box.w)` read as an image of
/// `box.area` positions; the sums and divisors go to scratch.
private struct LRNBoxes: BoxUpdate {
    let channels: Int
    let parameters: LRNParameters
    var readsPreActivation: Bool { false }
    var readsInputChannelsLast: Bool { false }

    func scratchSize(inputs: [PlaneBox], outputs: [PlaneBox]) -> Int { max(1, 2 * channels * (outputs.map(\.area).max() ?? 0)) }

    func update(
        _ input: UnsafePointer<Float>, inputChannelsLast: UnsafePointer<Float>?, preActivation: UnsafePointer<Float>?,
        from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>
    ) {
        for (b, box) in to.boxes.enumerated() where !box.isEmpty {
            precondition(from.boxes[b] == box, "a 1x1 layer's changed outputs are its changed inputs")
            let area = channels * box.area
            lrnForward(from.values + from.offsets[b], images: 1, channels: channels, plane: box.area, parameters,
                       to.values + to.offsets[b], scale: scratch, divisor: scratch + area)
        }
    }
}
