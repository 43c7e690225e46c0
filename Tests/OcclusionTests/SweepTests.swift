import Net
import XCTest
@testable import Occlusion

/// A model from a spec with seeded PyTorch-style random weights, and a random image for it.
func randomModel(_ spec: String, _ shape: ImageShape, classes: Int = 5, seed: UInt64 = 1, activation: Activation = .relu) throws -> Sequential {
    let model = try Sequential(spec: try ModelSpec(parsing: spec), inputShape: shape, classes: classes, activation: activation, seed: seed)
    // Larger biases than PyTorch's default, so that ReLUs and max-pool switches actually flip under occlusion.
    var random = SeededRandom(seed: seed &+ 99)
    for view in model.views where view.shape.count == 1 {
        for i in 0..<view.count { model.parameters[view.offset + i] += random.uniform(-0.2, 0.2) }
    }
    return model
}

func randomImage(_ shape: ImageShape, seed: UInt64 = 7) -> [Float] {
    var random = SeededRandom(seed: seed)
    return (0..<shape.count).map { _ in random.uniform() }
}

/// Largest absolute difference, relative to the largest magnitude (at least 1).
func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    let scale = max(1, a.map(abs).max() ?? 0)
    return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}

final class SweepTests: XCTestCase {
    /// Reference: each occluded copy built by hand and run through the model alone.
    private func oneAtATime(_ model: Sequential, _ image: [Float], boxes: [PlaneBox], fill: [Float], feature: OcclusionSweep.Feature?) -> (logits: [Float], activity: [Float]) {
        let shape = model.inputShape
        var logits: [Float] = []
        var activity: [Float] = []
        let record = ForwardRecord(model)
        for box in boxes {
            var x = image
            for c in 0..<shape.channels {
                for y in box.y0..<min(box.y1, shape.height) {
                    for xx in box.x0..<min(box.x1, shape.width) { x[(c * shape.height + y) * shape.width + xx] = fill[c] }
                }
            }
            x.withUnsafeBufferPointer { p in
                let out = model.forward(p.baseAddress!, batch: 1, training: false, into: record)
                logits += Array(UnsafeBufferPointer(start: out, count: model.classes))
            }
            if let feature {
                let layer = model.layers[feature.layer]
                let plane = layer.outputShape.count == 3 ? layer.outputShape[1] * layer.outputShape[2] : 1
                let out = record.output(of: feature.layer) + feature.channel * plane
                activity.append((0..<plane).reduce(Float(0)) { $0 + out[$1] })
            }
        }
        return (logits, activity)
    }

    func testBatchedEqualsOneAtATime() throws {
        let shape = ImageShape(channels: 1, height: 12, width: 12)
        let model = try randomModel("conv:4:3:same,maxpool:2,fc:16,fc", shape)
        let image = randomImage(shape)
        let grid = try OcclusionGrid(height: 12, width: 12, window: 4, stride: 2)
        let feature = OcclusionSweep.Feature(layer: 0, channel: 1)
        let reference = oneAtATime(model, image, boxes: grid.boxes, fill: [0.5], feature: feature)
        let sweeps = [OcclusionSweep(model: model, mode: .full), OcclusionSweep(model: model),
                      OcclusionSweep(model: model, deltaMinimumChannels: 1), OcclusionSweep(model: model, denseByChange: false)]
        for (n, sweep) in sweeps.enumerated() {
            sweep.batchSize = 7  // several batches, the last one short
            sweep.workerBatch = 3
            let result = sweep.evaluate(image, boxes: grid.boxes, fill: [0.5], feature: feature)
            XCTAssertLessThan(maxDifference(result.logits, reference.logits), 1e-5, "sweep \(n)")
            XCTAssertLessThan(maxDifference(result.featureActivity, reference.activity), 1e-5, "sweep \(n)")
        }
    }

    /// The incremental update against the full recomputation on random small networks.
    func testIncrementalEqualsFull() throws {
        let cases: [(spec: String, shape: ImageShape, window: Int, stride: Int)] = [
            ("conv:4:3:same,maxpool:2,conv:6:3:same,maxpool:2,fc:12,dropout:0.5,fc", ImageShape(channels: 1, height: 16, width: 16), 5, 1),
            ("conv:3:3:valid,avgpool:2,conv:5:3:valid,fc", ImageShape(channels: 2, height: 15, width: 13), 4, 2),
            ("conv:4:5:same,maxpool:3:2,conv:4:3:1,avgpool:2:1,fc:8,fc", ImageShape(channels: 3, height: 17, width: 17), 3, 2),
            ("conv:4:3:valid,maxpool:2,dropout:0.2,conv:4:3:same,avgpool:2,fc", ImageShape(channels: 1, height: 14, width: 14), 6, 1),
            ("conv:2:3:same,conv:3:3:valid,maxpool:2:1,fc", ImageShape(channels: 1, height: 9, width: 11), 9, 1),
            // normalisation layers and adaptive pooling with even bins are updated box by box
            ("conv:4:3:same,bn,lrn:3:alpha=0.5:k=1,maxpool:2,conv:16:3:same,bn,adaptiveavgpool:4,lrn:4:alpha=2:beta=0.6,fc:6,bn,fc",
             ImageShape(channels: 2, height: 16, width: 16), 5, 1),
            ("conv:4:3:same,lrn:5:alpha=0.0001:k=2,globalavgpool,flatten,fc", ImageShape(channels: 1, height: 12, width: 12), 4, 2),
            // stride 2, groups, padding per side, padded and ceil-mode pools (zfnet's kinds)
            ("conv:6:7:stride=2:pad=3,maxpool:3:2:pad=1,conv:4:3:1:groups=2,avgpool:3:2:pad=1:ceil:exclude-pad,fc:8,fc",
             ImageShape(channels: 3, height: 17, width: 16), 4, 2),
            ("conv:4:3x2:pad=0/1/1/0:groups=2,maxpool:2:2:ceil,conv:4:3:stride=2:pad=1,avgpool:2:2:pad=1:ceil,fc", ImageShape(channels: 2, height: 13, width: 12), 5, 1),
            // 3×3 and 5×5 convolutions on Winograd's path, whose larger boxes take convolveBoxesWinograd
            ("conv:8:3:same,conv:12:3:same,maxpool:2,conv:9:5:same,conv:8:3:valid,fc", ImageShape(channels: 1, height: 16, width: 16), 6, 2),
        ]
        for (n, c) in cases.enumerated() {
            let model = try randomModel(c.spec, c.shape, seed: UInt64(n + 3))
            var random = SeededRandom(seed: UInt64(n))
            for view in model.bufferViews where !view.shape.isEmpty {  // running statistics other than 0 and 1
                for i in 0..<view.count { model.buffers[view.offset + i] = view.name.hasSuffix("var") ? random.uniform(0.5, 2) : random.uniform(-0.3, 0.3) }
            }
            let image = randomImage(c.shape, seed: UInt64(n + 11))
            let grid = try OcclusionGrid(height: c.shape.height, width: c.shape.width, window: c.window, stride: c.stride)
            // Extra boxes hanging over the borders and corners, clipped to the image.
            let boxes = grid.boxes + [PlaneBox(y: -2, x: -2, height: 4, width: 4), PlaneBox(y: c.shape.height - 2, x: c.shape.width - 1, height: 5, width: 5),
                                      PlaneBox(y: 0, x: 0, height: c.shape.height, width: c.shape.width)]
            let fill = [Float](repeating: 0.3, count: c.shape.channels)
            for layer in model.layers.indices {
                let feature = OcclusionSweep.Feature(layer: layer, channel: model.layers[layer].outputShape[0] - 1)
                let full = OcclusionSweep(model: model, mode: .full).evaluate(image, boxes: boxes, fill: fill, feature: feature)
                // Convolutions recomputed or updated by their input's change; the dense layer in full or by W·Δx.
                for (minimumChannels, byChange) in [(Int.max, false), (1, true), (1, false), (Int.max, true)] {
                    let sweep = OcclusionSweep(model: model, deltaMinimumChannels: minimumChannels, denseByChange: byChange)
                    sweep.workerBatch = 5
                    XCTAssertGreaterThan(sweep.fullFrom, 1, c.spec)
                    // a flatten before the dense layer ends the incremental part and has no W·Δx update
                    XCTAssertEqual(sweep.updatesDenseByChange, byChange && !(model.layers[sweep.fullFrom] is Flatten))
                    let fast = sweep.evaluate(image, boxes: boxes, fill: fill, feature: feature)
                    let what = "\(c.spec) \(model.layers[layer].name) channels ≥ \(minimumChannels) W·Δx \(byChange)"
                    XCTAssertLessThan(maxDifference(fast.logits, full.logits), 1e-4, what)
                    XCTAssertLessThan(maxDifference(fast.featureActivity, full.featureActivity), 1e-4, what)
                }
            }
        }
    }
}

extension SweepTests {
    /// Adaptive pooling with uneven bins has no window: the sweep updates the layers below it box by box
    /// and recomputes from it on, and the result is the full sweep's.
    func testUnevenAdaptivePoolingRecomputesFromThePool() throws {
        let shape = ImageShape(channels: 1, height: 11, width: 11)
        let model = try randomModel("conv:4:3:same,bn,adaptiveavgpool:3,fc", shape)
        let image = randomImage(shape)
        let boxes = try OcclusionGrid(height: 11, width: 11, window: 3, stride: 2).boxes
        let feature = OcclusionSweep.Feature(layer: 2, channel: 1)
        let sweep = OcclusionSweep(model: model)
        XCTAssertEqual(sweep.fullFrom, 2)
        let fast = sweep.evaluate(image, boxes: boxes, fill: [0.5], feature: feature)
        let full = OcclusionSweep(model: model, mode: .full).evaluate(image, boxes: boxes, fill: [0.5], feature: feature)
        XCTAssertLessThan(maxDifference(fast.logits, full.logits), 1e-5)
        XCTAssertLessThan(maxDifference(fast.featureActivity, full.featureActivity), 1e-5)
    }
}

/// Recurrent models: the sweep falls back to full batched passes from the recurrent stack on.
final class RecurrentSweepTests: XCTestCase {
    func testRecurrentModelsMatchOneAtATime() throws {
        let shape = ImageShape(channels: 1, height: 10, width: 10)
        for spec in ["rnn:8:1,fc", "gru:6:2,fc", "conv:1:3:same,maxpool:2,lstm:6:1,fc"] {
            let model = try randomModel(spec, shape, classes: 4)
            let image = randomImage(shape)
            let sweep = OcclusionSweep(model: model)
            XCTAssertEqual(sweep.fullFrom, spec.hasPrefix("conv") ? 2 : 0, spec)
            XCTAssertFalse(sweep.updatesDenseByChange)
            // Occluders over whole rows (what a row-reading network sees) and squares.
            let boxes = (0..<10).map { PlaneBox(y: $0, x: 0, height: 1, width: 10) } + (try OcclusionGrid(height: 10, width: 10, window: 3, stride: 3)).boxes
            let feature = OcclusionSweep.Feature(layer: 0, channel: spec.hasPrefix("conv") ? 0 : 1)  // conv1 or the recurrent stack
            let fast = sweep.evaluate(image, boxes: boxes, fill: [0], feature: feature)
            let full = OcclusionSweep(model: model, mode: .full).evaluate(image, boxes: boxes, fill: [0], feature: feature)
            XCTAssertLessThan(maxDifference(fast.logits, full.logits), 1e-4, spec)
            XCTAssertLessThan(maxDifference(fast.featureActivity, full.featureActivity), 1e-4, spec)
            var reference: [Float] = []
            let record = ForwardRecord(model)
            for box in boxes {
                let x = occluded(image, shape, box: box, fill: [0])
                x.withUnsafeBufferPointer { p in
                    reference += Array(UnsafeBufferPointer(start: model.forward(p.baseAddress!, batch: 1, training: false, into: record), count: 4))
                }
            }
            XCTAssertLessThan(maxDifference(fast.logits, reference), 1e-4, spec)
            XCTAssertGreaterThan(maxDifference(fast.logits, Array(repeating: fast.logits[0], count: fast.logits.count)), 0, "occluders change the output")
            let maps = try sweep.run(image)
            XCTAssertEqual(maps.featureLayerName, spec.hasPrefix("conv") ? "conv1" : "rnn")
        }
    }
}
