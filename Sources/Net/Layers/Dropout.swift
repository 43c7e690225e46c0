/// Inverted dropout: in training each value is zeroed with probability p and the rest scaled by
/// 1/(1−p); in evaluation it is the identity.
public final class Dropout: Layer {
    public let name: String
    public let inputShape: [Int]
    public let probability: Float
    /// The random source for the masks of training passes; seeded by the model so runs are
    /// reproducible. Evaluation passes do not touch it.
    public var random: SeededRandom

    /// The mask of the last forward pass: `(n, inputShape)` of 0 and 1/(1−p), when it applied one.
    final class Mask {
        var values: [Float] = []
        /// Whether the pass applied a mask (training with p > 0).
        var applied = false
    }

    public init(name: String, inputShape: [Int], probability: Float, seed: UInt64) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        self.name = name
        self.inputShape = inputShape
        self.probability = probability
        random = SeededRandom(seed: seed)
    }

    public var outputShape: [Int] { inputShape }
    public var isIdentityInEvaluation: Bool { true }
    public var isChannelwise: Bool { true }
    /// 1×1 on images (each output reads its own position), none on vectors.
    public var window: ConvGeometry? {
        inputShape.count == 3 ? ConvGeometry(inChannels: inputShape[0], height: inputShape[1], width: inputShape[2], kernel: 1) : nil
    }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        let count = n * inputCount
        let mask = memory.state(Mask.init)
        mask.applied = training && probability > 0
        guard mask.applied else {
            output.update(from: input, count: count)
            return
        }
        if mask.values.count < count { mask.values = [Float](repeating: 0, count: count) }
        let keep = 1 / (1 - probability)
        // a local generator and buffer: the class's own, accessed per element, ran ten times slower
        var generator = random
        mask.values.withUnsafeMutableBufferPointer { mask in
            for i in 0..<count {
                mask[i] = generator.uniform() < probability ? 0 : keep
                output[i] = input[i] * mask[i]
            }
        }
        random = generator
    }

    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        guard let inputGradient else { return }
        backwardData(outputGradient, channels: nil, inputGradient, batch: n, memory: memory, workspace: workspace)
    }

    /// Copies `signal`, times the mask when the forward pass applied one.
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        let mask = memory.state(Mask.init)
        let plane = inputShape.dropFirst().reduce(1, *)
        mask.values.withUnsafeBufferPointer { m in
            channelwise(batch: n, channels: channels, of: inputShape[0], clearing: inputGradient, planeSize: plane) { planes, full in
                let (count, src, dst) = (planes.count * plane, signal + planes.lowerBound * plane, inputGradient + full * plane)
                guard mask.applied else {
                    dst.update(from: src, count: count)
                    return
                }
                let factor = m.baseAddress! + full * plane
                for i in 0..<count { dst[i] = src[i] * factor[i] }
            }
        }
    }
}
