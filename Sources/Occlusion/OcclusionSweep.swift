import Dispatch
import Net

/// Runs many occluded copies of one image through a `Sequential` model, batched, recomputing only
/// what an occluder can change.
///
/// The unoccluded image goes through the network once. Then, for a batch of occluder boxes, the
/// leading convolution, pooling and dropout layers (the *incremental part*) are updated region by
/// region: a box that changes rows `y0..<y1` of a layer's input changes only the outputs whose window
/// reaches into it, so each layer recomputes just that footprint (which grows with every layer) from
/// a patch of its input (the unoccluded values with the changed box pasted in), and the rest of its
/// output is the unoccluded one. A convolution gathers the patch columns of every position in the batch
/// into one im2col matrix and multiplies once (`sgemm`); pooling runs Net's pooling kernels on the
/// patches. From the first other layer on (dense, recurrent, anything unknown) every occluded copy is
/// rebuilt in full and the remaining layers run their ordinary batched forward pass.
///
/// `Mode.full` skips the incremental part: every occluded image goes through every layer (the
/// reference the incremental result is tested against). Positions are split across `Workers.count`
/// threads; BLAS runs single-threaded inside each.
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
    /// Occluded copies that go through the fully computed layers together.
    public var batchSize = 512
    /// Occluded copies one worker updates at once in the incremental part (one sgemm per convolution).
    public var workerBatch = 8
    /// Seconds spent per phase since the last `resetProfile()`: `base`, each incremental layer (summed
    /// over workers), `assemble`, each fully computed layer, `scores`.
    public private(set) var profile: [(name: String, seconds: Double)] = []

    private enum Stage {
        case conv(Conv2D)
        case maxPool(MaxPool2D)
        case avgPool(AvgPool2D)
        case identity
    }

    private let stages: [Stage]
    private var scratch: [WorkerScratch] = []
    private var tailOutputs: [FloatScratch] = []
    private let boundary = FloatScratch()

    public init(model: Sequential, mode: Mode = .incremental) {
        self.model = model
        self.mode = mode
        var stages: [Stage] = []
        if mode == .incremental {
            for layer in model.layers {
                guard layer.inputShape.count == 3, layer.outputShape.count == 3 else { break }
                if let conv = layer as? Conv2D {
                    stages.append(.conv(conv))
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
        resetProfile()
    }

    /// Clears `profile`.
    public func resetProfile() {
        var names = ["base"]
        names += model.layers[0..<fullFrom].map { "\($0.name) (incremental)" }
        names.append("assemble")
        names += model.layers[fullFrom...].map { "\($0.name) (full)" }
        names.append("scores")
        profile = names.map { ($0, 0) }
    }

    private func time(_ slot: Int, _ body: () -> Void) {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        profile[slot].seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Every layer's output for `image` `(C, H, W)`, unoccluded, in layer order.
    public func activations(_ image: [Float]) -> [[Float]] {
        image.withUnsafeBufferPointer { x in
            model.forward(x.baseAddress!, batch: 1, training: false)
        }
        return model.layers.indices.map { i in
            Array(UnsafeBufferPointer(start: model.output(of: i), count: model.layers[i].outputCount))
        }
    }

    /// The logits of `image` `(C, H, W)` with each box in `boxes` set to `fill` (one value per channel),
    /// and the total activation of `feature` for each occluded copy.
    public func evaluate(_ image: [Float], boxes: [PlaneBox], fill: [Float], feature: Feature? = nil) -> Evaluation {
        let shape = model.inputShape
        precondition(image.count == shape.count, "the image must be \(shape)")
        precondition(fill.count == shape.channels, "one fill value per channel")
        let classes = model.classes
        var base: [[Float]] = []
        time(0) { base = activations(image) }
        var logits = [Float](repeating: 0, count: boxes.count * classes)
        var activity = [Float](repeating: 0, count: feature == nil ? 0 : boxes.count)
        let plane = PlaneBox(y0: 0, y1: shape.height, x0: 0, x1: shape.width)
        let clipped = boxes.map { $0.intersection(plane) }
        let baseActivity = feature.map { channelSum(base[$0.layer], layer: $0.layer, channel: $0.channel) } ?? 0
        while scratch.count < Workers.count { scratch.append(WorkerScratch(slots: fullFrom)) }
        for w in 0..<scratch.count { scratch[w].resetTimes() }
        let boundaryCount = fullFrom == 0 ? shape.count : model.layers[fullFrom - 1].outputCount
        let boundaryShape = fullFrom == 0 ? [shape.channels, shape.height, shape.width] : model.layers[fullFrom - 1].outputShape
        let boundaryBase = fullFrom == 0 ? image : base[fullFrom - 1]
        let nb = max(1, min(batchSize, boxes.count))
        let x = boundary.reserve(nb * boundaryCount)
        while tailOutputs.count < model.layers.count { tailOutputs.append(FloatScratch()) }

        image.withUnsafeBufferPointer { img in
            for first in stride(from: 0, to: boxes.count, by: nb) {
                let n = min(nb, boxes.count - first)
                var incrementalActivity = [Float](repeating: baseActivity, count: n)
                let start = DispatchTime.now().uptimeNanoseconds
                incrementalActivity.withUnsafeMutableBufferPointer { act in
                    parallelRanges(n) { range, worker in
                        let s = scratch[worker]
                        for chunk in stride(from: range.lowerBound, to: range.upperBound, by: workerBatch) {
                            let m = min(workerBatch, range.upperBound - chunk)
                            updateIncrementally(
                                image: img.baseAddress!, base: base, boxes: clipped[(first + chunk)..<(first + chunk + m)], fill: fill,
                                feature: feature, activity: act.baseAddress! + chunk,
                                boundaryBase: boundaryBase, boundaryShape: boundaryShape, boundary: x + chunk * boundaryCount, scratch: s)
                        }
                    }
                }
                let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                // Split the incremental wall time over its layers in proportion to each worker's busy time.
                let busy = (0..<fullFrom + 1).map { i in scratch.reduce(0) { $0 + $1.times[i] } }
                let total = max(busy.reduce(0, +), 1e-12)
                for i in 0...fullFrom { profile[1 + i].seconds += wall * busy[i] / total }
                for w in 0..<scratch.count { scratch[w].resetTimes() }
                var input = UnsafePointer(x)
                for i in fullFrom..<model.layers.count {
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

    /// The incremental part for the occluders `boxes`: walks the layers before `fullFrom`, keeping for
    /// each occluder only its changed box of each layer's output, then writes each occluded copy's input
    /// to the first fully computed layer into `boundary` `(boxes.count, boundaryShape)`.
    private func updateIncrementally(
        image: UnsafePointer<Float>, base: [[Float]], boxes: ArraySlice<PlaneBox>, fill: [Float],
        feature: Feature?, activity: UnsafeMutablePointer<Float>,
        boundaryBase: [Float], boundaryShape: [Int], boundary: UnsafeMutablePointer<Float>, scratch s: WorkerScratch
    ) {
        let m = boxes.count
        var changed = Array(boxes)  // the changed box of the current layer's output, per occluder
        var offsets = [Int](repeating: 0, count: m + 1)  // where each occluder's block starts in `values`
        let shape = model.inputShape
        var channels = shape.channels
        for b in 0..<m { offsets[b + 1] = offsets[b] + channels * changed[b].area }
        var values = s.values[0].reserve(offsets[m])  // per occluder `(C, box.h, box.w)`: the changed values
        for b in 0..<m {
            let area = changed[b].area
            for c in 0..<channels { (values + offsets[b] + c * area).update(repeating: fill[c], count: area) }
        }
        var flip = 1
        var inputBase = image
        for (index, stage) in stages.enumerated() {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let layer = model.layers[index]
            let outShape = layer.outputShape
            base[index].withUnsafeBufferPointer { outputBase in
                switch stage {
                case .identity:
                    break
                case .conv(let conv):
                    let next = propagate(changed, conv.geometry)
                    var outOffsets = [Int](repeating: 0, count: m + 1)
                    for b in 0..<m { outOffsets[b + 1] = outOffsets[b] + outShape[0] * next[b].area }
                    let out = s.values[flip].reserve(outOffsets[m])
                    convolve(conv, input: inputBase, changed: changed, values: values, offsets: offsets, next: next, out: out, outOffsets: outOffsets, s)
                    (changed, offsets, values) = (next, outOffsets, out)
                    flip ^= 1
                case .maxPool(let pool):
                    let next = propagate(changed, pool.geometry)
                    var outOffsets = [Int](repeating: 0, count: m + 1)
                    for b in 0..<m { outOffsets[b + 1] = outOffsets[b] + outShape[0] * next[b].area }
                    let out = s.values[flip].reserve(outOffsets[m])
                    pool2d(pool.geometry, max: true, input: inputBase, changed: changed, values: values, offsets: offsets, next: next, out: out, outOffsets: outOffsets, s)
                    (changed, offsets, values) = (next, outOffsets, out)
                    flip ^= 1
                case .avgPool(let pool):
                    let next = propagate(changed, pool.geometry)
                    var outOffsets = [Int](repeating: 0, count: m + 1)
                    for b in 0..<m { outOffsets[b + 1] = outOffsets[b] + outShape[0] * next[b].area }
                    let out = s.values[flip].reserve(outOffsets[m])
                    pool2d(pool.geometry, max: false, input: inputBase, changed: changed, values: values, offsets: offsets, next: next, out: out, outOffsets: outOffsets, s)
                    (changed, offsets, values) = (next, outOffsets, out)
                    flip ^= 1
                }
                channels = outShape[0]
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
            s.times[index] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let (c, h, w) = (boundaryShape[0], boundaryShape[1], boundaryShape[2])
        let count = c * h * w
        boundaryBase.withUnsafeBufferPointer { src in
            for b in 0..<m {
                let dst = boundary + b * count
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
        s.times[fullFrom] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// The outputs a window layer of geometry `g` changes when its input changes inside each box.
    private func propagate(_ boxes: [PlaneBox], _ g: ConvGeometry) -> [PlaneBox] {
        boxes.map { changedOutputs($0, g) }
    }
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
    /// The changed outputs `next` of a convolution for each occluder: patches → one im2col matrix
    /// `(C·kh·kw, Σ areas)` → one sgemm → bias and activation into `out` (per occluder `(O, box.h, box.w)`).
    fileprivate func convolve(
        _ conv: Conv2D, input: UnsafePointer<Float>, changed: [PlaneBox], values: UnsafePointer<Float>, offsets: [Int],
        next: [PlaneBox], out: UnsafeMutablePointer<Float>, outOffsets: [Int], _ s: WorkerScratch
    ) {
        let g = conv.geometry
        let (c, h, w, kh, kw, st, p, o) = (g.inChannels, g.height, g.width, g.kernelHeight, g.kernelWidth, g.stride, g.padding, conv.outChannels)
        let k = g.patchSize
        var columnOffsets = [Int](repeating: 0, count: next.count + 1)
        for b in next.indices { columnOffsets[b + 1] = columnOffsets[b] + next[b].area }
        let n = columnOffsets[next.count]
        guard n > 0 else { return }
        let col = s.columns.reserve(k * n)  // (C·kh·kw, n)
        for (b, box) in next.enumerated() where !box.isEmpty {
            let (fh, fw) = ((box.height - 1) * st + kh, (box.width - 1) * st + kw)
            let patch = s.patch.reserve(c * fh * fw)  // (C, fh, fw)
            fillPatch(input, c: c, h: h, w: w, fy0: box.y0 * st - p, fx0: box.x0 * st - p, fh: fh, fw: fw,
                      box: changed[b], values: values + offsets[b], patch)
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
        for (b, box) in next.enumerated() where !box.isEmpty {
            let area = box.area
            let block = out + outOffsets[b]
            for ch in 0..<o {
                let src = product + ch * n + columnOffsets[b]
                let dst = block + ch * area
                let bias = conv.bias[ch]
                for i in 0..<area { dst[i] = src[i] + bias }
            }
            conv.activation.apply(block, count: o * area)
        }
    }

    /// The changed outputs `next` of a max or average pooling layer for each occluder, by Net's pooling
    /// kernels on a patch of the input.
    fileprivate func pool2d(
        _ g: ConvGeometry, max: Bool, input: UnsafePointer<Float>, changed: [PlaneBox], values: UnsafePointer<Float>, offsets: [Int],
        next: [PlaneBox], out: UnsafeMutablePointer<Float>, outOffsets: [Int], _ s: WorkerScratch
    ) {
        let (c, k, st) = (g.inChannels, g.kernelHeight, g.stride)
        for (b, box) in next.enumerated() where !box.isEmpty {
            let (fh, fw) = ((box.height - 1) * st + k, (box.width - 1) * st + g.kernelWidth)
            let patch = s.patch.reserve(c * fh * fw)
            fillPatch(input, c: c, h: g.height, w: g.width, fy0: box.y0 * st, fx0: box.x0 * st, fh: fh, fw: fw,
                      box: changed[b], values: values + offsets[b], patch)
            let pg = ConvGeometry(inChannels: c, height: fh, width: fw, kernel: k, stride: st)
            if max {
                if s.switches.count < c * box.area { s.switches = [Int32](repeating: 0, count: c * box.area) }
                s.switches.withUnsafeMutableBufferPointer { sw in
                    maxPoolForward(patch, planes: c, pg, out + outOffsets[b], switches: sw.baseAddress!)
                }
            } else {
                avgPoolForward(patch, planes: c, pg, out + outOffsets[b])
            }
        }
    }
}
