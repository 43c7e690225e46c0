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
    public var fusedActivation: Activation? { activation }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        (weight, bias) = (parameters[0], parameters[1])
        (weightGradient, biasGradient) = (gradients[0], gradients[1])
    }

    /// The workers split whichever of the batch and the output features is larger: fc1 of LeNet5
    /// (3136 → 1024, batch 100) runs its `(100, 3136) × (3136, 512)` halves about 25 % faster than
    /// `(50, 3136) × (3136, 1024)`.
    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        let (i, o) = (inFeatures, outFeatures)
        // y[rows, features] = f(x[rows] (rows, in) × W[features]ᵀ (in, features) + b[features])
        func block(_ rows: Range<Int>, _ features: Range<Int>) {
            let y = output + rows.lowerBound * o + features.lowerBound
            for r in 0..<rows.count { (y + r * o).update(from: bias + features.lowerBound, count: features.count) }
            if rows.count == 1 {
                // one image: a matrix-vector product reads the weights once, where sgemm would pack them first
                sgemv(transpose: false, m: features.count, n: i, weight + features.lowerBound * i, lda: i, input + rows.lowerBound * i, beta: 1, y)
            } else {
                sgemm(transposeA: false, transposeB: true, m: rows.count, n: features.count, k: i, input + rows.lowerBound * i, lda: i,
                      weight + features.lowerBound * i, ldb: i, beta: 1, y, ldc: o)
            }
            for r in 0..<rows.count { activate(y + r * o, count: features.count, in: output, memory: memory) }
        }
        splitLarger(rows: n, columns: o, block)
    }

    /// The weight and bias gradients are split over the output features; the input gradient over the
    /// input features or the batch, whichever is larger (as `forward`).
    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        let (i, o) = (inFeatures, outFeatures)
        parallelRanges(o) { features, _ in
            let (u, dy) = (features.lowerBound, outputGradient + features.lowerBound)
            for r in 0..<n {
                activation.backward(output: output + r * o + u, gradient: dy + r * o, count: features.count)
                for c in 0..<features.count { biasGradient[u + c] += dy[r * o + c] }
            }
            // dW (features, in) += dy[:, features]ᵀ (features, n) × x (n, in)
            sgemm(transposeA: true, transposeB: false, m: features.count, n: i, k: n, dy, lda: o,
                  input, ldb: i, beta: 1, weightGradient + u * i, ldc: i)
        }
        guard let inputGradient else { return }
        backwardData(outputGradient, channels: nil, inputGradient, batch: n, memory: memory, workspace: workspace)
    }

    /// dx `(n, in)` = signal `(n, features)` × W[features] `(features, in)`, the features being
    /// `channels` (all when nil).
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        let i = inFeatures
        let features = channels ?? 0..<outFeatures
        let o = features.count
        // dx[rows, columns] (rows, columns) = dy[rows] (rows, o) × W[features, columns] (o, columns)
        func block(_ rows: Range<Int>, _ columns: Range<Int>) {
            sgemm(transposeA: false, transposeB: false, m: rows.count, n: columns.count, k: o, signal + rows.lowerBound * o, lda: o,
                  weight + features.lowerBound * i + columns.lowerBound, ldb: i, inputGradient + rows.lowerBound * i + columns.lowerBound, ldc: i)
        }
        splitLarger(rows: n, columns: i, block)
    }
}

/// Runs `block(rows, columns)` on the workers over a `(rows, columns)` result, splitting whichever
/// of the two is larger (all rows with a share of the columns, or a share of the rows with all columns).
private func splitLarger(rows: Int, columns: Int, _ block: (Range<Int>, Range<Int>) -> Void) {
    if columns > rows {
        parallelRanges(columns) { part, _ in block(0..<rows, part) }
    } else {
        parallelRanges(rows) { part, _ in block(part, 0..<columns) }
    }
}

extension Dense {
    /// Over an image input, `y = f(W·x₀ + b + W·Δx)` with Δx restricted to each copy's box (`denseByChange`).
    public func changeUpdate() -> (any ChangeUpdate)? { inputShape.count == 3 ? DenseByChange(self) : nil }
}

/// A dense layer over an image input updated by its input's change, with its weight rearranged to
/// `(H·W, C, O)` (copied when made): one `(C, O)` block per input location.
private struct DenseByChange: ChangeUpdate {
    let layer: Dense
    let weights: [Float]

    init(_ layer: Dense) {
        self.layer = layer
        let shape = layer.inputShape
        weights = weightsByLocation(layer.weight, outFeatures: layer.outFeatures, channels: shape[0], locations: shape[1] * shape[2])
    }

    /// The changes are grouped by input location into worker 0's scratch, then the workers split the
    /// output features, each with its product after them in its own scratch.
    func update(preActivation: UnsafePointer<Float>, changes: BoxedValues, _ output: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let (c, h, w, o) = (layer.inputShape[0], layer.inputShape[1], layer.inputShape[2], layer.outFeatures)
        var groups = ChangesByLocation(changes.boxes, height: h, width: w)
        let gatheredSize = groups.members.count * c  // (rows, C)
        workspace.reserve(gatheredSize + (groups.widest + c) * o + 1)
        let gathered = workspace.floats(gatheredSize)
        groups.gather(changes, channels: c, into: gathered)
        weights.withUnsafeBufferPointer { weights in
            parallelRanges(o, minimumPerWorker: 64) { features, worker in
                denseByChange(pre: preActivation, weights: weights.baseAddress!, gathered: gathered, groups, channels: c, outFeatures: o,
                              features: features, copies: changes.boxes.count, activation: layer.activation, output,
                              scratch: workspace.floats(gatheredSize + (groups.widest + c) * features.count, worker: worker) + gatheredSize)
            }
        }
    }
}
