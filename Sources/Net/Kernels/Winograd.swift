/// Winograd's minimal filtering F(2×2, r×r) (Lavin & Gray 2015) for r×r convolutions with stride 1,
/// r = 3 or 5.
///
/// Every output plane is cut into tiles of 2×2 outputs; tile (ty, tx) reads the n×n input window
/// (n = r + 1) whose top-left corner is row `2·ty − padding`, column `2·tx − padding` (zero outside the
/// image), and
///
///     Y (2, 2) = Aᵀ [Σ_c U_c ⊙ V_c] A,   U_c (n, n) = G g_c Gᵀ,   V_c (n, n) = Bᵀ d_c B
///
/// for the filter g_c (r, r) and the window d_c (n, n) of input channel c. At each of the n² positions ξ
/// of the n×n "frequency" tiles the sum over channels is a matrix product over all tiles at once,
/// M[ξ] (O, T) = U[ξ] (O, C) × V[ξ] (C, T): n² multiply-adds per tile, output and input channel
/// where the direct convolution spends 4r² on the tile's four outputs (36 against 100 for 5×5, 16
/// against 36 for 3×3). The products run in `sgemm`; the transforms here are fixed loops over eight
/// tiles (or eight filters) at a time.
///
/// F(2×2, 3×3) uses the points 0, ±1 and ∞ (Lavin & Gray's matrices):
///
///     Bᵀ = [ 1  0 -1  0     G = [  1    0    0      Aᵀ = [ 1  1  1  0
///            0  1  1  0           1/2  1/2  1/2            0  1 -1 -1 ]
///            0 -1  1  0           1/2 -1/2  1/2
///            0  1  0 -1 ]          0    0    1  ]
///
/// F(2×2, 5×5) uses the points 0, ±1, ±2 and ∞, with the Lagrange denominators in G:
///
///     Bᵀ = [ 4  0 -5  0  1  0     G = [  1/4     0     0     0     0     Aᵀ = [ 1  1  1  1  1  0
///            0 -4 -4  1  1  0          -1/6  -1/6  -1/6  -1/6  -1/6            0  1 -1  2 -2  1 ]
///            0  4 -4 -1  1  0          -1/6   1/6  -1/6   1/6  -1/6
///            0 -2 -1  2  1  0          1/24  1/12   1/6   1/3   2/3
///            0  2 -1 -2  1  0          1/24 -1/12   1/6  -1/3   2/3
///            0  4  0 -5  0  1 ]           0     0     0     0     1 ]
///
/// Against a Double reference at lenet5's conv2 shape (32 → 64 channels, 14×14, He-scale weights,
/// inputs in [0, 1]; `WinogradTests`), the largest error relative to the largest value is 1.9e-6 for
/// outputs (rms 8e-7), 2.9e-6 for input gradients and 4.9e-6 for weight gradients; the loop-based
/// float32 `conv2dNaive` is at 1.0e-6 (rms 5e-7). In a NumPy model of the same sums the points
/// 0, ±1, ±1/2 came out 5–20 % worse and 0, ±1, ±3 three times worse; mixing 2 and −1/2 was about
/// 1.5× more accurate but breaks the ± symmetry that keeps Bᵀ at twelve adds per column.
///
/// Buffers: tile t of a group of images is `b·tiles + ty·columns + tx`; transformed inputs, products
/// and their gradients are `(n², channels, ld)` with `ld ≥ T + Lanes.scalarCount`, because the
/// transforms store whole lanes and may write up to seven values past a row's last tile.
public struct WinogradTiling: Equatable, Sendable {
    public let geometry: ConvGeometry
    /// The kernel size r (3 or 5), the window size n = r + 1 of a tile, and the n² points of its
    /// transformed tiles.
    public let kernel: Int, window: Int, points: Int
    /// Tile rows and columns per image: ⌈outH / 2⌉ and ⌈outW / 2⌉ (the last ones partial when odd).
    public let rows: Int, columns: Int
    /// Rows of a split plane (`splitPlane`) and floats per row of each of its halves.
    let planeRows: Int, planeStride: Int

    public init(_ g: ConvGeometry) {
        precondition(WinogradTiling.applies(to: g), "F(2×2, r×r) needs a 3×3 or 5×5 kernel with stride 1")
        geometry = g
        kernel = g.kernelHeight
        window = kernel + 1
        points = window * window
        rows = (g.outHeight + 1) / 2
        columns = (g.outWidth + 1) / 2
        planeRows = 2 * rows + window - 2
        let lanes = Lanes.scalarCount
        planeStride = (columns + 2 + lanes - 1) / lanes * lanes + lanes  // whole lanes up to two columns on
    }

    /// Whether the geometry is one F(2×2, r×r) computes: a 3×3 or 5×5 kernel, stride 1, one group, the
    /// same padding on every side (any amount).
    public static func applies(to g: ConvGeometry) -> Bool {
        g.stride == 1 && (g.kernelHeight == 3 || g.kernelHeight == 5) && g.kernelWidth == g.kernelHeight && g.groups == 1
            && g.uniformPadding != nil
    }

    /// Tiles per image: `rows · columns`.
    public var tiles: Int { rows * columns }
    /// The row stride `ld` of the `(n², channels, ld)` buffers for groups of up to `images` images.
    public func leadingDimension(images: Int) -> Int { images * tiles + Lanes.scalarCount }
    /// Floats of scratch a transform needs: a split plane, or n planes and a row for the input adjoint.
    public var scratchSize: Int { (window * planeRows + 2) * planeStride }
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
    let g = t.geometry
    let (c, plane, half, n) = (g.inChannels, g.height * g.width, t.planeRows * t.planeStride, t.window)
    withTileLanes { x, work, y in
        for b in 0..<images {
            for ch in channels {
                splitPlane(input + (b * c + ch) * plane, height: g.height, width: g.width, offset: g.padTop, t, scratch)
                let row = v + ch * ld + b * t.tiles  // (n², ·, ld) at channel ch, image b
                for ty in 0..<t.rows {
                    for tx in stride(from: 0, to: t.columns, by: Lanes.scalarCount) {
                        for i in 0..<n {
                            let line = scratch + (2 * ty + i) * t.planeStride + tx
                            for j in 0..<n { x[i * n + j] = loadLanes(line + (j & 1) * half + j >> 1, Lanes.scalarCount) }
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

/// The adjoint of `winogradInputTransform` over all input channels: dX `(images, C, H, W)` = the sum over
/// tiles of B dV Bᵀ, each tile's n×n window added where it lies (the parts in the zero border dropped).
/// `dX` is overwritten; `dV` `(n², C, ld)`. `scratch`: `tiling.scratchSize` floats.
///
/// Column j of every tile's window goes to a plane of its own at the tile's column (`n · planeRows ·
/// planeStride` floats), so that each lane adds to a value of its own tile and every add reads what the
/// last one stored at that very address, never a load straddling the store before it; the n planes
/// are summed once per image row.
public func winogradInputTransformAdjoint(
    _ dv: UnsafePointer<Float>, images: Int, _ t: WinogradTiling, ld: Int,
    _ dx: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
) {
    let g = t.geometry
    let (c, plane, planes, n) = (g.inChannels, g.height * g.width, t.planeRows * t.planeStride, t.window)
    let row = scratch + n * planes  // one padded input row, (2 · planeStride)
    withTileLanes { x, work, y in
        for b in 0..<images {
            for ch in 0..<c {
                scratch.update(repeating: 0, count: n * planes)
                let tiles = dv + ch * ld + b * t.tiles
                for ty in 0..<t.rows {
                    for tx in stride(from: 0, to: t.columns, by: Lanes.scalarCount) {
                        let past = Lanes.MaskStorage(0, 1, 2, 3, 4, 5, 6, 7) .>= Int32(t.columns - tx)  // lanes of the next row
                        let at = tiles + ty * t.columns + tx
                        for xi in 0..<t.points { x[xi] = loadLanes(at + xi * c * ld, Lanes.scalarCount).replacing(with: 0, where: past) }
                        transformTile(.inputAdjoint, t, x, work, y)
                        for i in 0..<n {
                            let line = scratch + (2 * ty + i) * t.planeStride + tx + 2
                            for j in 0..<n {
                                let p = line + j * planes
                                storeLanes(loadLanes(p, Lanes.scalarCount) + y[i * n + j], p, Lanes.scalarCount)
                            }
                        }
                    }
                }
                // padded column X = 2k + parity holds column parity + 2s of tile k − s, s = 0 ..< n/2
                let out = dx + (b * c + ch) * plane
                for yy in 0..<g.height {
                    let line = scratch + (yy + g.padTop) * t.planeStride
                    for k in stride(from: 0, to: (g.width + g.padTop + 1) / 2, by: Lanes.scalarCount) {
                        func column(_ parity: Int) -> Lanes {
                            (0..<(n / 2)).reduce(Lanes()) { sum, s in sum + loadLanes(line + (parity + 2 * s) * planes + k + 2 - s, Lanes.scalarCount) }
                        }
                        var pair = SIMD16<Float>()
                        pair.evenHalf = column(0)
                        pair.oddHalf = column(1)
                        UnsafeMutableRawPointer(row + 2 * k).storeBytes(of: pair, as: SIMD16<Float>.self)
                    }
                    (out + yy * g.width).update(from: row + g.padTop, count: g.width)
                }
            }
        }
    }
}

// MARK: Outputs

/// y `(images, O, outH, outW)` = Aᵀ M A + bias for the output channels `channels`, from the products
/// M `(n², O, ld)` of `images` images (the outputs a partial tile has past the edge are dropped).
public func winogradOutputTransform(
    _ m: UnsafePointer<Float>, images: Int, outChannels o: Int, channels: Range<Int>, _ t: WinogradTiling, ld: Int,
    bias: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>
) {
    let (oh, ow) = (t.geometry.outHeight, t.geometry.outWidth)
    withTileLanes { x, work, y in
        for b in 0..<images {
            for k in channels {
                let row = m + k * ld + b * t.tiles
                let plane = output + (b * o + k) * oh * ow
                for ty in 0..<t.rows {
                    for tx in stride(from: 0, to: t.columns, by: Lanes.scalarCount) {
                        let at = row + ty * t.columns + tx
                        for xi in 0..<t.points { x[xi] = loadLanes(at + xi * o * ld, Lanes.scalarCount) }
                        transformTile(.output, t, x, work, y)
                        for r in 0..<min(2, oh - 2 * ty) {
                            let line = plane + (2 * ty + r) * ow
                            for l in 0..<min(Lanes.scalarCount, t.columns - tx) {
                                let column = 2 * (tx + l)
                                line[column] = y[r * 2][l] + bias[k]
                                if column + 1 < ow { line[column + 1] = y[r * 2 + 1][l] + bias[k] }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `winogradOutputTransform` (without the bias): dM `(n², O, ld)` = A dY Aᵀ for every
/// tile of `dy` `(images, O, outH, outW)`, zero for the outputs a partial tile has past the edge.
/// `scratch`: `tiling.scratchSize` floats.
public func winogradOutputTransformAdjoint(
    _ dy: UnsafePointer<Float>, images: Int, outChannels o: Int, _ t: WinogradTiling,
    _ dm: UnsafeMutablePointer<Float>, ld: Int, scratch: UnsafeMutablePointer<Float>
) {
    let (oh, ow, half) = (t.geometry.outHeight, t.geometry.outWidth, t.planeRows * t.planeStride)
    withTileLanes { x, work, y in
        for b in 0..<images {
            for k in 0..<o {
                splitPlane(dy + (b * o + k) * oh * ow, height: oh, width: ow, offset: 0, t, scratch)
                let row = dm + k * ld + b * t.tiles
                for ty in 0..<t.rows {
                    for tx in stride(from: 0, to: t.columns, by: Lanes.scalarCount) {
                        for r in 0..<2 {
                            let line = scratch + (2 * ty + r) * t.planeStride + tx
                            x[r * 2] = loadLanes(line, Lanes.scalarCount)
                            x[r * 2 + 1] = loadLanes(line + half, Lanes.scalarCount)
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

// MARK: Products

/// M[ξ] `(rows, T)` = U[ξ] `(rows, C)` × V[ξ] `(C, T)` for ξ = 0..<points and the output channels
/// `channels` (rows of M and U); U `(points, O, C)`, V `(points, C, ld)`, M `(points, O, ld)`.
public func winogradFilter(
    _ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
    outChannels o: Int, inChannels c: Int, channels: Range<Int>, points: Int, tiles: Int, ld: Int
) {
    for xi in 0..<points {
        sgemm(transposeA: false, transposeB: false, m: channels.count, n: tiles, k: c, u + (xi * o + channels.lowerBound) * c, lda: c,
              v + xi * c * ld, ldb: ld, m + (xi * o + channels.lowerBound) * ld, ldc: ld)
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

/// dV[ξ] `(C, T)` = U[ξ]ᵀ `(C, O)` × dM[ξ] `(O, T)` for ξ = 0..<points; U `(points, O, C)`,
/// dM `(points, O, ld)`, dV `(points, C, ld)`.
public func winogradInputGradient(
    _ u: UnsafePointer<Float>, _ dm: UnsafePointer<Float>, _ dv: UnsafeMutablePointer<Float>,
    outChannels o: Int, inChannels c: Int, points: Int, tiles: Int, ld: Int
) {
    for xi in 0..<points {
        sgemm(transposeA: true, transposeB: false, m: c, n: tiles, k: o, u + xi * o * c, lda: c,
              dm + xi * o * ld, ldb: ld, dv + xi * c * ld, ldc: ld)
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

/// Y = T X Tᵀ for the tile transform `kind` of the tiling's kernel size (X and Y as `transform2D`'s).
/// `kind` is a literal at every call, so each call keeps only its two branches, with fixed sizes.
@inline(__always)
private func transformTile(
    _ kind: TileTransform, _ t: WinogradTiling, _ x: UnsafeMutablePointer<Lanes>, _ work: UnsafeMutablePointer<Lanes>,
    _ y: UnsafeMutablePointer<Lanes>
) {
    if t.kernel == 5 {
        switch kind {
        case .input: transform2D(x, from: 6, to: 6, work, y, inputColumn)
        case .inputAdjoint: transform2D(x, from: 6, to: 6, work, y, inputColumnAdjoint)
        case .filter: transform2D(x, from: 5, to: 6, work, y, filterColumn)
        case .filterAdjoint: transform2D(x, from: 6, to: 5, work, y, filterColumnAdjoint)
        case .output: transform2D(x, from: 6, to: 2, work, y, outputColumn)
        case .outputAdjoint: transform2D(x, from: 2, to: 6, work, y, outputColumnAdjoint)
        }
    } else {
        switch kind {
        case .input: transform2D(x, from: 4, to: 4, work, y, inputColumn3)
        case .inputAdjoint: transform2D(x, from: 4, to: 4, work, y, inputColumn3Adjoint)
        case .filter: transform2D(x, from: 3, to: 4, work, y, filterColumn3)
        case .filterAdjoint: transform2D(x, from: 4, to: 3, work, y, filterColumn3Adjoint)
        case .output: transform2D(x, from: 4, to: 2, work, y, outputColumn3)
        case .outputAdjoint: transform2D(x, from: 2, to: 4, work, y, outputColumn3Adjoint)
        }
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

/// Bᵀ (4, 4) of F(2×2, 3×3) on four values.
@inline(__always)
private func inputColumn3(_ d: UnsafePointer<Lanes>, _ s: Int, _ v: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (d0, d1, d2, d3) = (d[0], d[s], d[2 * s], d[3 * s])
    v[0] = d0 - d2
    v[t] = d1 + d2
    v[2 * t] = d2 - d1
    v[3 * t] = d1 - d3
}

/// B (4, 4), the adjoint of `inputColumn3`.
@inline(__always)
private func inputColumn3Adjoint(_ v: UnsafePointer<Lanes>, _ s: Int, _ d: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (v0, v1, v2, v3) = (v[0], v[s], v[2 * s], v[3 * s])
    d[0] = v0
    d[t] = v1 - v2 + v3
    d[2 * t] = v1 + v2 - v0
    d[3 * t] = -v3
}

/// G (4, 3) of F(2×2, 3×3) on three values.
@inline(__always)
private func filterColumn3(_ g: UnsafePointer<Lanes>, _ s: Int, _ u: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (g0, g1, g2) = (g[0], g[s], g[2 * s])
    let even = g0 + g2
    u[0] = g0
    u[t] = (even + g1) * 0.5
    u[2 * t] = (even - g1) * 0.5
    u[3 * t] = g2
}

/// Gᵀ (3, 4), the adjoint of `filterColumn3`.
@inline(__always)
private func filterColumn3Adjoint(_ u: UnsafePointer<Lanes>, _ s: Int, _ g: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (u0, u1, u2, u3) = (u[0], u[s], u[2 * s], u[3 * s])
    let sum12 = (u1 + u2) * 0.5
    g[0] = u0 + sum12
    g[t] = (u1 - u2) * 0.5
    g[2 * t] = sum12 + u3
}

/// Aᵀ (2, 4) of F(2×2, 3×3) on four values.
@inline(__always)
private func outputColumn3(_ m: UnsafePointer<Lanes>, _ s: Int, _ y: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (m0, m1, m2, m3) = (m[0], m[s], m[2 * s], m[3 * s])
    y[0] = m0 + m1 + m2
    y[t] = m1 - m2 - m3
}

/// A (4, 2), the adjoint of `outputColumn3`.
@inline(__always)
private func outputColumn3Adjoint(_ y: UnsafePointer<Lanes>, _ s: Int, _ m: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (y0, y1) = (y[0], y[s])
    m[0] = y0
    m[t] = y0 + y1
    m[2 * t] = y0 - y1
    m[3 * t] = -y1
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

/// G (6, 5) on five values.
@inline(__always)
private func filterColumn(_ g: UnsafePointer<Lanes>, _ s: Int, _ u: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (g0, g1, g2, g3, g4) = (g[0], g[s], g[2 * s], g[3 * s], g[4 * s])
    let even = g0 + g2 + g4, odd = g1 + g3
    let even4 = g0 + 4 * g2 + 16 * g4, odd4 = 2 * g1 + 8 * g3
    u[0] = g0 * 0.25
    u[t] = (even + odd) * (-1 / 6)
    u[2 * t] = (even - odd) * (-1 / 6)
    u[3 * t] = (even4 + odd4) * (1 / 24)
    u[4 * t] = (even4 - odd4) * (1 / 24)
    u[5 * t] = g4
}

/// Gᵀ (5, 6), the adjoint of `filterColumn`.
@inline(__always)
private func filterColumnAdjoint(_ u: UnsafePointer<Lanes>, _ s: Int, _ g: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (u0, u1, u2, u3, u4, u5) = (u[0], u[s], u[2 * s], u[3 * s], u[4 * s], u[5 * s])
    let sum12 = (u1 + u2) * (-1 / 6), diff12 = (u1 - u2) * (-1 / 6), sum34 = (u3 + u4) * (1 / 24), diff34 = (u3 - u4) * (1 / 24)
    g[0] = u0 * 0.25 + sum12 + sum34
    g[t] = diff12 + 2 * diff34
    g[2 * t] = sum12 + 4 * sum34
    g[3 * t] = diff12 + 8 * diff34
    g[4 * t] = sum12 + 16 * sum34 + u5
}

/// Aᵀ (2, 6) on six values.
@inline(__always)
private func outputColumn(_ m: UnsafePointer<Lanes>, _ s: Int, _ y: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (m0, m1, m2, m3, m4, m5) = (m[0], m[s], m[2 * s], m[3 * s], m[4 * s], m[5 * s])
    y[0] = m0 + m1 + m2 + m3 + m4
    y[t] = m1 - m2 + 2 * (m3 - m4) + m5
}

/// A (6, 2), the adjoint of `outputColumn`.
@inline(__always)
private func outputColumnAdjoint(_ y: UnsafePointer<Lanes>, _ s: Int, _ m: UnsafeMutablePointer<Lanes>, _ t: Int) {
    let (y0, y1) = (y[0], y[s])
    m[0] = y0
    m[t] = y0 + y1
    m[2 * t] = y0 - y1
    m[3 * t] = y0 + 2 * y1
    m[4 * t] = y0 - 2 * y1
    m[5 * t] = y1
}

/// Copies the plane `x` `(height, width)` into `split`, zeroed first (`2 · planeRows · planeStride` floats):
/// value (y, x) goes to row `y + offset`, column `(x + offset) / 2` of the even half (the first
/// `planeRows · planeStride` floats) or the odd half, by the parity of `x + offset`. A tile's window
/// columns are then whole-lane loads from the halves, one lane per tile.
@inline(__always)
private func splitPlane(_ x: UnsafePointer<Float>, height: Int, width: Int, offset: Int, _ t: WinogradTiling, _ split: UnsafeMutablePointer<Float>) {
    let half = t.planeRows * t.planeStride
    split.update(repeating: 0, count: 2 * half)
    for y in 0..<height {
        let line = split + (y + offset) * t.planeStride
        for column in 0..<width {
            let at = column + offset
            line[(at & 1) * half + at >> 1] = x[y * width + column]
        }
    }
}
