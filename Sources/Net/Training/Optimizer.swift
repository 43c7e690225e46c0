import Foundation

/// The update rules, with PyTorch's formulas and default constants. Weight decay is L2, added to the
/// gradient before the update, as `torch.optim`'s `weight_decay`.
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    /// p −= lr·g
    case sgd
    /// b = 0.9·b + g; p −= lr·b (PyTorch's SGD with momentum 0.9, no dampening)
    case momentum
    /// Adam, β = (0.9, 0.999), ε = 1e-8, bias-corrected
    case adam
    /// s += g²; p −= lr·g/(√s + 1e-10)
    case adagrad
    /// v = 0.99·v + 0.01·g²; p −= lr·g/(√v + 1e-8)
    case rmsprop
}

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
                    update(parameters.baseAddress! + offset, gradients.baseAddress! + offset, s1.baseAddress.map { $0 + offset },
                           s2.baseAddress.map { $0 + offset }, count: range.count, lr: lr)
                }
            }
        }
    }

    /// The update rule over one slice of the parameters and their state.
    private func update(
        _ p: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ s1: UnsafeMutablePointer<Float>?,
        _ s2: UnsafeMutablePointer<Float>?, count: Int, lr: Float
    ) {
        let wd = weightDecay
        switch kind {
        case .sgd:
            for i in 0..<count { p[i] -= lr * (g[i] + wd * p[i]) }
        case .momentum:
            let b = s1!
            for i in 0..<count {
                b[i] = 0.9 * b[i] + g[i] + wd * p[i]
                p[i] -= lr * b[i]
            }
        case .adam:
            let (beta1, beta2): (Float, Float) = (0.9, 0.999)
            let c1 = 1 - pow(beta1, Float(steps)), c2 = 1 - pow(beta2, Float(steps))
            let stepSize = lr / c1, rc2 = 1 / c2.squareRoot()
            let (m, v) = (s1!, s2!)
            // in lanes: the compiler leaves this loop scalar (memory-bound, it is most of a step outside the layers)
            for i in stride(from: 0, to: count, by: Lanes.scalarCount) {
                let w = min(Lanes.scalarCount, count - i)
                let pi = loadLanes(p + i, w)
                let gi = loadLanes(g + i, w) + wd * pi
                let mi = beta1 * loadLanes(m + i, w) + (1 - beta1) * gi
                let vi = beta2 * loadLanes(v + i, w) + (1 - beta2) * gi * gi
                storeLanes(mi, m + i, w)
                storeLanes(vi, v + i, w)
                storeLanes(pi - stepSize * mi / (vi.squareRoot() * rc2 + 1e-8), p + i, w)
            }
        case .adagrad:
            let s = s1!
            for i in 0..<count {
                let gi = g[i] + wd * p[i]
                s[i] += gi * gi
                p[i] -= lr * gi / (s[i].squareRoot() + 1e-10)
            }
        case .rmsprop:
            let v = s1!
            for i in 0..<count {
                let gi = g[i] + wd * p[i]
                v[i] = 0.99 * v[i] + 0.01 * gi * gi
                p[i] -= lr * gi / (v[i].squareRoot() + 1e-8)
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
