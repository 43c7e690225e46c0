/// eˣ in float32 within about 2 ulp on [-87, 88] (the argument is clamped to that range): Cephes'
/// `expf` range reduction and polynomial, written without branches or calls so that loops over it
/// vectorise. The reference is Foundation's `exp`.
@inline(__always)
func expApproximation(_ x: Float) -> Float {
    let x = min(max(x, -87), 88)
    let magic: Float = 12_582_912  // 1.5·2²³: adding it leaves round(x·log₂e) in the low mantissa bits
    let t = x * 1.442_695_04 + magic
    let k = t - magic
    let r = (x - k * 0.693_359_375) + k * 2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let scale = Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)  // 2ᵏ
    return (p * r * r + r + 1) * scale
}

/// 1 / (1 + e⁻ˣ) with `expApproximation`.
@inline(__always)
func sigmoidApproximation(_ x: Float) -> Float { 1 / (1 + expApproximation(-x)) }

/// tanh(x) = 1 − 2 / (e²ˣ + 1) with `expApproximation`.
@inline(__always)
func tanhApproximation(_ x: Float) -> Float { 1 - 2 / (expApproximation(2 * x) + 1) }

/// y = 1 / (1 + e⁻ˣ) over `count` values; `y` may equal `x`. Within a few 1e-7 of Foundation's
/// `exp`-based formula, several times faster; `Activation.sigmoid` and the recurrent cells use it.
public func fastSigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = sigmoidApproximation(x[i]) }
}

/// y = tanh(x) = 1 − 2 / (e²ˣ + 1) over `count` values; `y` may equal `x`. Within a few 1e-7 of
/// Foundation's `tanh` (absolute error); `Activation.tanh` and the rnn cell use it.
public func fastTanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = tanhApproximation(x[i]) }
}

/// `expApproximation` on `Lanes`.
@inline(__always)
func expApproximation(_ x: Lanes) -> Lanes {
    var x = x
    x.replace(with: -87, where: x .< -87)
    x.replace(with: 88, where: x .> 88)
    let magic = Lanes(repeating: 12_582_912)
    let t = x * 1.442_695_04 + magic
    let k = t - magic
    let r = (x - k * 0.693_359_375) + k * 2.121_944_4e-4
    var p = Lanes(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let bits = (unsafeBitCast(t, to: Lanes.MaskStorage.self) &- 0x4B40_0000 &+ 127) &<< 23
    return (p * r * r + r + 1) * unsafeBitCast(bits, to: Lanes.self)
}

/// `sigmoidApproximation` on `Lanes`.
@inline(__always)
func sigmoidApproximation(_ x: Lanes) -> Lanes { 1 / (1 + expApproximation(-x)) }

/// `tanhApproximation` on `Lanes`.
@inline(__always)
func tanhApproximation(_ x: Lanes) -> Lanes { 1 - 2 / (expApproximation(2 * x) + 1) }
