/// Winograd's minimal filtering (Lavin & Gray 2015) for r×r convolutions with stride 1: F(4×4, 3×3) for
/// r = 3 and F(2×2, 5×5) for r = 5. Both read 6×6 input windows and use the same points.
///
/// Every output plane is cut into tiles of m×m outputs (m = 4 for r = 3, 2 for r = 5); tile (ty, tx)
/// reads the n×n input window (n = m + r − 1 = 6) whose top-left corner is row `m·ty − padding`, column
/// `m·tx − padding` (zero outside the image), and
///
///     Y (m, m) = Aᵀ [Σ_c U_c ⊙ V_c] A,   U_c (n, n) = G g_c Gᵀ,   V_c (n, n) = Bᵀ d_c B
///
/// for the filter g_c (r, r) and the window d_c (n, n) of input channel c. At each of the n² positions ξ
/// of the n×n "frequency" tiles the sum over channels is a matrix product over all tiles at once,
/// M[ξ] (O, T) = U[ξ] (O, C) × V[ξ] (C, T): n² = 36 multiply-adds per tile, output and input channel
/// where the direct convolution spends m²r² on the tile's outputs (36 against 144 for 3×3, 36 against
/// 100 for 5×5). The products run in `sgemm`; the transforms here are fixed loops over eight tiles (or
/// eight filters) at a time.
///
/// Both use the points 0, ±1, ±2 and ∞, so Bᵀ is the same; G and Aᵀ are Vandermonde rows of the
/// points with the Lagrange denominators in G:
///
///     Bᵀ = [ 4  0 -5  0  1  0      F(4×4, 3×3):  G = [  1/4    0     0       Aᵀ = [ 1  1  1  1  1  0
///            0 -4 -4  1  1  0                        -1/6  -1/6  -1/6              0  1 -1  2 -2  0
///            0  4 -4 -1  1  0                        -1/6   1/6  -1/6              0  1  1  4  4  0
///            0 -2 -1  2  1  0                        1/24  1/12   1/6              0  1 -1  8 -8  1 ]
///            0  2 -1 -2  1  0                        1/24 -1/12   1/6
///            0  4  0 -5  0  1 ]                        0     0     1  ]
///
///     F(2×2, 5×5):  G = [  1/4     0     0     0     0      Aᵀ = [ 1  1  1  1  1  0
///                         -1/6  -1/6  -1/6  -1/6  -1/6             0  1 -1  2 -2  1 ]
///                         -1/6   1/6  -1/6   1/6  -1/6
///                         1/24  1/12   1/6   1/3   2/3
///                         1/24 -1/12   1/6  -1/3   2/3
///                           0     0     0     0     1 ]
///
/// Against a Double reference at lenet5's conv2 shape (32 → 64 channels, 14×14, He-scale weights,
/// inputs in [0, 1]; `WinogradTests`), the largest error of F(2×2, 5×5) relative to the largest value
/// is 1.9e-6 for outputs (rms 8e-7), 2.9e-6 for input gradients and 4.9e-6 for weight gradients; the
/// loop-based float32 `conv2dNaive` is at 1.0e-6 (rms 5e-7). In a NumPy model of the same sums the
/// points 0, ±1, ±1/2 came out 5–20 % worse and 0, ±1, ±3 three times worse; mixing 2 and −1/2 was
/// about 1.5× more accurate but breaks the ± symmetry that keeps Bᵀ at twelve adds per column.
/// F(4×4, 3×3) at zfnet's conv4 shape (256 → 256, 4×4) stays under 2e-5 for all three (`testFloatErrorAtLeNet5AndZFNetShapes`).
///
/// Buffers: tile t of a group of images is `b·tiles + ty·columns + tx`; transformed inputs, products
/// and their gradients are `(n², channels, ld)` with `ld ≥ T + Lanes.scalarCount`, because the
/// transforms store whole lanes and may write up to seven values past a row's last tile.
public struct WinogradTiling: Equatable, Sendable {
    public let geometry: ConvGeometry
    /// The kernel size r (3 or 5), the output tile size m (4 or 2), the window size n = m + r − 1 (6) of
    /// a tile, and the n² points of its transformed tiles.
    public let kernel: Int, tile: Int, window: Int, points: Int
    /// Tile rows and columns per image: ⌈outH / m⌉ and ⌈outW / m⌉ (the last ones partial).
    public let rows: Int, columns: Int
    /// Rows of a split plane (`splitPlane`) and floats per row of each of its m phases.
    let planeRows: Int, planeStride: Int

    public init(_ g: ConvGeometry) {
        precondition(WinogradTiling.applies(to: g), "Winograd's tiling needs a 3×3 or 5×5 kernel with stride 1")
        geometry = g
        kernel = g.kernelHeight
        tile = kernel == 3 ? 4 : 2
        window = tile + kernel - 1
        points = window * window
        rows = (g.outHeight + tile - 1) / tile
        columns = (g.outWidth + tile - 1) / tile
        planeRows = tile * rows + window - tile
        let lanes = Lanes.scalarCount
        // whole lanes up to `columnMargin` columns on: a window's last column and the input adjoint's shift
        planeStride = (columns + Self.columnMargin + lanes - 1) / lanes * lanes + lanes
    }

    /// The most columns of a phase past its tile's own that a window reaches, (n − 1) / m ≤ 2.
    static let columnMargin = 2

    /// Whether the geometry is one Winograd's tiling computes: a 3×3 or 5×5 kernel, stride 1, one group,
    /// the same padding on every side (any amount).
    public static func applies(to g: ConvGeometry) -> Bool {
        g.stride == 1 && (g.kernelHeight == 3 || g.kernelHeight == 5) && g.kernelWidth == g.kernelHeight && g.groups == 1
            && g.uniformPadding != nil
    }

    /// Tiles per image: `rows · columns`.
    public var tiles: Int { rows * columns }

    /// Whether the transforms take their eight lanes from eight consecutive tiles of the group (image by
    /// image, row by row), gathered one value at a time, instead of from one row of tiles of a split
    /// plane: where a row has fewer than `gatherBelowColumns` tiles the row's lanes would be mostly empty
    /// (zfnet's 4×4 maps are one tile per image, which filled one lane in eight).
    public var gathers: Bool { columns < Self.gatherBelowColumns }
    static let gatherBelowColumns = 4

    /// The image of tile `index` of a group and the top-left output (m·ty, m·tx) of its tile.
    @inline(__always)
    func position(ofTile index: Int) -> (image: Int, y: Int, x: Int) {
        let (image, rest) = index.quotientAndRemainder(dividingBy: tiles)
        let (ty, tx) = rest.quotientAndRemainder(dividingBy: columns)
        return (image, tile * ty, tile * tx)
    }
    /// The row stride `ld` of the `(n², channels, ld)` buffers for groups of up to `images` images.
    public func leadingDimension(images: Int) -> Int { images * tiles + Lanes.scalarCount }
    /// Floats of a split plane's phase.
    var phaseSize: Int { planeRows * planeStride }
    /// Floats of scratch a transform needs: a split plane (m phases), or n planes and an m-phase row
    /// for the input adjoint.
    public var scratchSize: Int { (window * planeRows + tile) * planeStride }
}

// MARK: Weights

/// U `(n², O, C)` = G g Gᵀ for the filters `weight` `(O, C, r, r)` of output channels `channels`
/// (the other rows of U are left alone).
public func winogradWeightTransform(
    _ weight: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int, channels: Range<Int>, _ t: WinogradTiling,
    _ u: UnsafeMutablePointer<Float>
) {
    let (size, points) = (t.kernel * t.kernel, t.points)
    forEachFilterLanes(channels, inChannels: c) { k, c0, lanes, x, work, y in
        let filters = weight + (k * c + c0) * size
        for i in 0..<size {
            var v = Lanes()
            for l in 0..<lanes { v[l] = filters[l * size + i] }
            x[i] = v
        }
        transformTile(.filter, t, x, work, y)
        for xi in 0..<points { storeLanes(y[xi], u + (xi * o + k) * c + c0, lanes) }
    }
}

/// The adjoint of `winogradWeightTransform`: dW `(O, C, r, r)` += Gᵀ dU G for the output channels
/// `channels`, from dU `(n², O, C)`.
public func winogradWeightTransformAdjoint(
    _ du: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int, channels: Range<Int>, _ t: WinogradTiling,
    _ dw: UnsafeMutablePointer<Float>
) {
    let (size, points) = (t.kernel * t.kernel, t.points)
    forEachFilterLanes(channels, inChannels: c) { k, c0, lanes, x, work, y in
        for xi in 0..<points { x[xi] = loadLanes(du + (xi * o + k) * c + c0, lanes) }
        transformTile(.filterAdjoint, t, x, work, y)
        let filters = dw + (k * c + c0) * size
        for i in 0..<size {
            for l in 0..<lanes { filters[l * size + i] += y[i][l] }
        }
    }
}

/// Runs `body(k, c0, lanes, x, work, y)` for the filters of output channel k and input channels
/// `c0 ..< c0 + lanes`, eight at a time (one per lane), with the tile scratch of `withTileLanes`.
@inline(__always)
private func forEachFilterLanes(
    _ channels: Range<Int>, inChannels c: Int,
    _ body: (Int, Int, Int, UnsafeMutablePointer<Lanes>, UnsafeMutablePointer<Lanes>, UnsafeMutablePointer<Lanes>) -> Void
) {
    withTileLanes { x, work, y in
        for k in channels {
            for c0 in stride(from: 0, to: c, by: Lanes.scalarCount) { body(k, c0, min(Lanes.scalarCount, c - c0), x, work, y) }
        }
    }
}

// MARK: Inputs

/// V `(n², C, ld)` = Bᵀ d B for every tile of `images` images `(images, C, H, W)` and the input channels
/// `channels` (the other rows of V are left alone). `scratch`: `tiling.scratchSize` floats.
public func winogradInputTransform(
    _ input: UnsafePointer<Float>, images: Int, channels: Range<Int>, _ t: WinogradTiling,
    _ v: UnsafeMutablePointer<Float>, ld: Int, scratch: UnsafeMutablePointer<Float>
) {
    if t.gathers { return winogradInputTransformGathered(input, images: images, channels: channels, t, v, ld: ld) }
    let g = t.geometry
    let (c, plane, phase, n, size) = (g.inChannels, g.height * g.width, t.phaseSize, t.window, t.tile)
    let shift = size.trailingZeroBitCount
    withTileLanes { x, work, y in
        for b in 0..<images {
            for ch in channels {
                splitPlane(input + (b * c + ch) * plane, height: g.height, width: g.width, offset: g.padTop, t, scratch)
                let row = v + ch * ld + b * t.tiles  // (n², ·, ld) at channel ch, image b
                for ty in 0..<t.rows {
                    for tx in stride(from: 0, to: t.columns, by: Lanes.scalarCount) {
                        for i in 0..<n {
                            let line = scratch + (size * ty + i) * t.planeStride + tx
                            for j in 0..<n { x[i * n + j] = loadLanes(line + (j & (size - 1)) * phase + j >> shift, Lanes.scalarCount) }
                        }
                        transformTile(.input, t, x, work, y)
                        let at = row + ty * t.columns + tx
                        for xi in 0..<t.points { storeLanes(y[xi], at + xi * c * ld, Lanes.scalarCount) }
                    }
                }
            }
        }
    }
}

/// The adjoint of `winogradInputTransform` for the input channels `channels`: dX `(images, C, H, W)` =
/// the sum over tiles of B dV Bᵀ, each tile's n×n window added where it lies (the parts in the zero
/// border dropped). Those channels of `dX` are overwritten (the others are left alone); `dV` `(n², C,
/// ld)`. `scratch`: `tiling.scratchSize` floats.
///
/// Column j of every tile's window goes to a plane of its own at the tile's column (`n · planeRows ·
/// planeStride` floats), so that each lane adds to a value of its own tile and every add reads what the
/// last one stored at that very address, never a load straddling the store before it; the n planes
/// are summed once per image row.
public func winogradInputTransformAdjoint(
    _ dv: UnsafePointer<Float>, images: Int, channels: Range<Int>, _ t: WinogradTiling, ld: Int,
    _ dx: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
) {
    if t.gathers { return winogradInputTransformAdjointGathered(dv, images: images, channels: channels, t, ld: ld, dx) }
    let g = t.geometry
    let (c, plane, planes, n, size) = (g.inChannels, g.height * g.width, t.phaseSize, t.window, t.tile)
    let margin = WinogradTiling.columnMargin
    let row = scratch + n * planes  // one padded input row, (m · planeStride)
    withTileLanes { x, work, y in
        for b in 0..<images {
            for ch in channels {
                scratch.update(repeating: 0, count: n * planes)
                let tiles = dv + ch * ld + b * t.tiles
                for ty in 0..<t.rows {
                    for tx in stride(from: 0, to: t.columns, by: Lanes.scalarCount) {
                        let past = Lanes.MaskStorage(0, 1, 2, 3, 4, 5, 6, 7) .>= Int32(t.columns - tx)  // lanes of the next row
                        let at = tiles + ty * t.columns + tx
                        for xi in 0..<t.points { x[xi] = loadLanes(at + xi * c * ld, Lanes.scalarCount).replacing(with: 0, where: past) }
                        transformTile(.inputAdjoint, t, x, work, y)
                        for i in 0..<n {
                            let line = scratch + (size * ty + i) * t.planeStride + tx + margin
                            for j in 0..<n {
                                let p = line + j * planes
                                storeLanes(loadLanes(p, Lanes.scalarCount) + y[i * n + j], p, Lanes.scalarCount)
                            }
                        }
                    }
                }
                // padded column X = m·k + phase (m = size) holds column phase + m·s of tile k − s, for phase + m·s < n
                let out = dx + (b * c + ch) * plane
                for yy in 0..<g.height {
                    let line = scratch + (yy + g.padTop) * t.planeStride
                    for k in stride(from: 0, to: (g.width + g.padTop + size - 1) / size, by: Lanes.scalarCount) {
                        for phase in 0..<size {
                            let column = stride(from: phase, to: n, by: size).enumerated().reduce(Lanes()) { sum, term in
                                sum + loadLanes(line + term.element * planes + k + margin - term.offset, Lanes.scalarCount)
                            }
                            for l in 0..<Lanes.scalarCount { row[size * (k + l) + phase] = column[l] }
                        }
                    }
                    (out + yy * g.width).update(from: row + g.padTop, count: g.width)
                }
            }
        }
    }
}

// MARK: Outputs

/// y `(images, O, outH, outW)` = Aᵀ M A + bias for the output channels `channels`, from the products
/// M `(n², O, ld)` of `images` images (the outputs a partial tile has past the edge are dropped). With
/// `tileRows`, of one image and a tiling that does not gather, M holds only the tiles of those rows
/// (from its first column on), and only their outputs are written.
public func winogradOutputTransform(
    _ m: UnsafePointer<Float>, images: Int, outChannels o: Int, channels: Range<Int>, _ t: WinogradTiling, ld: Int,
    bias: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, tileRows: Range<Int>? = nil
) {
    if t.gathers {
        precondition(tileRows == nil, "a tiling that gathers transforms whole images")
        return winogradOutputTransformGathered(m, images: images, outChannels: o, channels: channels, t, ld: ld, bias: bias, output)
    }
    precondition(tileRows == nil || images == 1, "tile rows are of one image")
    let (oh, ow, size, rows) = (t.geometry.outHeight, t.geometry.outWidth, t.tile, tileRows ?? 0..<t.rows)
    withTileLanes { x, work, y in
        for b in 0..<images {
            for k in channels {
                let row = m + k * ld + b * t.tiles
                let plane = output + (b * o + k) * oh * ow
                for ty in rows {
                    for tx in stride(from: 0, to: t.columns, by: Lanes.scalarCount) {
                        let at = row + (ty - rows.lowerBound) * t.columns + tx
                        for xi in 0..<t.points { x[xi] = loadLanes(at + xi * o * ld, Lanes.scalarCount) }
                        transformTile(.output, t, x, work, y)
                        for r in 0..<min(size, oh - size * ty) {
                            let line = plane + (size * ty + r) * ow
                            for l in 0..<min(Lanes.scalarCount, t.columns - tx) {
                                let first = size * (tx + l)
                                for q in 0..<min(size, ow - first) { line[first + q] = y[r * size + q][l] + bias[k] }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `winogradOutputTransform` (without the bias): dM `(n², O, ld)` = A dY Aᵀ for every
/// tile of `dy` `(images, O, outH, outW)` and the output channels `channels` (the other rows of dM are
/// left alone), zero for the outputs a partial tile has past the edge. `scratch`: `tiling.scratchSize` floats.
public func winogradOutputTransformAdjoint(
    _ dy: UnsafePointer<Float>, images: Int, outChannels o: Int, channels: Range<Int>, _ t: WinogradTiling,
    _ dm: UnsafeMutablePointer<Float>, ld: Int, scratch: UnsafeMutablePointer<Float>
) {
    if t.gathers { return winogradOutputTransformAdjointGathered(dy, images: images, outChannels: o, channels: channels, t, dm, ld: ld) }
    let (oh, ow, phase, size) = (t.geometry.outHeight, t.geometry.outWidth, t.phaseSize, t.tile)
    withTileLanes { x, work, y in
        for b in 0..<images {
            for k in channels {
                splitPlane(dy + (b * o + k) * oh * ow, height: oh, width: ow, offset: 0, t, scratch)
                let row = dm + k * ld + b * t.tiles
                for ty in 0..<t.rows {
                    for tx in stride(from: 0, to: t.columns, by: Lanes.scalarCount) {
                        for r in 0..<size {
                            let line = scratch + (size * ty + r) * t.planeStride + tx
                            for q in 0..<size { x[r * size + q] = loadLanes(line + q * phase, Lanes.scalarCount) }
                        }
                        transformTile(.outputAdjoint, t, x, work, y)
                        let at = row + ty * t.columns + tx
                        for xi in 0..<t.points { storeLanes(y[xi], at + xi * o * ld, Lanes.scalarCount) }
                    }
                }
            }
        }
    }
}

// MARK: Gathered tiles (`WinogradTiling.gathers`)

/// `winogradInputTransform` with lanes over consecutive tiles of the group, read from the planes with
/// zero outside.
private func winogradInputTransformGathered(
    _ input: UnsafePointer<Float>, images: Int, channels: Range<Int>, _ t: WinogradTiling, _ v: UnsafeMutablePointer<Float>, ld: Int
) {
    let g = t.geometry
    let (c, plane, n, total) = (g.inChannels, g.height * g.width, t.window, images * t.tiles)
    withTileLanes { x, work, y in
        for ch in channels {
            for first in stride(from: 0, to: total, by: Lanes.scalarCount) {
                for xi in 0..<t.points { x[xi] = Lanes() }
                for l in 0..<min(Lanes.scalarCount, total - first) {
                    let (b, oy, ox) = t.position(ofTile: first + l)
                    let source = input + (b * c + ch) * plane
                    forEachInside(y: oy - g.padTop, x: ox - g.padTop, size: n, g.height, g.width) { e, at in x[e][l] = source[at] }
                }
                transformTile(.input, t, x, work, y)
                for xi in 0..<t.points { storeLanes(y[xi], v + (xi * c + ch) * ld + first, Lanes.scalarCount) }
            }
        }
    }
}

/// `winogradInputTransformAdjoint` with lanes over consecutive tiles of the group, each window added to
/// the planes one value at a time.
private func winogradInputTransformAdjointGathered(
    _ dv: UnsafePointer<Float>, images: Int, channels: Range<Int>, _ t: WinogradTiling, ld: Int, _ dx: UnsafeMutablePointer<Float>
) {
    let g = t.geometry
    let (c, plane, n, total) = (g.inChannels, g.height * g.width, t.window, images * t.tiles)
    for b in 0..<images { (dx + (b * c + channels.lowerBound) * plane).update(repeating: 0, count: channels.count * plane) }
    withTileLanes { x, work, y in
        for ch in channels {
            for first in stride(from: 0, to: total, by: Lanes.scalarCount) {
                for xi in 0..<t.points { x[xi] = loadLanes(dv + (xi * c + ch) * ld + first, Lanes.scalarCount) }
                transformTile(.inputAdjoint, t, x, work, y)
                for l in 0..<min(Lanes.scalarCount, total - first) {
                    let (b, oy, ox) = t.position(ofTile: first + l)
                    let target = dx + (b * c + ch) * plane
                    forEachInside(y: oy - g.padTop, x: ox - g.padTop, size: n, g.height, g.width) { e, at in target[at] += y[e][l] }
                }
            }
        }
    }
}

/// `winogradOutputTransform` with lanes over consecutive tiles of the group, written one value at a time.
private func winogradOutputTransformGathered(
    _ m: UnsafePointer<Float>, images: Int, outChannels o: Int, channels: Range<Int>, _ t: WinogradTiling, ld: Int,
    bias: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>
) {
    let (oh, ow, total) = (t.geometry.outHeight, t.geometry.outWidth, images * t.tiles)
    withTileLanes { x, work, y in
        for k in channels {
            for first in stride(from: 0, to: total, by: Lanes.scalarCount) {
                for xi in 0..<t.points { x[xi] = loadLanes(m + (xi * o + k) * ld + first, Lanes.scalarCount) }
                transformTile(.output, t, x, work, y)
                for l in 0..<min(Lanes.scalarCount, total - first) {
                    let (b, oy, ox) = t.position(ofTile: first + l)
                    let target = output + (b * o + k) * oh * ow
                    forEachInside(y: oy, x: ox, size: t.tile, oh, ow) { e, at in target[at] = y[e][l] + bias[k] }
                }
            }
        }
    }
}

/// `winogradOutputTransformAdjoint` with lanes over consecutive tiles of the group, read one value at a time.
private func winogradOutputTransformAdjointGathered(
    _ dy: UnsafePointer<Float>, images: Int, outChannels o: Int, channels: Range<Int>, _ t: WinogradTiling, _ dm: UnsafeMutablePointer<Float>, ld: Int
) {
    let (oh, ow, total) = (t.geometry.outHeight, t.geometry.outWidth, images * t.tiles)
    withTileLanes { x, work, y in
        for k in channels {
            for first in stride(from: 0, to: total, by: Lanes.scalarCount) {
                for xi in 0..<(t.tile * t.tile) { x[xi] = Lanes() }
                for l in 0..<min(Lanes.scalarCount, total - first) {
                    let (b, oy, ox) = t.position(ofTile: first + l)
                    let source = dy + (b * o + k) * oh * ow
                    forEachInside(y: oy, x: ox, size: t.tile, oh, ow) { e, at in x[e][l] = source[at] }
                }
                transformTile(.outputAdjoint, t, x, work, y)
                for xi in 0..<t.points { storeLanes(y[xi], dm + (xi * o + k) * ld + first, Lanes.scalarCount) }
            }
        }
    }
}

/// Runs `body(e, at)` for the positions of the `size`×`size` window at row `y`, column `x` of a
/// `(height, width)` plane that lie inside the plane: `e` the position in the window (row-major), `at`
/// its offset in the plane.
@inline(__always)
private func forEachInside(y: Int, x: Int, size: Int, _ height: Int, _ width: Int, _ body: (Int, Int) -> Void) {
    for i in stride(from: max(0, -y), to: min(size, height - y), by: 1) {
        for j in stride(from: max(0, -x), to: min(size, width - x), by: 1) { body(i * size + j, (y + i) * width + x + j) }
    }
}

// MARK: Channels last (one image's tiles, lanes over channels)

/// Rows `first ..< first + t.tiles` of V `(n², T, C)` = Bᵀ d B for the tiles of one image `patch`
/// `(H, W, C)` channels last, which holds every tile's whole window (`t.tile · t.rows + r − 1` rows and
/// likewise columns, the padding already in it), eight channels to the lanes. Where a plane has few
/// tiles in a row (the boxes of an occlusion sweep), this fills the lanes that `winogradInputTransform`
/// would leave mostly empty or gather one value at a time.
func winogradInputTransformChannelsLast(
    _ patch: UnsafePointer<Float>, width: Int, channels c: Int, _ t: WinogradTiling, _ v: UnsafeMutablePointer<Float>, tiles: Int, first: Int
) {
    let (n, size) = (t.window, t.tile)
    forEachTileChannelBlock(t, first: first, channels: c) { ty, tx, row, c0, lanes, x, work, y in
        for i in 0..<n {
            let line = patch + ((size * ty + i) * width + size * tx) * c + c0
            for j in 0..<n { x[i * n + j] = loadLanes(line + j * c, lanes) }
        }
        transformTile(.input, t, x, work, y)
        for xi in 0..<t.points { storeLanes(y[xi], v + (xi * tiles + row) * c + c0, lanes) }
    }
}

/// `output` `(outH, outW, O)` channels last = Aᵀ M A + bias for one image's tiles, rows
/// `first ..< first + t.tiles` of M `(n², T, O)` (the outputs a partial tile has past the edge are
/// dropped), eight output channels to the lanes.
func winogradOutputTransformChannelsLast(
    _ m: UnsafePointer<Float>, tiles: Int, first: Int, outChannels o: Int, _ t: WinogradTiling, bias: UnsafePointer<Float>,
    _ output: UnsafeMutablePointer<Float>
) {
    let (oh, ow, size) = (t.geometry.outHeight, t.geometry.outWidth, t.tile)
    forEachTileChannelBlock(t, first: first, channels: o) { ty, tx, row, k0, lanes, x, work, y in
        for xi in 0..<t.points { x[xi] = loadLanes(m + (xi * tiles + row) * o + k0, lanes) }
        transformTile(.output, t, x, work, y)
        let b = loadLanes(bias + k0, lanes)
        for r in 0..<min(size, oh - size * ty) {
            for q in 0..<min(size, ow - size * tx) {
                storeLanes(y[r * size + q] + b, output + ((size * ty + r) * ow + size * tx + q) * o + k0, lanes)
            }
        }
    }
}

/// Runs `body(ty, tx, row, c0, lanes, x, work, y)` for each tile (ty, tx) of one image, whose row of
/// the `(n², T, channels)` buffers is `row = first + ty · columns + tx`, and each block of up to eight
/// channels `c0 ..< c0 + lanes`, with the tile scratch of `withTileLanes`.
@inline(__always)
private func forEachTileChannelBlock(
    _ t: WinogradTiling, first: Int, channels: Int,
    _ body: (Int, Int, Int, Int, Int, UnsafeMutablePointer<Lanes>, UnsafeMutablePointer<Lanes>, UnsafeMutablePointer<Lanes>) -> Void
) {
    withTileLanes { x, work, y in
        for ty in 0..<t.rows {
            for tx in 0..<t.columns {
                for c0 in stride(from: 0, to: channels, by: Lanes.scalarCount) {
                    body(ty, tx, first + ty * t.columns + tx, c0, min(Lanes.scalarCount, channels - c0), x, work, y)
                }
            }
        }
    }
}

// MARK: Products

/// M[ξ] `(rows, T)` = U[ξ] `(rows, C)` × V[ξ] `(C, T)` for ξ = 0..<points and the output channels
/// `channels` (rows of M and U); U `(points, O, C)`, V `(points, C, ld)`, M `(points, O, productLD)`
/// (`ld` unless given).
public func winogradFilter(
    _ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
    outChannels o: Int, inChannels c: Int, channels: Range<Int>, points: Int, tiles: Int, ld: Int, productLD: Int? = nil
) {
    let ldm = productLD ?? ld
    for xi in 0..<points {
        sgemm(transposeA: false, transposeB: false, m: channels.count, n: tiles, k: c, u + (xi * o + channels.lowerBound) * c, lda: c,
              v + xi * c * ld, ldb: ld, m + (xi * o + channels.lowerBound) * ldm, ldc: ldm)
    }
}

/// dU[ξ] `(O, C)` += dM[ξ] `(O, T)` × V[ξ]ᵀ `(T, C)` for ξ = 0..<points; dM `(points, O, ld)`,
/// V `(points, C, ld)`, dU `(points, O, C)`.
public func winogradWeightGradient(
    _ dm: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ du: UnsafeMutablePointer<Float>,
    outChannels o: Int, inChannels c: Int, points: Int, tiles: Int, ld: Int
) {
    for xi in 0..<points {
        sgemm(transposeA: false, transposeB: true, m: o, n: c, k: tiles, dm + xi * o * ld, lda: ld,
              v + xi * c * ld, ldb: ld, beta: 1, du + xi * o * c, ldc: c)
    }
}

/// dV[ξ] `(rows, T)` = U[ξ]ᵀ `(rows, O)` × dM[ξ] `(O, T)` for ξ = 0..<points and the input channels
/// `channels` (rows of dV, columns of U); U `(points, O, C)`, dM `(points, O, ld)`, dV `(points, C, ld)`.
public func winogradInputGradient(
    _ u: UnsafePointer<Float>, _ dm: UnsafePointer<Float>, _ dv: UnsafeMutablePointer<Float>,
    outChannels o: Int, inChannels c: Int, channels: Range<Int>, points: Int, tiles: Int, ld: Int
) {
    for xi in 0..<points {
        sgemm(transposeA: true, transposeB: false, m: channels.count, n: tiles, k: o, u + xi * o * c + channels.lowerBound, lda: c,
              dm + xi * o * ld, ldb: ld, dv + (xi * c + channels.lowerBound) * ld, ldc: ld)
    }
}

// MARK: Helpers

/// Three 36-lane tiles of stack scratch for one transform (room for the largest, 6×6): its input, the
/// half-transformed tile and its output.
@inline(__always)
private func withTileLanes(_ body: (UnsafeMutablePointer<Lanes>, UnsafeMutablePointer<Lanes>, UnsafeMutablePointer<Lanes>) -> Void) {
    withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 3 * 36) { p in
        let base = p.baseAddress!
        body(base, base + 36, base + 72)
    }
}

/// The six tile transforms: the input's Bᵀ·B, the filters' G·Gᵀ, the output's Aᵀ·A, and their adjoints.
private enum TileTransform {
    case input, inputAdjoint, filter, filterAdjoint, output, outputAdjoint
}

/// Y = T X Tᵀ for the tile transform `kind` of the tiling (X and Y as `transform2D`'s): the input's is
/// the same for both kernel sizes, the filters' follows the kernel size r and the output's the tile size.
/// `kind` is a literal at every call, so each call keeps only its own branch, with fixed sizes.
@inline(__always)
private func transformTile(
    _ kind: TileTransform, _ t: WinogradTiling, _ x: UnsafeMutablePointer<Lanes>, _ work: UnsafeMutablePointer<Lanes>,
    _ y: UnsafeMutablePointer<Lanes>
) {
    switch kind {
    case .input: transform2D(x, from: 6, to: 6, work, y, inputColumn)
    case .inputAdjoint: transform2D(x, from: 6, to: 6, work, y, inputColumnAdjoint)
    case .filter: transform2D(x, from: t.kernel, to: 6, work, y) { filterColumn($0, $1, $2, $3, kernel: t.kernel) }
    case .filterAdjoint: transform2D(x, from: 6, to: t.kernel, work, y) { filterColumnAdjoint($0, $1, $2, $3, kernel: t.kernel) }
    case .output where t.tile == 4: transform2D(x, from: 6, to: 4, work, y, outputColumn4)
    case .output: transform2D(x, from: 6, to: 2, work, y, outputColumn2)
    case .outputAdjoint where t.tile == 4: transform2D(x, from: 4, to: 6, work, y, outputColumn4Adjoint)
    case .outputAdjoint: transform2D(x, from: 2, to: 6, work, y, outputColumn2Adjoint)
    }
}

/// Y `(m, m)` = T X Tᵀ for X `(n, n)` and the 1-D transform T `(m, n)` given as `column(x, xs, y, ys)`,
/// which maps the n values `x[i·xs]` to the m values `y[i·ys]`: first down every column of X into
/// `work` `(m, n)`, then along every row.
@inline(__always)
private func transform2D(
    _ x: UnsafeMutablePointer<Lanes>, from n: Int, to m: Int, _ work: UnsafeMutablePointer<Lanes>, _ y: UnsafeMutablePointer<Lanes>,
    _ column: (UnsafePointer<Lanes>, Int, UnsafeMutablePointer<Lanes>, Int) -> Void
) {
    for j in 0..<n { column(x + j, n, work + j, n) }
    for r in 0..<m { column(work + r * n, 1, y + r * m, 1) }
}

/// Bᵀ (6, 6) on six values.
@inline(__always)
private func inputColumn(_ d: UnsafePointer<Lanes>, _ s: Int, _ v: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (d0, d1, d2, d3, d4, d5) = (d[0], d[s], d[2 * s], d[3 * s], d[4 * s], d[5 * s])
    let a = d3 - 4 * d1, b = d4 - 4 * d2, c = 2 * (d3 - d1), e = d4 - d2
    v[0] = 4 * d0 - 5 * d2 + d4
    v[t] = a + b
    v[2 * t] = b - a
    v[3 * t] = c + e
    v[4 * t] = e - c
    v[5 * t] = 4 * d1 - 5 * d3 + d5
}

/// B (6, 6), the adjoint of `inputColumn`.
@inline(__always)
private func inputColumnAdjoint(_ v: UnsafePointer<Lanes>, _ s: Int, _ d: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (v0, v1, v2, v3, v4, v5) = (v[0], v[s], v[2 * s], v[3 * s], v[4 * s], v[5 * s])
    let sum12 = v1 + v2, diff12 = v2 - v1, sum34 = v3 + v4, diff34 = v4 - v3
    d[0] = 4 * v0
    d[t] = 4 * diff12 + 2 * diff34 + 4 * v5
    d[2 * t] = -5 * v0 - 4 * sum12 - sum34
    d[3 * t] = -diff12 - 2 * diff34 - 5 * v5
    d[4 * t] = v0 + sum12 + sum34
    d[5 * t] = v5
}

/// G (6, r) on r values, r = 3 or 5: the rows of the points 0, 1, −1, 2, −2 and ∞, each with its
/// Lagrange denominator, u(p) = λ_p Σ_i pⁱ g_i (u(∞) = g_{r−1}).
@inline(__always)
private func filterColumn(_ g: UnsafePointer<Lanes>, _ s: Int, _ u: UnsafeMutablePointer<Lanes>, _ t: Int, kernel r: Int) {
    var even = Lanes(), odd = Lanes(), even2 = Lanes(), odd2 = Lanes()  // Σ g_i and Σ 2ⁱ g_i over even and odd i
    var power: Float = 1
    for i in 0..<r {
        let v = g[i * s]
        if i & 1 == 0 { even += v; even2 += power * v } else { odd += v; odd2 += power * v }
        power *= 2
    }
    u[0] = g[0] * 0.25
    u[t] = (even + odd) * (-1 / 6)
    u[2 * t] = (even - odd) * (-1 / 6)
    u[3 * t] = (even2 + odd2) * (1 / 24)
    u[4 * t] = (even2 - odd2) * (1 / 24)
    u[5 * t] = g[(r - 1) * s]
}

/// Gᵀ (r, 6), the adjoint of `filterColumn`.
@inline(__always)
private func filterColumnAdjoint(_ u: UnsafePointer<Lanes>, _ s: Int, _ g: UnsafeMutablePointer<Lanes>, _ t: Int, kernel r: Int) {
    let (u0, u1, u2, u3, u4, u5) = (u[0], u[s], u[2 * s], u[3 * s], u[4 * s], u[5 * s])
    let sum12 = (u1 + u2) * (-1 / 6), diff12 = (u1 - u2) * (-1 / 6), sum34 = (u3 + u4) * (1 / 24), diff34 = (u3 - u4) * (1 / 24)
    var power: Float = 1
    for i in 0..<r {
        var v = i & 1 == 0 ? sum12 + power * sum34 : diff12 + power * diff34
        if i == 0 { v += u0 * 0.25 }
        if i == r - 1 { v += u5 }
        g[i * t] = v
        power *= 2
    }
}

/// Aᵀ (4, 6) of F(4×4, 3×3) on six values.
@inline(__always)
private func outputColumn4(_ m: UnsafePointer<Lanes>, _ s: Int, _ y: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (m0, m1, m2, m3, m4, m5) = (m[0], m[s], m[2 * s], m[3 * s], m[4 * s], m[5 * s])
    let sum12 = m1 + m2, diff12 = m1 - m2, sum34 = m3 + m4, diff34 = m3 - m4
    y[0] = m0 + sum12 + sum34
    y[t] = diff12 + 2 * diff34
    y[2 * t] = sum12 + 4 * sum34
    y[3 * t] = diff12 + 8 * diff34 + m5
}

/// A (6, 4), the adjoint of `outputColumn4`.
@inline(__always)
private func outputColumn4Adjoint(_ y: UnsafePointer<Lanes>, _ s: Int, _ m: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (y0, y1, y2, y3) = (y[0], y[s], y[2 * s], y[3 * s])
    let even = y0 + y2, odd = y1 + y3, even4 = y0 + 4 * y2, odd8 = 2 * y1 + 8 * y3
    m[0] = y0
    m[t] = even + odd
    m[2 * t] = even - odd
    m[3 * t] = even4 + odd8
    m[4 * t] = even4 - odd8
    m[5 * t] = y3
}

/// Aᵀ (2, 6) of F(2×2, 5×5) on six values.
@inline(__always)
private func outputColumn2(_ m: UnsafePointer<Lanes>, _ s: Int, _ y: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (m0, m1, m2, m3, m4, m5) = (m[0], m[s], m[2 * s], m[3 * s], m[4 * s], m[5 * s])
    y[0] = m0 + m1 + m2 + m3 + m4
    y[t] = m1 - m2 + 2 * (m3 - m4) + m5
}

/// A (6, 2), the adjoint of `outputColumn2`.
@inline(__always)
private func outputColumn2Adjoint(_ y: UnsafePointer<Lanes>, _ s: Int, _ m: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (y0, y1) = (y[0], y[s])
    m[0] = y0
    m[t] = y0 + y1
    m[2 * t] = y0 - y1
    m[3 * t] = y0 + 2 * y1
    m[4 * t] = y0 - 2 * y1
    m[5 * t] = y1
}

/// Copies the plane `x` `(height, width)` into `split`, zeroed first (`m · planeRows · planeStride`
/// floats, m the tile size): value (y, x) goes to row `y + offset`, column `(x + offset) / m` of phase
/// `(x + offset) % m` (phase p is the p-th block of `planeRows · planeStride` floats). Column j of every
/// tile's window is then a whole-lane load from phase j % m, one lane per tile.
@inline(__always)
private func splitPlane(_ x: UnsafePointer<Float>, height: Int, width: Int, offset: Int, _ t: WinogradTiling, _ split: UnsafeMutablePointer<Float>) {
    let (phase, m, shift) = (t.phaseSize, t.tile, t.tile.trailingZeroBitCount)
    split.update(repeating: 0, count: m * phase)
    for y in 0..<height {
        let line = split + (y + offset) * t.planeStride
        for column in 0..<width {
            let at = column + offset
            line[(at & (m - 1)) * phase + at >> shift] = x[y * width + column]
        }
    }
}
