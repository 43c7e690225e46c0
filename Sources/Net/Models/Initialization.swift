/// Weight initialisation schemes. fan_in and fan_out are computed from a weight's PyTorch shape
/// `[out, in, rest…]` as `in·∏rest` and `out·∏rest`.
public enum Initialization: String, CaseIterable, Sendable, Codable {
    /// PyTorch's defaults: weights and biases U(±1/√fan_in) for `Conv2d`/`Linear` (kaiming_uniform with
    /// a = √5), every recurrent tensor U(±1/√hidden).
    case pytorch
    /// Glorot/Xavier uniform, U(±√(6/(fan_in + fan_out))); biases 0.
    case glorot
    /// He/Kaiming normal, N(0, 2/fan_in); biases 0.
    case he
    /// Truncated normal with σ = 0.1 (redrawn beyond 2σ), biases 0.1, as in the course's TensorFlow code.
    case truncatedNormal = "truncated-normal"
}

extension Initialization {
    /// Fills the weight `w` (shape `[out, in, rest…]`) and its bias `b` (`[out]`).
    /// `recurrentBound` is 1/√hidden for recurrent layers under `.pytorch`.
    func fill(weight w: UnsafeMutableBufferPointer<Float>, shape: [Int], recurrentBound: Float?, random: inout SeededRandom) {
        let receptive = shape.dropFirst(2).reduce(1, *)
        let fanIn = Float(shape.count > 1 ? shape[1] * receptive : shape[0])
        let fanOut = Float(shape[0] * receptive)
        switch self {
        case .pytorch:
            let bound = recurrentBound ?? 1 / fanIn.squareRoot()
            for i in w.indices { w[i] = random.uniform(-bound, bound) }
        case .glorot:
            let bound = (6 / (fanIn + fanOut)).squareRoot()
            for i in w.indices { w[i] = random.uniform(-bound, bound) }
        case .he:
            let sigma = (2 / fanIn).squareRoot()
            for i in w.indices { w[i] = sigma * random.normal() }
        case .truncatedNormal:
            for i in w.indices {
                var v = random.normal()
                while abs(v) > 2 { v = random.normal() }
                w[i] = 0.1 * v
            }
        }
    }

    /// Fills a bias; `fanIn` is that of the weight it belongs to.
    func fill(bias b: UnsafeMutableBufferPointer<Float>, fanIn: Int, recurrentBound: Float?, random: inout SeededRandom) {
        switch self {
        case .pytorch:
            let bound = recurrentBound ?? 1 / Float(fanIn).squareRoot()
            for i in b.indices { b[i] = random.uniform(-bound, bound) }
        case .glorot, .he: b.update(repeating: 0)
        case .truncatedNormal: b.update(repeating: 0.1)
        }
    }
}
