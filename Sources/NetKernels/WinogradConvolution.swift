/// A 3×3 or 5×5 stride-1 convolution over a batch through F(4×4, 3×3) or F(2×2, 5×5), the kernels of `Winograd.swift`: the
/// scratch each worker needs and the order of transforms and products, for the forward pass and for the
/// weight and input gradients. `conv2dNaive` and `conv2dBackwardNaive` are its oracles.
///
/// Each worker takes its images in groups of at most `group`: the group's transformed inputs and
/// products stay in the core's cache between the transforms and the n² products over all of its tiles.
public struct WinogradConvolution: Sendable {
    public let tiling: WinogradTiling
    public let outChannels: Int
    /// Images per worker per batch of products: 4, or enough for `minimumProductTiles` tiles where 4
    /// images have fewer (64 of zfnet's 4×4 planes, one 4×4 tile each; 16 of them ran zfnet's conv3 at
    /// 4,688 images/s against 5,078 for 64, medians of four alternated rounds). Larger groups of larger
    /// planes lose: their transformed tiles no longer stay in the cache (13 images of zfnet's 8×8 conv2,
    /// 208 tiles, ran at half the speed of 4).
    public let group: Int

    /// The fewest tiles T a group's products should have.
    public static let minimumProductTiles = 64

    /// Tile rows per block when one image has at least as many tiles as output channels and enough tile
    /// rows for every worker to take whole blocks of at least `minimumProductTiles` tiles, else nil.
    /// Each worker then multiplies and transforms back its own rows, block by block, so that a block's
    /// products stay in its core's cache and it packs only its own tiles (splitting the output channels,
    /// both workers pack every tile and the products go out to memory and back). Medians of four or
    /// more alternated runs at 224x224 (session 23): VGG-11's conv2 (784 tiles, 128 outputs) 5.6 ms
    /// against 7.5, AlexNet's conv2 (196 tiles of F(2×2, 5×5), 192 outputs) 1.8 ms against 2.3; VGG-11's
    /// conv3 and conv4 (196 tiles, 256 outputs) were 5-15 % slower in blocks, each worker reading all of U
    /// for each of its blocks, so they split the output channels.
    var singleImageBlockRows: Int? {
        guard !tiling.gathers && outChannels <= tiling.tiles else { return nil }
        let rows = (Self.minimumProductTiles + tiling.columns - 1) / tiling.columns
        return tiling.rows >= workerCount(tiling.rows) * rows ? rows : nil
    }

    public init(geometry: ConvGeometry, outChannels: Int) {
        tiling = WinogradTiling(geometry)
        self.outChannels = outChannels
        group = max(4, (Self.minimumProductTiles + tiling.tiles - 1) / tiling.tiles)
    }

    public var geometry: ConvGeometry { tiling.geometry }

    /// The row stride of the `(n², channels, ld)` buffers, for one group.
    private var ld: Int { tiling.leadingDimension(images: group) }

    /// Floats of scratch per worker (`Workspace.reserve`): transformed inputs V `(n², C, ld)`, products M
    /// `(n², O, ld)`, a split plane for the transforms, the transformed filters U `(n², O, C)` (worker 0's
    /// only), and partial weight and bias gradients in the transformed domain `(n², O, C)`, `(O)`. A
    /// forward pass takes only the part before the gradients, and before U when it is given U.
    public var scratchSize: Int { forwardScratchSize(filtersGiven: false) + transformedFilterCount + outChannels }

    private func forwardScratchSize(filtersGiven: Bool) -> Int {
        let (c, o, points) = (geometry.inChannels, outChannels, tiling.points)
        return points * (c + o) * ld + tiling.scratchSize + (filtersGiven ? 0 : transformedFilterCount)
    }

    /// Floats of the transformed filters U `(n², O, C)`.
    public var transformedFilterCount: Int { tiling.points * outChannels * geometry.inChannels }

    /// U `(n², O, C)` = G g Gᵀ for every filter g of `weight` `(O, C, r, r)`, which `forward` and `backward`
    /// otherwise compute on every call: for a layer whose weights no longer change, to pass to them instead.
    public func transformFilters(_ weight: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        parallelRanges(outChannels) { channels, _ in
            winogradWeightTransform(weight, outChannels: outChannels, inChannels: geometry.inChannels, channels: channels, tiling, u)
        }
    }

    /// The images per group when one worker computes `count` images: at most `group`, and all groups of
    /// about the same size (50 images in groups of 49 would leave one image to a product of its own).
    private func groupSize(of count: Int) -> Int {
        let groups = max(1, (count + group - 1) / group)
        return max(1, (count + groups - 1) / groups)
    }

    /// The workers a pass over `n` images takes `scratchSize` floats for: one image splits its input
    /// and output channels (or its tile rows) among them, a batch its images.
    public func workers(batch n: Int) -> Int {
        n == 1 ? max(workerCount(geometry.inChannels), workerCount(outChannels), workerCount(tiling.rows)) : workerCount(n)
    }

    private struct Scratch {
        var v, m, plane, partial, u: UnsafeMutablePointer<Float>
    }

    /// The regions of `worker`'s scratch, of which `size` floats are reserved.
    private func scratch(_ workspace: Workspace, worker: Int, size: Int) -> Scratch {
        let (c, o, points) = (geometry.inChannels, outChannels, tiling.points)
        let v = workspace.floats(size, worker: worker)
        let m = v + points * c * ld, plane = m + points * o * ld
        let u = plane + tiling.scratchSize
        return Scratch(v: v, m: m, plane: plane, partial: u + transformedFilterCount, u: u)
    }

    /// `output` `(n, O, outH, outW)` = f(W ⋆ input + b) for `input` `(n, C, H, W)`, `weight`
    /// `(O, C, r, r)` (or its transform U `transformedFilters`, `transformFilters`), `bias` `(O)` and the
    /// activation f: U once for the pass unless given, then each worker transforms, multiplies and
    /// transforms back its groups of images. One image splits the input channels for its transform, then
    /// the output channels, or its tile rows when `singleImageBlockRows` says so.
    public func forward(
        _ input: UnsafePointer<Float>, weight: UnsafePointer<Float>, transformedFilters: UnsafePointer<Float>?, bias: UnsafePointer<Float>,
        activation: Activation, _ output: UnsafeMutablePointer<Float>, batch n: Int, workspace: Workspace
    ) {
        let (t, c, o, p, ld, points) = (tiling, geometry.inChannels, outChannels, geometry.positions, self.ld, tiling.points)
        let size = forwardScratchSize(filtersGiven: transformedFilters != nil)
        workspace.reserve(size, workers: workers(batch: n))
        let shared = scratch(workspace, worker: 0, size: size)
        let u = transformedFilters ?? UnsafePointer(shared.u)
        if n == 1 {
            parallelRanges(c) { channels, worker in
                winogradInputTransform(input, images: 1, channels: channels, t, shared.v, ld: ld, scratch: scratch(workspace, worker: worker, size: size).plane)
            }
            if let rowsPerBlock = singleImageBlockRows {
                if transformedFilters == nil { transformFilters(weight, into: shared.u) }
                let (width, oh) = (geometry.outWidth, geometry.outHeight)
                parallelRanges(t.rows) { rows, worker in
                    let products = scratch(workspace, worker: worker, size: size).m  // (n², O, tiles of a block + lanes)
                    for first in stride(from: rows.lowerBound, to: rows.upperBound, by: rowsPerBlock) {
                        let block = first..<min(first + rowsPerBlock, rows.upperBound)
                        let tiles = block.count * t.columns, ldm = tiles + Lanes.scalarCount
                        winogradFilter(u, shared.v + first * t.columns, products, outChannels: o, inChannels: c, channels: 0..<o, points: points,
                                       tiles: tiles, ld: ld, productLD: ldm)
                        winogradOutputTransform(products, images: 1, outChannels: o, channels: 0..<o, t, ld: ldm, bias: bias, output, tileRows: block)
                        let (y0, y1) = (t.tile * block.lowerBound, min(t.tile * block.upperBound, oh))
                        for k in 0..<o { activation.apply(output + k * p + y0 * width, count: (y1 - y0) * width) }
                    }
                }
                return
            }
            parallelRanges(o, minimumPerWorker: 8) { channels, _ in
                if transformedFilters == nil { winogradWeightTransform(weight, outChannels: o, inChannels: c, channels: channels, t, shared.u) }
                winogradFilter(u, shared.v, shared.m, outChannels: o, inChannels: c, channels: channels, points: points, tiles: t.tiles, ld: ld)
                winogradOutputTransform(shared.m, images: 1, outChannels: o, channels: channels, t, ld: ld, bias: bias, output)
                activation.apply(output + channels.lowerBound * p, count: channels.count * p)
            }
            return
        }
        if transformedFilters == nil { transformFilters(weight, into: shared.u) }
        parallelRanges(n) { images, worker in
            let s = scratch(workspace, worker: worker, size: size)
            let group = groupSize(of: images.count)
            for first in stride(from: images.lowerBound, to: images.upperBound, by: group) {
                let count = min(group, images.upperBound - first)
                let y = output + first * o * p  // (count, O, outH, outW)
                winogradInputTransform(input + first * geometry.inputSize, images: count, channels: 0..<c, t, s.v, ld: ld, scratch: s.plane)
                winogradFilter(u, s.v, s.m, outChannels: o, inChannels: c, channels: 0..<o, points: points, tiles: count * t.tiles, ld: ld)
                winogradOutputTransform(s.m, images: count, outChannels: o, channels: 0..<o, t, ld: ld, bias: bias, y)
                activation.apply(y, count: count * o * p)
            }
        }
    }

    /// The gradients of `dy` `(n, O, outH, outW)` at the output, carried first through the activation's
    /// derivative, in place in `dy`, when `output` is given (`dy` is only read otherwise):
    /// - with `weightGradients`, the weight gradient `(O, C, r, r)` and bias gradient `(O)` of the
    ///   forward pass's `input` `(n, C, H, W)` are added to `weight` and `bias`;
    /// - `inputGradient` `(n, C, H, W)`, when given, is overwritten with Wᵀ ⋆ dy.
    ///
    /// Each worker carries its groups' `dy` back through the output transform once, forms its weight
    /// gradient in the transformed domain (dU += dM × Vᵀ, V transformed again from the input) and the
    /// input gradient (dV = Uᵀ × dM, back through the input transform; U is `transformedFilters` when
    /// given). The partial dU and bias sums are added in worker order, then dU is carried back through the
    /// weight transform. The input gradient alone of one image (a projection) splits the output channels
    /// for the output transform, then the input channels.
    public func backward(
        _ dy: UnsafePointer<Float>, output: UnsafePointer<Float>?, activation: Activation, weight: UnsafePointer<Float>,
        transformedFilters: UnsafePointer<Float>?,
        weightGradients: (input: UnsafePointer<Float>, weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>)?,
        inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, workspace: Workspace
    ) {
        let (t, c, o, p, ld, points) = (tiling, geometry.inChannels, outChannels, geometry.positions, self.ld, tiling.points)
        let input = weightGradients?.input
        workspace.reserve(scratchSize, workers: workers(batch: n))
        let shared = scratch(workspace, worker: 0, size: scratchSize)
        let u = transformedFilters ?? UnsafePointer(shared.u)
        if inputGradient != nil && transformedFilters == nil { transformFilters(weight, into: shared.u) }
        if n == 1, input == nil, let inputGradient {
            let d = UnsafeMutablePointer(mutating: dy)  // (O, outH, outW)
            parallelRanges(o) { channels, worker in
                let at = channels.lowerBound * p
                if let output { activation.backward(output: output + at, gradient: d + at, count: channels.count * p) }
                winogradOutputTransformAdjoint(d, images: 1, outChannels: o, channels: channels, t, shared.m, ld: ld,
                                               scratch: scratch(workspace, worker: worker, size: scratchSize).plane)
            }
            parallelRanges(c) { channels, worker in
                winogradInputGradient(u, shared.m, shared.v, outChannels: o, inChannels: c, channels: channels, points: points, tiles: t.tiles, ld: ld)
                winogradInputTransformAdjoint(shared.v, images: 1, channels: channels, t, ld: ld, inputGradient,
                                              scratch: scratch(workspace, worker: worker, size: scratchSize).plane)
            }
            return
        }
        parallelRanges(n) { images, worker in
            let s = scratch(workspace, worker: worker, size: scratchSize)
            let partialBias = s.partial + points * o * c
            if input != nil { s.partial.update(repeating: 0, count: points * o * c + o) }
            let size = groupSize(of: images.count)
            for first in stride(from: images.lowerBound, to: images.upperBound, by: size) {
                let count = min(size, images.upperBound - first)
                let d = UnsafeMutablePointer(mutating: dy + first * o * p)  // (count, O, outH, outW)
                if let output { activation.backward(output: output + first * o * p, gradient: d, count: count * o * p) }
                winogradOutputTransformAdjoint(d, images: count, outChannels: o, channels: 0..<o, t, s.m, ld: ld, scratch: s.plane)
                if let input {
                    for b in 0..<count {
                        for k in 0..<o { partialBias[k] += sum(d + (b * o + k) * p, count: p) }
                    }
                    winogradInputTransform(input + first * geometry.inputSize, images: count, channels: 0..<c, t, s.v, ld: ld, scratch: s.plane)
                    winogradWeightGradient(s.m, s.v, s.partial, outChannels: o, inChannels: c, points: points, tiles: count * t.tiles, ld: ld)
                }
                if let inputGradient {
                    winogradInputGradient(u, s.m, s.v, outChannels: o, inChannels: c, channels: 0..<c, points: points, tiles: count * t.tiles, ld: ld)
                    winogradInputTransformAdjoint(s.v, images: count, channels: 0..<c, t, ld: ld, inputGradient + first * geometry.inputSize, scratch: s.plane)
                }
            }
        }
        guard let weightGradients else { return }
        let total = shared.partial  // (n², O, C), then (O)
        for worker in 1..<workerCount(n) {
            let partial = scratch(workspace, worker: worker, size: scratchSize).partial
            for i in 0..<(points * o * c + o) { total[i] += partial[i] }
        }
        parallelRanges(o) { channels, _ in
            winogradWeightTransformAdjoint(total, outChannels: o, inChannels: c, channels: channels, t, weightGradients.weight)
        }
        for k in 0..<o { weightGradients.bias[k] += total[points * o * c + k] }
    }
}
