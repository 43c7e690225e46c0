import Foundation

/// PyTorch's `LocalResponseNorm(size, alpha, beta, k)` across channels: for each position,
/// `b_c = a_c / d_c` with `d_c = s_c^β` and `s_c = k + α/size · Σ a_{c'}²` over the window
/// `c − ⌊size/2⌋ … c + ⌊(size−1)/2⌋` clipped to the channels (PyTorch zero-pads the squares and always
/// divides by `size`).
public struct LRNParameters: Equatable, Sendable {
    public var size: Int
    public var alpha: Float, beta: Float, k: Float

    public init(size: Int, alpha: Float = 1e-4, beta: Float = 0.75, k: Float = 1) {
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k
    }

    /// The channels whose squares enter `s_c`: the window of `c` clipped to `0..<channels`.
    func window(of c: Int, channels: Int) -> ClosedRange<Int> { max(0, c - size / 2)...min(channels - 1, c + (size - 1) / 2) }

    /// The channels whose window holds channel `j` (the transpose of `window`), clipped to `0..<channels`.
    func readers(of j: Int, channels: Int) -> ClosedRange<Int> { max(0, j - (size - 1) / 2)...min(channels - 1, j + size / 2) }
}

/// Local response normalisation of `images` samples `(images, C, P)` (P positions per plane) into
/// `output`, keeping the sums `scale` `s` and the divisors `divisor` `d = s^β`, each `(images, C, P)`,
/// for the backward pass. Sums the squares in channel order, divides by `size`, then scales by α and
/// adds k, as PyTorch does.
public func lrnForward(
    _ input: UnsafePointer<Float>, images: Int, channels c: Int, plane p: Int, _ lrn: LRNParameters,
    _ output: UnsafeMutablePointer<Float>, scale: UnsafeMutablePointer<Float>, divisor: UnsafeMutablePointer<Float>
) {
    let size = Float(lrn.size)
    for b in 0..<images {
        let x = input + b * c * p
        for ch in 0..<c {
            let at = (b * c + ch) * p
            let s = scale + at, d = divisor + at, y = output + at
            s.update(repeating: 0, count: p)
            for source in lrn.window(of: ch, channels: c) {
                let a = x + source * p
                for i in 0..<p { s[i] += a[i] * a[i] }
            }
            let a = x + ch * p
            for i in 0..<p { s[i] = s[i] / size * lrn.alpha + lrn.k }
            // s^β; for PyTorch's and Zeiler–Fergus's β = 0.75 as √s · √√s (within 2 ulp of powf), in a
            // loop of its own so that it runs as vector code
            if lrn.beta == 0.75 {
                for i in 0..<p {
                    let r = s[i].squareRoot()
                    d[i] = r * r.squareRoot()
                }
            } else {
                for i in 0..<p { d[i] = Foundation.pow(s[i], lrn.beta) }
            }
            for i in 0..<p { y[i] = a[i] / d[i] }
        }
    }
}

/// The input gradient `(images, C, P)` (overwritten) of local response normalisation, given the
/// output gradient `outputGradient`, the forward input and its `scale` and `divisor` (`lrnForward`):
/// `da_j = dy_j / d_j − (2αβ/size) · a_j · Σ_c dy_c a_c / (d_c s_c)` over the channels `c` whose window
/// holds `j`. `scratch` holds `C · P` floats.
public func lrnBackward(
    _ outputGradient: UnsafePointer<Float>, input: UnsafePointer<Float>, scale: UnsafePointer<Float>, divisor: UnsafePointer<Float>,
    images: Int, channels c: Int, plane p: Int, _ lrn: LRNParameters, _ inputGradient: UnsafeMutablePointer<Float>,
    scratch t: UnsafeMutablePointer<Float>
) {
    let factor = 2 * lrn.alpha * lrn.beta / Float(lrn.size)
    for b in 0..<images {
        let base = b * c * p
        let (dy, a, s, d, dx) = (outputGradient + base, input + base, scale + base, divisor + base, inputGradient + base)
        for i in 0..<c * p { t[i] = dy[i] * a[i] / (d[i] * s[i]) }
        for j in 0..<c {
            let g = dx + j * p
            g.update(repeating: 0, count: p)
            for reader in lrn.readers(of: j, channels: c) {
                let tr = t + reader * p
                for i in 0..<p { g[i] += tr[i] }
            }
            let (dyj, aj, dj) = (dy + j * p, a + j * p, d + j * p)
            for i in 0..<p { g[i] = dyj[i] / dj[i] - factor * aj[i] * g[i] }
        }
    }
}

/// The oracle of `lrnForward`: each output from the formula in Double with `pow`, window by window.
public func lrnForwardNaive(_ input: [Float], images: Int, channels c: Int, plane p: Int, _ lrn: LRNParameters) -> [Float] {
    var output = [Float](repeating: 0, count: input.count)
    for b in 0..<images {
        for ch in 0..<c {
            for i in 0..<p {
                var sum = 0.0
                for source in max(0, ch - lrn.size / 2)...min(c - 1, ch + (lrn.size - 1) / 2) {
                    let v = Double(input[(b * c + source) * p + i])
                    sum += v * v
                }
                let s = Double(lrn.k) + Double(lrn.alpha) / Double(lrn.size) * sum
                output[(b * c + ch) * p + i] = Float(Double(input[(b * c + ch) * p + i]) / pow(s, Double(lrn.beta)))
            }
        }
    }
    return output
}

/// The oracle of `lrnBackward`: the input gradient as the sum over every output of its derivative
/// with respect to each input, in Double.
public func lrnBackwardNaive(_ outputGradient: [Float], input: [Float], images: Int, channels c: Int, plane p: Int, _ lrn: LRNParameters) -> [Float] {
    var result = [Float](repeating: 0, count: input.count)
    let (alpha, beta, size) = (Double(lrn.alpha), Double(lrn.beta), Double(lrn.size))
    for b in 0..<images {
        for i in 0..<p {
            func a(_ ch: Int) -> Double { Double(input[(b * c + ch) * p + i]) }
            func window(_ ch: Int) -> ClosedRange<Int> { max(0, ch - lrn.size / 2)...min(c - 1, ch + (lrn.size - 1) / 2) }
            let s = (0..<c).map { ch in Double(lrn.k) + alpha / size * window(ch).reduce(0.0) { $0 + a($1) * a($1) } }
            for j in 0..<c {
                var g = 0.0
                for out in 0..<c {
                    let dy = Double(outputGradient[(b * c + out) * p + i])
                    var derivative = out == j ? pow(s[out], -beta) : 0
                    if window(out).contains(j) { derivative -= a(out) * beta * pow(s[out], -beta - 1) * alpha / size * 2 * a(j) }
                    g += dy * derivative
                }
                result[(b * c + j) * p + i] = Float(g)
            }
        }
    }
    return result
}

/// The batch statistics of `channels` of `(n, C, P)` values, over the batch and the positions, in
/// Double: each channel's mean and biased variance (the one batch norm normalises with). Two passes.
public func batchStatistics(
    _ x: UnsafePointer<Float>, images n: Int, channels: Range<Int>, of c: Int, plane p: Int
) -> (mean: [Double], variance: [Double]) {
    let count = Double(n * p)
    var (mean, variance) = ([Double](repeating: 0, count: channels.count), [Double](repeating: 0, count: channels.count))
    for (j, ch) in channels.enumerated() {
        var total = 0.0
        for b in 0..<n {
            let row = x + (b * c + ch) * p
            for i in 0..<p { total += Double(row[i]) }
        }
        let mu = total / count
        var squares = 0.0
        for b in 0..<n {
            let row = x + (b * c + ch) * p
            for i in 0..<p {
                let d = Double(row[i]) - mu
                squares += d * d
            }
        }
        (mean[j], variance[j]) = (mu, squares / count)
    }
    return (mean, variance)
}

/// `y = x · scale_c + shift_c` over `channels` of `(n, C, P)` values (batch norm as an affine map per
/// channel; `scale` and `shift` are indexed by channel).
public func channelAffine(
    _ x: UnsafePointer<Float>, images n: Int, channels: Range<Int>, of c: Int, plane p: Int,
    scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>
) {
    for ch in channels {
        let (a, s) = (scale[ch], shift[ch])
        for b in 0..<n {
            let (src, dst) = (x + (b * c + ch) * p, y + (b * c + ch) * p)
            for i in 0..<p { dst[i] = src[i] * a + s }
        }
    }
}

/// The input gradient (overwritten) of batch norm in training mode over `channels` of `(n, C, P)`
/// values, from the output gradient `g` and the normalised input `x̂`:
/// `dx = γ·σ⁻¹ · (g − mean(g) − x̂ · mean(g·x̂))`, the means over the batch and positions of a channel;
/// `gain` is `γ·σ⁻¹` per channel.
public func batchNormTrainingBackward(
    _ g: UnsafePointer<Float>, normalized: UnsafePointer<Float>, images n: Int, channels: Range<Int>, of c: Int, plane p: Int,
    gain: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>
) {
    let count = Double(n * p)
    for ch in channels {
        var (sum, dot) = (0.0, 0.0)
        for b in 0..<n {
            let at = (b * c + ch) * p
            for i in 0..<p {
                sum += Double(g[at + i])
                dot += Double(g[at + i]) * Double(normalized[at + i])
            }
        }
        let (meanG, meanGX, k) = (Float(sum / count), Float(dot / count), gain[ch])
        for b in 0..<n {
            let at = (b * c + ch) * p
            for i in 0..<p { dx[at + i] = k * (g[at + i] - meanG - normalized[at + i] * meanGX) }
        }
    }
}
