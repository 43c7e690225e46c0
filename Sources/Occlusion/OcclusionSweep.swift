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
    /// The memories and workspace of the layers' own forward passes.
    private let record: ForwardRecord
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
        record = ForwardRecord(model)
        var stages: [Stage] = []
        if mode == .incremental {
            for layer in model.layers {
                guard layer.inputShape.count == 3, layer.outputShape.count == 3 else { break }
                if let conv = layer as? Conv2D {
                    let g = conv.geometry
                    if g.stride == 1 && g.inChannels >= deltaMinimumChannels {
                        var w = [Float](repeating: 0, count: conv.outChannels * g.patchSize)
                        let (c, kk, o) = (g.inChannels, g.kernelHeight * g.kernelWidth, conv.outChannels)
                        for out in 0..<o {
                            for ch in 0..<c {
                                for ij in 0..<kk { w[(ch * kk + ij) * o + out] = conv.weight[(out * c + ch) * kk + ij] }
                            }
                        }
                        stages.append(.convDelta(conv, weights: w))
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
            let (c, locations, o) = (dense.inputShape[0], dense.inputShape[1] * dense.inputShape[2], dense.outFeatures)
            var w = [Float](repeating: 0, count: o * c * locations)
            for l in 0..<locations {
                for out in 0..<o {
                    for ch in 0..<c { w[(l * o + out) * c + ch] = dense.weight[out * c * locations + ch * locations + l] }
                }
            }
            denseDelta = (dense, w)
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
                var hwc = [Float](repeating: 0, count: y.count)  // (outH, outW, O), as the scatter adds
                for c in 0..<o {
                    for i in 0..<g.positions {
                        y[c * g.positions + i] += conv.bias[c]
                        hwc[i * o + c] = y[c * g.positions + i]
                    }
                }
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
                    y.withUnsafeMutableBufferPointer {
                        layer.forward(x.baseAddress!, $0.baseAddress!, batch: 1, training: false, memory: record.memories[index], workspace: record.workspace)
                    }
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
                    time(2 + i) { layer.forward(input, y, batch: n, training: false, memory: record.memories[i], workspace: record.workspace) }
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
                    var outOffsets = [Int](repeating: 0, count: m + 1)
                    for b in 0..<m { outOffsets[b + 1] = outOffsets[b] + outShape[0] * next[b].area }
                    let out = s.values[flip].reserve(outOffsets[m])
                    let from = Changes(boxes: changed, values: values, offsets: offsets)
                    let to = Changes(boxes: next, values: out, offsets: outOffsets)
                    switch stage {
                    case .conv(let conv): convolve(conv, input: inputBase, from, to, s)
                    case let .convDelta(conv, weights):
                        pre[index].withUnsafeBufferPointer { convolveByChange(conv, weights: weights, input: inputBase, pre: $0.baseAddress!, from, to, s) }
                    case .maxPool: pool2d(g, max: true, input: inputBase, from, to, s)
                    case .avgPool: pool2d(g, max: false, input: inputBase, from, to, s)
                    case .identity: break
                    }
                    (changed, offsets, values) = (next, outOffsets, out)
                    flip ^= 1
                }
                if let feature, feature.layer == index {
                    let (ow, plane, c) = (outShape[2], outShape[1] * outShape[2], feature.channel)
                    for b in 0..<m {
                        let box = changed[b]
                        let block = values + offsets[b] + c * box.area
                        var delta: Float = 0
                        for y in 0..<box.height {
                            let row = outputBase.baseAddress! + c * plane + (box.y0 + y) * ow + box.x0
                            for x in 0..<box.width { delta += block[y * box.width + x] - row[x] }
                        }
                        activity[b] += delta
                    }
                }
                inputBase = outputBase.baseAddress!
            }
            s.times[index] += cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t0
        }
        let t0 = cpuSeconds(CLOCK_THREAD_CPUTIME_ID)
        switch sink {
        case let .assemble(boundaryBase, shape, into):
            let (c, h, w) = (shape[0], shape[1], shape[2])
            let count = c * h * w
            boundaryBase.withUnsafeBufferPointer { src in
                for b in 0..<m {
                    let dst = into + b * count
                    dst.update(from: src.baseAddress!, count: count)
                    let box = changed[b]
                    guard !box.isEmpty else { continue }
                    for ch in 0..<c {
                        for y in 0..<box.height {
                            (dst + (ch * h + box.y0 + y) * w + box.x0).update(from: values + offsets[b] + (ch * box.height + y) * box.width, count: box.width)
                        }
                    }
                }
            }
        case let .changes(boundaryBase, shape, into, changeOffsets):
            let (c, h, w) = (shape[0], shape[1], shape[2])
            boundaryBase.withUnsafeBufferPointer { src in
                for b in 0..<m {
                    let box = changed[b]
                    let dst = into + changeOffsets[b]
                    for ch in 0..<c {
                        for y in 0..<box.height {
                            let row = src.baseAddress! + (ch * h + box.y0 + y) * w + box.x0
                            let from = values + offsets[b] + (ch * box.height + y) * box.width
                            let to = dst + (ch * box.height + y) * box.width
                            for x in 0..<box.width { to[x] = from[x] - row[x] }
                        }
                    }
                }
            }
        }
        s.times[fullFrom] += cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t0
    }

    /// `output` `(n, O)` = f(pre + Σ over each copy's changed locations l of W_l · Δx_l): for every input
    /// location, the copies whose box covers it are gathered into `(n_l, C)`, multiplied by that
    /// location's `(O, C)` weight block in one sgemm and added to their rows. Workers split the outputs.
    private func denseByChange(
        _ dense: Dense, weights: [Float], pre: [Float], changes: UnsafePointer<Float>, boxes: [PlaneBox], offsets: [Int],
        shape: [Int], output: UnsafeMutablePointer<Float>
    ) {
        let (c, w, o, n) = (shape[0], shape[2], dense.outFeatures, boxes.count)
        let locations = shape[1] * shape[2]
        var counts = [Int](repeating: 0, count: locations + 1)
        for box in boxes {
            for y in box.y0..<box.y1 {
                for x in box.x0..<box.x1 { counts[y * w + x + 1] += 1 }
            }
        }
        for l in 0..<locations { counts[l + 1] += counts[l] }  // now the start of each location's rows
        var members = [Int](repeating: 0, count: counts[locations])
        let gathered = scratch[0].gathered.reserve(max(1, counts[locations] * c))  // (Σ n_l, C)
        var fillLevel = Array(counts[0..<locations])
        for (b, box) in boxes.enumerated() {
            for y in box.y0..<box.y1 {
                for x in box.x0..<box.x1 {
                    let row = fillLevel[y * w + x]
                    fillLevel[y * w + x] += 1
                    members[row] = b
                    let src = changes + offsets[b] + (y - box.y0) * box.width + (x - box.x0)
                    let dst = gathered + row * c
                    for ch in 0..<c { dst[ch] = src[ch * box.area] }
                }
            }
        }
        let widest = (0..<locations).map { counts[$0 + 1] - counts[$0] }.max() ?? 0
        pre.withUnsafeBufferPointer { pre in
            weights.withUnsafeBufferPointer { weights in
                parallelRanges(o, minimumPerWorker: 64) { outs, worker in
                    let (o0, k) = (outs.lowerBound, outs.count)
                    for b in 0..<n { (output + b * o + o0).update(from: pre.baseAddress! + o0, count: k) }
                    let product = scratch[worker].product.reserve(max(1, widest * k))
                    for l in 0..<locations where counts[l + 1] > counts[l] {
                        let rows = counts[l + 1] - counts[l]
                        // (n_l, k) = Δ (n_l, C) × W_lᵀ (C, k)
                        sgemm(transposeA: false, transposeB: true, m: rows, n: k, k: c, gathered + counts[l] * c, lda: c,
                              weights.baseAddress! + (l * o + o0) * c, ldb: c, product, ldc: k)
                        for r in 0..<rows {
                            let dst = output + members[counts[l] + r] * o + o0
                            let src = product + r * k
                            addVector(src, into: dst, count: k)
                        }
                    }
                    for b in 0..<n { dense.activation.apply(output + b * o + o0, count: k) }
                }
            }
        }
    }
}

/// The changed part of one layer's output for a group of occluded copies: copy `b` changed inside
/// `boxes[b]`, its new values `(C, box.h, box.w)` at `values + offsets[b]`.
private struct Changes {
    var boxes: [PlaneBox]
    var values: UnsafeMutablePointer<Float>
    var offsets: [Int]
}

/// The output positions of a convolution or pooling layer of geometry `g` whose window overlaps
/// `box` of its input: rows `⌈(y0 + p − k + 1)/s⌉ … ⌊(y1 − 1 + p)/s⌋`, clipped to the output.
public func changedOutputs(_ box: PlaneBox, _ g: ConvGeometry) -> PlaneBox {
    guard !box.isEmpty else { return .empty }
    func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
    let (p, s) = (g.padding, g.stride)
    let y0 = max(0, -floorDiv(-(box.y0 + p - g.kernelHeight + 1), s)), y1 = min(g.outHeight, floorDiv(box.y1 - 1 + p, s) + 1)
    let x0 = max(0, -floorDiv(-(box.x0 + p - g.kernelWidth + 1), s)), x1 = min(g.outWidth, floorDiv(box.x1 - 1 + p, s) + 1)
    let out = PlaneBox(y0: y0, y1: y1, x0: x0, x1: x1)
    return out.isEmpty ? .empty : out
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

/// Writes the patch of rows `fy0 ..< fy0 + fh` and columns `fx0 ..< fx0 + fw` of `base` `(C, H, W)`
/// into `patch` `(C, fh, fw)`: zero outside the image, `values` `(C, box.h, box.w)` inside `box`.
func fillPatch(
    _ base: UnsafePointer<Float>, c: Int, h: Int, w: Int, fy0: Int, fx0: Int, fh: Int, fw: Int,
    box: PlaneBox, values: UnsafePointer<Float>, _ patch: UnsafeMutablePointer<Float>
) {
    let a = min(fw, max(0, -fx0)), e = max(a, min(fw, w - fx0))
    let xa = max(box.x0, fx0), xe = min(box.x1, fx0 + fw)
    for ch in 0..<c {
        let plane = base + ch * h * w
        let changed = values + ch * box.area
        for r in 0..<fh {
            let iy = fy0 + r
            let row = patch + (ch * fh + r) * fw
            if iy < 0 || iy >= h {
                row.update(repeating: 0, count: fw)
                continue
            }
            row.update(repeating: 0, count: a)
            (row + a).update(from: plane + iy * w + fx0 + a, count: e - a)
            (row + e).update(repeating: 0, count: fw - e)
            if iy >= box.y0 && iy < box.y1 && xa < xe {
                (row + xa - fx0).update(from: changed + (iy - box.y0) * box.width + (xa - box.x0), count: xe - xa)
            }
        }
    }
}

extension OcclusionSweep {
    /// The changed outputs of a convolution for each copy, recomputed: patches → one im2col matrix
    /// `(C·kh·kw, Σ areas)` → one sgemm → bias and activation into `to` (per copy `(O, box.h, box.w)`).
    fileprivate func convolve(_ conv: Conv2D, input: UnsafePointer<Float>, _ from: Changes, _ to: Changes, _ s: WorkerScratch) {
        let g = conv.geometry
        let (c, h, w, kh, kw, st, p, o) = (g.inChannels, g.height, g.width, g.kernelHeight, g.kernelWidth, g.stride, g.padding, conv.outChannels)
        let k = g.patchSize
        var columnOffsets = [Int](repeating: 0, count: to.boxes.count + 1)
        for b in to.boxes.indices { columnOffsets[b + 1] = columnOffsets[b] + to.boxes[b].area }
        let n = columnOffsets[to.boxes.count]
        guard n > 0 else { return }
        let col = s.columns.reserve(k * n)  // (C·kh·kw, n)
        for (b, box) in to.boxes.enumerated() where !box.isEmpty {
            let (fh, fw) = ((box.height - 1) * st + kh, (box.width - 1) * st + kw)
            let patch = s.patch.reserve(c * fh * fw)  // (C, fh, fw)
            fillPatch(input, c: c, h: h, w: w, fy0: box.y0 * st - p, fx0: box.x0 * st - p, fh: fh, fw: fw,
                      box: from.boxes[b], values: from.values + from.offsets[b], patch)
            let (oh, ow) = (box.height, box.width)
            for ch in 0..<c {
                for i in 0..<kh {
                    for j in 0..<kw {
                        let row = col + ((ch * kh + i) * kw + j) * n + columnOffsets[b]
                        for y in 0..<oh {
                            let src = patch + (ch * fh + y * st + i) * fw + j
                            let dst = row + y * ow
                            if st == 1 {
                                dst.update(from: src, count: ow)
                            } else {
                                for x in 0..<ow { dst[x] = src[x * st] }
                            }
                        }
                    }
                }
            }
        }
        let product = s.product.reserve(o * n)
        // (O, n) = W (O, K) × col (K, n)
        sgemm(transposeA: false, transposeB: false, m: o, n: n, k: k, conv.weight, lda: k, col, ldb: n, product, ldc: n)
        for (b, box) in to.boxes.enumerated() where !box.isEmpty {
            let area = box.area
            let block = to.values + to.offsets[b]
            for ch in 0..<o {
                let src = product + ch * n + columnOffsets[b]
                let dst = block + ch * area
                let bias = conv.bias[ch]
                for i in 0..<area { dst[i] = src[i] + bias }
            }
            conv.activation.apply(block, count: o * area)
        }
    }

    /// The changed outputs of a stride-1 convolution for each copy, from the change of its input:
    /// Δ `(Σ input areas, C)` = new − unoccluded input inside each copy's box; Z `(Σ, kh·kw·O)` = Δ × W'
    /// in one sgemm; each row of Z then adds, tap by tap, an O-vector at the output its input pixel
    /// reaches (input (y, x) reaches output (y + p − i, x + p − j) through tap (i, j)), on top of the
    /// unoccluded pre-activation `pre` `(outH, outW, O)`. Channels last keeps those additions contiguous;
    /// the sum is activated and stored as `(O, box.h, box.w)`.
    fileprivate func convolveByChange(
        _ conv: Conv2D, weights: [Float], input: UnsafePointer<Float>, pre: UnsafePointer<Float>, _ from: Changes, _ to: Changes, _ s: WorkerScratch
    ) {
        let g = conv.geometry
        let (c, h, w, kh, kw, p, o) = (g.inChannels, g.height, g.width, g.kernelHeight, g.kernelWidth, g.padding, conv.outChannels)
        let ow = g.outWidth
        var rowOffsets = [Int](repeating: 0, count: from.boxes.count + 1)
        for b in from.boxes.indices { rowOffsets[b + 1] = rowOffsets[b] + from.boxes[b].area }
        let n = rowOffsets[from.boxes.count]
        let delta = s.columns.reserve(max(1, n * c))  // (n, C)
        for (b, box) in from.boxes.enumerated() where !box.isEmpty {
            let area = box.area
            for ch in 0..<c {
                let src = from.values + from.offsets[b] + ch * area
                let dst = delta + rowOffsets[b] * c + ch
                for y in 0..<box.height {
                    let row = input + (ch * h + box.y0 + y) * w + box.x0
                    for x in 0..<box.width { dst[(y * box.width + x) * c] = src[y * box.width + x] - row[x] }
                }
            }
        }
        let taps = kh * kw * o
        let z = s.product.reserve(max(1, n * taps))
        if n > 0 {
            // (n, kh·kw·O) = Δ (n, C) × W' (C, kh·kw·O)
            weights.withUnsafeBufferPointer { wr in
                sgemm(transposeA: false, transposeB: false, m: n, n: taps, k: c, delta, lda: c, wr.baseAddress!, ldb: taps, z, ldc: taps)
            }
        }
        for (b, out) in to.boxes.enumerated() where !out.isEmpty {
            let (bh, bw) = (out.height, out.width)
            let sum = s.patch.reserve(bh * bw * o)  // (bh, bw, O)
            for y in 0..<bh { (sum + y * bw * o).update(from: pre + ((out.y0 + y) * ow + out.x0) * o, count: bw * o) }
            let box = from.boxes[b]
            for y in 0..<box.height {
                for x in 0..<box.width {
                    let zrow = z + (rowOffsets[b] + y * box.width + x) * taps
                    for i in 0..<kh {
                        let oy = box.y0 + y + p - i - out.y0
                        guard oy >= 0 && oy < bh else { continue }
                        for j in 0..<kw {
                            let ox = box.x0 + x + p - j - out.x0
                            guard ox >= 0 && ox < bw else { continue }
                            let dst = sum + (oy * bw + ox) * o
                            let src = zrow + (i * kw + j) * o
                            addVector(src, into: dst, count: o)
                        }
                    }
                }
            }
            conv.activation.apply(sum, count: bh * bw * o)
            let block = to.values + to.offsets[b]
            let area = bh * bw
            for q in 0..<area {
                for k in 0..<o { block[k * area + q] = sum[q * o + k] }
            }
        }
    }

    /// The changed outputs of a max or average pooling layer for each copy, by Net's pooling kernels on
    /// a patch of the input.
    fileprivate func pool2d(_ g: ConvGeometry, max: Bool, input: UnsafePointer<Float>, _ from: Changes, _ to: Changes, _ s: WorkerScratch) {
        let (c, k, st) = (g.inChannels, g.kernelHeight, g.stride)
        for (b, box) in to.boxes.enumerated() where !box.isEmpty {
            let (fh, fw) = ((box.height - 1) * st + k, (box.width - 1) * st + g.kernelWidth)
            let patch = s.patch.reserve(c * fh * fw)
            fillPatch(input, c: c, h: g.height, w: g.width, fy0: box.y0 * st, fx0: box.x0 * st, fh: fh, fw: fw,
                      box: from.boxes[b], values: from.values + from.offsets[b], patch)
            let pg = ConvGeometry(inChannels: c, height: fh, width: fw, kernel: k, stride: st)
            if max {
                if s.switches.count < c * box.area { s.switches = [Int32](repeating: 0, count: c * box.area) }
                s.switches.withUnsafeMutableBufferPointer { sw in
                    maxPoolForward(patch, planes: c, pg, to.values + to.offsets[b], switches: sw.baseAddress!)
                }
            } else {
                avgPoolForward(patch, planes: c, pg, to.values + to.offsets[b])
            }
        }
    }
}

/// `y[i] += x[i]` for `i < count`, eight lanes at a time.
@inline(__always)
func addVector(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    while i + 8 <= count {
        let sum = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) + rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        ry.storeBytes(of: sum, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        y[i] += x[i]
        i += 1
    }
}
