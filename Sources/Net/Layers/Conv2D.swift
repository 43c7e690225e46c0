/// A 2-D convolution with bias and a fused activation: `y = f(W ⋆ x + b)`.
/// Weight `(O, C, kh, kw)`, bias `(O)`, as PyTorch's `Conv2d`. Computed per image as im2col plus
/// one sgemm; backward is two sgemms plus col2im per image. That is the reference path; 5×5 stride-1
/// convolutions with enough channels take Winograd's F(2×2, 5×5) instead (`WinogradConvolution`), in
/// the forward pass, the backward pass and `transposedFilter` alike, and other stride-1 layers with at
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
    /// The direct path, for a layer that takes it, and its rearranged weights (refilled every forward pass).
    private var direct: (kernel: DirectConvolution, packedWeights: UnsafeMutablePointer<Float>)?

    public init(name: String, geometry: ConvGeometry, outChannels: Int, activation: Activation) {
        self.name = name
        self.geometry = geometry
        self.outChannels = outChannels
        self.activation = activation
        take(preferredPath)
    }

    deinit { direct?.packedWeights.deallocate() }

    public var inputShape: [Int] { [geometry.inChannels, geometry.height, geometry.width] }
    public var outputShape: [Int] { [outChannels, geometry.outHeight, geometry.outWidth] }
    public var parameterShapes: [(suffix: String, shape: [Int])] {
        [("weight", [outChannels, geometry.inChannels, geometry.kernelHeight, geometry.kernelWidth]), ("bias", [outChannels])]
    }
    public var multiplyAdds: Int { outChannels * geometry.patchSize * geometry.positions }

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
        max(geometry.patchSize * geometry.positions, direct.map { $0.kernel.paddedSize + $0.kernel.paddedGradientSize } ?? 0)
    }

    private var scratchSize: Int { imageScratchSize + outChannels * (geometry.patchSize + 1) }

    /// Each worker takes its images one at a time: the columns of one image, `(K, P)`, stay in the
    /// core's cache for its product, whose `(O, P)` result is already the image's NCHW output (a product
    /// over several images would need a gather or scatter copy, and is no faster on the LeNet layers).
    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool, workspace: Workspace) {
        if let winograd {
            winograd.forward(input, weight: weight, bias: bias, activation: activation, output, batch: n, workspace: workspace)
            return
        }
        workspace.reserve(scratchSize)
        if n == 1 && direct == nil {
            forwardOne(input, output, workspace: workspace)
            return
        }
        if let direct { direct.kernel.packWeights(weight, into: direct.packedWeights) }
        parallelRanges(n) { images, worker in
            let col = scratch(workspace, worker: worker).col
            for b in images {
                let y = output + b * outChannels * geometry.positions
                if let (kernel, packedWeights) = direct {
                    kernel.pad(input + b * geometry.inputSize, into: col)
                    kernel.forward(padded: col, packedWeights: packedWeights, bias: bias, y)
                    activation.apply(y, count: outChannels * geometry.positions)
                } else {
                    im2col(input + b * geometry.inputSize, images: 1, geometry, col)
                    filter(col, channels: 0..<outChannels, y)
                }
            }
        }
    }

    /// One image (interactive analyses: projections, occlusion's unoccluded pass, predict): the workers
    /// split the output channels instead of the batch. (A direct-path layer has too few to split.)
    private func forwardOne(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let p = geometry.positions
        let col = scratch(workspace, worker: 0).col
        parallelRanges(geometry.inChannels) { channels, _ in  // each channel fills its own rows of col
            var part = geometry
            part.inChannels = channels.count
            im2col(input + channels.lowerBound * geometry.height * geometry.width, images: 1, part,
                   col + channels.lowerBound * geometry.kernelHeight * geometry.kernelWidth * p)
        }
        parallelRanges(outChannels, minimumPerWorker: 8) { channels, _ in
            filter(col, channels: channels, output + channels.lowerBound * p)
        }
    }

    /// y `(channels, P)` = f(W[channels] `(channels, K)` × col `(K, P)` + b[channels]) for one image:
    /// the bias is written first and the product added to it.
    private func filter(_ col: UnsafePointer<Float>, channels: Range<Int>, _ y: UnsafeMutablePointer<Float>) {
        let (k, p) = (geometry.patchSize, geometry.positions)
        for (row, c) in channels.enumerated() { (y + row * p).update(repeating: bias[c], count: p) }
        sgemm(transposeA: false, transposeB: false, m: channels.count, n: p, k: k, weight + channels.lowerBound * k, lda: k,
              col, ldb: p, beta: 1, y, ldc: p)
        activation.apply(y, count: channels.count * p)
    }

    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, workspace: Workspace
    ) {
        transposedPass(outputGradient, output: output, input: input, inputGradient: inputGradient, batch: n, workspace: workspace)
    }

    /// The deconvnet's filtering step: `inputGradient` `(n, C, H, W)` = the transposed convolution of
    /// `outputGradient` `(n, O, outH, outW)` with the same (flipped) filters. No bias, no activation.
    public func transposedFilter(_ outputGradient: UnsafePointer<Float>, _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, workspace: Workspace) {
        transposedPass(outputGradient, output: nil, input: nil, inputGradient: inputGradient, batch: n, workspace: workspace)
    }

    /// Weight gradients (when `input` is given) and input gradients (when `inputGradient` is given) of
    /// the gradient `dy` at the output; through the activation's derivative, in place in `dy`, when
    /// `output` is given (`dy` is only read otherwise). Each worker takes its images one at a time, reads
    /// `dy` `(O, P)` of each where it lies, and sums their weight gradients privately; the partial sums
    /// are added in worker order.
    private func transposedPass(
        _ dy: UnsafePointer<Float>, output: UnsafePointer<Float>?, input: UnsafePointer<Float>?, inputGradient: UnsafeMutablePointer<Float>?,
        batch n: Int, workspace: Workspace
    ) {
        if let winograd {
            winograd.backward(dy, output: output, activation: activation, weight: weight,
                              weightGradients: input.map { ($0, weightGradient, biasGradient) }, inputGradient: inputGradient,
                              batch: n, workspace: workspace)
            return
        }
        let (k, p, o) = (geometry.patchSize, geometry.positions, outChannels)
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
                    if let kernel = direct?.kernel {
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

/// The ways `Conv2D` computes: im2col plus sgemm (any layer, the reference), Winograd's F(2×2, 5×5)
/// (`WinogradConvolution`: 5×5 kernels, stride 1) and direct loops (`DirectConvolution`: stride 1).
public enum ConvolutionPath: String, CaseIterable, Sendable {
    case im2col, winograd, direct
}

extension Conv2D {
    /// Input channels from which a 5×5 stride-1 convolution takes F(2×2, 5×5), and the most output
    /// channels per input channel (`bench train --conv-path` and `--profile` time both paths).
    static let winogradMinimumInputChannels = 8, winogradMaximumChannelRatio = 4

    /// The most output channels for which a stride-1 layer not on the Winograd path computes directly.
    static let directMaximumOutChannels = 8

    /// The path a layer of this shape computes fastest with, as measured on the LeNet shapes: Winograd
    /// for a 5×5 kernel with stride 1, at least `winogradMinimumInputChannels` input channels and at most
    /// `winogradMaximumChannelRatio` output channels per input channel (its products cost 36·C·O per
    /// 2×2 tile against 100·C·O directly, but its output transforms grow with O, so many outputs over
    /// few inputs lose); else direct for stride 1 and at most `directMaximumOutChannels` outputs, whose
    /// im2col columns feed so few multiply-adds that unfolding them costs as much as the product; else
    /// im2col.
    public var preferredPath: ConvolutionPath {
        let c = geometry.inChannels
        if WinogradTiling.applies(to: geometry) && c >= Conv2D.winogradMinimumInputChannels
            && outChannels <= Conv2D.winogradMaximumChannelRatio * c {
            return .winograd
        }
        return geometry.stride == 1 && outChannels <= Conv2D.directMaximumOutChannels ? .direct : .im2col
    }

    /// Whether this layer computes with Winograd's F(2×2, 5×5).
    public var usesWinograd: Bool { path == .winograd }

    /// Why this layer cannot compute with `path`, in a few words, or nil when it can.
    public func reasonItCannotTake(_ path: ConvolutionPath) -> String? {
        switch path {
        case .im2col: return nil
        case .winograd: return WinogradTiling.applies(to: geometry) ? nil : "the winograd path needs a 5x5 kernel with stride 1"
        case .direct: return geometry.stride == 1 ? nil : "the direct path needs stride 1"
        }
    }

    /// Makes the layer compute with `path` from now on; every path gives the same results up to float
    /// rounding. Precondition: `reasonItCannotTake(path)` is nil.
    public func take(_ path: ConvolutionPath) {
        precondition(reasonItCannotTake(path) == nil, "\(name): \(reasonItCannotTake(path)!)")
        direct?.packedWeights.deallocate()
        (winograd, direct) = (nil, nil)
        switch path {
        case .im2col: break
        case .winograd: winograd = WinogradConvolution(geometry: geometry, outChannels: outChannels)
        case .direct:
            let kernel = DirectConvolution(geometry: geometry, outChannels: outChannels)
            direct = (kernel, .allocate(capacity: kernel.packedWeightSize))
        }
        self.path = path
    }
}
