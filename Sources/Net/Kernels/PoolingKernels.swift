/// Max pooling over `planes` planes of `(H, W)` with a k×k window and stride s, no padding.
/// `output` is `(planes, outH, outW)`; `switches` records, for each output, the index `y·W + x` of
/// the winning input inside its plane (the first maximum, scanning rows then columns, as PyTorch; a NaN
/// when there is one: the first of the last window row that holds one). The common 2×2 window with stride 2 runs eight outputs at a time
/// when a row has at least eight; everything else is `maxPoolForwardNaive`.
public func maxPoolForward(
    _ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry,
    _ output: UnsafeMutablePointer<Float>, switches: UnsafeMutablePointer<Int32>
) {
    let (w, oh, ow) = (g.width, g.outHeight, g.outWidth)
    let lanes = Lanes.scalarCount
    guard g.kernelHeight == 2, g.stride == 2, ow >= lanes else {
        maxPoolForwardNaive(input, planes: planes, g, output, switches: switches)
        return
    }
    let step = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
    for plane in 0..<planes {
        let src = input + plane * g.height * w
        let dst = output + plane * oh * ow
        let sw = switches + plane * oh * ow
        for y in 0..<oh {
            var x = 0
            while x < ow {
                x = min(x, ow - lanes)  // the last group overlaps its predecessor
                let at = 2 * y * w + 2 * x  // the window's top-left, inside the plane
                let top = UnsafeRawPointer(src + at).loadUnaligned(as: SIMD16<Float>.self)
                let bottom = UnsafeRawPointer(src + at + w).loadUnaligned(as: SIMD16<Float>.self)
                // the four candidates in scan order: top left, top right, bottom left, bottom right
                let (a, b, c, d) = (top.evenHalf, top.oddHalf, bottom.evenHalf, bottom.oddHalf)
                let topLeft = step &+ Int32(at)
                var best = a, index = topLeft
                func take(_ v: Lanes, _ offset: Int, where mask: SIMDMask<SIMD8<Int32>>) {
                    best.replace(with: v, where: mask)
                    index.replace(with: topLeft &+ Int32(offset), where: mask)
                }
                take(b, 1, where: b .> best)
                take(c, w, where: c .> best)
                take(d, w + 1, where: d .> best)
                // a NaN wins: the loop stops its row at the first one, and a later row's NaN replaces it
                take(b, 1, where: b .!= b)
                take(a, 0, where: a .!= a)
                take(d, w + 1, where: d .!= d)
                take(c, w, where: c .!= c)
                UnsafeMutableRawPointer(dst + y * ow + x).storeBytes(of: best, as: Lanes.self)
                UnsafeMutableRawPointer(sw + y * ow + x).storeBytes(of: index, as: SIMD8<Int32>.self)
                x += lanes
            }
        }
    }
}

/// The loop-based oracle for `maxPoolForward`, same arguments, any window and stride.
public func maxPoolForwardNaive(
    _ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry,
    _ output: UnsafeMutablePointer<Float>, switches: UnsafeMutablePointer<Int32>
) {
    let (h, w, oh, ow, k, s) = (g.height, g.width, g.outHeight, g.outWidth, g.kernelHeight, g.stride)
    for plane in 0..<planes {
        let src = input + plane * h * w
        let dst = output + plane * oh * ow
        let sw = switches + plane * oh * ow
        for y in 0..<oh {
            for x in 0..<ow {
                var best = -Float.infinity
                var at = (y * s) * w + x * s
                for i in 0..<k {
                    let row = (y * s + i) * w + x * s
                    for j in 0..<k where src[row + j] > best || src[row + j].isNaN {
                        best = src[row + j]
                        at = row + j
                        if best.isNaN { break }
                    }
                }
                dst[y * ow + x] = best
                sw[y * ow + x] = Int32(at)
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

/// Average pooling over `planes` planes with a k×k window and any stride, no padding.
public func avgPoolForward(_ input: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry, _ output: UnsafeMutablePointer<Float>) {
    let (h, w, oh, ow, k, s) = (g.height, g.width, g.outHeight, g.outWidth, g.kernelHeight, g.stride)
    let scale = 1 / Float(k * k)
    for plane in 0..<planes {
        let src = input + plane * h * w
        let dst = output + plane * oh * ow
        for y in 0..<oh {
            for x in 0..<ow {
                var sum: Float = 0
                for i in 0..<k {
                    for j in 0..<k { sum += src[(y * s + i) * w + x * s + j] }
                }
                dst[y * ow + x] = sum * scale
            }
        }
    }
}

/// The adjoint of average pooling. `inputGradient` `(planes, H, W)` is overwritten.
public func avgPoolBackward(_ outputGradient: UnsafePointer<Float>, planes: Int, _ g: ConvGeometry, _ inputGradient: UnsafeMutablePointer<Float>) {
    let (h, w, oh, ow, k, s) = (g.height, g.width, g.outHeight, g.outWidth, g.kernelHeight, g.stride)
    let scale = 1 / Float(k * k)
    inputGradient.update(repeating: 0, count: planes * h * w)
    for plane in 0..<planes {
        let dst = inputGradient + plane * h * w
        let src = outputGradient + plane * oh * ow
        for y in 0..<oh {
            for x in 0..<ow {
                let v = src[y * ow + x] * scale
                for i in 0..<k {
                    for j in 0..<k { dst[(y * s + i) * w + x * s + j] += v }
                }
            }
        }
    }
}
