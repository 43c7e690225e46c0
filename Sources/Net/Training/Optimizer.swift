/// One optimizer over a flat parameter block. Its state is two arrays the size of the block, saved in
/// checkpoints as `optimizer.state1`/`optimizer.state2` so a resumed run continues exactly.
public final class Optimizer {
    public let kind: OptimizerKind
    public var weightDecay: Float
    /// Updates taken so far (Adam's bias correction uses it).
    public var steps: Int = 0
    /// First moment, momentum buffer or squared-gradient accumulator, by kind.
    public var state1: [Float]
    /// Adam's second moment; empty for the others.
    public var state2: [Float]

    public init(_ kind: OptimizerKind, parameterCount: Int, weightDecay: Float = 0) {
        self.kind = kind
        self.weightDecay = weightDecay
        state1 = kind == .sgd ? [] : [Float](repeating: 0, count: parameterCount)
        state2 = kind == .adam ? [Float](repeating: 0, count: parameterCount) : []
    }

    /// Applies one update with learning rate `lr`.
    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeMutableBufferPointer<Float>, lr: Float) {
        steps += 1
        state1.withUnsafeMutableBufferPointer { s1 in
            state2.withUnsafeMutableBufferPointer { s2 in
                parallelRanges(parameters.count, minimumPerWorker: 1 << 14) { range, _ in
                    let offset = range.lowerBound
                    kind.update(parameters.baseAddress! + offset, gradients.baseAddress! + offset, s1.baseAddress.map { $0 + offset },
                                s2.baseAddress.map { $0 + offset }, count: range.count, lr: lr, weightDecay: weightDecay, step: steps)
                }
            }
        }
    }
}

/// Scales `gradients` so that their global L2 norm is at most `maxNorm`; returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ gradients: UnsafeMutableBufferPointer<Float>, maxNorm: Float) -> Float {
    var sum: Double = 0
    for g in gradients { sum += Double(g * g) }
    let norm = Float(sum.squareRoot())
    if norm > maxNorm {
        let scale = maxNorm / (norm + 1e-6)
        for i in gradients.indices { gradients[i] *= scale }
    }
    return norm
}
