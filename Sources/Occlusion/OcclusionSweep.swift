import Foundation
import Net

/// Runs many occluded copies of one image through a `Sequential` model, batched, recomputing only
/// what an occluder can change.
///
/// The unoccluded image goes through the network once. Then, for a batch of occluder boxes, the
/// leading image-to-image layers that have a `boxUpdate` (the *incremental part*: convolution,
/// pooling, and dropout as the identity) are updated box by box: a change inside a box of a layer's
/// input changes only the outputs whose window reaches into it, `changedOutputs(_:_:)`, so each layer
/// computes only that footprint (which grows layer by layer) and the rest of its output stays the
/// unoccluded one. Each worker takes a few copies at a time (`workerBatch`), and a convolution's matrix
/// products cover all of them (recomputing its windows, through its input's change, or through
/// Winograd's tiles, whichever multiplies least for their boxes). A layer with a `changeUpdate` right
/// after the incremental part (a dense layer) adds `W·Δx` to its unoccluded pre-activation, `Δx` being
/// the change inside the last changed box. From there on (or from the first layer without an update,
/// such as a recurrent stack, with every occluded copy rebuilt in full) the layers run their ordinary
/// batched forward pass.
/// The kernels are Net's (`BoxKernels.swift`), behind the layers' `boxUpdate` and `changeUpdate`.
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
    /// it are updated incrementally (0 in `.full` mode or when the first layer has no box update).
    public let fullFrom: Int
    /// Whether layer `fullFrom` is updated as `W·Δx` (see `init`).
    public var updatesDenseByChange: Bool { changeUpdate != nil }
    /// Occluded copies that go through the fully computed layers together.
    public var batchSize = 512
    /// Occluded copies one worker updates at once in the incremental part (the matrix products of a
    /// convolution cover all of them). 32 rather than 8 ran AlexNet's sweep (window 32, stride 16) about
    /// 7 % faster and VGG-11's 19 % (medians of 5 and 3 rounds), mostly in Winograd's products, for 52
    /// and 80 MiB more memory.
    public var workerBatch = 32
    /// CPU seconds (all threads) spent per phase since the last `resetProfile()`: `base`, each incremental
    /// layer, `assemble` (or `collect changes`), each remaining layer, `scores`. CPU time rather than wall
    /// time, so that the breakdown means something on a busy machine.
    public private(set) var profile: [(name: String, seconds: Double)] = []

    /// The box update of each layer before `fullFrom`; nil for a layer that is the identity in evaluation.
    private let updates: [(any BoxUpdate)?]
    /// Layer `fullFrom`'s update by the change of its input, when it has one and it is asked for.
    private let changeUpdate: (any ChangeUpdate)?
    /// The unoccluded pass, keeping the pre-activations the updates read.
    private let baseRecord: ForwardRecord
    /// The batched passes of the layers from `fullFrom` on.
    private let tailRecord: ForwardRecord
    /// Each worker's scratch for the incremental part: two blocks of changed values, then the updates' scratch.
    private let workspace = Workspace()
    /// The boundary of one batch (one region): the inputs of layer `fullFrom` or their changes, then
    /// the output of the change update.
    private let boundary = Workspace()

    /// Plans the sweep for `model`. The leading image-to-image layers with a `boxUpdate` are updated
    /// incrementally. A convolution with at least `deltaMinimumChannels` input channels is asked for its
    /// update through the change of its input (fewer multiply-adds than recomputing its changed outputs:
    /// the change covers a smaller box than the outputs it reaches, but the matrix product's inner size
    /// is only C). The layer right after the incremental part is updated through its `changeUpdate`
    /// (`y = f(W·x₀ + b + W·Δx)`) unless `denseByChange` is false. The updates copy rearranged weights
    /// now: make a new sweep after changing the model's parameters.
    public init(model: Sequential, mode: Mode = .incremental, deltaMinimumChannels: Int = 16, denseByChange: Bool = true) {
        self.model = model
        self.mode = mode
        var updates: [(any BoxUpdate)?] = []
        if mode == .incremental {
            for layer in model.layers {
                guard layer.inputShape.count == 3, layer.outputShape.count == 3, let window = layer.window else { break }
                if layer.isIdentityInEvaluation {
                    updates.append(nil)
                    continue
                }
                guard let update = layer.boxUpdate(byChange: window.inChannels >= deltaMinimumChannels) else { break }
                updates.append(update)
            }
        }
        self.updates = updates
        fullFrom = updates.count
        changeUpdate = denseByChange && fullFrom > 0 ? model.layers[fullFrom].changeUpdate() : nil
        let readsPre = updates.indices.filter { updates[$0]?.readsPreActivation ?? false } + (changeUpdate == nil ? [] : [fullFrom])
        baseRecord = ForwardRecord(model, keepingPreActivationsOf: Set(readsPre))
        tailRecord = ForwardRecord(model)
        resetProfile()
    }

    /// Clears `profile`.
    public func resetProfile() {
        var names = ["base"]
        names += model.layers[0..<fullFrom].map { "\($0.name) (incremental)" }
        names.append(changeUpdate == nil ? "assemble" : "collect changes")
        names += model.layers[fullFrom...].enumerated().map { "\($1.name) (\($0 == 0 && changeUpdate != nil ? "W·Δx" : "full"))" }
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

    /// The unoccluded pass (`basePass`): what the occluded copies are updated from.
    struct UnoccludedPass {
        /// Every layer's output, in layer order.
        var outputs: [[Float]]
        /// Per layer, the pre-activation its update reads (of an incremental layer channels last,
        /// `(outH, outW, O)`; of the change-updated layer `(O)`), else empty.
        var pre: [[Float]]
        /// Per layer, its input channels last `(H, W, C)` when its update reads that, else empty.
        var inputsChannelsLast: [[Float]]
    }

    /// The unoccluded pass of `image` `(C, H, W)`.
    func basePass(_ image: [Float]) -> UnoccludedPass {
        image.withUnsafeBufferPointer { _ = model.forward($0.baseAddress!, batch: 1, training: false, into: baseRecord) }
        let outputs = model.layers.indices.map { Array(UnsafeBufferPointer(start: baseRecord.output(of: $0), count: model.layers[$0].outputCount)) }
        var inputsChannelsLast = [[Float]](repeating: [], count: model.layers.count)
        for (index, update) in updates.enumerated() where update?.readsInputChannelsLast ?? false {
            let input = index == 0 ? image : outputs[index - 1]
            let shape = model.layers[index].inputShape
            inputsChannelsLast[index] = [Float](repeating: 0, count: input.count)
            channelsLast(input, channels: shape[0], positions: shape[1] * shape[2], &inputsChannelsLast[index])
        }
        var pre = [[Float]](repeating: [], count: model.layers.count)
        for index in baseRecord.preActivationLayers {
            let shape = model.layers[index].outputShape
            let count = shape.reduce(1, *)
            if index == fullFrom {
                pre[index] = Array(UnsafeBufferPointer(start: baseRecord.preActivation(of: index), count: count))
            } else {
                pre[index] = [Float](repeating: 0, count: count)
                channelsLast(baseRecord.preActivation(of: index), channels: shape[0], positions: shape[1] * shape[2], &pre[index])
            }
        }
        return UnoccludedPass(outputs: outputs, pre: pre, inputsChannelsLast: inputsChannelsLast)
    }

    /// The logits of `image` `(C, H, W)` with each box in `boxes` set to `fill` (one value per channel),
    /// and the total activation of `feature` for each occluded copy.
    public func evaluate(_ image: [Float], boxes: [PlaneBox], fill: [Float], feature: Feature? = nil) -> Evaluation {
        precondition(image.count == model.inputShape.count, "the image must be \(model.inputShape)")
        var unoccluded: UnoccludedPass?
        time(0) { unoccluded = basePass(image) }
        return evaluate(image, boxes: boxes, fill: fill, feature: feature, unoccluded: unoccluded!)
    }

    /// `evaluate` with the unoccluded pass already done (`basePass`).
    func evaluate(_ image: [Float], boxes: [PlaneBox], fill: [Float], feature: Feature?, unoccluded: UnoccludedPass) -> Evaluation {
        let shape = model.inputShape
        precondition(fill.count == shape.channels, "one fill value per channel")
        let classes = model.classes
        let (base, pre) = (unoccluded.outputs, unoccluded.pre)
        var logits = [Float](repeating: 0, count: boxes.count * classes)
        var activity = [Float](repeating: feature.map { channelSum(base[$0.layer], layer: $0.layer, channel: $0.channel) } ?? 0, count: boxes.count)
        // footprints[i][b]: the changed box of layer i's input for occluder b; footprints[fullFrom]: of the boundary
        var footprints = [boxes.map { $0.intersection(PlaneBox(y0: 0, y1: shape.height, x0: 0, x1: shape.width)) }]
        for (index, update) in updates.enumerated() {
            footprints.append(update == nil ? footprints[index] : footprints[index].map { changedOutputs($0, model.layers[index].window!) })
        }
        let boundaryShape = fullFrom == 0 ? [shape.channels, shape.height, shape.width] : model.layers[fullFrom - 1].outputShape
        let boundaryCount = boundaryShape.reduce(1, *)
        let boundaryBase = fullFrom == 0 ? image : base[fullFrom - 1]
        let scratch = reserveWorkerScratch(footprints)
        let nb = max(1, min(batchSize, boxes.count))
        var times = [Double](repeating: 0, count: Workers.count * (fullFrom + 1))  // per worker, per incremental layer and the boundary

        for first in stride(from: 0, to: boxes.count, by: nb) {
            let n = min(nb, boxes.count - first)
            let batch = first..<(first + n)
            // With a change update, each copy's change at the boundary is collected as `(C, box.h, box.w)`
            // at `changeOffsets[b]` instead of assembling whole inputs.
            let changeBoxes = Array(footprints[fullFrom][batch])
            let changeOffsets = BoxedValues.offsets(changeBoxes, channels: boundaryShape[0])
            let inputSize = changeUpdate == nil ? n * boundaryCount : changeOffsets[n]
            boundary.reserve(inputSize + n * model.layers[fullFrom].outputCount, workers: 1)
            let x = boundary.floats(inputSize)
            activity.withUnsafeMutableBufferPointer { sums in
                times.withUnsafeMutableBufferPointer { times in
                    parallelRanges(n) { range, worker in
                        for chunk in stride(from: range.lowerBound, to: range.upperBound, by: workerBatch) {
                            let copies = chunk..<min(chunk + workerBatch, range.upperBound)
                            let result = updateIncrementally(
                                image, unoccluded, footprints: footprints, copies: (first + copies.lowerBound)..<(first + copies.upperBound), fill: fill,
                                feature: feature, sums: sums.baseAddress! + first + chunk, scratch: workspace.floats(scratch.total, worker: worker),
                                block: scratch.block, times: times.baseAddress! + worker * (fullFrom + 1))
                            let t0 = cpuSeconds(CLOCK_THREAD_CPUTIME_ID)
                            boundaryBase.withUnsafeBufferPointer { src in
                                let (c, h, w) = (boundaryShape[0], boundaryShape[1], boundaryShape[2])
                                if changeUpdate == nil {
                                    pasteBoxes(result, base: src.baseAddress!, c: c, h: h, w: w, x + chunk * boundaryCount)
                                } else {
                                    boxDifferences(result, base: src.baseAddress!, c: c, h: h, w: w, x, offsets: Array(changeOffsets[copies]))
                                }
                            }
                            times[worker * (fullFrom + 1) + fullFrom] += cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t0
                        }
                    }
                }
            }
            for i in 0...fullFrom {
                profile[1 + i].seconds += (0..<Workers.count).reduce(0) { $0 + times[$1 * (fullFrom + 1) + i] }
            }
            for i in times.indices { times[i] = 0 }

            var input = UnsafePointer(x)
            var next = fullFrom
            if let changeUpdate {
                let y = x + inputSize
                time(2 + fullFrom) {
                    pre[fullFrom].withUnsafeBufferPointer { pre in
                        changeUpdate.update(preActivation: pre.baseAddress!, changes: BoxedValues(boxes: changeBoxes, values: x, offsets: changeOffsets), y,
                                            workspace: tailRecord.workspace)
                    }
                }
                input = UnsafePointer(y)
                next += 1
            }
            for i in next..<model.layers.count {
                time(2 + i) { input = UnsafePointer(model.forward(input, batch: n, training: false, from: i, through: i, into: tailRecord)) }
            }
            time(profile.count - 1) {
                logits.withUnsafeMutableBufferPointer { ($0.baseAddress! + first * classes).update(from: input, count: n * classes) }
                guard let feature, feature.layer >= fullFrom else { return }
                let output = feature.layer == fullFrom && changeUpdate != nil ? x + inputSize : tailRecord.output(of: feature.layer)
                for b in 0..<n { activity[first + b] = channelSum(output + b * model.layers[feature.layer].outputCount, layer: feature.layer, channel: feature.channel) }
            }
        }
        return Evaluation(logits: logits, featureActivity: feature == nil ? [] : activity)
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

    /// Reserves each worker's scratch for `workerBatch` copies of the largest footprints: two blocks of
    /// changed values, then the largest scratch of any update. A group's scratch is at most the sum of
    /// its copies' (each kernel's is a sum over its copies plus a patch as large as one copy's), so the
    /// bound holds for every group. Returns the floats of one block and of the whole.
    private func reserveWorkerScratch(_ footprints: [[PlaneBox]]) -> (block: Int, total: Int) {
        var values = 0, updateScratch = 1
        for index in 0...fullFrom {
            let channels = index == 0 ? model.inputShape.channels : model.layers[index - 1].outputShape[0]
            values = max(values, channels * (footprints[index].map(\.area).max() ?? 0))
            guard index < fullFrom, let update = updates[index] else { continue }
            for (input, output) in zip(footprints[index], footprints[index + 1]) {
                updateScratch = max(updateScratch, update.scratchSize(inputs: [input], outputs: [output]))
            }
        }
        let (block, total) = (workerBatch * values, workerBatch * (2 * values + updateScratch))
        workspace.reserve(total)
        return (block, total)
    }

    /// The incremental part for occluders `copies` (indices into `footprints`' lists): walks the layers
    /// before `fullFrom`, keeping for each occluder only its changed box of each layer's output, and
    /// returns the changed boxes of the last one. `scratch` holds two blocks of `block` floats for the
    /// changed values, then the updates' scratch. Adds each copy's change of the tracked feature map's
    /// sum to `sums`.
    private func updateIncrementally(
        _ image: [Float], _ unoccluded: UnoccludedPass, footprints: [[PlaneBox]], copies: Range<Int>, fill: [Float],
        feature: Feature?, sums: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, block: Int, times: UnsafeMutablePointer<Double>
    ) -> BoxedValues {
        let base = unoccluded.outputs
        let boxes = Array(footprints[0][copies])
        var changed = BoxedValues(boxes: boxes, values: scratch, offsets: BoxedValues.offsets(boxes, channels: model.inputShape.channels))
        for (b, box) in changed.boxes.enumerated() {
            for c in fill.indices { (changed.values + changed.offsets[b] + c * box.area).update(repeating: fill[c], count: box.area) }
        }
        var spare = scratch + block
        for (index, update) in updates.enumerated() {
            let t0 = cpuSeconds(CLOCK_THREAD_CPUTIME_ID)
            let layer = model.layers[index]
            if let update {
                let next = Array(footprints[index + 1][copies])
                let to = BoxedValues(boxes: next, values: spare, offsets: BoxedValues.offsets(next, channels: layer.outputShape[0]))
                let input = index == 0 ? image : base[index - 1]
                input.withUnsafeBufferPointer { input in
                    unoccluded.inputsChannelsLast[index].withUnsafeBufferPointer { inputChannelsLast in
                        unoccluded.pre[index].withUnsafeBufferPointer { pre in
                            update.update(input.baseAddress!, inputChannelsLast: inputChannelsLast.baseAddress, preActivation: pre.baseAddress,
                                          from: changed, to: to, scratch: scratch + 2 * block)
                        }
                    }
                }
                (changed, spare) = (to, changed.values)
            }
            if let feature, feature.layer == index {
                let s = layer.outputShape
                base[index].withUnsafeBufferPointer { addChannelSumChanges(changed, base: $0.baseAddress!, h: s[1], w: s[2], channel: feature.channel, sums) }
            }
            times[index] += cpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t0
        }
        return changed
    }
}
