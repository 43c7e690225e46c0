/// Direct convolution for stride-1 layers with few output channels, such as lenet5-classic's first
/// (3 → 6 channels, 5x5): im2col's columns are used by only O multiply-adds each, so there the
/// unfolding and BLAS's packing of the columns cost as much as the product. These loops keep a tile of
/// sums in registers instead, shaped so that each vector loaded feeds several multiply-adds (16 vector
/// registers hold the sums and the operands of one step):
/// - `forward`: 3 output channels by up to 4 neighbouring vectors of 8 output positions; per tap, 3
///   broadcast weights and 4 image loads feed 12 multiply-adds.
/// - `accumulateWeightGradient`: 2 output channels by up to 5 kernel columns; per 8 output positions,
///   2 gradient loads and 5 image loads feed 10 multiply-adds (3 channels would need 19 registers).
/// `im2col` plus `sgemm` stays the reference, and the path for every other layer.
///
/// Both kernels read the image from a zero-bordered copy, `(C, H + 2p, rowStride)`, made by `pad`,
/// so that a row of eight positions never needs a bounds check.
public struct DirectConvolution: Sendable {
    public let geometry: ConvGeometry
    public let outChannels: Int

    public init(geometry: ConvGeometry, outChannels: Int) {
        precondition(DirectConvolution.applies(to: geometry), "direct convolution is for stride 1, no groups, the same padding on every side")
        self.geometry = geometry
        self.outChannels = outChannels
    }

    /// Whether the geometry is one these kernels compute: stride 1, one group, the same padding on every side.
    public static func applies(to g: ConvGeometry) -> Bool { g.stride == 1 && g.groups == 1 && g.uniformPadding != nil }

    /// The sums of one vector of 8 output positions (`forward`) or of one kernel column (over 8 output
    /// positions, `accumulateWeightGradient`) for each output channel of a tile.
    private typealias ForwardChannelSums = InlineArray<3, Lanes>
    private typealias GradientChannelSums = InlineArray<2, Lanes>
    /// A tile's sums: `n` vectors of 8 output positions, or `n` kernel columns, by the tile's channels.
    private typealias ForwardSums<let n: Int> = InlineArray<n, ForwardChannelSums>
    private typealias GradientSums<let n: Int> = InlineArray<n, GradientChannelSums>
    /// Output channels per tile of `forward` and of `accumulateWeightGradient`.
    static let forwardChannels = ForwardChannelSums.count, gradientChannels = GradientChannelSums.count

    /// Output columns rounded up to whole lanes: the row length of the padded output gradient.
    public var laneWidth: Int { (geometry.outWidth + Lanes.scalarCount - 1) / Lanes.scalarCount * Lanes.scalarCount }
    /// Row length of the zero-bordered image: room for the last lane's window.
    public var rowStride: Int { laneWidth + geometry.kernelWidth - 1 }
    /// Rows of the zero-bordered image.
    public var paddedHeight: Int { geometry.height + 2 * geometry.padTop }
    /// Floats of the zero-bordered image.
    public var paddedSize: Int { geometry.inChannels * paddedHeight * rowStride }
    /// Output channels in tiles of `forwardChannels`, and in tiles of `gradientChannels`.
    var forwardTiles: Int { (outChannels + Self.forwardChannels - 1) / Self.forwardChannels }
    var gradientTiles: Int { (outChannels + Self.gradientChannels - 1) / Self.gradientChannels }
    /// Floats of the rearranged weights (`packWeights`) and of the padded output gradient (`padGradient`).
    public var packedWeightSize: Int { forwardTiles * Self.forwardChannels * geometry.patchSize }
    public var paddedGradientSize: Int { gradientTiles * Self.gradientChannels * geometry.outHeight * laneWidth }

    /// Copies one image `(C, H, W)` into `padded` `(C, H + 2p, rowStride)`, zeros around it.
    public func pad(_ image: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) {
        let g = geometry
        padded.update(repeating: 0, count: paddedSize)
        for c in 0..<g.inChannels {
            for y in 0..<g.height {
                (padded + (c * paddedHeight + y + g.padTop) * rowStride + g.padTop)
                    .update(from: image + (c * g.height + y) * g.width, count: g.width)
            }
        }
    }

    /// Rearranges `weight` `(O, C, kh, kw)` into `packed` `(tiles, C, kh, kw, 3)`: for each tile of
    /// `forwardChannels` output channels and each tap, their weights side by side (zeros past O).
    public func packWeights(_ weight: UnsafePointer<Float>, into packed: UnsafeMutablePointer<Float>) {
        let (k, t) = (geometry.patchSize, Self.forwardChannels)
        packed.update(repeating: 0, count: packedWeightSize)
        for o in 0..<outChannels {
            let (tile, lane) = o.quotientAndRemainder(dividingBy: t)
            for tap in 0..<k { packed[(tile * k + tap) * t + lane] = weight[o * k + tap] }
        }
    }

    /// y `(O, outH, outW)` = bias + W ⋆ x for one image, from its zero-bordered copy and the packed weights.
    public func forward(padded: UnsafePointer<Float>, packedWeights: UnsafePointer<Float>, bias: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let (oh, ow, lanes) = (geometry.outHeight, geometry.outWidth, Lanes.scalarCount)
        for tile in 0..<forwardTiles {
            for row in 0..<oh {
                for x0 in stride(from: 0, to: ow, by: 4 * lanes) {
                    let at = (tile: tile, row: row, x0: x0)
                    switch (ow - x0 + lanes - 1) / lanes {
                    case 1: forwardTile(ForwardSums<1>.self, at, padded, packedWeights, bias, y)
                    case 2: forwardTile(ForwardSums<2>.self, at, padded, packedWeights, bias, y)
                    case 3: forwardTile(ForwardSums<3>.self, at, padded, packedWeights, bias, y)
                    default: forwardTile(ForwardSums<4>.self, at, padded, packedWeights, bias, y)
                    }
                }
            }
        }
    }

    /// The outputs of `t` channels from `at.tile · t` at `n` vectors of positions from `(at.row, at.x0)`.
    @inline(__always)
    private func forwardTile<let n: Int, let t: Int>(
        _: InlineArray<n, InlineArray<t, Lanes>>.Type, _ at: (tile: Int, row: Int, x0: Int),
        _ padded: UnsafePointer<Float>, _ packedWeights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>
    ) {
        let g = geometry
        let (oh, ow, kh, kw, lanes) = (g.outHeight, g.outWidth, g.kernelHeight, g.kernelWidth, Lanes.scalarCount)
        let o0 = at.tile * t, w = packedWeights + at.tile * g.patchSize * t
        var sums = InlineArray<n, InlineArray<t, Lanes>>(repeating: .init(repeating: Lanes()))
        for l in 0..<t {
            let b = Lanes(repeating: bias[min(o0 + l, outChannels - 1)])
            for v in 0..<n { sums[v][l] = b }
        }
        // repeat-while, not for-in: with for-in's zero-trip guards the compiler copied the sums between
        // registers every tap and spilled them (this tile ran 2.7× slower on lenet5-classic's conv1).
        var ci = 0
        repeat {
            var i = 0
            repeat {
                let source = padded + (ci * paddedHeight + at.row + i) * rowStride + at.x0
                let taps = w + (ci * kh + i) * kw * t
                var j = 0
                repeat {
                    let tap = InlineArray<t, Lanes> { Lanes(repeating: taps[j * t + $0]) }
                    for v in 0..<n {
                        let x = UnsafeRawPointer(source + j + v * lanes).loadUnaligned(as: Lanes.self)
                        for l in 0..<t { sums[v][l].addProduct(tap[l], x) }
                    }
                    j += 1
                } while j < kw
                i += 1
            } while i < kh
            ci += 1
        } while ci < g.inChannels
        for l in 0..<min(t, outChannels - o0) {
            let out = y + ((o0 + l) * oh + at.row) * ow + at.x0
            for v in 0..<n {
                let count = ow - at.x0 - v * lanes
                if count >= lanes {
                    UnsafeMutableRawPointer(out + v * lanes).storeBytes(of: sums[v][l], as: Lanes.self)
                } else {
                    for x in 0..<count { out[v * lanes + x] = sums[v][l][x] }
                }
            }
        }
    }

    /// Copies the output gradient of one image `(O, outH, outW)` into `padded` `(tiles · 2, outH,
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
        for tile in 0..<gradientTiles {
            for ci in 0..<g.inChannels {
                for i in 0..<g.kernelHeight {
                    for j0 in stride(from: 0, to: g.kernelWidth, by: 5) {
                        let at = (tile: tile, ci: ci, i: i, j0: j0)
                        switch g.kernelWidth - j0 {
                        case 1: gradientTile(GradientSums<1>.self, at, padded, dy, weightGradient)
                        case 2: gradientTile(GradientSums<2>.self, at, padded, dy, weightGradient)
                        case 3: gradientTile(GradientSums<3>.self, at, padded, dy, weightGradient)
                        case 4: gradientTile(GradientSums<4>.self, at, padded, dy, weightGradient)
                        default: gradientTile(GradientSums<5>.self, at, padded, dy, weightGradient)
                        }
                    }
                }
            }
        }
    }

    /// The weight gradient of `t` channels from `at.tile · t`, input channel `at.ci`, kernel row `at.i`
    /// and `n` kernel columns from `at.j0`.
    @inline(__always)
    private func gradientTile<let n: Int, let t: Int>(
        _: InlineArray<n, InlineArray<t, Lanes>>.Type, _ at: (tile: Int, ci: Int, i: Int, j0: Int),
        _ padded: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ weightGradient: UnsafeMutablePointer<Float>
    ) {
        let g = geometry
        let (oh, kh, kw, lanes) = (g.outHeight, g.kernelHeight, g.kernelWidth, Lanes.scalarCount)
        let o0 = at.tile * t, plane = oh * laneWidth
        var sums = InlineArray<n, InlineArray<t, Lanes>>(repeating: .init(repeating: Lanes()))
        for row in 0..<oh {
            let source = padded + (at.ci * paddedHeight + row + at.i) * rowStride + at.j0
            let gradientRow = dy + o0 * plane + row * laneWidth
            for x0 in stride(from: 0, to: laneWidth, by: lanes) {
                let d = InlineArray<t, Lanes> { UnsafeRawPointer(gradientRow + $0 * plane + x0).loadUnaligned(as: Lanes.self) }
                for j in 0..<n {
                    let x = UnsafeRawPointer(source + x0 + j).loadUnaligned(as: Lanes.self)
                    for l in 0..<t { sums[j][l].addProduct(d[l], x) }
                }
            }
        }
        for l in 0..<min(t, outChannels - o0) {
            let row = weightGradient + (((o0 + l) * g.inChannels + at.ci) * kh + at.i) * kw + at.j0
            for j in 0..<n { row[j] += sums[j][l].sum() }
        }
    }
}
