/// A 2-D convolution with bias and a fused activation: `y = f(W ⋆ x + b)`, with any stride, padding
/// per side and groups (`geometry`). Weight `(O, C/groups, kh, kw)`, bias `(O)`, as PyTorch's `Conv2d`.
/// Computed per image as im2col plus one sgemm per group; backward is two sgemms per group plus
/// col2im per image. That is the reference path; 3×3 and 5×5 stride-1 convolutions with enough
/// channels (ungrouped, the same padding on every side) take Winograd's F(4×4, 3×3) or F(2×2, 5×5) instead (`WinogradConvolution`), in
/// the forward pass, the backward pass and `backwardData` alike, and other stride-1 layers with at
/// most `directMaximumOutChannels` outputs compute their output and weight gradient directly
/// (`DirectConvolution`). `path` says which; `take(_:)` forces one, to measure them against each other.
public final class Conv2D: Layer {
    public let name: String
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let activation: Activation
    public private(set) var weight: UnsafeMutablePointer<Float>!
    public private(set) var bias: UnsafeMutablePointer<Float>!
    private var weightGradient: UnsafeMutablePointer<Float>!
    private var biasGradient: UnsafeMutablePointer<Float>!
    /// The path this layer computes with: `preferredPath` unless `take(_:)` chose another.
    public private(set) var path = ConvolutionPath.im2col
    /// The Winograd path, for a layer that takes it.
    private var winograd: WinogradConvolution?
    /// The direct path, for a layer that takes it.
    private var direct: DirectConvolution?
    /// Whether the weights no longer change (`fixParameters()`).
    private var parametersAreFixed = false
    /// The Winograd path's transformed filters U, computed once when the weights were fixed (and shared
    /// with the copies of `resized`); nil before, and on the other paths.
    private var fixedFilters: Floats?

    /// Floats held by reference: the direct path's rearranged weights, refilled by every forward pass
    /// into the caller's memory, and the Winograd path's fixed transformed filters.
    fileprivate final class Floats {
        let pointer: UnsafeMutablePointer<Float>
        init(count: Int) { pointer = .allocate(capacity: count) }
        deinit { pointer.deallocate() }
    }

    public init(name: String, geometry: ConvGeometry, outChannels: Int, activation: Activation) {
        self.name = name
        self.geometry = geometry
        self.outChannels = outChannels
        self.activation = activation
        take(preferredPath)
    }

    /// Floats of the transformed filters U that `fixParameters()` keeps on the Winograd path (4 per weight
    /// of a 3×3 layer, 1.44 of a 5×5 one), 0 on the others.
    public var derivedParameterCount: Int { winograd?.transformedFilterCount ?? 0 }

    /// Transforms the filters for the Winograd path once (`WinogradConvolution.transformFilters`), for
    /// every pass from now on; the weights must not change after this.
    public func fixParameters() {
        parametersAreFixed = true
        fixedFilters = winograd.map { winograd in
            let u = Floats(count: winograd.transformedFilterCount)
            winograd.transformFilters(weight, into: u.pointer)
            return u
        }
    }

    /// A copy of this layer for planes of `height` × `width` (the same filters, stride and activation,
    /// on this layer's weights; this layer's padding, or `padding` (top, left, bottom, right) when given),
    /// to compute over a crop of its planes. It computes with im2col; or, when the padding is this
    /// layer's and `resizedTakesWinograd` says so, with Winograd on this layer's transformed filters. Its
    /// passes must form no parameter gradients (they would be this layer's).
    public func resized(height: Int, width: Int, padding: (top: Int, left: Int, bottom: Int, right: Int)? = nil) -> Conv2D {
        var g = geometry
        (g.height, g.width) = (height, width)
        if let padding { (g.padTop, g.padLeft, g.padBottom, g.padRight) = padding }
        let copy = Conv2D(name: name, geometry: g, outChannels: outChannels, activation: activation)
        copy.bind(parameters: [weight, bias], gradients: [weightGradient, biasGradient])
        if padding == nil && resizedTakesWinograd(height: height, width: width) {
            (copy.parametersAreFixed, copy.fixedFilters) = (true, fixedFilters)
        } else {
            copy.take(.im2col)
        }
        return copy
    }

    /// Whether `resized(height:width:)` with this layer's padding computes with Winograd: when this
    /// layer's transformed filters are fixed and a 3×3 layer of that size takes Winograd with at least
    /// `winogradMinimumCropTiles` tiles. Crops of 5×5 layers take im2col: on AlexNet's conv2 crop under
    /// a conv5 unit (15×15 outputs, 64 tiles of F(2×2, 5×5)) Winograd's 36 products of (192×64)·(64×64)
    /// made the whole projection about 20% slower than im2col's one (192×1600)·(1600×225) (session 19,
    /// Emerald Rapids); over the whole 27×27 plane the two paths take about the same time.
    public func resizedTakesWinograd(height: Int, width: Int) -> Bool {
        var g = geometry
        (g.height, g.width) = (height, width)
        return fixedFilters != nil && Conv2D.preferredPath(g, outChannels: outChannels) == .winograd
            && g.kernelHeight == 3 && WinogradTiling(g).tiles >= Conv2D.winogradMinimumCropTiles
    }

    public var inputShape: [Int] { [geometry.inChannels, geometry.height, geometry.width] }
    public var outputShape: [Int] { [outChannels, geometry.outHeight, geometry.outWidth] }
    public var parameterShapes: [(suffix: String, shape: [Int])] {
        [("weight", [outChannels, geometry.groupChannels, geometry.kernelHeight, geometry.kernelWidth]), ("bias", [outChannels])]
    }
    public var multiplyAdds: Int { outChannels * geometry.groupPatchSize * geometry.positions }
    public var window: ConvGeometry? { geometry }
    public var fusedActivation: Activation? { activation }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        (weight, bias) = (parameters[0], parameters[1])
        (weightGradient, biasGradient) = (gradients[0], gradients[1])
    }

    /// Per-worker scratch: the columns of `imagesPerProduct` images `(K, m·P)` (or, on the direct path,
    /// one image's zero-bordered copy and its padded output gradient), the product of several images
    /// `(O, m·P)` before it is scattered to NCHW (or their output gradients gathered for one), then
    /// partial weight and bias gradients `(O, K/groups)`, `(O)`.
    private func scratch(_ workspace: Workspace, worker: Int)
        -> (col: UnsafeMutablePointer<Float>, product: UnsafeMutablePointer<Float>, weightGradient: UnsafeMutablePointer<Float>) {
        let col = workspace.floats(scratchSize, worker: worker)
        return (col, col + columnsScratchSize, col + columnsScratchSize + productScratchSize)
    }

    private var columnsScratchSize: Int {
        max(geometry.patchSize * geometry.positions * imagesPerProduct, direct.map { $0.paddedSize + $0.paddedGradientSize } ?? 0)
    }

    private var productScratchSize: Int { imagesPerProduct > 1 ? outChannels * geometry.positions * imagesPerProduct : 0 }

    private var scratchSize: Int { columnsScratchSize + productScratchSize + outChannels * (geometry.groupPatchSize + 1) }

    /// The Winograd path's scratch, or `scratchSize` for each worker of the batch (a pass over one image
    /// uses worker 0's alone).
    public func workspace(batch n: Int) -> (floatsPerWorker: Int, workers: Int) {
        if let winograd { return (winograd.scratchSize, winograd.workers(batch: n)) }
        return (scratchSize, workerCount(n))
    }

    /// The fewest product columns (output positions) the im2col path gives one sgemm: a layer with fewer
    /// positions per image (zfnet's 8×8 and 4×4 layers) unfolds several images side by side into one
    /// wider product, whose `(O, m·P)` result is then scattered to NCHW (and the output gradients
    /// gathered the other way); the LeNet layers, with 196 and more positions, keep one image per product.
    static let minimumProductColumns = 128

    /// The fewest output positions of one image whose forward pass the workers split by output rows
    /// rather than channels: single-threaded sgemm runs AlexNet's conv1 (64 × 3025 × 363) and conv2
    /// (192 × 729 × 1600) 25–55 % faster on half the columns than on half the filters, while on its
    /// 13×13 layers neither split is reliably ahead (measured with OpenBLAS 0.3.21 here).
    static let rowSplittingMinimumPositions = 512

    /// Images whose columns go into one product on the im2col path (1 on the direct path).
    var imagesPerProduct: Int {
        direct != nil || geometry.positions >= Conv2D.minimumProductColumns ? 1
            : (Conv2D.minimumProductColumns + geometry.positions - 1) / geometry.positions
    }

    /// Each worker takes its images `imagesPerProduct` at a time: their columns stay in the core's cache
    /// for their product; for one image the `(O, P)` result is already its NCHW output. When the record
    /// keeps this layer's pre-activations, the Winograd path applies the activation after the whole
    /// pass, to keep them.
    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        if let winograd {
            let keep = memory.preActivation != nil
            winograd.forward(input, weight: weight, transformedFilters: fixedFilters.map { UnsafePointer($0.pointer) }, bias: bias,
                             activation: keep ? .identity : activation, output, batch: n, workspace: workspace)
            if keep { activate(output, count: n * outputCount, in: output, memory: memory) }
            return
        }
        workspace.reserve(scratchSize, workers: workerCount(n))
        if n == 1 && direct == nil {
            forwardOne(input, output, memory: memory, workspace: workspace)
            return
        }
        let packedWeights = direct.map { kernel in
            let packed = memory.state { Floats(count: kernel.packedWeightSize) }.pointer
            kernel.packWeights(weight, into: packed)
            return packed
        }
        let (o, p) = (outChannels, geometry.positions)
        parallelRanges(n) { images, worker in
            let (col, product, _) = scratch(workspace, worker: worker)
            for first in stride(from: images.lowerBound, to: images.upperBound, by: imagesPerProduct) {
                let m = min(imagesPerProduct, images.upperBound - first)
                let y = output + first * o * p
                if let kernel = direct, let packedWeights {
                    kernel.pad(input + first * geometry.inputSize, into: col)
                    kernel.forward(padded: col, packedWeights: packedWeights, bias: bias, y)
                    activate(y, count: o * p, in: output, memory: memory)
                } else if m == 1 {
                    im2col(input + first * geometry.inputSize, images: 1, geometry, col)
                    filter(col, channels: 0..<o, columns: 0..<p, y, in: output, memory: memory)
                } else {
                    im2col(input + first * geometry.inputSize, images: m, geometry, col)
                    let columns = m * p
                    forEachGroup(of: 0..<o) { group, part in
                        let k = geometry.groupPatchSize
                        sgemm(transposeA: false, transposeB: false, m: part.count, n: columns, k: k, weight + part.lowerBound * k, lda: k,
                              col + group * k * columns, ldb: columns, product + part.lowerBound * columns, ldc: columns)
                    }
                    for b in 0..<m {
                        for c in 0..<o { addBias(product + c * columns + b * p, bias[c], into: y + (b * o + c) * p, count: p) }
                    }
                    activate(y, count: m * o * p, in: output, memory: memory)
                }
            }
        }
    }

    /// One image (interactive analyses: projections, occlusion's unoccluded pass, predict). A plane of
    /// at least `rowSplittingMinimumPositions` outputs is split by output rows: each worker unfolds its
    /// rows' columns into its own part of col and multiplies all filters with them. A smaller plane is
    /// split by output channels after the workers unfold col by input channels. (A direct-path layer has
    /// too few channels to split.)
    private func forwardOne(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, memory: LayerMemory, workspace: Workspace) {
        let p = geometry.positions
        let col = scratch(workspace, worker: 0).col
        if p >= Conv2D.rowSplittingMinimumPositions {
            parallelRanges(geometry.outHeight) { rows, _ in
                let columns = (rows.lowerBound * geometry.outWidth)..<(rows.upperBound * geometry.outWidth)
                let part = col + geometry.patchSize * columns.lowerBound  // (C·kh·kw, columns.count)
                im2col(input, images: 1, geometry, part, outputRows: rows)
                filter(part, channels: 0..<outChannels, columns: columns, output, in: output, memory: memory)
            }
            return
        }
        parallelRanges(geometry.inChannels) { channels, _ in  // each channel fills its own rows of col
            var part = geometry
            part.inChannels = channels.count
            im2col(input + channels.lowerBound * geometry.height * geometry.width, images: 1, part,
                   col + channels.lowerBound * geometry.kernelHeight * geometry.kernelWidth * p)
        }
        parallelRanges(outChannels, minimumPerWorker: 8) { channels, _ in
            filter(col, channels: channels, columns: 0..<p, output, in: output, memory: memory)
        }
    }

    /// y[channels, columns] = f(W[channels] `(channels, K/groups)` × col[their group] `(K/groups,
    /// columns.count)` + b[channels]) for one image's output `y` `(O, P)`: `col` holds the unfolded
    /// columns `columns` of the output positions, a group's rows after the previous group's. The bias
    /// is written first and each group's product added to it. `y` lies inside `output` (see `activate`).
    private func filter(_ col: UnsafePointer<Float>, channels: Range<Int>, columns: Range<Int>, _ y: UnsafeMutablePointer<Float>,
                        in output: UnsafeMutablePointer<Float>, memory: LayerMemory) {
        let (k, p, width) = (geometry.groupPatchSize, geometry.positions, columns.count)
        for c in channels { (y + c * p + columns.lowerBound).update(repeating: bias[c], count: width) }
        forEachGroup(of: channels) { group, part in
            guard !part.isEmpty else { return }
            sgemm(transposeA: false, transposeB: false, m: part.count, n: width, k: k, weight + part.lowerBound * k, lda: k,
                  col + group * k * width, ldb: width, beta: 1, y + part.lowerBound * p + columns.lowerBound, ldc: p)
        }
        for c in channels { activate(y + c * p + columns.lowerBound, count: width, in: output, memory: memory) }
    }

    /// dst = src + bias over `count` values.
    private func addBias(_ src: UnsafePointer<Float>, _ bias: Float, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = src[i] + bias }
    }

    /// Calls `body(group, part)` for every group in order, `part` being the output channels of
    /// `channels` in that group (possibly empty).
    private func forEachGroup(of channels: Range<Int>, _ body: (_ group: Int, _ part: Range<Int>) -> Void) {
        let perGroup = outChannels / geometry.groups
        for group in 0..<geometry.groups {
            body(group, channels.clamped(to: group * perGroup..<(group + 1) * perGroup))
        }
    }

    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        transposedPass(outputGradient, channels: 0..<outChannels, output: output, input: input, inputGradient: inputGradient, batch: n, workspace: workspace)
    }

    /// The deconvnet's filtering step: `inputGradient` `(n, C, H, W)` = the transposed convolution of
    /// `signal` `(n, O, outH, outW)` (or `(n, channels.count, outH, outW)`: only those output channels
    /// and their filters) with the same (flipped) filters. No bias, no activation.
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        transposedPass(signal, channels: channels ?? 0..<outChannels, output: nil, input: nil, inputGradient: inputGradient, batch: n, workspace: workspace)
    }

    /// Weight gradients (when `input` is given) and input gradients (when `inputGradient` is given) of
    /// the gradient `dy` at the output; through the activation's derivative, in place in `dy`, when
    /// `output` is given (`dy` is only read otherwise). `dy` holds the output channels `channels`, with
    /// their filters (all of them when weight gradients are formed); a subset takes the path a layer of
    /// that many outputs would prefer (unless `take(_:)` chose this layer's). Each worker takes its
    /// images one at a time, reads `dy` `(O, P)` of each where it lies, and sums their weight gradients
    /// privately; the partial sums are added in worker order. Several images share one product
    /// (`imagesPerProduct`): their gradients are gathered side by side into `(O, m·P)` first. The input
    /// gradient of one image (an ungrouped layer) is split by input channels instead
    /// (`inputGradientSplittingChannels`), after the weight gradients.
    private func transposedPass(
        _ dy: UnsafePointer<Float>, channels: Range<Int>, output: UnsafePointer<Float>?, input: UnsafePointer<Float>?,
        inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, workspace: Workspace
    ) {
        precondition(input == nil || channels == 0..<outChannels, "weight gradients take every output channel")
        let subsetPath = path == preferredPath ? Conv2D.preferredPath(geometry, outChannels: channels.count) : path
        if let winograd = channels.count == outChannels ? winograd
            : subsetPath == .winograd ? WinogradConvolution(geometry: geometry, outChannels: channels.count) : nil {
            // the fixed transform holds every output channel's filters
            let transformed = channels.count == outChannels ? fixedFilters.map { UnsafePointer($0.pointer) } : nil
            winograd.backward(dy, output: output, activation: activation, weight: weight + channels.lowerBound * geometry.groupPatchSize,
                              transformedFilters: transformed,
                              weightGradients: input.map { ($0, weightGradient, biasGradient) }, inputGradient: inputGradient,
                              batch: n, workspace: workspace)
            return
        }
        if n == 1, let inputGradient, geometry.groups == 1, workerCount(geometry.inChannels) > 1 {
            if input != nil {
                transposedPass(dy, channels: channels, output: output, input: input, inputGradient: nil, batch: 1, workspace: workspace)
            }
            inputGradientSplittingChannels(dy, channels: channels, inputGradient, workspace: workspace)
            return
        }
        let (k, p, o) = (geometry.groupPatchSize, geometry.positions, channels.count)
        workspace.reserve(scratchSize, workers: workerCount(n))
        parallelRanges(n) { images, worker in
            let (col, product, partial) = scratch(workspace, worker: worker)
            let partialBias = partial + o * k
            if input != nil { partial.update(repeating: 0, count: o * k + o) }  // (`backwardData` forms no weight gradient)
            for first in stride(from: images.lowerBound, to: images.upperBound, by: imagesPerProduct) {
                let m = min(imagesPerProduct, images.upperBound - first)
                let columns = m * p
                for b in first..<(first + m) {
                    let d = UnsafeMutablePointer(mutating: dy + b * o * p)  // (O, P)
                    if let output { activation.backward(output: output + b * o * p, gradient: d, count: o * p) }
                    if input != nil { for c in 0..<o { partialBias[c] += sum(d + c * p, count: p) } }
                }
                // dy of the m images as one (O, m·P) matrix: in place for one image, gathered for several
                let d = m == 1 ? dy + first * o * p : UnsafePointer(product)
                if m > 1 {
                    for b in 0..<m {
                        for c in 0..<o { (product + c * columns + b * p).update(from: dy + ((first + b) * o + c) * p, count: p) }
                    }
                }
                if let input {
                    if let kernel = direct {
                        kernel.pad(input + first * geometry.inputSize, into: col)
                        kernel.padGradient(d, into: col + kernel.paddedSize)
                        kernel.accumulateWeightGradient(padded: col, paddedGradient: col + kernel.paddedSize, into: partial)
                    } else {
                        im2col(input + first * geometry.inputSize, images: m, geometry, col)
                        // dW[group] (O/groups, K/groups) += dy[group] (O/groups, m·P) × col[group]ᵀ (m·P, K/groups)
                        forEachGroup(of: channels) { group, part in
                            let row = part.lowerBound - channels.lowerBound
                            sgemm(transposeA: false, transposeB: true, m: part.count, n: k, k: columns, d + row * columns, lda: columns,
                                  col + group * k * columns, ldb: columns, beta: 1, partial + row * k, ldc: k)
                        }
                    }
                }
                if let inputGradient {
                    // dcol[group] (K/groups, m·P) = W[group]ᵀ (K/groups, O/groups) × dy[group] (O/groups, m·P)
                    forEachGroup(of: channels) { group, part in
                        let rows = col + group * k * columns
                        guard !part.isEmpty else { return rows.update(repeating: 0, count: k * columns) }
                        sgemm(transposeA: true, transposeB: false, m: k, n: columns, k: part.count, weight + part.lowerBound * k, lda: k,
                              d + (part.lowerBound - channels.lowerBound) * columns, ldb: columns, rows, ldc: columns)
                    }
                    col2im(col, images: m, geometry, inputGradient + first * geometry.inputSize)
                }
            }
        }
        guard input != nil else { return }
        for worker in 0..<workerCount(n) {
            let partial = scratch(workspace, worker: worker).weightGradient
            for i in 0..<(o * k) { weightGradient[i] += partial[i] }
            for c in 0..<o { biasGradient[c] += partial[o * k + c] }
        }
    }

    /// The input gradient `(C, H, W)` (overwritten) of one image's `dy` `(channels.count, outH, outW)`
    /// through the filters of output channels `channels` of an ungrouped layer, the workers splitting
    /// the input channels: each forms the rows of col `(C·kh·kw, P)` of its channels (`W[channels,
    /// their columns]ᵀ × dy`) and folds them back (`col2im`) into its own planes, so no worker repeats
    /// another's folding and no partial gradients are added.
    private func inputGradientSplittingChannels(
        _ dy: UnsafePointer<Float>, channels: Range<Int>, _ inputGradient: UnsafeMutablePointer<Float>, workspace: Workspace
    ) {
        let (k, p, window) = (geometry.patchSize, geometry.positions, geometry.kernelHeight * geometry.kernelWidth)
        workspace.reserve(scratchSize, workers: 1)
        let col = scratch(workspace, worker: 0).col
        parallelRanges(geometry.inChannels) { inputChannels, _ in
            let rows = inputChannels.lowerBound * window
            sgemm(transposeA: true, transposeB: false, m: inputChannels.count * window, n: p, k: channels.count,
                  weight + channels.lowerBound * k + rows, lda: k, dy, ldb: p, col + rows * p, ldc: p)
            var part = geometry
            part.inChannels = inputChannels.count
            col2im(col + rows * p, images: 1, part, inputGradient + inputChannels.lowerBound * geometry.height * geometry.width)
        }
    }
}

/// The ways `Conv2D` computes: im2col plus sgemm (any layer, the reference), Winograd's F(4×4, 3×3)
/// and F(2×2, 5×5) (`WinogradConvolution`: 3×3 and 5×5 kernels, stride 1) and direct loops (`DirectConvolution`: stride 1).
public enum ConvolutionPath: String, CaseIterable, Sendable {
    case im2col, winograd, direct
}

extension Conv2D {
    /// Input channels from which a 3×3 or 5×5 stride-1 convolution takes Winograd's path, and the most output
    /// channels per input channel (`bench train --conv-path` and `--profile` time both paths).
    static let winogradMinimumInputChannels = 8, winogradMaximumChannelRatio = 4

    /// The fewest tiles per image of a 3×3 layer's crop (`resized`) that takes Winograd on fixed filters. On one image
    /// its products read all of U, 36/r² times the weights that im2col reads, so a crop of a few tiles is
    /// left to im2col. 16 is an estimate, not a measured optimum: it sends one VGG-11 conv8 unit's crops
    /// of conv2 to conv4 (36 tiles and more) to Winograd and those of conv5 to conv8 (9 and fewer) to im2col.
    static let winogradMinimumCropTiles = 16

    /// The most output channels for which a stride-1 layer not on the Winograd path computes directly.
    static let directMaximumOutChannels = 8

    /// The path a layer of this shape computes fastest with, as measured on the LeNet and zfnet shapes:
    /// Winograd for a 3×3 or 5×5 kernel with stride 1, at least `winogradMinimumInputChannels` input
    /// channels and at most `winogradMaximumChannelRatio` output channels per input channel (its products
    /// cost 36·C·O per 2×2 tile against 100·C·O directly for 5×5, 36·C·O per 4×4 tile against 144·C·O for 3×3, but its
    /// output transforms grow with O, so many outputs over few inputs lose); else direct for stride 1 and at most `directMaximumOutChannels` outputs, whose
    /// im2col columns feed so few multiply-adds that unfolding them costs as much as the product; else
    /// im2col.
    public var preferredPath: ConvolutionPath { Conv2D.preferredPath(geometry, outChannels: outChannels) }

    /// `preferredPath` of a layer of `geometry` with `outChannels` outputs (also used for the output
    /// channels a `backwardData` is given).
    static func preferredPath(_ geometry: ConvGeometry, outChannels: Int) -> ConvolutionPath {
        let c = geometry.inChannels
        if WinogradTiling.applies(to: geometry) && c >= Conv2D.winogradMinimumInputChannels
            && outChannels <= Conv2D.winogradMaximumChannelRatio * c {
            return .winograd
        }
        return DirectConvolution.applies(to: geometry) && outChannels <= Conv2D.directMaximumOutChannels ? .direct : .im2col
    }

    /// Whether this layer computes with Winograd's minimal filtering (`WinogradConvolution`).
    public var usesWinograd: Bool { path == .winograd }

    /// Why this layer cannot compute with `path`, in a few words, or nil when it can.
    public func reasonItCannotTake(_ path: ConvolutionPath) -> String? {
        switch path {
        case .im2col: return nil
        case .winograd:
            return WinogradTiling.applies(to: geometry) ? nil : "the winograd path needs an ungrouped 3x3 or 5x5 kernel with stride 1 and the same padding on every side"
        case .direct: return DirectConvolution.applies(to: geometry) ? nil : "the direct path needs stride 1, no groups and the same padding on every side"
        }
    }

    /// Makes the layer compute with `path` from now on; every path gives the same results up to float
    /// rounding. Precondition: `reasonItCannotTake(path)` is nil.
    public func take(_ path: ConvolutionPath) {
        precondition(reasonItCannotTake(path) == nil, "\(name): \(reasonItCannotTake(path)!)")
        (winograd, direct) = (nil, nil)
        switch path {
        case .im2col: break
        case .winograd: winograd = WinogradConvolution(geometry: geometry, outChannels: outChannels)
        case .direct: direct = DirectConvolution(geometry: geometry, outChannels: outChannels)
        }
        self.path = path
        if parametersAreFixed { fixParameters() }
    }
}

extension Conv2D {
    /// For each group of copies, the one of the kernels of `ConvolutionBoxes` that does the fewest
    /// multiply-adds for their boxes; through the input's change only when asked.
    public func boxUpdate(byChange: Bool) -> (any BoxUpdate)? { ConvolutionBoxes(self, byChange: byChange) }

    /// The transformed filters U `(n², O, C)` of Winograd's tiling for this layer's weights: the ones
    /// `fixParameters()` keeps, or computed now.
    fileprivate func winogradFilters() -> Floats {
        if let fixedFilters { return fixedFilters }
        let winograd = winograd ?? WinogradConvolution(geometry: geometry, outChannels: outChannels)
        let u = Floats(count: winograd.transformedFilterCount)
        winograd.transformFilters(weight, into: u.pointer)
        return u
    }
}

/// A convolution's changed outputs for a group of copies (`BoxKernels.swift`), by whichever of three
/// kernels does the fewest multiply-adds for the group's boxes:
/// - `convolveBoxes` recomputes the windows under the changed outputs: kh·kw·C·O per changed output;
/// - `convolveByChange`, for stride 1 when asked, carries the input's change through the weight
///   rearranged to `(C, kh·kw·O)`: kh·kw·C·O per changed input, which is fewer where the changed
///   outputs reach past the changed inputs;
/// - `convolveBoxesWinograd`, for a layer whose `preferredPath` is Winograd, multiplies n²·C·O per tile
///   of changed outputs (36 per 4×4 outputs of a 3×3 kernel), counted `winogradCostFactor` times.
/// The rearranged weights and transformed filters are made with the update (the fixed filters of a
/// Winograd layer are shared).
private struct ConvolutionBoxes: BoxUpdate {
    private enum Kernel { case recompute, byChange, winograd }

    let layer: Conv2D
    /// The weight rearranged for `convolveByChange`, when it may be taken.
    private let weightsByInput: [Float]?
    /// Winograd's transformed filters, when it may be taken.
    private let winogradFilters: Conv2D.Floats?

    /// How many times a multiply-add of Winograd's products counts against the other kernels': with its
    /// transforms, F(4×4, 3×3) on AlexNet's conv3–conv5 boxes in an occlusion sweep (32×32 window,
    /// stride 16) did about 70 GFLOP/s of products, `convolveByChange` about 105–110.
    static let winogradCostFactor = 1.5

    init(_ layer: Conv2D, byChange: Bool) {
        self.layer = layer
        let g = layer.geometry
        weightsByInput = byChange && DirectConvolution.applies(to: g) ? weightsByInputChannel(layer.weight, g, outChannels: layer.outChannels) : nil
        winogradFilters = layer.preferredPath == .winograd ? layer.winogradFilters() : nil
    }

    var readsPreActivation: Bool { weightsByInput != nil }
    var readsInputChannelsLast: Bool { weightsByInput != nil || winogradFilters != nil }

    /// The kernel with the fewest multiply-adds (per input and output channel) for these boxes.
    private func kernel(inputs: [PlaneBox], outputs: [PlaneBox]) -> Kernel {
        let g = layer.geometry
        let taps = Double(g.kernelHeight * g.kernelWidth)
        var best = (kernel: Kernel.recompute, cost: taps * Double(outputs.reduce(0) { $0 + $1.area }))
        if weightsByInput != nil, case let cost = taps * Double(inputs.reduce(0) { $0 + $1.area }), cost < best.cost {
            best = (.byChange, cost)
        }
        if winogradFilters != nil, case let cost = Self.winogradCostFactor * Double(winogradBoxProducts(g, outputs: outputs)), cost < best.cost {
            best = (.winograd, cost)
        }
        return best.kernel
    }

    func scratchSize(inputs: [PlaneBox], outputs: [PlaneBox]) -> Int {
        let (g, o) = (layer.geometry, layer.outChannels)
        var size = convolveBoxesScratchSize(g, outChannels: o, outputs: outputs)
        if weightsByInput != nil { size = max(size, convolveByChangeScratchSize(g, outChannels: o, inputs: inputs, outputs: outputs)) }
        if winogradFilters != nil { size = max(size, convolveBoxesWinogradScratchSize(g, outChannels: o, inputs: inputs, outputs: outputs)) }
        return size
    }

    func update(
        _ input: UnsafePointer<Float>, inputChannelsLast: UnsafePointer<Float>?, preActivation: UnsafePointer<Float>?,
        from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>
    ) {
        let (g, o) = (layer.geometry, layer.outChannels)
        switch kernel(inputs: from.boxes, outputs: to.boxes) {
        case .recompute:
            convolveBoxes(input, g, outChannels: o, weight: layer.weight, bias: layer.bias, activation: layer.activation, from: from, to: to, scratch: scratch)
        case .byChange:
            weightsByInput!.withUnsafeBufferPointer { w in
                convolveByChange(inputChannelsLast!, g, outChannels: o, weights: w.baseAddress!, pre: preActivation!, activation: layer.activation,
                                 from: from, to: to, scratch: scratch)
            }
        case .winograd:
            convolveBoxesWinograd(inputChannelsLast!, g, outChannels: o, transformedFilters: winogradFilters!.pointer, bias: layer.bias,
                                  activation: layer.activation, from: from, to: to, scratch: scratch)
        }
    }
}
