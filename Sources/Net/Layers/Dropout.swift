/// Inverted dropout: in training each value is zeroed with probability p and the rest scaled by
/// 1/(1−p); in evaluation it is the identity.
public final class Dropout: Layer {
    public let name: String
    public let inputShape: [Int]
    public let probability: Float
    /// The random source for the masks; seeded by the model so runs are reproducible.
    public var random: SeededRandom
    private var mask: [Float] = []
    /// Whether the last forward pass applied a mask (training with p > 0).
    private var masked = false

    public init(name: String, inputShape: [Int], probability: Float, seed: UInt64) {
        precondition(probability >= 0 && probability < 1, "dropout probability must be in [0, 1)")
        self.name = name
        self.inputShape = inputShape
        self.probability = probability
        random = SeededRandom(seed: seed)
    }

    public var outputShape: [Int] { inputShape }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool, workspace: Workspace) {
        let count = n * inputCount
        masked = training && probability > 0
        guard masked else {
            output.update(from: input, count: count)
            return
        }
        if mask.count < count { mask = [Float](repeating: 0, count: count) }
        let keep = 1 / (1 - probability)
        // a local generator and buffer: the class's own, accessed per element, ran ten times slower
        var generator = random
        mask.withUnsafeMutableBufferPointer { mask in
            for i in 0..<count {
                mask[i] = generator.uniform() < probability ? 0 : keep
                output[i] = input[i] * mask[i]
            }
        }
        random = generator
    }

    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, workspace: Workspace
    ) {
        guard let inputGradient else { return }
        let count = n * inputCount
        guard masked else {
            inputGradient.update(from: outputGradient, count: count)
            return
        }
        mask.withUnsafeBufferPointer { mask in
            for i in 0..<count { inputGradient[i] = outputGradient[i] * mask[i] }
        }
    }
}
