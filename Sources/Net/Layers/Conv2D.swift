/// A 2-D convolution with bias and a fused activation: `y = f(W ⋆ x + b)`.
/// Weight `(O, C, kh, kw)`, bias `(O)`, as PyTorch's `Conv2d`. Computed per image as im2col plus
/// one sgemm; backward is two sgemms plus col2im per image. That is the reference path; 5×5 stride-1
/// convolutions with enough channels take Winograd's F(2×2, 5×5) instead (`usesWinograd`), in the
/// forward pass, the backward pass and `backwardData` alike, and other stride-1 layers with at
/// most `directMaximumOutChannels` outputs compute their output and weight gradient
/// directly (`DirectConvolution`).
public final class Conv2D: Layer {
    public let name: String
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let activation: Activation
    public private(set) var weight: UnsafeMutablePointer<Float>!
    public private(set) var bias: UnsafeMutablePointer<Float>!
    private var weightGradient: UnsafeMutablePointer<Float>!
    private var biasGradient: UnsafeMutablePointer<Float>!
    /// The Winograd path's tiling, for the layers that take it (`usesWinograd`).
    let winogradTiling: WinogradTiling?
    /// The direct path, for the layers that take it.
    private let direct: DirectConvolution?

    /// The direct path's rearranged weights, refilled by every forward pass into the caller's memory.
    private final class PackedWeights {
        let pointer: UnsafeMutablePointer<Float>
        init(count: Int) { pointer = .allocate(capacity: count) }
        deinit { pointer.deallocate() }
    }

    public init(name: String, geometry: ConvGeometry, outChannels: Int, activation: Activation) {
        self.name = name
        self.geometry = geometry
        self.outChannels = outChannels
        self.activation = activation
        winogradTiling = Conv2D.takesWinograd(geometry, outChannels: outChannels) ? WinogradTiling(geometry) : nil
        if winogradTiling == nil && geometry.stride == 1 && outChannels <= Conv2D.directMaximumOutChannels {
            direct = DirectConvolution(geometry: geometry, outChannels: outChannels)
        } else {
            direct = nil
        }
    }

    public var inputShape: [Int] { [geometry.inChannels, geometry.height, geometry.width] }
    public var outputShape: [Int] { [outChannels, geometry.outHeight, geometry.outWidth] }
    public var parameterShapes: [(suffix: String, shape: [Int])] {
        [("weight", [outChannels, geometry.inChannels, geometry.kernelHeight, geometry.kernelWidth]), ("bias", [outChannels])]
    }
    public var multiplyAdds: Int { outChannels * geometry.patchSize * geometry.positions }
    public var window: ConvGeometry? { geometry }
    public var fusedActivation: Activation? { activation }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        (weight, bias) = (parameters[0], parameters[1])
        (weightGradient, biasGradient) = (gradients[0], gradients[1])
    }

    /// Per-worker scratch: the columns of one image `(K, P)` (or, on the direct path, the image's
    /// zero-bordered copy and its padded output gradient), then partial weight and bias gradients
    /// `(O, K)`, `(O)`.
    private func scratch(_ workspace: Workspace, worker: Int) -> (col: UnsafeMutablePointer<Float>, weightGradient: UnsafeMutablePointer<Float>) {
        let col = workspace.floats(scratchSize, worker: worker)
        return (col, col + imageScratchSize)
    }

    private var imageScratchSize: Int {
        max(geometry.patchSize * geometry.positions, direct.map { $0.paddedSize + $0.paddedGradientSize } ?? 0)
    }

    private var scratchSize: Int { imageScratchSize + outChannels * (geometry.patchSize + 1) }

    /// Each worker takes its images one at a time: the columns of one image, `(K, P)`, stay in the
    /// core's cache for its product, whose `(O, P)` result is already the image's NCHW output. Products
    /// over chunks of several images ran no faster (single-threaded OpenBLAS, every LeNet layer) and
    /// needed a gather or scatter copy.
    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        if let tiling = winogradTiling {
            winogradForward(input, output, batch: n, tiling, memory: memory, workspace: workspace)
            return
        }
        workspace.reserve(scratchSize)
        if n == 1 && direct == nil {
            forwardOne(input, output, memory: memory, workspace: workspace)
            return
        }
        let packedWeights = direct.map { kernel in
            let packed = memory.state { PackedWeights(count: kernel.packedWeightSize) }.pointer
            kernel.packWeights(weight, into: packed)
            return packed
        }
        parallelRanges(n) { images, worker in
            let col = scratch(workspace, worker: worker).col
            for b in images {
                let y = output + b * outChannels * geometry.positions
                if let kernel = direct, let packedWeights {
                    kernel.pad(input + b * geometry.inputSize, into: col)
                    kernel.forward(padded: col, packedWeights: packedWeights, bias: bias, y)
                    activate(y, count: outChannels * geometry.positions, in: output, memory: memory)
                } else {
                    im2col(input + b * geometry.inputSize, images: 1, geometry, col)
                    filter(col, channels: 0..<outChannels, y, in: output, memory: memory)
                }
            }
        }
    }

    /// One image (interactive analyses: projections, occlusion's unoccluded pass, predict): the workers
    /// split the output channels instead of the batch. (A direct-path layer has too few to split.)
    private func forwardOne(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, memory: LayerMemory, workspace: Workspace) {
        let p = geometry.positions
        let col = scratch(workspace, worker: 0).col
        parallelRanges(geometry.inChannels) { channels, _ in  // each channel fills its own rows of col
            var part = geometry
            part.inChannels = channels.count
            im2col(input + channels.lowerBound * geometry.height * geometry.width, images: 1, part,
                   col + channels.lowerBound * geometry.kernelHeight * geometry.kernelWidth * p)
        }
        parallelRanges(outChannels, minimumPerWorker: 8) { channels, _ in
            filter(col, channels: channels, output + channels.lowerBound * p, in: output, memory: memory)
        }
    }

    /// y `(channels, P)` = f(W[channels] `(channels, K)` × col `(K, P)` + b[channels]) for one image:
    /// the bias is written first and the product added to it. `y` lies inside `output` (see `activate`).
    private func filter(_ col: UnsafePointer<Float>, channels: Range<Int>, _ y: UnsafeMutablePointer<Float>,
                        in output: UnsafeMutablePointer<Float>, memory: LayerMemory) {
        let (k, p) = (geometry.patchSize, geometry.positions)
        for (row, c) in channels.enumerated() { (y + row * p).update(repeating: bias[c], count: p) }
        sgemm(transposeA: false, transposeB: false, m: channels.count, n: p, k: k, weight + channels.lowerBound * k, lda: k,
              col, ldb: p, beta: 1, y, ldc: p)
        activate(y, count: channels.count * p, in: output, memory: memory)
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
    /// their filters (all of them when weight gradients are formed). Each worker takes its images one
    /// at a time, reads `dy` `(O, P)` of each where it lies, and sums their weight gradients privately;
    /// the partial sums are added in worker order.
    private func transposedPass(
        _ dy: UnsafePointer<Float>, channels: Range<Int>, output: UnsafePointer<Float>?, input: UnsafePointer<Float>?,
        inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, workspace: Workspace
    ) {
        precondition(input == nil || channels == 0..<outChannels, "weight gradients take every output channel")
        let weight = self.weight + channels.lowerBound * geometry.patchSize
        if Conv2D.takesWinograd(geometry, outChannels: channels.count) {
            winogradTransposedPass(dy, channels: channels, output: output, input: input, inputGradient: inputGradient, batch: n,
                                   winogradTiling ?? WinogradTiling(geometry), workspace: workspace)
            return
        }
        let (k, p, o) = (geometry.patchSize, geometry.positions, channels.count)
        workspace.reserve(scratchSize)
        parallelRanges(n) { images, worker in
            let (col, partial) = scratch(workspace, worker: worker)
            let partialBias = partial + o * k
            partial.update(repeating: 0, count: o * k + o)
            for b in images {
                let d = dy + b * o * p  // (O, P)
                if let output { activation.backward(output: output + b * o * p, gradient: UnsafeMutablePointer(mutating: d), count: o * p) }
                if let input {
                    for c in 0..<o { partialBias[c] += sum(d + c * p, count: p) }
                    if let kernel = direct {
                        kernel.pad(input + b * geometry.inputSize, into: col)
                        kernel.padGradient(d, into: col + kernel.paddedSize)
                        kernel.accumulateWeightGradient(padded: col, paddedGradient: col + kernel.paddedSize, into: partial)
                    } else {
                        im2col(input + b * geometry.inputSize, images: 1, geometry, col)
                        // dW (O, K) += dy (O, P) × colᵀ (P, K)
                        sgemm(transposeA: false, transposeB: true, m: o, n: k, k: p, d, lda: p, col, ldb: p, beta: 1, partial, ldc: k)
                    }
                }
                if let inputGradient {
                    // dcol (K, P) = Wᵀ (K, O) × dy (O, P)
                    sgemm(transposeA: true, transposeB: false, m: k, n: p, k: o, weight, lda: k, d, ldb: p, col, ldc: p)
                    col2im(col, images: 1, geometry, inputGradient + b * geometry.inputSize)
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
}

extension Conv2D {
    /// Input channels from which a 5×5 stride-1 convolution takes F(2×2, 5×5), and the most output
    /// channels per input channel (`bench wphases`-style timings of both paths, one core, 14×14 inputs).
    static let winogradMinimumInputChannels = 8, winogradMaximumChannelRatio = 4

    /// Whether a convolution of `geometry` with `outChannels` outputs (a whole layer, or the channels a
    /// `backwardData` is given) computes with F(2×2, 5×5); see `usesWinograd`.
    static func takesWinograd(_ geometry: ConvGeometry, outChannels: Int) -> Bool {
        WinogradTiling.applies(to: geometry) && geometry.inChannels >= winogradMinimumInputChannels
            && outChannels <= winogradMaximumChannelRatio * geometry.inChannels
    }
    /// Images per worker per batch of Winograd products: T = 4 · tiles per image (196 for 14×14). Two
    /// to five ran alike; ten and more ran slower, their products no longer fitting the core's cache.
    static let winogradGroup = 4

    /// Whether this layer computes with Winograd's F(2×2, 5×5) instead of im2col: a 5×5 kernel with
    /// stride 1, at least 8 input channels and at most 4 output channels per input channel. The
    /// products cost 36·C·O per tile against 100·C·O directly; the input transforms grow with C (as
    /// im2col does) and the output transforms with O, so many output channels over few input channels
    /// lose (8 → 64: 0.9× the speed of im2col; 4 → 32: 0.75×), while 8 → 8 (1.6×), 8 → 16 (1.3×),
    /// 32 → 64 (lenet5's conv2, 1.7×) and 32 → 1 (a projection's one-channel view, 2.4×) gain.
    /// lenet5-classic's conv2 (6 → 16, 14×14 valid) ran 1.05–1.1× and stays on im2col.
    public var usesWinograd: Bool { winogradTiling != nil }

    /// The most output channels for which a stride-1 layer not on the Winograd path computes directly
    /// (`DirectConvolution`). 8 (lenet5-classic's conv1, 6 channels) ran 1.3–1.4× im2col on one core
    /// with the kernel's first tiles, more with its current ones. 16 also takes lenet5-classic's conv2
    /// (16 channels, 10 of 16 lanes used per row): with the first tiles the model ran slower; with the
    /// current ones 3% faster (conv2 per 100 images: forward 1.43 → 1.31 ms, backward 3.43 → 3.32 ms),
    /// but conv5's first layer (3 → 16, 3×3 same) then ran its forward pass slower (0.98 → 1.1–1.2 ms)
    /// and its backward faster (1.63 → 1.3–1.4 ms), so the limit stays at 8.
    static let directMaximumOutChannels = 8

    /// Per-worker scratch of the Winograd path: transformed inputs V `(36, C, ld)`, products M
    /// `(36, O, ld)`, a split plane for the transforms, partial weight and bias gradients in the
    /// transformed domain `(36, O, C)`, `(O)`; and the transformed filters U `(36, O, C)` (worker 0's only).
    private struct WinogradScratch {
        var v, m, plane, partial, u: UnsafeMutablePointer<Float>
    }

    private func winogradScratchSize(_ t: WinogradTiling) -> Int {
        let (c, o, ld) = (geometry.inChannels, outChannels, t.leadingDimension(images: Conv2D.winogradGroup))
        return 36 * (c + o) * ld + t.scratchSize + 2 * 36 * o * c + o
    }

    private func winogradScratch(_ t: WinogradTiling, _ workspace: Workspace, worker: Int) -> WinogradScratch {
        let (c, o, ld) = (geometry.inChannels, outChannels, t.leadingDimension(images: Conv2D.winogradGroup))
        let v = workspace.floats(winogradScratchSize(t), worker: worker)
        let m = v + 36 * c * ld, plane = m + 36 * o * ld
        let partial = plane + t.scratchSize
        return WinogradScratch(v: v, m: m, plane: plane, partial: partial, u: partial + 36 * o * c + o)
    }

    /// The forward pass through F(2×2, 5×5): U once for the pass, then each worker takes its images
    /// in groups of `winogradGroup`, transforms them, multiplies and transforms back. One image splits
    /// the input channels for its transform, then the output channels.
    private func winogradForward(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, _ t: WinogradTiling, memory: LayerMemory, workspace: Workspace
    ) {
        let (c, o, p) = (geometry.inChannels, outChannels, geometry.positions)
        let ld = t.leadingDimension(images: Conv2D.winogradGroup)
        workspace.reserve(winogradScratchSize(t))
        let shared = winogradScratch(t, workspace, worker: 0)
        if n == 1 {
            parallelRanges(c) { channels, worker in
                winogradInputTransform(input, images: 1, channels: channels, t, shared.v, ld: ld, scratch: winogradScratch(t, workspace, worker: worker).plane)
            }
            parallelRanges(o, minimumPerWorker: 8) { channels, _ in
                winogradWeightTransform(weight, outChannels: o, inChannels: c, channels: channels, shared.u)
                winogradFilter(shared.u, shared.v, shared.m, outChannels: o, inChannels: c, channels: channels, tiles: t.tiles, ld: ld)
                winogradOutputTransform(shared.m, images: 1, outChannels: o, channels: channels, t, ld: ld, bias: bias, output)
                activate(output + channels.lowerBound * p, count: channels.count * p, in: output, memory: memory)
            }
            return
        }
        parallelRanges(o) { channels, _ in winogradWeightTransform(weight, outChannels: o, inChannels: c, channels: channels, shared.u) }
        parallelRanges(n) { images, worker in
            let s = winogradScratch(t, workspace, worker: worker)
            for first in stride(from: images.lowerBound, to: images.upperBound, by: Conv2D.winogradGroup) {
                let count = min(Conv2D.winogradGroup, images.upperBound - first)
                let y = output + first * o * p  // (count, O, outH, outW)
                winogradInputTransform(input + first * geometry.inputSize, images: count, channels: 0..<c, t, s.v, ld: ld, scratch: s.plane)
                winogradFilter(shared.u, s.v, s.m, outChannels: o, inChannels: c, channels: 0..<o, tiles: count * t.tiles, ld: ld)
                winogradOutputTransform(s.m, images: count, outChannels: o, channels: 0..<o, t, ld: ld, bias: bias, y)
                activate(y, count: count * o * p, in: output, memory: memory)
            }
        }
    }

    /// `transposedPass` through F(2×2, 5×5): each worker takes its images in groups, carries `dy` back
    /// through the output transform once, and forms its weight gradient in the transformed domain
    /// (dU += dM × Vᵀ, V transformed again from the input) and the input gradient (dV = Uᵀ × dM, back
    /// through the input transform). The partial dU and bias sums are added in worker order, then dU is
    /// carried back through the weight transform into the weight gradient.
    private func winogradTransposedPass(
        _ dy: UnsafePointer<Float>, channels: Range<Int>, output: UnsafePointer<Float>?, input: UnsafePointer<Float>?,
        inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, _ t: WinogradTiling, workspace: Workspace
    ) {
        let (c, o, p) = (geometry.inChannels, channels.count, geometry.positions)
        let weight = self.weight + channels.lowerBound * geometry.patchSize
        let ld = t.leadingDimension(images: Conv2D.winogradGroup)
        workspace.reserve(winogradScratchSize(t))
        let shared = winogradScratch(t, workspace, worker: 0)
        if inputGradient != nil {
            parallelRanges(o) { channels, _ in winogradWeightTransform(weight, outChannels: o, inChannels: c, channels: channels, shared.u) }
        }
        parallelRanges(n) { images, worker in
            let s = winogradScratch(t, workspace, worker: worker)
            let partialBias = s.partial + 36 * o * c
            if input != nil { s.partial.update(repeating: 0, count: 36 * o * c + o) }
            for first in stride(from: images.lowerBound, to: images.upperBound, by: Conv2D.winogradGroup) {
                let count = min(Conv2D.winogradGroup, images.upperBound - first)
                let d = UnsafeMutablePointer(mutating: dy + first * o * p)  // (count, O, outH, outW)
                if let output { activation.backward(output: output + first * o * p, gradient: d, count: count * o * p) }
                winogradOutputTransformAdjoint(d, images: count, outChannels: o, t, s.m, ld: ld, scratch: s.plane)
                if let input {
                    for b in 0..<count {
                        for k in 0..<o { partialBias[k] += sum(d + (b * o + k) * p, count: p) }
                    }
                    winogradInputTransform(input + first * geometry.inputSize, images: count, channels: 0..<c, t, s.v, ld: ld, scratch: s.plane)
                    winogradWeightGradient(s.m, s.v, s.partial, outChannels: o, inChannels: c, tiles: count * t.tiles, ld: ld)
                }
                if let inputGradient {
                    winogradInputGradient(shared.u, s.m, s.v, outChannels: o, inChannels: c, tiles: count * t.tiles, ld: ld)
                    winogradInputTransformAdjoint(s.v, images: count, t, ld: ld, inputGradient + first * geometry.inputSize, scratch: s.plane)
                }
            }
        }
        guard input != nil else { return }
        let total = shared.partial  // (36, O, C), then (O)
        for worker in 1..<workerCount(n) {
            let partial = winogradScratch(t, workspace, worker: worker).partial
            for i in 0..<(36 * o * c + o) { total[i] += partial[i] }
        }
        parallelRanges(o) { channels, _ in winogradWeightTransformAdjoint(total, outChannels: o, inChannels: c, channels: channels, weightGradient) }
        for k in 0..<o { biasGradient[k] += total[36 * o * c + k] }
    }
}
