/// A 2-D convolution with bias and a fused activation: `y = f(W ⋆ x + b)`.
/// Weight `(O, C, kh, kw)`, bias `(O)`, as PyTorch's `Conv2d`. Computed per image as im2col plus
/// one sgemm; backward is two sgemms plus col2im per image. Stride-1 layers with at most
/// `DirectConvolution.maximumOutChannels` outputs compute their output and weight gradient directly
/// instead (`DirectConvolution`).
public final class Conv2D: Layer {
    public let name: String
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let activation: Activation
    public private(set) var weight: UnsafeMutablePointer<Float>!
    public private(set) var bias: UnsafeMutablePointer<Float>!
    private var weightGradient: UnsafeMutablePointer<Float>!
    private var biasGradient: UnsafeMutablePointer<Float>!
    /// The direct path, for the layers that take it, and its rearranged weights.
    private let direct: DirectConvolution?
    private let packedWeights: UnsafeMutablePointer<Float>?

    public init(name: String, geometry: ConvGeometry, outChannels: Int, activation: Activation) {
        self.name = name
        self.geometry = geometry
        self.outChannels = outChannels
        self.activation = activation
        direct = geometry.stride == 1 && outChannels <= DirectConvolution.maximumOutChannels
            ? DirectConvolution(geometry: geometry, outChannels: outChannels) : nil
        packedWeights = direct.map { .allocate(capacity: $0.packedWeightSize) }
    }

    deinit { packedWeights?.deallocate() }

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
        max(geometry.patchSize * geometry.positions, direct.map { $0.paddedSize + $0.paddedGradientSize } ?? 0)
    }

    private var scratchSize: Int { imageScratchSize + outChannels * (geometry.patchSize + 1) }

    /// Each worker takes its images one at a time: the columns of one image, `(K, P)`, stay in the
    /// core's cache for its product, whose `(O, P)` result is already the image's NCHW output. Products
    /// over chunks of several images ran no faster (single-threaded OpenBLAS, every LeNet layer) and
    /// needed a gather or scatter copy.
    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool, workspace: Workspace) {
        workspace.reserve(scratchSize)
        if n == 1 && direct == nil {
            forwardOne(input, output, workspace: workspace)
            return
        }
        if let direct, let packedWeights { direct.packWeights(weight, into: packedWeights) }
        parallelRanges(n) { images, worker in
            let col = scratch(workspace, worker: worker).col
            for b in images {
                let y = output + b * outChannels * geometry.positions
                if let direct, let packedWeights {
                    direct.pad(input + b * geometry.inputSize, into: col)
                    direct.forward(padded: col, packedWeights: packedWeights, bias: bias, y)
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
                    if let direct {
                        direct.pad(input + b * geometry.inputSize, into: col)
                        direct.padGradient(d, into: col + direct.paddedSize)
                        direct.accumulateWeightGradient(padded: col, paddedGradient: col + direct.paddedSize, into: partial)
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
