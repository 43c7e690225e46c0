/// The sizes of a 2-D convolution or pooling window over one image plane, PyTorch's conventions:
/// out = ⌊(in + 2·padding − kernel) / stride⌋ + 1.
public struct ConvGeometry: Equatable, Sendable {
    public var inChannels: Int, height: Int, width: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var stride: Int, padding: Int

    public init(inChannels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.inChannels = inChannels
        self.height = height
        self.width = width
        self.kernelHeight = kernel
        self.kernelWidth = kernel
        self.stride = stride
        self.padding = padding
    }

    public var outHeight: Int { (height + 2 * padding - kernelHeight) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernelWidth) / stride + 1 }
    /// Rows of the im2col matrix: `C · kh · kw`.
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }
    /// Output positions per image: `outH · outW`.
    public var positions: Int { outHeight * outWidth }
    /// Values per input image: `C · H · W`.
    public var inputSize: Int { inChannels * height * width }
}

extension ConvGeometry {
    /// For stride 1 and kernel offset `(i, j)`: output rows `y0..<y1` and columns `x0..<x1` read the
    /// image (at row `y − padding + i`, column `x − padding + j`); the others read the zero border.
    @inline(__always)
    func unitStrideReach(_ i: Int, _ j: Int) -> (y0: Int, y1: Int, x0: Int, x1: Int) {
        let (oh, ow, p) = (outHeight, outWidth, padding)
        let y0 = min(oh, max(0, p - i)), y1 = max(y0, min(oh, height + p - i))
        let x0 = min(ow, max(0, p - j)), x1 = max(x0, min(ow, width + p - j))
        return (y0, y1, x0, x1)
    }
}

/// Unfolds `images` input images `(images, C, H, W)` into `col`, `(C·kh·kw, images·outH·outW)`:
/// column `(b·outH + y)·outW + x` holds the window under output position (y, x) of image b, zero
/// outside the padded border.
public func im2col(_ input: UnsafePointer<Float>, images: Int, _ g: ConvGeometry, _ col: UnsafeMutablePointer<Float>) {
    let (oh, ow, kh, kw, s, p) = (g.outHeight, g.outWidth, g.kernelHeight, g.kernelWidth, g.stride, g.padding)
    let columns = images * oh * ow
    for c in 0..<g.inChannels {
        for i in 0..<kh {
            for j in 0..<kw {
                let row = col + ((c * kh + i) * kw + j) * columns
                for b in 0..<images {
                    let plane = input + (b * g.inChannels + c) * g.height * g.width
                    let out = row + b * oh * ow
                    if s == 1 {
                        let (y0, y1, x0, x1) = g.unitStrideReach(i, j)
                        for k in 0..<(y0 * ow) { out[k] = 0 }
                        for y in y0..<y1 {
                            let dst = out + y * ow
                            for x in 0..<x0 { dst[x] = 0 }
                            copyRow(plane + (y - p + i) * g.width - p + j + x0, dst + x0, count: x1 - x0)
                            for x in x1..<ow { dst[x] = 0 }
                        }
                        for k in (y1 * ow)..<(oh * ow) { out[k] = 0 }
                        continue
                    }
                    for y in 0..<oh {
                        let iy = y * s - p + i
                        let dst = out + y * ow
                        if iy < 0 || iy >= g.height {
                            for x in 0..<ow { dst[x] = 0 }
                            continue
                        }
                        let src = plane + iy * g.width
                        for x in 0..<ow {
                            let ix = x * s - p + j
                            dst[x] = ix >= 0 && ix < g.width ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds each column entry of `col` back onto the input position it was
/// read from. `input` `(images, C, H, W)` is overwritten (zeroed first).
public func col2im(_ col: UnsafePointer<Float>, images: Int, _ g: ConvGeometry, _ input: UnsafeMutablePointer<Float>) {
    let (oh, ow, kh, kw, s, p) = (g.outHeight, g.outWidth, g.kernelHeight, g.kernelWidth, g.stride, g.padding)
    let columns = images * oh * ow
    input.update(repeating: 0, count: images * g.inputSize)
    for c in 0..<g.inChannels {
        for i in 0..<kh {
            for j in 0..<kw {
                let row = col + ((c * kh + i) * kw + j) * columns
                for b in 0..<images {
                    let plane = input + (b * g.inChannels + c) * g.height * g.width
                    let from = row + b * oh * ow
                    if s == 1 {
                        let (y0, y1, x0, x1) = g.unitStrideReach(i, j)
                        for y in y0..<y1 {
                            addRow(from + y * ow + x0, plane + (y - p + i) * g.width - p + j + x0, count: x1 - x0)
                        }
                        continue
                    }
                    for y in 0..<oh {
                        let iy = y * s - p + i
                        if iy < 0 || iy >= g.height { continue }
                        let dst = plane + iy * g.width
                        let src = from + y * ow
                        for x in 0..<ow {
                            let ix = x * s - p + j
                            if ix >= 0 && ix < g.width { dst[ix] += src[x] }
                        }
                    }
                }
            }
        }
    }
}

/// dst = src over one short row (ow values, a few dozen, where a memmove call costs more than the
/// copy, and where the compiler's vectorised loop, unrolled to 32 values with AVX2, never runs): whole
/// lanes, the last one overlapping its predecessor.
@inline(__always)
private func copyRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    let lanes = Lanes.scalarCount
    guard count >= lanes else {
        for x in 0..<count { dst[x] = src[x] }
        return
    }
    var x = 0
    while x + lanes < count {
        storeLanes(loadLanes(src + x, lanes), dst + x, lanes)
        x += lanes
    }
    storeLanes(loadLanes(src + count - lanes, lanes), dst + count - lanes, lanes)
}

/// dst += src over one short row: whole lanes, then four values if as many are left, then one at a time.
@inline(__always)
private func addRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    let lanes = Lanes.scalarCount
    var x = 0
    while x + lanes <= count {
        storeLanes(loadLanes(dst + x, lanes) + loadLanes(src + x, lanes), dst + x, lanes)
        x += lanes
    }
    if x + 4 <= count {
        let sum = UnsafeRawPointer(dst + x).loadUnaligned(as: SIMD4<Float>.self) + UnsafeRawPointer(src + x).loadUnaligned(as: SIMD4<Float>.self)
        UnsafeMutableRawPointer(dst + x).storeBytes(of: sum, as: SIMD4<Float>.self)
        x += 4
    }
    while x < count {
        dst[x] += src[x]
        x += 1
    }
}

/// The loop-based oracle for a convolution (cross-correlation, as PyTorch's `conv2d`), summed in `T`:
/// `input` `(N, C, H, W)`, `weight` `(O, C, kh, kw)`, `bias` `(O)`, `output` `(N, O, outH, outW)`.
@inlinable
public func conv2dNaive<T: BinaryFloatingPoint>(
    _ input: UnsafePointer<T>, images: Int, _ g: ConvGeometry, outChannels: Int,
    weight: UnsafePointer<T>, bias: UnsafePointer<T>?, _ output: UnsafeMutablePointer<T>
) {
    let (oh, ow, kh, kw) = (g.outHeight, g.outWidth, g.kernelHeight, g.kernelWidth)
    for b in 0..<images {
        for o in 0..<outChannels {
            for y in 0..<oh {
                for x in 0..<ow {
                    var sum = bias?[o] ?? 0
                    for c in 0..<g.inChannels {
                        for i in 0..<kh {
                            for j in 0..<kw {
                                let iy = y * g.stride - g.padding + i, ix = x * g.stride - g.padding + j
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                sum += input[((b * g.inChannels + c) * g.height + iy) * g.width + ix]
                                    * weight[((o * g.inChannels + c) * kh + i) * kw + j]
                            }
                        }
                    }
                    output[((b * outChannels + o) * oh + y) * ow + x] = sum
                }
            }
        }
    }
}

/// The loop-based oracle for a convolution's backward pass, the adjoint of `conv2dNaive` (no
/// activation), summed in `T`: for the gradient `outputGradient` `(N, O, outH, outW)` at the output of
/// `input` `(N, C, H, W)` and `weight` `(O, C, kh, kw)`, `inputGradient` `(N, C, H, W)` is
/// overwritten with Wᵀ ⋆ dy, and the weight gradient `(O, C, kh, kw)` and bias gradient `(O)` are added
/// to `weightGradient` and `biasGradient`; each only when given.
@inlinable
public func conv2dBackwardNaive<T: BinaryFloatingPoint>(
    _ outputGradient: UnsafePointer<T>, images: Int, _ g: ConvGeometry, outChannels: Int,
    input: UnsafePointer<T>, weight: UnsafePointer<T>,
    inputGradient: UnsafeMutablePointer<T>?, weightGradient: UnsafeMutablePointer<T>?, biasGradient: UnsafeMutablePointer<T>?
) {
    let (oh, ow, kh, kw) = (g.outHeight, g.outWidth, g.kernelHeight, g.kernelWidth)
    inputGradient?.update(repeating: 0, count: images * g.inputSize)
    for b in 0..<images {
        for o in 0..<outChannels {
            for y in 0..<oh {
                for x in 0..<ow {
                    let d = outputGradient[((b * outChannels + o) * oh + y) * ow + x]
                    biasGradient?[o] += d
                    for c in 0..<g.inChannels {
                        for i in 0..<kh {
                            for j in 0..<kw {
                                let iy = y * g.stride - g.padding + i, ix = x * g.stride - g.padding + j
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                let at = ((b * g.inChannels + c) * g.height + iy) * g.width + ix, tap = ((o * g.inChannels + c) * kh + i) * kw + j
                                weightGradient?[tap] += d * input[at]
                                inputGradient?[at] += d * weight[tap]
                            }
                        }
                    }
                }
            }
        }
    }
}
