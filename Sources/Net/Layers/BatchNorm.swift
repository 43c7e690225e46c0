/// Batch normalisation as PyTorch's `BatchNorm2d` (on `(C, H, W)` inputs) and `BatchNorm1d` (on
/// `(C)` vectors after a dense layer), with a fused activation: `y = f(γ · (x − μ)/√(σ² + ε) + β)` per
/// channel `C`.
///
/// Training passes normalise with the batch's statistics over the batch and the positions (the biased
/// variance) and update the running ones with the momentum m: `running = (1 − m)·running + m·batch`,
/// the variance unbiased there (× N/(N−1), N values per channel), and count `num_batches_tracked`.
/// Evaluation passes use the running statistics, an affine map per channel. Parameters `weight` γ and
/// `bias` β `(C)`; buffers `running_mean`, `running_var` `(C)` and `num_batches_tracked` (a scalar),
/// PyTorch's names.
public final class BatchNorm: Layer {
    public let name: String
    public let inputShape: [Int]
    public let eps: Float
    public let momentum: Float
    /// The activation moved here from the convolution or dense layer right before (conv → BN → ReLU), else nil.
    public let activation: Activation?
    public private(set) var weight: UnsafeMutablePointer<Float>!
    public private(set) var bias: UnsafeMutablePointer<Float>!
    private var weightGradient: UnsafeMutablePointer<Float>!
    private var biasGradient: UnsafeMutablePointer<Float>!
    public private(set) var runningMean: UnsafeMutablePointer<Float>!
    public private(set) var runningVariance: UnsafeMutablePointer<Float>!
    /// `num_batches_tracked`, kept as a float (exact up to 2²⁴ batches) and saved as I64.
    public private(set) var batchesTracked: UnsafeMutablePointer<Float>!

    /// What a forward pass leaves: whether it used the batch's statistics, then (training) the
    /// normalised input `(n, C, P)` and `γ/σ` per channel.
    final class Saved {
        var training = false
        var normalized: [Float] = []
        var gain: [Float] = []
    }

    public init(name: String, inputShape: [Int], eps: Float, momentum: Float, activation: Activation?) {
        precondition(inputShape.count == 1 || inputShape.count == 3, "batch norm needs (C) or (C, H, W) inputs")
        self.name = name
        self.inputShape = inputShape
        self.eps = eps
        self.momentum = momentum
        self.activation = activation
    }

    public var outputShape: [Int] { inputShape }
    public var channels: Int { inputShape[0] }
    private var plane: Int { inputCount / channels }
    public var parameterShapes: [(suffix: String, shape: [Int])] { [("weight", [channels]), ("bias", [channels])] }
    public var constantInitialization: [Float]? { [1, 0] }
    public var bufferShapes: [(suffix: String, shape: [Int], initialValue: Float)] {
        [("running_mean", [channels], 0), ("running_var", [channels], 1), ("num_batches_tracked", [], 0)]
    }
    /// One multiply-add per value (the affine map of evaluation).
    public var multiplyAdds: Int { outputCount }
    public var fusedActivation: Activation? { activation }
    public var isChannelwise: Bool { true }
    /// 1×1 on images, none on vectors.
    public var window: ConvGeometry? {
        inputShape.count == 3 ? ConvGeometry(inChannels: inputShape[0], height: inputShape[1], width: inputShape[2], kernel: 1) : nil
    }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        (weight, bias) = (parameters[0], parameters[1])
        (weightGradient, biasGradient) = (gradients[0], gradients[1])
    }

    public func bind(buffers: [UnsafeMutablePointer<Float>]) {
        (runningMean, runningVariance, batchesTracked) = (buffers[0], buffers[1], buffers[2])
    }

    /// `γ/√(running σ² + ε)` and `β − running μ · that` per channel: evaluation's affine map.
    func evaluationAffine() -> (scale: [Float], shift: [Float]) {
        let scale = (0..<channels).map { weight[$0] / (runningVariance[$0] + eps).squareRoot() }
        return (scale, (0..<channels).map { bias[$0] - runningMean[$0] * scale[$0] })
    }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        let (c, p) = (channels, plane)
        let saved = memory.state(Saved.init)
        saved.training = training
        guard training else {
            let (scale, shift) = evaluationAffine()
            parallelRanges(c) { part, _ in
                channelAffine(input, images: n, channels: part, of: c, plane: p, scale: scale, shift: shift, output)
                activateChannels(part, output, batch: n, memory: memory)
            }
            return
        }
        if saved.normalized.count < n * inputCount { saved.normalized = [Float](repeating: 0, count: n * inputCount) }
        if saved.gain.count != c { saved.gain = [Float](repeating: 0, count: c) }  // every channel's gain is rewritten below
        let count = n * p
        let unbiased = Double(count) / Double(max(count - 1, 1))
        saved.normalized.withUnsafeMutableBufferPointer { normalized in
            saved.gain.withUnsafeMutableBufferPointer { gain in
                parallelRanges(c) { part, _ in
                    let (mean, variance) = batchStatistics(input, images: n, channels: part, of: c, plane: p)
                    var (inverse, minusMean) = ([Float](repeating: 0, count: c), [Float](repeating: 0, count: c))
                    for (j, ch) in part.enumerated() {
                        inverse[ch] = Float(1 / (variance[j] + Double(eps)).squareRoot())
                        minusMean[ch] = -Float(mean[j]) * inverse[ch]
                        gain[ch] = weight[ch] * inverse[ch]
                        let m = Double(momentum)
                        runningMean[ch] = Float((1 - m) * Double(runningMean[ch]) + m * mean[j])
                        runningVariance[ch] = Float((1 - m) * Double(runningVariance[ch]) + m * variance[j] * unbiased)
                    }
                    channelAffine(input, images: n, channels: part, of: c, plane: p, scale: inverse, shift: minusMean, normalized.baseAddress!)
                    channelAffine(normalized.baseAddress!, images: n, channels: part, of: c, plane: p, scale: weight, shift: bias, output)
                    activateChannels(part, output, batch: n, memory: memory)
                }
            }
        }
        batchesTracked[0] += 1
    }

    /// The fused activation over `channels` of the batch's output, keeping pre-activations when asked.
    private func activateChannels(_ channels: Range<Int>, _ output: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory) {
        for b in 0..<n {
            let y = output + (b * self.channels + channels.lowerBound) * plane
            activate(y, count: channels.count * plane, in: output, memory: memory)
        }
    }

    /// The activation's derivative, then `dγ += Σ g·x̂`, `dβ += Σ g` (x̂ normalised with the statistics
    /// the forward pass used), then `backwardData`.
    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        let (c, p) = (channels, plane)
        let saved = memory.state(Saved.init)
        // x̂ = x · inverse + minusMean after an evaluation pass; the kept x̂ after a training pass
        let inverse = (0..<c).map { 1 / (runningVariance[$0] + eps).squareRoot() }
        let minusMean = (0..<c).map { -runningMean[$0] * inverse[$0] }
        saved.normalized.withUnsafeBufferPointer { normalized in
            parallelRanges(c) { part, _ in
                for ch in part {
                    var (dw, db) = (0.0, 0.0)
                    for b in 0..<n {
                        let at = (b * c + ch) * p
                        let g = outputGradient + at
                        activation?.backward(output: output + at, gradient: g, count: p)
                        for i in 0..<p {
                            let x = saved.training ? normalized[at + i] : input[at + i] * inverse[ch] + minusMean[ch]
                            dw += Double(g[i] * x)
                            db += Double(g[i])
                        }
                    }
                    weightGradient[ch] += Float(dw)
                    biasGradient[ch] += Float(db)
                }
            }
        }
        guard let inputGradient else { return }
        backwardData(outputGradient, channels: nil, inputGradient, batch: n, memory: memory, workspace: workspace)
    }

    /// After an evaluation pass, the transpose of its affine map: `signal · γ/√(running σ² + ε)`. After
    /// a training pass, the input gradient through the batch statistics (`batchNormTrainingBackward`).
    /// Channels are independent, so a subset of them gives zeros in the others.
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels subset: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        let (c, p) = (channels, plane)
        guard let subset, subset.count < c else {
            carryDown(signal, inputGradient, batch: n, memory: memory)
            return
        }
        var full = [Float](repeating: 0, count: n * inputCount)
        for b in 0..<n {
            for (j, ch) in subset.enumerated() {
                for i in 0..<p { full[(b * c + ch) * p + i] = signal[(b * subset.count + j) * p + i] }
            }
        }
        carryDown(full, inputGradient, batch: n, memory: memory)
    }

    /// `backwardData` of a whole `(n, C, P)` signal.
    private func carryDown(_ signal: UnsafePointer<Float>, _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory) {
        let (c, p) = (channels, plane)
        let saved = memory.state(Saved.init)
        guard saved.training else {
            let scale = evaluationAffine().scale
            let zero = [Float](repeating: 0, count: c)
            parallelRanges(c) { part, _ in channelAffine(signal, images: n, channels: part, of: c, plane: p, scale: scale, shift: zero, inputGradient) }
            return
        }
        saved.normalized.withUnsafeBufferPointer { normalized in
            parallelRanges(c) { part, _ in
                batchNormTrainingBackward(signal, normalized: normalized.baseAddress!, images: n, channels: part, of: c, plane: p, gain: saved.gain, inputGradient)
            }
        }
    }

    /// Evaluation's affine map and activation on each copy's changed box, `(C, box.h, box.w)`.
    public func boxUpdate(byChange: Bool) -> (any BoxUpdate)? {
        guard inputShape.count == 3 else { return nil }
        let (scale, shift) = evaluationAffine()
        return ChannelAffineBoxes(scale: scale, shift: shift, activation: activation)
    }
}

/// A per-channel affine map and activation (evaluation-mode batch norm) on each copy's changed box:
/// the changed outputs of a 1×1 layer are its changed inputs.
private struct ChannelAffineBoxes: BoxUpdate {
    let scale: [Float], shift: [Float]
    let activation: Activation?
    var readsPreActivation: Bool { false }
    var readsInputChannelsLast: Bool { false }

    func scratchSize(inputs: [PlaneBox], outputs: [PlaneBox]) -> Int { 1 }

    func update(
        _ input: UnsafePointer<Float>, inputChannelsLast: UnsafePointer<Float>?, preActivation: UnsafePointer<Float>?,
        from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>
    ) {
        let c = scale.count
        for (b, box) in to.boxes.enumerated() where !box.isEmpty {
            precondition(from.boxes[b] == box, "a 1x1 layer's changed outputs are its changed inputs")
            let y = to.values + to.offsets[b]
            channelAffine(from.values + from.offsets[b], images: 1, channels: 0..<c, of: c, plane: box.area, scale: scale, shift: shift, y)
            activation?.apply(y, count: c * box.area)
        }
    }
}
