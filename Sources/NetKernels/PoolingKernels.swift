/// Max pooling over `planes` planes of `(H, W)` with a k×k window, stride s, padding and ceil mode as
/// `g` says (the padding never wins: PyTorch's −∞). `output` is `(planes, outH, outW)`; `switches`
/// records, for each output, the index `y·W + x` of the winning input inside its unpadded plane (the first maximum, scanning rows then columns, as PyTorch; a NaN
/// when there is one: the first of the last window row that holds one). The common 2×2 window with
/// stride 2 runs eight outputs at a time, and so does any other window with stride 2 inside the plane
/// (`maxPoolStrideTwoRows` on rows of at least eight outputs, AlexNet's and zfnet's 3×3;
/// `maxPoolNarrowRows` on narrower rows); everything else is `maxPoolForwardNaive`.
public func maxPoolForward(
    _ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry,
    _ output: UnsafeMutablePointer<Float>, switches: UnsafeMutablePointer<Int32>
) {
    let (w, ow) = (g.width, g.outWidth)
    let lanes = Lanes.scalarCount
    guard g.stride == 2, g.windowsInsidePlane else {
        maxPoolForwardNaive(input, planes: planes, g, output, switches: switches)
        return
    }
    guard g.kernelHeight == 2, g.kernelWidth == 2 else {
        if let minimum = maxPoolVectorRowMinimum(g), ow >= minimum {
            maxPoolStrideTwoRows(input, planes: planes, g, output, switches: switches)
        } else {
            maxPoolNarrowRows(input, planes: planes, g, output, switches: switches)
        }
        return
    }
    if ow < lanes {
        maxPoolNarrowRows(input, planes: planes, g, output, switches: switches)
        return
    }
    forEachEightInRows(input, planes: planes, g, output, switches: switches) { src, at, corners in
        let top = UnsafeRawPointer(src + at).loadUnaligned(as: SIMD16<Float>.self)
        let bottom = UnsafeRawPointer(src + at + w).loadUnaligned(as: SIMD16<Float>.self)
        return maxOfWindows(top.evenHalf, top.oddHalf, bottom.evenHalf, bottom.oddHalf, at: corners, width: w)
    }
}

/// Calls `window(src, at, corners)` for every eight stride-2 outputs side by side in a row of each
/// plane (the last eight of a row overlapping their predecessors), `src` being the plane, `at` the
/// first window's top-left corner and `corners` all eight corners (indices inside the plane), and
/// stores the maxima and switches it gives. Rows have at least eight outputs.
@inline(__always)
private func forEachEightInRows(
    _ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry, _ output: UnsafeMutablePointer<Float>, switches: UnsafeMutablePointer<Int32>,
    _ window: (_ src: UnsafePointer<Float>, _ at: Int, _ corners: SIMD8<Int32>) -> (Lanes, SIMD8<Int32>)
) {
    let (w, oh, ow, lanes) = (g.width, g.outHeight, g.outWidth, Lanes.scalarCount)
    let step = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
    for plane in 0..<planes {
        let src = input + plane * g.height * w
        let dst = output + plane * oh * ow
        let sw = switches + plane * oh * ow
        for y in 0..<oh {
            var x = 0
            while x < ow {
                x = min(x, ow - lanes)  // the last group overlaps its predecessor
                let at = 2 * y * w + 2 * x  // the first window's top-left corner, inside the plane
                let (best, index) = window(src, at, step &+ Int32(at))
                UnsafeMutableRawPointer(dst + y * ow + x).storeBytes(of: best, as: Lanes.self)
                UnsafeMutableRawPointer(sw + y * ow + x).storeBytes(of: index, as: SIMD8<Int32>.self)
                x += lanes
            }
        }
    }
}

/// `maxPoolForward` of the outputs inside `box` alone, every window inside the plane: `output`
/// `(planes, outH, outW)` and `switches` (indices in the whole plane, as `maxPoolForward`'s) are
/// written inside `box`, widened as `widenedForMaxPooling` says, and left as they are elsewhere. The
/// patch under those outputs is copied to `scratch`, `maxPoolBoxScratchSize(g, box, planes:)` floats,
/// and pooled by `maxPoolForward`.
public func maxPoolForward(
    _ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry, outputs box: PlaneBox,
    _ output: UnsafeMutablePointer<Float>, switches: UnsafeMutablePointer<Int32>, scratch: UnsafeMutablePointer<Float>
) {
    precondition(g.windowsInsidePlane && !box.isEmpty && box.y1 <= g.outHeight && box.x1 <= g.outWidth, "box \(box) of \(g)")
    let box = widenedForMaxPooling(box, g), region = g.inputPatch(box)
    let (w, outPlane) = (g.width, g.outHeight * g.outWidth)
    let patch = scratch  // (planes, region.h, region.w)
    let pooled = scratch + planes * region.area  // (planes, box.h, box.w)
    let patchSwitches = UnsafeMutableRawPointer(pooled + planes * box.area).bindMemory(to: Int32.self, capacity: planes * box.area)
    fillPatch(input, c: planes, h: g.height, w: w, region: region, box: .empty, values: input, patch)  // no changed values
    let patchGeometry = ConvGeometry(inChannels: planes, height: region.height, width: region.width, kernelHeight: g.kernelHeight,
                                     kernelWidth: g.kernelWidth, stride: g.stride)
    maxPoolForward(patch, planes: planes, patchGeometry, pooled, switches: patchSwitches)
    for plane in 0..<planes {
        for r in 0..<box.height {
            let from = plane * box.area + r * box.width, to = plane * outPlane + (box.y0 + r) * g.outWidth + box.x0
            (output + to).update(from: pooled + from, count: box.width)
            for c in 0..<box.width {
                let s = Int(patchSwitches[from + c])
                switches[to + c] = Int32((region.y0 + s / region.width) * w + region.x0 + s % region.width)
            }
        }
    }
}

/// Floats of scratch `maxPoolForward(_:planes:_:outputs:_:switches:scratch:)` needs for `box` of `g`.
public func maxPoolBoxScratchSize(_ g: ConvGeometry, _ box: PlaneBox, planes: Int) -> Int {
    let widened = widenedForMaxPooling(box, g)
    return planes * (g.inputPatch(widened).area + 2 * widened.area)
}

/// Stride-2 pooling with any window at least two wide, every window inside the plane, on rows of at
/// least eight outputs: eight outputs of a row at a time. Window column j of the eight is the even lane
/// of the sixteen floats from their first corner (j = 0) or the odd lane of those from j − 1 further,
/// so no load reads past the last window's last column; the candidates are taken in scan order, then
/// the NaNs by `maxOfWindows`' rule.
private func maxPoolStrideTwoRows(
    _ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry,
    _ output: UnsafeMutablePointer<Float>, switches: UnsafeMutablePointer<Int32>
) {
    let w = g.width
    forEachEightInRows(input, planes: planes, g, output, switches: switches) { src, at, corners in
        maxOfWindows(g, corners: corners) { i, j in
            let row = src + at + i * w
            return j == 0 ? UnsafeRawPointer(row).loadUnaligned(as: SIMD16<Float>.self).evenHalf
                : UnsafeRawPointer(row + j - 1).loadUnaligned(as: SIMD16<Float>.self).oddHalf
        }
    }
}

/// Eight windows of `g` (`kh×kw`, corners `corners`: indices of their top-left inputs in the plane),
/// `candidates(i, j)` giving window row i, column j of the eight: each window's maximum and the index of
/// its winner, by `maxPoolForwardNaive`'s rule (the candidates in scan order, then the NaNs).
@inline(__always)
private func maxOfWindows(_ g: ConvGeometry, corners: SIMD8<Int32>, _ candidates: (_ i: Int, _ j: Int) -> Lanes) -> (Lanes, SIMD8<Int32>) {
    let (w, kh, kw) = (g.width, g.kernelHeight, g.kernelWidth)
    var best = candidates(0, 0), index = corners
    for i in 0..<kh {
        for j in 0..<kw where i + j > 0 {
            let value = candidates(i, j)
            take(&best, &index, value, corners &+ Int32(i * w + j), where: value .> best)
        }
    }
    // a NaN wins: the loop stops its row at the first one, and a later row's NaN replaces it
    for i in 0..<kh {
        for j in (0..<kw).reversed() {
            let value = candidates(i, j)
            take(&best, &index, value, corners &+ Int32(i * w + j), where: value .!= value)
        }
    }
    return (best, index)
}

/// Stride-2 pooling, every window inside the plane, of planes whose rows have fewer than eight outputs
/// (lenet5-classic's pool2, 2×2 over 10×10 → 5×5; AlexNet's pool3, 3×3 over 13×13 → 6×6, and the boxes an
/// occlusion sweep pools there): eight outputs of a plane at a time in reading order, their windows
/// gathered, so the choice stays free of branches (a branch per candidate is slower than even the loop
/// oracle). A plane of fewer than eight outputs goes to `maxPoolForwardNaive`.
private func maxPoolNarrowRows(
    _ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry,
    _ output: UnsafeMutablePointer<Float>, switches: UnsafeMutablePointer<Int32>
) {
    let (w, outputs, lanes) = (g.width, g.outHeight * g.outWidth, Lanes.scalarCount)
    guard outputs >= lanes else {
        maxPoolForwardNaive(input, planes: planes, g, output, switches: switches)
        return
    }
    // the top-left corner of each output's window inside its plane, the same for every plane
    let corners = (0..<outputs).map { k in Int32(2 * (k / g.outWidth) * w + 2 * (k % g.outWidth)) }
    corners.withUnsafeBufferPointer { corners in
        for plane in 0..<planes {
            let src = input + plane * g.height * w
            var k = 0
            while k < outputs {
                k = min(k, outputs - lanes)  // the last group overlaps its predecessor
                let at = UnsafeRawPointer(corners.baseAddress! + k).loadUnaligned(as: SIMD8<Int32>.self)
                let (best, index): (Lanes, SIMD8<Int32>)
                if g.kernelHeight == 2 && g.kernelWidth == 2 {
                    var (a, b, c, d) = (Lanes(), Lanes(), Lanes(), Lanes())
                    for l in 0..<lanes {
                        let window = src + Int(at[l])
                        (a[l], b[l], c[l], d[l]) = (window[0], window[1], window[w], window[w + 1])
                    }
                    (best, index) = maxOfWindows(a, b, c, d, at: at, width: w)
                } else {
                    (best, index) = maxOfWindows(g, corners: at) { i, j in
                        var value = Lanes()
                        for l in 0..<lanes { value[l] = src[Int(at[l]) + i * w + j] }
                        return value
                    }
                }
                UnsafeMutableRawPointer(output + plane * outputs + k).storeBytes(of: best, as: Lanes.self)
                UnsafeMutableRawPointer(switches + plane * outputs + k).storeBytes(of: index, as: SIMD8<Int32>.self)
                k += lanes
            }
        }
    }
}

/// Eight 2×2 windows side by side, their candidates in scan order (top left `a`, top right `b`, bottom
/// left `c`, bottom right `d`) and the top-left indices `at`: each window's maximum and the index of
/// its winner, by `maxPoolForwardNaive`'s rule.
@inline(__always)
private func maxOfWindows(_ a: Lanes, _ b: Lanes, _ c: Lanes, _ d: Lanes, at: SIMD8<Int32>, width w: Int) -> (Lanes, SIMD8<Int32>) {
    var best = a, index = at
    take(&best, &index, b, at &+ 1, where: b .> best)
    take(&best, &index, c, at &+ Int32(w), where: c .> best)
    take(&best, &index, d, at &+ Int32(w + 1), where: d .> best)
    // a NaN wins: the loop stops its row at the first one, and a later row's NaN replaces it
    take(&best, &index, b, at &+ 1, where: b .!= b)
    take(&best, &index, a, at, where: a .!= a)
    take(&best, &index, d, at &+ Int32(w + 1), where: d .!= d)
    take(&best, &index, c, at &+ Int32(w), where: c .!= c)
    return (best, index)
}

/// Replaces `best` and `index` by `value` and `valueIndex` in the lanes of `mask`.
@inline(__always)
private func take(_ best: inout Lanes, _ index: inout SIMD8<Int32>, _ value: Lanes, _ valueIndex: SIMD8<Int32>, where mask: SIMDMask<SIMD8<Int32>>) {
    best.replace(with: value, where: mask)
    index.replace(with: valueIndex, where: mask)
}

/// Along one axis, the input rows (or columns) `start..<end` of output `o`'s window clipped to the
/// plane, and the window's length clipped to the padded plane only (PyTorch's divisor with
/// `count_include_pad`).
@inline(__always)
func poolSpan(_ o: Int, stride: Int, kernel: Int, before: Int, after: Int, size: Int) -> (start: Int, end: Int, padded: Int) {
    let first = o * stride - before
    let last = min(first + kernel, size + after)
    return (max(first, 0), min(last, size), last - first)
}

/// The loop-based oracle for `maxPoolForward`, same arguments, any window, stride, padding and ceil mode.
public func maxPoolForwardNaive(
    _ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry,
    _ output: UnsafeMutablePointer<Float>, switches: UnsafeMutablePointer<Int32>
) {
    poolWindows(input, planes: planes, g, outputs: PlaneBox(y0: 0, y1: g.outHeight, x0: 0, x1: g.outWidth),
                region: PlaneBox(y0: 0, y1: g.height, x0: 0, x1: g.width), maximum: true, output, switches: switches)
}

/// Max (`maximum`) or average pooling (divisor by `includePadding`, as `avgPoolForward`) of the output
/// positions `outputs` of `g`, for `planes` planes of which `input` holds only `region` (in plane
/// coordinates, `(planes, region.h, region.w)`, covering every window of `outputs` inside the plane):
/// `output` is `(planes, outputs.h, outputs.w)`; `switches`, when given, the index `y·W + x` of each
/// maximum in the whole plane (the first maximum in reading order; a NaN wins, the first of the last
/// window row that holds one).
public func poolWindows(
    _ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry, outputs: PlaneBox, region: PlaneBox, maximum: Bool, includePadding: Bool = true,
    _ output: UnsafeMutablePointer<Float>, switches: UnsafeMutablePointer<Int32>? = nil
) {
    let (rw, area) = (region.width, region.height * region.width)
    let rowSpans = (outputs.y0..<outputs.y1).map { poolSpan($0, stride: g.stride, kernel: g.kernelHeight, before: g.padTop, after: g.padBottom, size: g.height) }
    let columnSpans = (outputs.x0..<outputs.x1).map { poolSpan($0, stride: g.stride, kernel: g.kernelWidth, before: g.padLeft, after: g.padRight, size: g.width) }
    var at = 0
    for plane in 0..<planes {
        let src = input + plane * area
        for rows in rowSpans {
            for columns in columnSpans {
                if maximum {
                    var best = -Float.infinity
                    var winner = rows.start * g.width + columns.start
                    for i in rows.start..<rows.end {
                        let row = src + (i - region.y0) * rw
                        for j in columns.start..<columns.end where row[j - region.x0] > best || row[j - region.x0].isNaN {
                            best = row[j - region.x0]
                            winner = i * g.width + j
                            if best.isNaN { break }
                        }
                    }
                    output[at] = best
                    switches?[at] = Int32(winner)
                } else {
                    var sum: Float = 0
                    for i in rows.start..<rows.end {
                        let row = src + (i - region.y0) * rw
                        for j in columns.start..<columns.end { sum += row[j - region.x0] }
                    }
                    let count = includePadding ? rows.padded * columns.padded : (rows.end - rows.start) * (columns.end - columns.start)
                    output[at] = sum * (1 / Float(count))
                }
                at += 1
            }
        }
    }
}

/// The adjoint of max pooling: routes each output gradient to its switch. Also the deconvnet's
/// unpooling. `inputGradient` `(planes, H, W)` is overwritten.
public func maxPoolBackward(
    _ outputGradient: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry,
    switches: UnsafePointer<Int32>, _ inputGradient: UnsafeMutablePointer<Float>
) {
    let (hw, ohw) = (g.height * g.width, g.outHeight * g.outWidth)
    inputGradient.update(repeating: 0, count: planes * hw)
    for plane in 0..<planes {
        let dst = inputGradient + plane * hw
        let src = outputGradient + plane * ohw
        let sw = switches + plane * ohw
        for o in 0..<ohw { dst[Int(sw[o])] += src[o] }
    }
}

/// Average pooling over `planes` planes with any window, stride, padding and ceil mode, as PyTorch's
/// `avg_pool2d`: each output is the sum of its window's input values over the window's size clipped
/// to the padded plane (`includePadding`, PyTorch's `count_include_pad`) or to the plane itself.
public func avgPoolForward(_ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry, includePadding: Bool, _ output: UnsafeMutablePointer<Float>) {
    poolWindows(input, planes: planes, g, outputs: PlaneBox(y0: 0, y1: g.outHeight, x0: 0, x1: g.outWidth),
                region: PlaneBox(y0: 0, y1: g.height, x0: 0, x1: g.width), maximum: false, includePadding: includePadding, output)
}

/// The adjoint of average pooling. `inputGradient` `(planes, H, W)` is overwritten.
public func avgPoolBackward(_ outputGradient: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry, includePadding: Bool,
                            _ inputGradient: UnsafeMutablePointer<Float>) {
    inputGradient.update(repeating: 0, count: planes * g.height * g.width)
    for plane in 0..<planes {
        let dst = inputGradient + plane * g.height * g.width
        forEachAveragingWindow(g, includePadding: includePadding) { y, x, rows, columns, scale in
            let v = outputGradient[(plane * g.outHeight + y) * g.outWidth + x] * scale
            for i in rows {
                for j in columns { dst[i * g.width + j] += v }
            }
        }
    }
}

/// Calls `body(y, x, rows, columns, 1 / divisor)` for each output position of average pooling over `g`.
@inline(__always)
private func forEachAveragingWindow(_ g: ConvGeometry, includePadding: Bool, _ body: (Int, Int, Range<Int>, Range<Int>, Float) -> Void) {
    for y in 0..<g.outHeight {
        let rows = poolSpan(y, stride: g.stride, kernel: g.kernelHeight, before: g.padTop, after: g.padBottom, size: g.height)
        for x in 0..<g.outWidth {
            let columns = poolSpan(x, stride: g.stride, kernel: g.kernelWidth, before: g.padLeft, after: g.padRight, size: g.width)
            let count = includePadding ? rows.padded * columns.padded : (rows.end - rows.start) * (columns.end - columns.start)
            body(y, x, rows.start..<rows.end, columns.start..<columns.end, 1 / Float(count))
        }
    }
}

/// The fewest outputs a row of `g` needs for `maxPoolForward` to pool it eight side by side
/// (`maxPoolStrideTwoRows`, faster than gathering the windows of narrower rows in `maxPoolNarrowRows`):
/// `Lanes.scalarCount` for stride 2, a window other than 2×2 and every window inside the plane; nil
/// for 2×2 windows (an occlusion sweep does not widen their boxes) and for other strides and padded
/// windows (no vector kernel).
func maxPoolVectorRowMinimum(_ g: ConvGeometry) -> Int? {
    g.stride == 2 && g.windowsInsidePlane && !(g.kernelHeight == 2 && g.kernelWidth == 2) && g.kernelWidth >= 2 ? Lanes.scalarCount : nil
}
