import Foundation
import Net

/// Runs many occluded copies of one image through a `Sequential` model, batched, recomputing only
/// what an occluder can change.
///
/// The unoccluded image goes through the network once. Then, for a batch of occluder boxes, the
/// leading convolution, pooling and dropout layers (the *incremental part*) are updated box by box: a
/// change inside rows `y0..<y1` (and some columns) of a layer's input changes only the outputs whose
/// window reaches into it, `changedOutputs(_:_:)`, so each layer touches only that footprint (which
/// grows layer by layer) and the rest of its output stays the unoccluded one. For each layer and batch:
/// - a convolution with few input channels recomputes its changed outputs: the windows under them,
///   read from a patch of its input (unoccluded values with the changed box pasted in), go into one
///   im2col matrix for the whole batch and one `sgemm`;
/// - a stride-1 convolution with many input channels adds, to its unoccluded pre-activation, the
///   convolution of its input's change: one `sgemm` of the change `(Σ pixels, C)` with the rearranged
///   filters `(C, kh·kw·O)`, scattered tap by tap. Its multiply-adds scale with the changed input box
///   rather than the (larger) changed output box;
/// - max and average pooling run Net's pooling kernels on a patch around the changed outputs.
/// A dense layer right after the incremental part adds `W·Δx` to its unoccluded pre-activation, `Δx`
/// being the change inside the last changed box, one `sgemm` per input location over the copies that
/// changed there. From there on (or from the first layer the sweep does not know, such as a recurrent
/// stack, with every occluded copy rebuilt in full) the layers run their ordinary batched forward pass.
///
/// `Mode.full` skips all of this: every occluded image goes through every layer (the reference the
/// incremental result is tested against). Positions are split across `Workers.count` threads; BLAS runs
/// single-threaded inside each. `bench occlusion` times it: see the README.
public final class OcclusionSweep {
    public enum Mode: String, Sendable, CaseIterable {
        case incremental, full
    }

    /// One evaluation of a list of occluders.
    public struct Evaluation: Sendable {
        /// `(n, classes)`: the logits of each occluded copy.
        public var logits: [Float]
        /// `(n)`: the summed activation of the requested feature map for each copy (empty if none was asked for).
        public var featureActivity: [Float]
    }

    /// A feature map (or unit of a vector output) whose total activation is tracked.
    public struct Feature: Equatable, Sendable {
        public var layer: Int
        public var channel: Int
        public init(layer: Int, channel: Int) {
            self.layer = layer
            self.channel = channel
        }
    }

    public let model: Sequential
    public let mode: Mode
    /// Index of the first layer that is computed in full for every occluded copy; the layers before
    /// it are updated incrementally (0 in `.full` mode or when the first layer is not convolutional).
    public let fullFrom: Int
    /// Whether layer `fullFrom` is a dense layer updated as `W·Δx` (see `init`).
    public var updatesDenseByChange: Bool { denseDelta != nil }
    /// Occluded copies that go through the fully computed layers together.
    public var batchSize = 512
    /// Occluded copies one worker updates at once in the incremental part (one sgemm per convolution).
    public var workerBatch = 8
    /// CPU seconds (all threads) spent per phase since the last `resetProfile()`: `base`, each incremental
    /// layer, `assemble` (or `collect changes`), each remaining layer, `scores`. CPU time rather than wall
    /// time, so that the breakdown means something on a busy machine.
    public private(set) var profile: [(name: String, seconds: Double)] = []

    private enum Stage {
        /// Recomputed from a patch of its input: im2col of the changed outputs' windows, one sgemm.
        case conv(Conv2D)
        /// Updated by the change of its input: weights rearranged to `(C, kh·kw·O)`, one sgemm of the
        /// input change `(Σ areas, C)` with them, scattered onto the unoccluded pre-activation.
        case convDelta(Conv2D, weights: [Float])
        case maxPool(MaxPool2D)
        case avgPool(AvgPool2D)
        case identity
    }

    private let stages: [Stage]
    /// Layer `fullFrom` when it is a dense layer over an image-shaped input, with its weight rearranged
    /// to `(H·W, O, C)`: one `(O, C)` block per input location.
    private let denseDelta: (layer: Dense, weights: [Float])?
    private var scratch: [WorkerScratch] = []
    private var tailOutputs: [FloatScratch] = []
    private let boundary = FloatScratch()
    private let deltas = FloatScratch()

    /// Plans the sweep for `model`. The layers before the first one that is not a convolution, pooling or
    /// dropout layer are updated incrementally. A convolution with stride 1 and at least
    /// `deltaMinimumChannels` input channels is updated through the change of its input (fewer
    /// multiply-adds than recomputing its changed outputs: the change covers a smaller box than the outputs
    /// it reaches, but the matrix product's inner size is only C); others recompute their changed outputs.
    /// A dense layer right after the incremental part is updated as `y = f(W·x₀ + W·Δx)` with `Δx`
    /// restricted to the changed box, one product per input location. The rearranged weights are copied
    /// now: make a new sweep after changing the model's parameters. `denseByChange: false` computes that
    /// layer in full instead.
    public init(model: Sequential, mode: Mode = .incremental, deltaMinimumChannels: Int = 16, denseByChange: Bool = true) {
        self.model = model
        self.mode = mode
        var stages: [Stage] = []
        if mode == .incremental {
            for layer in model.layers {
                guard layer.inputShape.count == 3, layer.outputShape.count == 3 else { break }
                if let conv = layer as? Conv2D {
                    let g = conv.geometry
                    if g.stride == 1 && g.inChannels >= deltaMinimumChannels {
                        stages.append(.convDelta(conv, weights: weightsByInputChannel(conv.weight, g, outChannels: conv.outChannels)))
                    } else {
                        stages.append(.conv(conv))
                    }
                } else if let pool = layer as? MaxPool2D {
                    stages.append(.maxPool(pool))
                } else if let pool = layer as? AvgPool2D {
                    stages.append(.avgPool(pool))
                } else if layer is Dropout {
                    stages.append(.identity)  // the identity in evaluation
                } else {
                    break
                }
            }
        }
        self.stages = stages
        fullFrom = stages.count
        if denseByChange, fullFrom > 0, let dense = model.layers[fullFrom] as? Dense, dense.inputShape.count == 3 {
            denseDelta = (dense, weightsByLocation(dense.weight, outFeatures: dense.outFeatures, channels: dense.inputShape[0],
                                                   locations: dense.inputShape[1] * dense.inputShape[2]))
        } else {
            denseDelta = nil
        }
        resetProfile()
    }

    /// Clears `profile`.
    public func resetProfile() {
        var names = ["base"]
        names += model.layers[0..<fullFrom].map { "\($0.name) (incremental)" }
        names.append(denseDelta == nil ? "assemble" : "collect changes")
        names += model.layers[fullFrom...].enumerated().map { "\($1.name) (\($0 == 0 && denseDelta != nil ? "W·Δx" : "full"))" }
        names.append("scores")
        profile = names.map { ($0, 0) }
    }

    func time(_ slot: Int, _ body: () -> Void) {
        let start = cpuSeconds(CLOCK_PROCESS_CPUTIME_ID)
        body()
        profile[slot].seconds += cpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - start
    }

    /// Every layer's output for `image` `(C, H, W)`, unoccluded, in layer order.
    public func activations(_ image: [Float]) -> [[Float]] { basePass(image).outputs }

    /// The unoccluded pass: every layer's output, plus the pre-activations of the layers updated through
    /// their input's change (convolutions as `(outH, outW, O)`, the dense layer as `(O)`), which those
    /// layers compute here instead of their own forward pass.
    func basePass(_ image: [Float]) -> (outputs: [[Float]], pre: [[Float]]) {
        var outputs: [[Float]] = []
        var pre = [[Float]](repeating: [], count: model.layers.count)
        for (index, layer) in model.layers.enumerated() {
            let input = index == 0 ? image : outputs[index - 1]
            var y = [Float](repeating: 0, count: layer.outputCount)
            if index < fullFrom, case .convDelta(let conv, _) = stages[index] {
                let g = conv.geometry
                let o = conv.outChannels
                var col = [Float](repeating: 0, count: g.patchSize * g.positions)
                input.withUnsafeBufferPointer { x in
                    col.withUnsafeMutableBufferPointer { col in
                        im2col(x.baseAddress!, images: 1, g, col.baseAddress!)
                        y.withUnsafeMutableBufferPointer { y in
                            // (O, P) = W (O, K) × col (K, P)
                            sgemm(transposeA: false, transposeB: false, m: o, n: g.positions, k: g.patchSize, conv.weight, lda: g.patchSize,
                                  col.baseAddress!, ldb: g.positions, y.baseAddress!, ldc: g.positions)
                        }
                    }
                }
                for c in 0..<o {
                    for i in 0..<g.positions { y[c * g.positions + i] += conv.bias[c] }
                }
                var hwc = [Float](repeating: 0, count: y.count)  // (outH, outW, O), as the scatter adds
                channelsLast(y, channels: o, positions: g.positions, &hwc)
                pre[index] = hwc
                y.withUnsafeMutableBufferPointer { conv.activation.apply($0.baseAddress!, count: $0.count) }
            } else if index == fullFrom, let (dense, _) = denseDelta {
                for o in 0..<dense.outFeatures { y[o] = dense.bias[o] }
                input.withUnsafeBufferPointer { x in
                    y.withUnsafeMutableBufferPointer { y in
                        // (1, O) = x (1, I) × Wᵀ (I, O), plus the bias already in y
                        sgemm(transposeA: false, transposeB: true, m: 1, n: dense.outFeatures, k: dense.inFeatures, x.baseAddress!, lda: dense.inFeatures,
                              dense.weight, ldb: dense.inFeatures, beta: 1, y.baseAddress!, ldc: dense.outFeatures)
                    }
                }
                pre[index] = y
                y.withUnsafeMutableBufferPointer { dense.activation.apply($0.baseAddress!, count: $0.count) }
            } else {
                input.withUnsafeBufferPointer { x in
                    y.withUnsafeMutableBufferPointer { layer.forward(x.baseAddress!, $0.baseAddress!, batch: 1, training: false, workspace: model.scratch) }
                }
            }
            outputs.append(y)
        }
        return (outputs, pre)
    }

    /// The logits of `image` `(C, H, W)` with each box in `boxes` set to `fill` (one value per channel),
    /// and the total activation of `feature` for each occluded copy.
    public func evaluate(_ image: [Float], boxes: [PlaneBox], fill: [Float], feature: Feature? = nil) -> Evaluation {
        precondition(image.count == model.inputShape.count, "the image must be \(model.inputShape)")
        var unoccluded: (outputs: [[Float]], pre: [[Float]]) = ([], [])
        time(0) { unoccluded = basePass(image) }
        return evaluate(image, boxes: boxes, fill: fill, feature: feature, unoccluded: unoccluded)
    }

    /// `evaluate` with the unoccluded pass already done (`basePass`).
    func evaluate(_ image: [Float], boxes: [PlaneBox], fill: [Float], feature: Feature?, unoccluded: (outputs: [[Float]], pre: [[Float]])) -> Evaluation {
        let shape = model.inputShape
        precondition(fill.count == shape.channels, "one fill value per channel")
        let classes = model.classes
        let (base, pre) = unoccluded
        var logits = [Float](repeating: 0, count: boxes.count * classes)
        var activity = [Float](repeating: 0, count: feature == nil ? 0 : boxes.count)
        let plane = PlaneBox(y0: 0, y1: shape.height, x0: 0, x1: shape.width)
        let clipped = boxes.map { $0.intersection(plane) }
        let baseActivity = feature.map { channelSum(base[$0.layer], layer: $0.layer, channel: $0.channel) } ?? 0
        while scratch.count < Workers.count { scratch.append(WorkerScratch(slots: fullFrom)) }
        for w in 0..<scratch.count { scratch[w].resetTimes() }
        let boundaryShape = fullFrom == 0 ? [shape.channels, shape.height, shape.width] : model.layers[fullFrom - 1].outputShape
        let boundaryCount = boundaryShape.reduce(1, *)
        let boundaryBase = fullFrom == 0 ? image : base[fullFrom - 1]
        let nb = max(1, min(batchSize, boxes.count))
        let x = boundary.reserve(denseDelta == nil ? nb * boundaryCount : 1)
        while tailOutputs.count < model.layers.count { tailOutputs.append(FloatScratch()) }

        image.withUnsafeBufferPointer { img in
            for first in stride(from: 0, to: boxes.count, by: nb) {
                let n = min(nb, boxes.count - first)
                let batchBoxes = clipped[first..<(first + n)]
                // With the dense layer updated by W·Δx, each copy's change at the boundary is collected
                // as `(C, box.h, box.w)` at `changeOffsets[b]` instead of assembling whole inputs.
                var changeBoxes: [PlaneBox] = []
                var changeOffsets: [Int] = []
                if denseDelta != nil {
                    changeBoxes = batchBoxes.map(boundaryBox)
                    changeOffsets = [0]
                    for box in changeBoxes { changeOffsets.append(changeOffsets.last! + boundaryShape[0] * box.area) }
                }
                let changes = deltas.reserve(changeOffsets.last ?? 1)
                var incrementalActivity = [Float](repeating: baseActivity, count: n)
                incrementalActivity.withUnsafeMutableBufferPointer { act in
                    parallelRanges(n) { range, worker in
                        let s = scratch[worker]
                        for chunk in stride(from: range.lowerBound, to: range.upperBound, by: workerBatch) {
                            let m = min(workerBatch, range.upperBound - chunk)
                            let sink: Sink = denseDelta == nil
                                ? .assemble(base: boundaryBase, shape: boundaryShape, into: x + chunk * boundaryCount)
                                : .changes(base: boundaryBase, shape: boundaryShape, into: changes, offsets: Array(changeOffsets[chunk..<(chunk + m)]))
                            updateIncrementally(
                                image: img.baseAddress!, base: base, pre: pre, boxes: batchBoxes[(first + chunk)..<(first + chunk + m)], fill: fill,
                                feature: feature, activity: act.baseAddress! + chunk, sink: sink, scratch: s)
                        }
                    }
                }
                for i in 0...fullFrom { profile[1 + i].seconds += scratch.reduce(0) { $0 + $1.times[i] } }
                for w in 0..<scratch.count { scratch[w].resetTimes() }

                var input = UnsafePointer(x)
                var next = fullFrom
                if let (dense, weights) = denseDelta {
                    let y = tailOutputs[fullFrom].reserve(n * dense.outFeatures)
                    time(2 + fullFrom) {
                        denseByChange(dense, weights: weights, pre: pre[fullFrom], changes: changes, boxes: changeBoxes, offsets: changeOffsets,
                                      shape: boundaryShape, output: y)
                    }
                    input = UnsafePointer(y)
                    next += 1
                }
                for i in next..<model.layers.count {
                    let layer = model.layers[i]
                    let y = tailOutputs[i].reserve(n * layer.outputCount)
                    time(2 + i) { layer.forward(input, y, batch: n, training: false, workspace: model.scratch) }
                    input = UnsafePointer(y)
                }
                time(profile.count - 1) {
                    logits.withUnsafeMutableBufferPointer { l in
                        (l.baseAddress! + first * classes).update(from: input, count: n * classes)
                    }
                    guard let feature else { return }
                    for b in 0..<n {
                        activity[first + b] = feature.layer < fullFrom
                            ? incrementalActivity[b]
                            : channelSum(tailOutputs[feature.layer].pointer + b * model.layers[feature.layer].outputCount, layer: feature.layer, channel: feature.channel)
                    }
                }
            }
        }
        return Evaluation(logits: logits, featureActivity: activity)
    }

    /// Total of `channel`'s plane in one sample's output of layer `index` (its value for a vector output).
    func channelSum(_ output: UnsafePointer<Float>, layer index: Int, channel: Int) -> Float {
        let shape = model.layers[index].outputShape
        let plane = shape.count == 3 ? shape[1] * shape[2] : 1
        var sum: Float = 0
        for i in 0..<plane { sum += output[channel * plane + i] }
        return sum
    }

    func channelSum(_ output: [Float], layer index: Int, channel: Int) -> Float {
        output.withUnsafeBufferPointer { channelSum($0.baseAddress!, layer: index, channel: channel) }
    }

    /// The changed box of the incremental part's output for an occluder box.
    private func boundaryBox(_ box: PlaneBox) -> PlaneBox {
        var box = box
        for stage in stages {
            switch stage {
            case .conv(let conv), .convDelta(let conv, _): box = changedOutputs(box, conv.geometry)
            case .maxPool(let pool): box = changedOutputs(box, pool.geometry)
            case .avgPool(let pool): box = changedOutputs(box, pool.geometry)
            case .identity: break
            }
        }
        return box
    }

    /// Where the incremental part leaves its result.
    private enum Sink {
        /// Whole inputs of layer `fullFrom`, `(m, shape)`: the unoccluded values with the changed box pasted in.
        case assemble(base: [Float], shape: [Int], into: UnsafeMutablePointer<Float>)
        /// Only the change inside each copy's box, `(C, box.h, box.w)` at `into + offsets[b]`.
        case changes(base: [Float], shape: [Int], into: UnsafeMutablePointer<Float>, offsets: [Int])
    }

    /// The incremental part for the occluders `boxes`: walks the layers before `fullFrom`, keeping for
    /// each occluder only its changed box of each layer's output, and hands the result to `sink`.
    private func updateIncrementally(
        image: UnsafePointer<Float>, base: [[Float]], pre: [[Float]], boxes: ArraySlice<PlaneBox>, fill: [Float],
        feature: Feature?, activity: UnsafeMutablePointer<Float>, sink: Sink, scratch s: WorkerScratch
    ) {
        let m = boxes.count
        var changed = Array(boxes)  // the changed box of the current layer's output, per occluder
        var offsets = [Int](repeating: 0, count: m + 1)  // where each occluder's block starts in `values`
        let shape = model.inputShape
        for b in 0..<m { offsets[b + 1] = offsets[b] + shape.channels * changed[b].area }
        var values = s.values[0].reserve(offsets[m])  // per occluder `(C, box.h, box.w)`: the changed values
        for b in 0..<m {
            let area = changed[b].area
            for c in 0..<shape.channels { (values + offsets[b] + c * area).update(repeating: fill[c], count: area) }
        }
        var flip = 1
        var inputBase = image
        for (index, stage) in stages.enumerated() {
            let t0 = cpuSeconds(CLOCK_THREAD_CPUTIME_ID)
            let outShape = model.layers[index].outputShape
            base[index].withUnsafeBufferPointer { outputBase in
                var g: ConvGeometry?
                switch stage {
                case .identity: break
                case .conv(let conv), .convDelta(let conv, _): g = conv.geometry
                case .maxPool(let pool): g = pool.geometry
                case .avgPool(let pool): g = pool.geometry
                }
                if let g {
                    let next = changed.map { changedOutputs($0, g) }
                    let outOffsets = BoxedValues.offsets(next, channels: outShape[0])
                    let out = s.values[flip].reserve(outOffsets[m])
                    let from = BoxedValues(boxes: changed, values: values, offsets: offsets)
                    let to = BoxedValues(boxes: next, values: out, offsets: outOffsets)
                    switch stage {
                    case .conv(let conv):
                        let scratch = s.columns.reserve(convolveBoxesScratchSize(g, outChannels: conv.outChannels, outputs: next))
                        convolveBoxes(inputBase, g, outChannels: conv.outChannels, weight: conv.weight, bias: conv.bias, activation: conv.activation,
                                      from: from, to: to, scratch: scratch)
                    case let .convDelta(conv, weights):
                        let scratch = s.columns.reserve(convolveByChangeScratchSize(g, outChannels: conv.outChannels, inputs: changed, outputs: next))
                        pre[index].withUnsafeBufferPointer { pre in
                            weights.withUnsafeBufferPointer { weights in
                                convolveByChange(inputBase, g, outChannels: conv.outChannels, weights: weights.baseAddress!, pre: pre.baseAddress!,
                                                 activation: conv.activation, from: from, to: to, scratch: scratch)
                            }
                        }
                    case .maxPool:
                        let scratch = s.columns.reserve(poolBoxesScratchSize(g, outputs: next))
                        if s.switches.count < outOffsets[m] { s.switches = [Int32](repeating: 0, count: outOffsets[m]) }
                        s.switches.withUnsafeMutableBufferPointer { sw in
                            poolBoxes(inputBase, g, from: from, to: to, scratch: scratch) { maxPoolForward($0, planes: g.inChannels, $1, $2, switches: sw.baseAddress!) }
                        }
                    case .avgPool:
                        let scratch = s.columns.reserve(poolBoxesScratchSize(g, outputs: next))
                        poolBoxes(inputBase, g, from: from, to: to, scratch: scratch) { avgPoolForward($0, planes: g.inChannels, $1, $2) }
                    case .identity: break
                    }
                    (changed, offsets, values) = (next, outOffsets, out)
                    flip ^= 1
                }
                if let feature, feature.layer == index {
                    addChannelSumChanges(BoxedValues(boxes: changed, values: values, offsets: offsets), base: outputBase.baseAddress!,
                                         h: outShape[1], w: outShape[2], channel: feature.channel, activity)
                }
                inputBase = outputBase.baseAddress!
            }
            s.times[index] += cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t0
        }
        let t0 = cpuSeconds(CLOCK_THREAD_CPUTIME_ID)
        let result = BoxedValues(boxes: changed, values: values, offsets: offsets)
        switch sink {
        case let .assemble(boundaryBase, shape, into):
            boundaryBase.withUnsafeBufferPointer { pasteBoxes(result, base: $0.baseAddress!, c: shape[0], h: shape[1], w: shape[2], into) }
        case let .changes(boundaryBase, shape, into, changeOffsets):
            boundaryBase.withUnsafeBufferPointer {
                boxDifferences(result, base: $0.baseAddress!, c: shape[0], h: shape[1], w: shape[2], into, offsets: changeOffsets)
            }
        }
        s.times[fullFrom] += cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t0
    }

    /// `output` `(n, O)` for the dense layer updated by W·Δx (`Net.denseByChange`): the changes are
    /// grouped by input location, then the workers split the output features.
    private func denseByChange(
        _ dense: Dense, weights: [Float], pre: [Float], changes: UnsafeMutablePointer<Float>, boxes: [PlaneBox], offsets: [Int],
        shape: [Int], output: UnsafeMutablePointer<Float>
    ) {
        let (c, o, n) = (shape[0], dense.outFeatures, boxes.count)
        let groups = ChangesByLocation(boxes, height: shape[1], width: shape[2])
        let gathered = scratch[0].gathered.reserve(max(1, groups.members.count * c))  // (rows, C)
        groups.gather(BoxedValues(boxes: boxes, values: changes, offsets: offsets), channels: c, into: gathered)
        pre.withUnsafeBufferPointer { pre in
            weights.withUnsafeBufferPointer { weights in
                parallelRanges(o, minimumPerWorker: 64) { features, worker in
                    let product = scratch[worker].product.reserve(max(1, groups.widest * features.count))
                    Net.denseByChange(pre: pre.baseAddress!, weights: weights.baseAddress!, gathered: gathered, groups, channels: c, outFeatures: o,
                                      features: features, copies: n, activation: dense.activation, output, scratch: product)
                }
            }
        }
    }
}

/// CPU seconds of `clock` (`CLOCK_THREAD_CPUTIME_ID` or `CLOCK_PROCESS_CPUTIME_ID`).
func cpuSeconds(_ clock: clockid_t) -> Double {
    var t = timespec()
    clock_gettime(clock, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// A growable float buffer; contents undefined after growth.
final class FloatScratch {
    private(set) var pointer: UnsafeMutablePointer<Float> = .allocate(capacity: 1)
    private var capacity = 1

    deinit { pointer.deallocate() }

    func reserve(_ n: Int) -> UnsafeMutablePointer<Float> {
        if n > capacity {
            pointer.deallocate()
            pointer = .allocate(capacity: n)
            capacity = n
        }
        return pointer
    }
}

/// One worker's buffers for the incremental part.
final class WorkerScratch {
    let values = [FloatScratch(), FloatScratch()]
    let patch = FloatScratch()
    let columns = FloatScratch()
    let product = FloatScratch()
    let gathered = FloatScratch()
    var switches: [Int32] = []
    /// Busy seconds per incremental layer, plus one slot for assembling the boundary.
    var times: [Double]

    init(slots: Int) { times = [Double](repeating: 0, count: slots + 1) }

    func resetTimes() { for i in times.indices { times[i] = 0 } }
}
