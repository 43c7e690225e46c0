/// Elementwise nonlinearities. Each is applied in place after a convolution or dense layer, and its
/// derivative is computed from the output alone, so no pre-activation copy is kept.
public enum Activation: String, CaseIterable, Sendable, Codable {
    case relu, leakyRelu = "leaky-relu", tanh, sigmoid, identity

    /// PyTorch's default negative slope for `LeakyReLU`.
    public static let leakySlope: Float = 0.01

    /// y = f(x), in place over `count` values; tanh and sigmoid are the vectorised `fastTanh` and
    /// `fastSigmoid` the recurrent cells use (within a few 1e-7 of Foundation's).
    public func apply(_ x: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .relu: for i in 0..<count { x[i] = max(x[i], 0) }
        case .leakyRelu:
            for i in 0..<count {
                let v = x[i]
                x[i] = v < 0 ? v * Activation.leakySlope : v
            }
        case .tanh: fastTanh(x, x, count: count)
        case .sigmoid: fastSigmoid(x, x, count: count)
        case .identity: break
        }
    }

    /// dx = dy · f'(x), in place over `gradient`, with f'(x) written in terms of y = f(x). The ReLUs
    /// load unconditionally and select, so that their loops vectorise.
    public func backward(output y: UnsafePointer<Float>, gradient: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .relu:
            for i in 0..<count {
                let g = gradient[i]
                gradient[i] = y[i] <= 0 ? 0 : g
            }
        case .leakyRelu:
            for i in 0..<count {
                let g = gradient[i]
                gradient[i] = y[i] < 0 ? g * Activation.leakySlope : g
            }
        case .tanh: for i in 0..<count { gradient[i] *= 1 - y[i] * y[i] }
        case .sigmoid: for i in 0..<count { gradient[i] *= y[i] * (1 - y[i]) }
        case .identity: break
        }
    }
}
