/// Max pooling over `planes` planes of `(H, W)` with a k×k window and stride s, no padding.
/// `output` is `(planes, outH, outW)`; `switches` records, for each output, the index `y·W + x` of
/// the winning input inside its plane (the first maximum, scanning rows then columns, as PyTorch).
public func maxPoolForward(
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
