/// The sizes of a 2-D convolution or pooling window over one image plane, PyTorch's conventions:
/// out = ⌊(in + padBefore + padAfter − kernel) / stride⌋ + 1 per axis, or with `ceilMode` (pooling)
/// ⌈…⌉ + 1 less the last window when it would start inside the right or bottom padding. One stride
/// for both axes (the spec language has one), padding per side as ONNX writes it (top, left, bottom,
/// right). A grouped convolution splits its input and output channels into `groups` blocks, each
/// block of outputs reading only its block of inputs; pooling ignores `groups`.
public struct ConvGeometry: Equatable, Sendable {
    public var inChannels: Int, height: Int, width: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var stride: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var groups: Int
    /// PyTorch's `ceil_mode` for pooling: the output size rounds up.
    public var ceilMode: Bool

    /// A square window with the same padding on every side.
    public init(inChannels: Int, height: Int, width: Int, kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.init(inChannels: inChannels, height: height, width: width, kernelHeight: kernel, kernelWidth: kernel, stride: stride,
                  padding: (padding, padding, padding, padding))
    }

    /// Any window: `padding` is (top, left, bottom, right).
    public init(inChannels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, stride: Int = 1,
                padding: (top: Int, left: Int, bottom: Int, right: Int) = (0, 0, 0, 0), groups: Int = 1, ceilMode: Bool = false) {
        self.inChannels = inChannels
        self.height = height
        self.width = width
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        (padTop, padLeft, padBottom, padRight) = padding
        self.groups = groups
        self.ceilMode = ceilMode
    }

    /// PyTorch's `pooling_output_shape_pad_lr` (dilation 1), which is also `conv2d`'s rule without ceil mode.
    private func outSize(_ size: Int, _ kernel: Int, _ before: Int, _ after: Int) -> Int {
        let span = size + before + after - kernel
        guard span >= 0 else { return 0 }
        var out = (span + (ceilMode ? stride - 1 : 0)) / stride + 1
        if ceilMode && (out - 1) * stride >= size + before { out -= 1 }
        return out
    }

    public var outHeight: Int { outSize(height, kernelHeight, padTop, padBottom) }
    public var outWidth: Int { outSize(width, kernelWidth, padLeft, padRight) }
    /// The padding when it is the same on every side, else nil.
    public var uniformPadding: Int? { padTop == padLeft && padTop == padBottom && padTop == padRight ? padTop : nil }
    /// Whether every window lies inside the unpadded plane (no padding, no ceil-mode overhang).
    public var windowsInsidePlane: Bool {
        uniformPadding == 0 && (outHeight - 1) * stride + kernelHeight <= height && (outWidth - 1) * stride + kernelWidth <= width
    }
    /// Input channels per group.
    public var groupChannels: Int { inChannels / groups }
    /// Rows of the im2col matrix: `C · kh · kw`.
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }
    /// Values one output reads, the length of a filter: `C/groups · kh · kw`.
    public var groupPatchSize: Int { groupChannels * kernelHeight * kernelWidth }
    /// Output positions per image: `outH · outW`.
    public var positions: Int { outHeight * outWidth }
    /// Values per input image: `C · H · W`.
    public var inputSize: Int { inChannels * height * width }
}

extension ConvGeometry {
    /// For kernel offset `(i, j)`: output rows `y0..<y1` and columns `x0..<x1` read the image (at row
    /// `y·stride − padTop + i`, column `x·stride − padLeft + j`); the others read the zero border.
    @inline(__always)
    func reach(_ i: Int, _ j: Int) -> (y0: Int, y1: Int, x0: Int, x1: Int) {
        // the first output whose input index o·s − before + offset is ≥ 0, and the first past the plane
        // (stride 1 without a division: im2col asks for every channel and kernel offset)
        func span(_ before: Int, _ offset: Int, _ size: Int, _ outputs: Int) -> (Int, Int) {
            let s = stride
            let lower = min(outputs, max(0, s == 1 ? before - offset : (before - offset + s - 1) / s))
            return (lower, max(lower, min(outputs, s == 1 ? size + before - offset : (size + before - offset + s - 1) / s)))
        }
        let (y0, y1) = span(padTop, i, height, outHeight), (x0, x1) = span(padLeft, j, width, outWidth)
        return (y0, y1, x0, x1)
    }
}

/// Unfolds `images` input images `(images, C, H, W)` into `col`, `(C·kh·kw, images·outH·outW)`:
/// column `(b·outH + y)·outW + x` holds the window under output position (y, x) of image b, zero
/// outside the padded border. With `outputRows` (one image), only the columns of those output rows,
/// `(C·kh·kw, outputRows.count·outW)`.
public func im2col(_ input: UnsafePointer<Float>, images: Int, _ g: ConvGeometry, _ col: UnsafeMutablePointer<Float>,
                   outputRows: Range<Int>? = nil) {
    let rows = outputRows ?? 0..<g.outHeight
    precondition(images == 1 || rows.count == g.outHeight, "im2col: output rows of one image only")
    let (ow, kh, kw, s, pt, pl) = (g.outWidth, g.kernelHeight, g.kernelWidth, g.stride, g.padTop, g.padLeft)
    let perImage = rows.count * ow
    for c in 0..<g.inChannels {
        for i in 0..<kh {
            for j in 0..<kw {
                let (y0, y1, x0, x1) = g.reach(i, j)
                let (first, last) = (min(max(y0, rows.lowerBound), rows.upperBound), max(min(y1, rows.upperBound), rows.lowerBound))
                for b in 0..<images {
                    let plane = input + (b * g.inChannels + c) * g.height * g.width
                    let out = col + ((c * kh + i) * kw + j) * images * perImage + b * perImage - rows.lowerBound * ow  // row y at out + y·ow
                    for k in (rows.lowerBound * ow)..<(first * ow) { out[k] = 0 }
                    if s == 1 {
                        for y in first..<last {
                            let dst = out + y * ow
                            for x in 0..<x0 { dst[x] = 0 }
                            copyRow(plane + (y - pt + i) * g.width - pl + j + x0, dst + x0, count: x1 - x0)
                            for x in x1..<ow { dst[x] = 0 }
                        }
                    } else {
                        for y in first..<last {
                            let dst = out + y * ow, src = plane + (y * s - pt + i) * g.width - pl + j
                            for x in 0..<x0 { dst[x] = 0 }
                            for x in x0..<x1 { dst[x] = src[x * s] }
                            for x in x1..<ow { dst[x] = 0 }
                        }
                    }
                    for k in (last * ow)..<(rows.upperBound * ow) { out[k] = 0 }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds each column entry of `col` back onto the input position it was
/// read from. `input` `(images, C, H, W)` is overwritten (zeroed first).
public func col2im(_ col: UnsafePointer<Float>, images: Int, _ g: ConvGeometry, _ input: UnsafeMutablePointer<Float>) {
    let (oh, ow, kh, kw, s, pt, pl) = (g.outHeight, g.outWidth, g.kernelHeight, g.kernelWidth, g.stride, g.padTop, g.padLeft)
    let columns = images * oh * ow
    input.update(repeating: 0, count: images * g.inputSize)
    for c in 0..<g.inChannels {
        for i in 0..<kh {
            for j in 0..<kw {
                let row = col + ((c * kh + i) * kw + j) * columns
                let (y0, y1, x0, x1) = g.reach(i, j)
                for b in 0..<images {
                    let plane = input + (b * g.inChannels + c) * g.height * g.width
                    let from = row + b * oh * ow
                    if s == 1 {
                        for y in y0..<y1 {
                            addRow(from + y * ow + x0, plane + (y - pt + i) * g.width - pl + j + x0, count: x1 - x0)
                        }
                    } else {
                        for y in y0..<y1 {
                            let src = from + y * ow, dst = plane + (y * s - pt + i) * g.width - pl + j
                            for x in x0..<x1 { dst[x * s] += src[x] }
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
func addRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
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

/// The loop-based oracle for a convolution (cross-correlation, as PyTorch's `conv2d` with `g.groups`),
/// summed in `T`: `input` `(N, C, H, W)`, `weight` `(O, C/groups, kh, kw)`, `bias` `(O)`, `output`
/// `(N, O, outH, outW)`.
@inlinable
public func conv2dNaive<T: BinaryFloatingPoint>(
    _ input: UnsafePointer<T>, images: Int, _ g: ConvGeometry, outChannels: Int,
    weight: UnsafePointer<T>, bias: UnsafePointer<T>?, _ output: UnsafeMutablePointer<T>
) {
    let (oh, ow, kh, kw, cg) = (g.outHeight, g.outWidth, g.kernelHeight, g.kernelWidth, g.groupChannels)
    for b in 0..<images {
        for o in 0..<outChannels {
            let firstChannel = o / (outChannels / g.groups) * cg
            for y in 0..<oh {
                for x in 0..<ow {
                    var sum = bias?[o] ?? 0
                    for c in 0..<cg {
                        for i in 0..<kh {
                            for j in 0..<kw {
                                let iy = y * g.stride - g.padTop + i, ix = x * g.stride - g.padLeft + j
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                sum += input[((b * g.inChannels + firstChannel + c) * g.height + iy) * g.width + ix]
                                    * weight[((o * cg + c) * kh + i) * kw + j]
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
/// `input` `(N, C, H, W)` and `weight` `(O, C/groups, kh, kw)`, `inputGradient` `(N, C, H, W)` is
/// overwritten with Wᵀ ⋆ dy, and the weight gradient `(O, C/groups, kh, kw)` and bias gradient `(O)` are
/// added to `weightGradient` and `biasGradient`; each only when given.
@inlinable
public func conv2dBackwardNaive<T: BinaryFloatingPoint>(
    _ outputGradient: UnsafePointer<T>, images: Int, _ g: ConvGeometry, outChannels: Int,
    input: UnsafePointer<T>, weight: UnsafePointer<T>,
    inputGradient: UnsafeMutablePointer<T>?, weightGradient: UnsafeMutablePointer<T>?, biasGradient: UnsafeMutablePointer<T>?
) {
    let (oh, ow, kh, kw, cg) = (g.outHeight, g.outWidth, g.kernelHeight, g.kernelWidth, g.groupChannels)
    inputGradient?.update(repeating: 0, count: images * g.inputSize)
    for b in 0..<images {
        for o in 0..<outChannels {
            let firstChannel = o / (outChannels / g.groups) * cg
            for y in 0..<oh {
                for x in 0..<ow {
                    let d = outputGradient[((b * outChannels + o) * oh + y) * ow + x]
                    biasGradient?[o] += d
                    for c in 0..<cg {
                        for i in 0..<kh {
                            for j in 0..<kw {
                                let iy = y * g.stride - g.padTop + i, ix = x * g.stride - g.padLeft + j
                                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                                let at = ((b * g.inChannels + firstChannel + c) * g.height + iy) * g.width + ix
                                let tap = ((o * cg + c) * kh + i) * kw + j
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
