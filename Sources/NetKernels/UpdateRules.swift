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

extension OptimizerKind {
    /// One update of `count` parameters at `p` from their gradients `g` (weight decay added to them first)
    /// and the rule's state `s1`, `s2` (`Optimizer.state1`, `state2` at the same offset; nil where the rule
    /// keeps none), with learning rate `lr`; `step` counts updates from 1 (Adam's bias correction).
    package func update(
        _ p: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ s1: UnsafeMutablePointer<Float>?,
        _ s2: UnsafeMutablePointer<Float>?, count: Int, lr: Float, weightDecay wd: Float, step: Int
    ) {
        switch self {
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
            let c1 = 1 - pow(beta1, Float(step)), c2 = 1 - pow(beta2, Float(step))
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
