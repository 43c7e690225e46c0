import Deconv
import Foundation
import Net
import XCTest

/// A model with random (PyTorch-initialised) weights.
func makeModel(_ spec: String, _ shape: ImageShape, activation: Activation = .relu, seed: UInt64 = 7) throws -> Sequential {
    try Sequential(spec: try ModelSpec(parsing: spec), inputShape: shape, classes: 3, activation: activation, seed: seed)
}

/// Sets `model`'s batch-norm affine parameters and running statistics at random, away from the initial 1, 0, 0, 1.
func randomizeBatchNorm(_ model: Sequential) {
    var random = SeededRandom(seed: 9)
    for view in model.views where view.name.hasPrefix("bn") {
        for i in 0..<view.count { model.parameters[view.offset + i] = view.name.hasSuffix("weight") ? random.uniform(0.5, 1.5) : random.uniform(-0.3, 0.3) }
    }
    for view in model.bufferViews where !view.shape.isEmpty {
        for i in 0..<view.count { model.buffers[view.offset + i] = view.name.hasSuffix("running_var") ? random.uniform(0.5, 2) : random.uniform(-0.2, 0.2) }
    }
}

/// `count` random images in [0, 1].
func randomImages(_ count: Int, _ shape: ImageShape, seed: UInt64) -> [[Float]] {
    var random = SeededRandom(seed: seed)
    return (0..<count).map { _ in (0..<shape.count).map { _ in random.uniform() } }
}

/// The engine's projections of `seeds[b]` in `images[b]`, one per image, from one batched call.
func engineProjections(_ projector: Projector, _ images: [[Float]], layer: Int, seeds: [FeatureUnit], values: [Float]? = nil, method: ProjectionMethod) -> [[Float]] {
    let size = images[0].count
    let batch = images.flatMap { $0 }
    var out = [Float](repeating: .nan, count: batch.count)
    batch.withUnsafeBufferPointer { x in
        out.withUnsafeMutableBufferPointer { o in
            projector.forward(x.baseAddress!, batch: images.count, through: layer)
            projector.project(seeds, values: values, from: layer, method: method, into: o.baseAddress!)
        }
    }
    return (0..<images.count).map { Array(out[$0 * size..<($0 + 1) * size]) }
}

/// Asserts `actual ≈ expected` within `tolerance` of the largest expected magnitude.
func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double = 1e-4, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, file: file, line: line)
    let scale = max(expected.map(abs).max() ?? 0, 1e-6)
    let worst = zip(actual, expected).map { abs(Double($0) - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, tolerance * scale, "\(message): max error \(worst), scale \(scale)", file: file, line: line)
}

func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }

final class ProjectionTests: XCTestCase {
    /// conv → relu → maxpool → conv → relu, with and without padding, every feature layer, every
    /// method, several seeds batched together: the engine equals the loop-based reference.
    func testProjectionsMatchLoopReference() throws {
        let cases: [(String, ImageShape)] = [
            ("conv:3:3:same,maxpool:2,conv:4:3:same,fc", ImageShape(channels: 1, height: 8, width: 8)),
            ("conv:3:3:valid,maxpool:2,conv:4:3:valid,fc", ImageShape(channels: 2, height: 10, width: 10)),
            ("conv:2:3:1,maxpool:3:2,conv:3:2:valid,maxpool:2,fc", ImageShape(channels: 3, height: 11, width: 11)),
            // stride, groups, padding per side, padded and ceil-mode max pooling
            ("conv:4:5:stride=2:pad=2,maxpool:3:2:pad=1:ceil,conv:4:3x2:pad=1/0/0/1:groups=2,maxpool:2:2:pad=1,fc", ImageShape(channels: 2, height: 13, width: 12)),
        ]
        for (spec, shape) in cases {
            let model = try makeModel(spec, shape)
            let projector = try Projector(model: model)
            let images = randomImages(3, shape, seed: 11)
            for layer in projector.featureLayers {
                let reference = ReferenceNet(model, through: layer)
                let s = projector.shape(of: layer)
                // Seeds in different channels (all filters) and in one channel (one-channel filter view).
                let mixed = [FeatureUnit(channel: 0, y: 0, x: 0), FeatureUnit(channel: s[0] - 1, y: s[1] / 2, x: s[2] - 1), FeatureUnit(channel: s[0] / 2, y: s[1] - 1, x: s[2] / 2)]
                let oneChannel = mixed.map { FeatureUnit(channel: 1, y: $0.y, x: $0.x) }
                for seeds in [mixed, oneChannel] {
                    for method in ProjectionMethod.allCases {
                        let got = engineProjections(projector, images, layer: layer, seeds: seeds, method: method)
                        for b in 0..<images.count {
                            let expected = reference.project(images[b].map(Double.init), unit: seeds[b], method: method)
                            assertClose(got[b], expected, "\(spec) \(model.layers[layer].name) \(method) image \(b) seed \(seeds[b])")
                        }
                    }
                }
            }
        }
    }

    /// The deconvnet on a tanh network still rectifies with ReLU; the gradient uses tanh's derivative.
    func testNonReLUModelMatchesReference() throws {
        let shape = ImageShape(channels: 1, height: 9, width: 9)
        let model = try makeModel("conv:3:3:same,maxpool:2,conv:3:3:valid,fc", shape, activation: .tanh)
        let projector = try Projector(model: model)
        let layer = try projector.layerIndex(named: "conv2")
        let reference = ReferenceNet(model, through: layer)
        let images = randomImages(1, shape, seed: 5)
        let unit = FeatureUnit(channel: 1, y: 1, x: 0)
        for method in ProjectionMethod.allCases {
            let got = engineProjections(projector, images, layer: layer, seeds: [unit], method: method)[0]
            assertClose(got, reference.project(images[0].map(Double.init), unit: unit, method: method), "tanh \(method)")
        }
    }

    /// `gradient` is the true input gradient of the chosen activation (central finite differences of
    /// the reference forward pass in Double).
    func testGradientMethodIsTheInputGradient() throws {
        let shape = ImageShape(channels: 1, height: 8, width: 8)
        let model = try makeModel("conv:3:3:same,maxpool:2,conv:4:3:same,fc", shape, activation: .tanh)
        let projector = try Projector(model: model)
        let layer = try projector.layerIndex(named: "conv2")
        let reference = ReferenceNet(model, through: layer)
        let image = randomImages(1, shape, seed: 3)[0]
        let unit = FeatureUnit(channel: 2, y: 2, x: 1)
        let got = engineProjections(projector, [image], layer: layer, seeds: [unit], method: .gradient)[0]
        let x = image.map(Double.init)
        let h = 1e-6
        for i in stride(from: 0, to: x.count, by: 3) {
            var up = x, down = x
            up[i] += h
            down[i] -= h
            let numeric = (reference.activation(up, unit: unit) - reference.activation(down, unit: unit)) / (2 * h)
            XCTAssertEqual(Double(got[i]), numeric, accuracy: 1e-4, "pixel \(i)")
        }
    }

    /// Positive homogeneity: a seed of value a gives a times the unit seed's projection; a negative
    /// seed is rectified away by the deconvnet but flips the gradient.
    func testSeedScaling() throws {
        let shape = ImageShape(channels: 1, height: 8, width: 8)
        let model = try makeModel("conv:3:3:same,maxpool:2,conv:4:3:same,fc", shape)
        let projector = try Projector(model: model)
        let layer = try projector.layerIndex(named: "conv2")
        let images = randomImages(1, shape, seed: 9)
        let unit = projectorStrongest(projector, images[0], layer: layer)
        for method in ProjectionMethod.allCases {
            let one = engineProjections(projector, images, layer: layer, seeds: [unit], method: method)[0]
            let scaled = engineProjections(projector, images, layer: layer, seeds: [unit], values: [2.5], method: method)[0]
            XCTAssertGreaterThan(one.map(abs).max()!, 0, "\(method) projection is all zero")
            XCTAssertLessThanOrEqual(maxDifference(scaled, one.map { 2.5 * $0 }), 1e-5 * one.map(abs).max()!, "\(method)")
        }
        let negativeDeconv = engineProjections(projector, images, layer: layer, seeds: [unit], values: [-1], method: .deconvnet)[0]
        XCTAssertEqual(negativeDeconv.map(abs).max(), 0)
        let gradient = engineProjections(projector, images, layer: layer, seeds: [unit], method: .gradient)[0]
        let negativeGradient = engineProjections(projector, images, layer: layer, seeds: [unit], values: [-1], method: .gradient)[0]
        XCTAssertLessThanOrEqual(maxDifference(negativeGradient, gradient.map { -$0 }), 1e-6)
    }

    func projectorStrongest(_ projector: Projector, _ image: [Float], layer: Int) -> FeatureUnit {
        image.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: layer) }
        return projector.strongest(in: layer, image: 0).unit
    }

    /// At conv1 the three methods agree on an active unit; on a dead unit (ReLU output 0) the gradient
    /// and guided projections vanish while the deconvnet, which ignores the forward ReLU, does not.
    /// Deeper, they all differ.
    func testMethodsDifferWhereTheyShould() throws {
        let shape = ImageShape(channels: 1, height: 8, width: 8)
        let model = try makeModel("conv:4:3:same,maxpool:2,conv:4:3:same,fc", shape)
        let conv1 = model.layers[0] as! Conv2D
        conv1.bias[1] = -100  // channel 1 is dead everywhere
        let projector = try Projector(model: model)
        let images = randomImages(1, shape, seed: 4)
        images[0].withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: 0) }
        let live = projector.strongest(in: 0, image: 0, channel: 0)
        XCTAssertGreaterThan(live.value, 0)
        let dead = FeatureUnit(channel: 1, y: 3, x: 3)
        XCTAssertEqual(projector.value(of: dead, in: 0, image: 0), 0)
        let p = ProjectionMethod.allCases.map { engineProjections(projector, images, layer: 0, seeds: [live.unit], method: $0)[0] }
        XCTAssertEqual(p[0], p[1])
        XCTAssertEqual(p[0], p[2])
        let d = ProjectionMethod.allCases.map { engineProjections(projector, images, layer: 0, seeds: [dead], method: $0)[0] }
        XCTAssertGreaterThan(d[0].map(abs).max()!, 0, "the deconvnet projects a dead unit")
        XCTAssertEqual(d[1].map(abs).max(), 0, "guided backpropagation stops at a dead unit")
        XCTAssertEqual(d[2].map(abs).max(), 0, "the gradient of a dead unit is zero")

        let conv2 = try projector.layerIndex(named: "conv2")
        let unit = projectorStrongest(projector, images[0], layer: conv2)
        let q = ProjectionMethod.allCases.map { engineProjections(projector, images, layer: conv2, seeds: [unit], method: $0)[0] }
        XCTAssertGreaterThan(maxDifference(q[0], q[1]), 1e-4, "deconvnet vs guided")
        XCTAssertGreaterThan(maxDifference(q[1], q[2]), 1e-4, "guided vs gradient")
        XCTAssertGreaterThan(maxDifference(q[0], q[2]), 1e-4, "deconvnet vs gradient")
    }

    /// A 1x1 convolution with weights +1 and −1 on an image with one bright pixel: channel 0 peaks at
    /// the pixel, channel 1 is zero everywhere (the first position wins the tie), and the strongest
    /// channel overall is 0.
    func testStrongestSelection() throws {
        let shape = ImageShape(channels: 1, height: 6, width: 7)
        let model = try makeModel("conv:2:1:valid,fc", shape)
        let conv = model.layers[0] as! Conv2D
        (conv.weight[0], conv.weight[1], conv.bias[0], conv.bias[1]) = (1, -1, 0, 0)
        let projector = try Projector(model: model)
        var image = [Float](repeating: 0.1, count: shape.count)
        image[3 * 7 + 5] = 0.9
        image.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: 0) }
        let zero = projector.strongest(in: 0, image: 0, channel: 0)
        XCTAssertEqual(zero.unit, FeatureUnit(channel: 0, y: 3, x: 5))
        XCTAssertEqual(zero.value, 0.9, accuracy: 1e-6)
        XCTAssertEqual(projector.strongest(in: 0, image: 0, channel: 1).unit, FeatureUnit(channel: 1, y: 0, x: 0))
        XCTAssertEqual(projector.strongest(in: 0, image: 0).unit, FeatureUnit(channel: 0, y: 3, x: 5))
    }

    /// A checkpoint written and read back projects as the model it came from.
    func testCheckpointRoundTrip() throws {
        let shape = ImageShape(channels: 1, height: 8, width: 8)
        let model = try makeModel("conv:3:3:same,maxpool:2,conv:4:3:same,maxpool:2,fc:5,fc", shape)
        let path = NSTemporaryDirectory() + "deconv-test-\(getpid())-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.checkpoint(classNames: ["a", "b", "c"], epoch: 1, step: 10).write(to: path)
        let loaded = try Sequential.load(contentsOf: path).model
        let (a, b) = (try Projector(model: model), try Projector(model: loaded))
        XCTAssertEqual(b.featureLayerNames, ["conv1", "pool1", "conv2", "pool2"])
        let images = randomImages(1, shape, seed: 2)
        let layer = try b.layerIndex(named: "pool2")
        let unit = FeatureUnit(channel: 3, y: 1, x: 0)
        XCTAssertEqual(engineProjections(a, images, layer: layer, seeds: [unit], method: .deconvnet),
                       engineProjections(b, images, layer: layer, seeds: [unit], method: .deconvnet))
    }
}

/// The committed, trained LeNet5 (Fashion-MNIST): the strongest conv2 and pool2 units of real test
/// images project exactly as the loop-based reference says, for every method.
final class TrainedLeNet5ProjectionTests: XCTestCase {
    func testTrainedLeNet5MatchesLoopReference() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = try Sequential.load(contentsOf: root.appendingPathComponent("checkpoints/lenet5-fashion-mnist.safetensors").path).model
        let fashion = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: fashion), let test = try DataLoader.load(fashion).test else {
            throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        }
        let projector = try Projector(model: model)
        let images = (0..<3).map { Array(test.image($0).data) }
        for name in ["conv2", "pool2"] {
            let layer = try projector.layerIndex(named: name)
            let reference = ReferenceNet(model, through: layer)
            let seeds = images.map { image in
                image.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: layer) }
                return projector.strongest(in: layer, image: 0).unit
            }
            for method in ProjectionMethod.allCases {
                let got = engineProjections(projector, images, layer: layer, seeds: seeds, method: method)
                for b in images.indices {
                    let expected = reference.project(images[b].map(Double.init), unit: seeds[b], method: method)
                    XCTAssertGreaterThan(expected.map(abs).max()!, 0, "a trained network's strongest unit has a non-zero projection")
                    assertClose(got[b], expected, "trained lenet5 \(name) \(method) image \(b)")
                }
            }
        }
    }
}
