/// A fully connected layer with a fused activation: `y = f(x Wᵀ + b)`, weight `(out, in)` and
/// bias `(out)` as PyTorch's `Linear`. Image inputs are flattened in NCHW order, as `flatten(1)`.
public final class Dense: Layer {
    public let name: String
    public let inputShape: [Int]
    public let outFeatures: Int
    public let activation: Activation
    public private(set) var weight: UnsafeMutablePointer<Float>!
    public private(set) var bias: UnsafeMutablePointer<Float>!
    private var weightGradient: UnsafeMutablePointer<Float>!
    private var biasGradient: UnsafeMutablePointer<Float>!

    public init(name: String, inputShape: [Int], outFeatures: Int, activation: Activation) {
        self.name = name
        self.inputShape = inputShape
        self.outFeatures = outFeatures
        self.activation = activation
    }

    public var outputShape: [Int] { [outFeatures] }
    public var inFeatures: Int { inputCount }
    public var parameterShapes: [(suffix: String, shape: [Int])] { [("weight", [outFeatures, inFeatures]), ("bias", [outFeatures])] }
    public var multiplyAdds: Int { outFeatures * inFeatures }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        (weight, bias) = (parameters[0], parameters[1])
        (weightGradient, biasGradient) = (gradients[0], gradients[1])
    }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool, workspace: Workspace) {
        let (i, o) = (inFeatures, outFeatures)
        parallelRanges(n) { rows, _ in
            // (rows, out) = x (rows, in) × Wᵀ (in, out)
            let y = output + rows.lowerBound * o
            sgemm(transposeA: false, transposeB: true, m: rows.count, n: o, k: i, input + rows.lowerBound * i, lda: i, weight, ldb: i, y, ldc: o)
            for r in 0..<rows.count {
                for c in 0..<o { y[r * o + c] += bias[c] }
            }
            activation.apply(y, count: rows.count * o)
        }
    }

    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, workspace: Workspace
    ) {
        let (i, o) = (inFeatures, outFeatures)
        activation.backward(output: output, gradient: outputGradient, count: n * o)
        for r in 0..<n {
            let row = outputGradient + r * o
            for c in 0..<o { biasGradient[c] += row[c] }
        }
        parallelRanges(o) { features, _ in
            // dW (features, in) += dy[:, features]ᵀ (features, n) × x (n, in)
            sgemm(transposeA: true, transposeB: false, m: features.count, n: i, k: n, outputGradient + features.lowerBound, lda: o,
                  input, ldb: i, beta: 1, weightGradient + features.lowerBound * i, ldc: i)
        }
        guard let inputGradient else { return }
        parallelRanges(n) { rows, _ in
            // dx (rows, in) = dy (rows, out) × W (out, in)
            sgemm(transposeA: false, transposeB: false, m: rows.count, n: i, k: o, outputGradient + rows.lowerBound * o, lda: o,
                  weight, ldb: i, inputGradient + rows.lowerBound * i, ldc: i)
        }
    }
}
