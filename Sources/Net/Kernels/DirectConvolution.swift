/// Direct convolution for stride-1 layers with few output channels, such as lenet5-classic's first
/// (3 → 6 channels, 5x5): im2col's columns are used by only O multiply-adds each, so there the
/// unfolding and BLAS's packing of the columns cost as much as the product. These loops keep eight
/// output channels' sums for eight neighbouring output positions in registers instead. `im2col` plus
/// `sgemm` stays the reference, and the path for every other layer.
///
/// Both kernels read the image from a zero-bordered copy, `(C, H + 2p, rowStride)`, made by
/// `padForDirectConvolution`, so that a row of eight positions never needs a bounds check.
public struct DirectConvolution: Sendable {
    public let geometry: ConvGeometry
    public let outChannels: Int

    public init(geometry: ConvGeometry, outChannels: Int) {
        precondition(geometry.stride == 1, "direct convolution is for stride 1")
        self.geometry = geometry
        self.outChannels = outChannels
    }

    /// Output columns rounded up to whole lanes: the row length of the padded output gradient.
    public var laneWidth: Int { (geometry.outWidth + Lanes.scalarCount - 1) / Lanes.scalarCount * Lanes.scalarCount }
    /// Row length of the zero-bordered image: room for the last lane's window.
    public var rowStride: Int { laneWidth + geometry.kernelWidth - 1 }
    /// Rows of the zero-bordered image.
    public var paddedHeight: Int { geometry.height + 2 * geometry.padding }
    /// Floats of the zero-bordered image.
    public var paddedSize: Int { geometry.inChannels * paddedHeight * rowStride }
    /// Output channels in groups of eight.
    public var groups: Int { (outChannels + Lanes.scalarCount - 1) / Lanes.scalarCount }
    /// Floats of the rearranged weights (`packWeights`) and of the padded output gradient (`padGradient`).
    public var packedWeightSize: Int { groups * geometry.patchSize * Lanes.scalarCount }
    public var paddedGradientSize: Int { groups * Lanes.scalarCount * geometry.outHeight * laneWidth }

    /// Copies one image `(C, H, W)` into `padded` `(C, H + 2p, rowStride)`, zeros around it.
    public func pad(_ image: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) {
        let g = geometry
        padded.update(repeating: 0, count: paddedSize)
        for c in 0..<g.inChannels {
            for y in 0..<g.height {
                (padded + (c * paddedHeight + y + g.padding) * rowStride + g.padding)
                    .update(from: image + (c * g.height + y) * g.width, count: g.width)
            }
        }
    }

    /// Rearranges `weight` `(O, C, kh, kw)` into `packed` `(groups, C, kh, kw, 8)`: for each group of
    /// eight output channels and each tap, their eight weights side by side (zeros past O).
    public func packWeights(_ weight: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        let (k, lanes) = (geometry.patchSize, Lanes.scalarCount)
        packed.update(repeating: 0, count: packedWeightSize)
        for o in 0..<outChannels {
            let (group, lane) = o.quotientAndRemainder(dividingBy: lanes)
            for t in 0..<k { packed[(group * k + t) * lanes + lane] = weight[o * k + t] }
        }
    }

    /// y `(O, outH, outW)` = bias + W ⋆ x for one image, from its zero-bordered copy and the packed weights.
    public func forward(padded: UnsafePointer<Float>, packedWeights: UnsafePointer<Float>, bias: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let g = geometry
        let (oh, ow, kh, kw, c, lanes) = (g.outHeight, g.outWidth, g.kernelHeight, g.kernelWidth, g.inChannels, Lanes.scalarCount)
        for group in 0..<groups {
            let w = packedWeights + group * g.patchSize * lanes
            let channels = min(lanes, outChannels - group * lanes)
            for row in 0..<oh {
                for x0 in stride(from: 0, to: ow, by: lanes) {
                    var sums = InlineArray<8, Lanes>(repeating: Lanes())
                    for ci in 0..<c {
                        for i in 0..<kh {
                            let source = padded + (ci * paddedHeight + row + i) * rowStride + x0
                            let taps = w + (ci * kh + i) * kw * lanes
                            for j in 0..<kw {
                                let v = UnsafeRawPointer(source + j).loadUnaligned(as: Lanes.self)
                                let tap = taps + j * lanes
                                for l in 0..<8 { sums[l].addProduct(Lanes(repeating: tap[l]), v) }
                            }
                        }
                    }
                    let count = min(lanes, ow - x0)
                    for l in 0..<channels {
                        let o = group * lanes + l
                        let out = y + (o * oh + row) * ow + x0
                        for x in 0..<count { out[x] = sums[l][x] + bias[o] }
                    }
                }
            }
        }
    }

    /// Copies the output gradient of one image `(O, outH, outW)` into `padded` `(groups·8, outH,
    /// laneWidth)`, zeros past the last column and the last channel.
    public func padGradient(_ dy: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) {
        let (oh, ow) = (geometry.outHeight, geometry.outWidth)
        padded.update(repeating: 0, count: paddedGradientSize)
        for o in 0..<outChannels {
            for row in 0..<oh { (padded + (o * oh + row) * laneWidth).update(from: dy + (o * oh + row) * ow, count: ow) }
        }
    }

    /// dW `(O, C, kh, kw)` += Σ over positions of dy ⊗ the window of x, for one image, from its
    /// zero-bordered copy and its padded output gradient.
    public func accumulateWeightGradient(padded: UnsafePointer<Float>, paddedGradient dy: UnsafePointer<Float>, into weightGradient: UnsafeMutablePointer<Float>) {
        let g = geometry
        let (oh, kh, kw, c, lanes) = (g.outHeight, g.kernelHeight, g.kernelWidth, g.inChannels, Lanes.scalarCount)
        let plane = oh * laneWidth
        for group in 0..<groups {
            let d = dy + group * lanes * plane
            let channels = min(lanes, outChannels - group * lanes)
            for ci in 0..<c {
                for i in 0..<kh {
                    for j in 0..<kw {
                        var sums = InlineArray<8, Lanes>(repeating: Lanes())
                        for row in 0..<oh {
                            let source = padded + (ci * paddedHeight + row + i) * rowStride + j
                            let gradientRow = d + row * laneWidth
                            for x0 in stride(from: 0, to: laneWidth, by: lanes) {
                                let v = UnsafeRawPointer(source + x0).loadUnaligned(as: Lanes.self)
                                for l in 0..<8 { sums[l].addProduct(UnsafeRawPointer(gradientRow + l * plane + x0).loadUnaligned(as: Lanes.self), v) }
                            }
                        }
                        for l in 0..<channels { weightGradient[(((group * lanes + l) * c + ci) * kh + i) * kw + j] += sums[l].sum() }
                    }
                }
            }
        }
    }
}
