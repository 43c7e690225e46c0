import XCTest
@testable import Net

/// Finite-difference checks: every layer's backward against central differences of its forward, for
/// inputs and parameters, through whole small models with the loss L = Σ r ⊙ logits (r random).
final class GradientCheckTests: XCTestCase {
    override func setUp() {
        Workers.set(2)
    }

    /// Analytic vs numeric gradient of L = Σ r·logits for the input and every parameter of `model`,
    /// on `samples` coordinates each; the error is ‖a − n‖ / (‖a‖ + ‖n‖) over the sampled coordinates.
    /// `vanishing` names parameters whose gradient is zero (a bias right before a training-mode batch
    /// norm, which subtracts the batch mean): checked to be within float noise of 0 instead.
    func check(_ model: Sequential, batch n: Int = 2, eps: Float = 1e-2, tolerance: Float = 1e-2, seed: UInt64 = 7, vanishing: Set<String> = [],
               file: StaticString = #filePath, line: UInt = #line) {
        var random = SeededRandom(seed: seed)
        var x = (0..<n * model.inputShape.count).map { _ in random.uniform(-1, 1) }
        let r = (0..<n * model.classes).map { _ in random.uniform(-1, 1) }
        let dropouts = model.layers.compactMap { $0 as? Dropout }
        let dropoutState = dropouts.map(\.random)
        let record = ForwardRecord(model)
        func loss() -> Double {
            for (d, state) in zip(dropouts, dropoutState) { d.random = state }
            let logits = x.withUnsafeBufferPointer { model.forward($0.baseAddress!, batch: n, training: true, into: record) }
            return (0..<r.count).reduce(0.0) { $0 + Double(r[$1] * logits[$1]) }
        }
        _ = loss()
        model.zeroGradients()
        var dx = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { input in
            for (d, state) in zip(dropouts, dropoutState) { d.random = state }
            model.forward(input.baseAddress!, batch: n, training: true, into: record)
            dx.withUnsafeMutableBufferPointer { model.backward(r, record: record, inputGradient: $0.baseAddress!) }
        }
        let analyticParameters = Array(model.gradients)

        func compare(_ name: String, _ count: Int, analytic: (Int) -> Float, perturb: (Int, Float) -> Void) {
            var diff: Double = 0, norm: Double = 0
            let picks = count <= 40 ? Array(0..<count) : (0..<40).map { _ in random.int(below: count) }
            for i in picks {
                perturb(i, eps)
                let plus = loss()
                perturb(i, -2 * eps)
                let minus = loss()
                perturb(i, eps)
                let numeric = (plus - minus) / Double(2 * eps)
                let a = Double(analytic(i))
                diff += (a - numeric) * (a - numeric)
                norm += a * a + numeric * numeric
            }
            let error = norm == 0 ? 0 : (diff / norm).squareRoot()
            XCTAssertLessThan(error, Double(tolerance), "\(name): relative gradient error \(error)", file: file, line: line)
        }
        compare("input", x.count, analytic: { dx[$0] }) { i, d in x[i] += d }
        for view in model.views where vanishing.contains(view.name) {
            let largest = analyticParameters[view.offset..<view.offset + view.count].map(abs).max() ?? 0
            XCTAssertLessThan(largest, 1e-4, "\(view.name): gradient \(largest) where it vanishes", file: file, line: line)
        }
        for view in model.views where !vanishing.contains(view.name) {
            compare(view.name, view.count, analytic: { analyticParameters[view.offset + $0] }) { i, d in
                model.parameters[view.offset + i] += d
            }
        }
    }

    func model(_ spec: String, _ shape: ImageShape, classes: Int = 3, activation: Activation = .tanh, seed: UInt64 = 1) throws -> Sequential {
        try Sequential(spec: try ModelSpec(parsing: spec), inputShape: shape, classes: classes, activation: activation, seed: seed)
    }

    func testConvolutionSamePaddingEveryActivation() throws {
        for activation in [Activation.tanh, .sigmoid, .relu, .leakyRelu] {
            check(try model("conv:3:3:same,fc", ImageShape(channels: 2, height: 5, width: 5), activation: activation), eps: 1e-2)
        }
    }

    func testConvolutionValidAndPixelPadding() throws {
        check(try model("conv:4:3:valid,conv:2:2:1,fc", ImageShape(channels: 1, height: 6, width: 7)))
    }

    func testConvolutionOddBatchAcrossWorkers() throws {
        check(try model("conv:3:3:same,fc", ImageShape(channels: 2, height: 4, width: 4)), batch: 5)
    }

    func testConvolutionThroughWinograd() throws {
        for kernel in [5, 3] {
            let model = try model("conv:16:\(kernel):same,fc", ImageShape(channels: 16, height: 5, width: 7))
            XCTAssertTrue((model.layers[0] as! Conv2D).usesWinograd)
            check(model, batch: 3)
        }
    }

    func testMaxPooling() throws {
        // a small step, so that no window's winner changes between the two evaluations
        check(try model("conv:2:3:same,maxpool:2,fc", ImageShape(channels: 1, height: 6, width: 6)), eps: 2e-3)
        check(try model("conv:2:3:same,maxpool:3:2,fc", ImageShape(channels: 1, height: 7, width: 7)), eps: 2e-3)
    }

    func testAveragePoolingAnyStride() throws {
        check(try model("conv:2:3:same,avgpool:2:1,fc", ImageShape(channels: 1, height: 5, width: 5)))
        check(try model("avgpool:2,fc", ImageShape(channels: 2, height: 4, width: 6)))
        check(try model("avgpool:3:2,fc", ImageShape(channels: 1, height: 7, width: 7)))
    }

    func testConvolutionStrideGroupsAsymmetricPadding() throws {
        check(try model("conv:4:3:stride=2:pad=1,fc", ImageShape(channels: 2, height: 7, width: 6)))
        check(try model("conv:4:3x2:pad=0/1/2/1:groups=2,conv:6:3:stride=2:groups=2:act=sigmoid,fc:act=tanh", ImageShape(channels: 2, height: 7, width: 6)),
              batch: 3)
        check(try model("conv:3:7:stride=3:pad=3:groups=3,fc", ImageShape(channels: 3, height: 8, width: 9)))
    }

    func testPaddedAndCeilModePooling() throws {
        // max pooling straight on the input, so that a step moves one value and no window's winner changes
        check(try model("maxpool:3:2:pad=1,fc", ImageShape(channels: 2, height: 7, width: 7)), eps: 2e-3)
        check(try model("maxpool:2:2:ceil,fc", ImageShape(channels: 1, height: 7, width: 5)), eps: 2e-3)
        check(try model("maxpool:3:2:pad=1/0/1/1:ceil,fc", ImageShape(channels: 1, height: 6, width: 8)), eps: 2e-3)
        for exclude in ["", ":exclude-pad"] {
            check(try model("avgpool:3:2:pad=1:ceil\(exclude),fc", ImageShape(channels: 2, height: 6, width: 7)))
            check(try model("avgpool:2:2:pad=0/1/1/0\(exclude),fc", ImageShape(channels: 1, height: 5, width: 4)))
            check(try model("conv:2:3:same,avgpool:3:3:pad=1:ceil\(exclude),fc", ImageShape(channels: 1, height: 7, width: 8)))
        }
    }

    func testDenseAndDropout() throws {
        check(try model("fc:6,dropout:0.5,fc:4,fc", ImageShape(channels: 1, height: 3, width: 3)))
    }

    func testLocalResponseNorm() throws {
        // a large alpha, so that the normalisation's cross-channel term carries weight
        check(try model("conv:5:3:same,lrn:3:alpha=2:beta=0.75:k=1,fc", ImageShape(channels: 2, height: 4, width: 4)), eps: 1e-3)
        check(try model("lrn:4:alpha=1.5:beta=0.6:k=0.5,conv:3:2:valid,lrn:7:alpha=3,fc", ImageShape(channels: 5, height: 3, width: 3)), eps: 1e-3)
    }

    /// Batch norm in training mode (the batch statistics depend on every input), 2-d and 1-d, with and
    /// without the activation it takes from the layer before.
    func testBatchNorm() throws {
        check(try model("conv:3:3:same,bn,conv:2:3:valid,fc:5,bn,fc", ImageShape(channels: 2, height: 5, width: 5)), batch: 3, eps: 1e-3,
              vanishing: ["conv1.bias", "fc1.bias"])
        check(try model("bn:eps=0.01:momentum=0.5,fc:4,dropout:0.3,bn,fc", ImageShape(channels: 3, height: 2, width: 3)), batch: 4, eps: 1e-3)
    }

    func testAdaptivePoolingAndFlatten() throws {
        check(try model("conv:2:3:same,adaptiveavgpool:3x2,fc", ImageShape(channels: 1, height: 7, width: 5)))
        check(try model("adaptiveavgpool:4,globalavgpool,flatten,fc", ImageShape(channels: 3, height: 6, width: 6)))
        check(try model("adaptiveavgpool:5x4,fc", ImageShape(channels: 2, height: 3, width: 3)))  // overlapping bins
    }

    func testWholeLeNet5Shape() throws {
        check(try model("conv:4:5:same,maxpool:2,conv:6:5:same,maxpool:2,fc:16,dropout:0.5,fc", ImageShape(channels: 1, height: 12, width: 12), activation: .tanh),
              eps: 5e-4)  // two max-pool layers: a step small enough that no switch flips
    }

    func testWholeClassicShapeWithReLU() throws {
        check(try model("conv:3:5:valid,maxpool:2,conv:4:3:valid,maxpool:2,fc:8,fc:6,fc", ImageShape(channels: 3, height: 14, width: 14), activation: .relu),
              eps: 1e-3, tolerance: 2e-2)
    }

    func testLossGradients() {
        var random = SeededRandom(seed: 3)
        let (n, k) = (3, 4)
        var logits = (0..<n * k).map { _ in random.uniform(-2, 2) }
        let labels: [Int32] = [0, 3, 1]
        for loss in Loss.allCases {
            var gradient = [Float](repeating: 0, count: n * k)
            _ = loss.evaluate(logits, labels: labels, batch: n, classes: k, gradient: &gradient)
            for i in 0..<n * k {
                let eps: Float = 1e-2
                logits[i] += eps
                let plus = loss.evaluate(logits, labels: labels, batch: n, classes: k, gradient: nil).loss
                logits[i] -= 2 * eps
                let minus = loss.evaluate(logits, labels: labels, batch: n, classes: k, gradient: nil).loss
                logits[i] += eps
                XCTAssertEqual(gradient[i], (plus - minus) / (2 * eps), accuracy: 2e-3, "\(loss) gradient \(i)")
            }
        }
    }
}
