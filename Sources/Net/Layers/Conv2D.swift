/// A 2-D convolution with bias and a fused activation: `y = f(W ⋆ x + b)`.
/// Weight `(O, C, kh, kw)`, bias `(O)`, as PyTorch's `Conv2d`. Computed as im2col over a chunk of
/// the batch plus one sgemm; backward is two sgemms plus col2im.
public final class Conv2D: Layer {
    public let name: String
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let activation: Activation
    public private(set) var weight: UnsafeMutablePointer<Float>!
    public private(set) var bias: UnsafeMutablePointer<Float>!
    private var weightGradient: UnsafeMutablePointer<Float>!
    private var biasGradient: UnsafeMutablePointer<Float>!

    /// Upper bound on floats of im2col columns one worker processes at once, to keep them in cache.
    nonisolated(unsafe) public static var columnBudget = 1 << 21

    public init(name: String, geometry: ConvGeometry, outChannels: Int, activation: Activation) {
        self.name = name
        self.geometry = geometry
        self.outChannels = outChannels
        self.activation = activation
    }

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

    /// Images per chunk so that one chunk's columns stay within `columnBudget`.
    private func chunkSize(_ n: Int) -> Int {
        max(1, min(n, Conv2D.columnBudget / (geometry.patchSize * geometry.positions)))
    }

    /// Per-worker scratch: columns `(K, chunk·P)`, the chunk's output `(O, chunk·P)`, and partial
    /// weight and bias gradients `(O, K)`, `(O)`.
    private struct Scratch {
        var col, out, weightGradient, biasGradient: UnsafeMutablePointer<Float>
    }

    private func reserveScratch(_ chunk: Int, _ workspace: Workspace) {
        let columns = chunk * geometry.positions
        workspace.reserve(columns * (geometry.patchSize + outChannels) + outChannels * (geometry.patchSize + 1))
    }

    private func scratch(_ chunk: Int, _ workspace: Workspace, worker: Int) -> Scratch {
        let columns = chunk * geometry.positions
        let col = workspace.floats(columns * (geometry.patchSize + outChannels) + outChannels * (geometry.patchSize + 1), worker: worker)
        let out = col + columns * geometry.patchSize
        let weightGradient = out + columns * outChannels
        return Scratch(col: col, out: out, weightGradient: weightGradient, biasGradient: weightGradient + outChannels * geometry.patchSize)
    }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool, workspace: Workspace) {
        let (k, p, o) = (geometry.patchSize, geometry.positions, outChannels)
        let chunk = chunkSize(max(1, n / Workers.count))
        reserveScratch(chunk, workspace)
        if n == 1 {
            forwardOne(input, output, workspace: workspace)
            return
        }
        parallelRanges(n) { range, worker in
            let s = scratch(chunk, workspace, worker: worker)
            for start in stride(from: range.lowerBound, to: range.upperBound, by: chunk) {
                let images = min(chunk, range.upperBound - start)
                im2col(input + start * geometry.inputSize, images: images, geometry, s.col)
                // (O, images·P) = W (O, K) × col (K, images·P)
                sgemm(transposeA: false, transposeB: false, m: o, n: images * p, k: k, weight, lda: k, s.col, ldb: images * p, s.out, ldc: images * p)
                for b in 0..<images {
                    let y = output + (start + b) * o * p
                    for c in 0..<o {
                        let src = s.out + c * images * p + b * p
                        let dst = y + c * p
                        let bc = bias[c]
                        for i in 0..<p { dst[i] = src[i] + bc }
                    }
                    activation.apply(y, count: o * p)
                }
            }
        }
    }

    /// One image (interactive analyses: projections, occlusion's unoccluded pass, predict): the workers
    /// split the output channels instead of the batch. Its `(O, P)` product is already NCHW.
    private func forwardOne(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let (k, p) = (geometry.patchSize, geometry.positions)
        let col = scratch(1, workspace, worker: 0).col
        parallelRanges(geometry.inChannels) { channels, _ in  // each channel fills its own rows of col
            var part = geometry
            part.inChannels = channels.count
            im2col(input + channels.lowerBound * geometry.height * geometry.width, images: 1, part,
                   col + channels.lowerBound * geometry.kernelHeight * geometry.kernelWidth * p)
        }
        parallelRanges(outChannels, minimumPerWorker: 8) { channels, _ in
            let y = output + channels.lowerBound * p
            sgemm(transposeA: false, transposeB: false, m: channels.count, n: p, k: k, weight + channels.lowerBound * k, lda: k,
                  col, ldb: p, y, ldc: p)
            for (row, c) in channels.enumerated() {
                let bc = bias[c]
                for i in 0..<p { y[row * p + i] += bc }
            }
            activation.apply(y, count: channels.count * p)
        }
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
    /// the gradient `dy` at the output; through the activation's derivative when `output` is given.
    /// Each worker sums its images' weight gradients privately; the partial sums are added in worker order.
    private func transposedPass(
        _ dy: UnsafePointer<Float>, output: UnsafePointer<Float>?, input: UnsafePointer<Float>?, inputGradient: UnsafeMutablePointer<Float>?,
        batch n: Int, workspace: Workspace
    ) {
        let (k, p, o) = (geometry.patchSize, geometry.positions, outChannels)
        let chunk = chunkSize(max(1, n / Workers.count))
        reserveScratch(chunk, workspace)
        parallelRanges(n) { range, worker in
            let s = scratch(chunk, workspace, worker: worker)
            s.weightGradient.update(repeating: 0, count: o * k + o)
            for start in stride(from: range.lowerBound, to: range.upperBound, by: chunk) {
                let images = min(chunk, range.upperBound - start)
                let columns = images * p
                for b in 0..<images {  // gather dy (images, O, P) as (O, images·P)
                    let src = dy + (start + b) * o * p
                    for c in 0..<o { (s.out + c * columns + b * p).update(from: src + c * p, count: p) }
                    if let output {
                        for c in 0..<o {
                            activation.backward(output: output + (start + b) * o * p + c * p, gradient: s.out + c * columns + b * p, count: p)
                        }
                    }
                }
                if let input {
                    for c in 0..<o {
                        var sum: Float = 0
                        let row = s.out + c * columns
                        for i in 0..<columns { sum += row[i] }
                        s.biasGradient[c] += sum
                    }
                    im2col(input + start * geometry.inputSize, images: images, geometry, s.col)
                    // dW (O, K) += dy (O, images·P) × colᵀ (images·P, K)
                    sgemm(transposeA: false, transposeB: true, m: o, n: k, k: columns, s.out, lda: columns, s.col, ldb: columns,
                          beta: 1, s.weightGradient, ldc: k)
                }
                if let inputGradient {
                    // dcol (K, images·P) = Wᵀ (K, O) × dy (O, images·P)
                    sgemm(transposeA: true, transposeB: false, m: k, n: columns, k: o, weight, lda: k, s.out, ldb: columns, s.col, ldc: columns)
                    col2im(s.col, images: images, geometry, inputGradient + start * geometry.inputSize)
                }
            }
        }
        guard input != nil else { return }
        for worker in 0..<workerCount(n) {
            let s = scratch(chunk, workspace, worker: worker)
            for i in 0..<(o * k) { weightGradient[i] += s.weightGradient[i] }
            for c in 0..<o { biasGradient[c] += s.biasGradient[c] }
        }
    }
}
