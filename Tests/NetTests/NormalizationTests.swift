import XCTest
@testable import Net

/// The normalisation layers' kernels against their oracles, and their spec tokens.
final class NormalizationTests: XCTestCase {
    func testLocalResponseNormMatchesItsOracle() {
        var random = SeededRandom(seed: 4)
        let (n, c, p) = (2, 6, 5)
        let x = (0..<n * c * p).map { _ in random.uniform(-2, 2) }
        let dy = (0..<n * c * p).map { _ in random.uniform(-1, 1) }
        for size in [1, 2, 3, 4, 5, 8] {
            for (beta, k) in [(Float(0.75), Float(2)), (0.5, 1), (1.3, 0.7)] {
                let lrn = LRNParameters(size: size, alpha: 0.9, beta: beta, k: k)
                var (y, s, d, dx) = ([Float](repeating: .nan, count: x.count), [Float](repeating: .nan, count: x.count),
                                     [Float](repeating: .nan, count: x.count), [Float](repeating: .nan, count: x.count))
                var t = [Float](repeating: .nan, count: c * p)
                lrnForward(x, images: n, channels: c, plane: p, lrn, &y, scale: &s, divisor: &d)
                lrnBackward(dy, input: x, scale: s, divisor: d, images: n, channels: c, plane: p, lrn, &dx, scratch: &t)
                let (yRef, dxRef) = (lrnForwardNaive(x, images: n, channels: c, plane: p, lrn),
                                     lrnBackwardNaive(dy, input: x, images: n, channels: c, plane: p, lrn))
                for i in 0..<x.count {
                    XCTAssertEqual(y[i], yRef[i], accuracy: 2e-6 * max(1, abs(yRef[i])), "forward \(i), size \(size), beta \(beta)")
                    XCTAssertEqual(dx[i], dxRef[i], accuracy: 1e-5 * max(1, abs(dxRef[i])), "backward \(i), size \(size), beta \(beta)")
                }
            }
        }
    }

    /// A projection's channel subset gives what the whole signal with the other channels zero gives.
    func testLocalResponseNormBackwardDataOfAChannelSubset() throws {
        let layer = LocalResponseNorm(name: "lrn1", inputShape: [4, 2, 3], parameters: LRNParameters(size: 3, alpha: 1, beta: 0.75, k: 1))
        var random = SeededRandom(seed: 2)
        let n = 2
        let x = (0..<n * 24).map { _ in random.uniform(-1, 1) }
        var y = [Float](repeating: 0, count: x.count)
        let (memory, workspace) = (LayerMemory(), Workspace())
        layer.forward(x, &y, batch: n, training: false, memory: memory, workspace: workspace)
        let slice = (0..<n * 6).map { _ in random.uniform(-1, 1) }
        var full = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for i in 0..<6 { full[(b * 4 + 2) * 6 + i] = slice[b * 6 + i] } }
        var (fromSlice, fromFull) = ([Float](repeating: .nan, count: x.count), [Float](repeating: .nan, count: x.count))
        layer.backwardData(slice, channels: 2..<3, &fromSlice, batch: n, memory: memory, workspace: workspace)
        layer.backwardData(full, channels: nil, &fromFull, batch: n, memory: memory, workspace: workspace)
        XCTAssertEqual(fromSlice, fromFull)
    }

    func testSpecTokens() throws {
        let spec = try ModelSpec(parsing: "conv:4:3:same,lrn:5:alpha=0.0001:beta=0.75:k=2,lrn:3,fc")
        XCTAssertEqual(spec.stages[1], .localResponseNorm(LRNParameters(size: 5, alpha: 1e-4, beta: 0.75, k: 2)))
        XCTAssertEqual(spec.stages[2], .localResponseNorm(LRNParameters(size: 3)))
        XCTAssertEqual(spec.description, "conv:4:3:same,lrn:5:alpha=0.0001:beta=0.75:k=2.0,lrn:3:alpha=0.0001:beta=0.75:k=1.0,fc")
        XCTAssertEqual(try ModelSpec(parsing: spec.description), spec)
        func badSpec(_ text: String, _ message: String, line: UInt = #line) {
            XCTAssertThrowsError(try ModelSpec(parsing: text), line: line) { error in
                XCTAssertEqual(error as? ModelError, .badSpec(message), line: line)
            }
        }
        badSpec("lrn", "'lrn' has 0 fields")
        badSpec("lrn:5:gamma=1", "unknown option 'gamma' in 'lrn:5:gamma=1' (options here: alpha, beta, k)")
        badSpec("lrn:5:k=1:k=2", "option 'k' appears twice in 'lrn:5:k=1:k=2'")
        badSpec("lrn:5:k=0", "'lrn:5:k=0' needs alpha >= 0, beta >= 0 and k > 0")
        badSpec("lrn:5:alpha=x", "'x' in 'lrn:5:alpha=x' is not a number")
        XCTAssertThrowsError(try Sequential(spec: try ModelSpec(parsing: "fc:4,lrn:3,fc"), inputShape: ImageShape(channels: 1, height: 3, width: 3), classes: 2)) { error in
            XCTAssertEqual(error as? ModelError, .badSpec("'lrn:3:alpha=0.0001:beta=0.75:k=1.0' needs an image input, not a dense or recurrent output"))
        }
        XCTAssertThrowsError(try Sequential(spec: try ModelSpec(parsing: "gru:4,lrn:3,fc"), inputShape: ImageShape(channels: 1, height: 3, width: 3), classes: 2))
    }

    func testBatchNormPoolAndFlattenTokens() throws {
        let spec = try ModelSpec(parsing: "conv:4:3:same,bn,bn:eps=0.001:momentum=0.3,adaptiveavgpool:2x3,adaptiveavgpool:2,globalavgpool,adaptiveavgpool:1,flatten,fc:4,bn,fc")
        XCTAssertEqual(spec.description, "conv:4:3:same,bn,bn:eps=0.001:momentum=0.3,adaptiveavgpool:2x3,adaptiveavgpool:2,globalavgpool,globalavgpool,flatten,fc:4,bn,fc")
        XCTAssertEqual(try ModelSpec(parsing: spec.description), spec)
        let model = try Sequential(spec: spec, inputShape: ImageShape(channels: 1, height: 6, width: 6), classes: 3)
        XCTAssertEqual(model.layers.map(\.name), ["conv1", "bn1", "bn2", "pool1", "pool2", "pool3", "pool4", "flatten1", "fc1", "bn3", "fc2"])
        // conv → BN → ReLU: the activation moves to the batch norm right after a conv or fc
        XCTAssertEqual(model.layers.map(\.fusedActivation), [.identity, .relu, nil, nil, nil, nil, nil, nil, .identity, .relu, .identity])
        XCTAssertEqual(model.views.map(\.name).filter { $0.hasPrefix("bn1") }, ["bn1.weight", "bn1.bias"])
        XCTAssertEqual(model.bufferViews.map(\.name).filter { $0.hasPrefix("bn1") }, ["bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"])
        XCTAssertEqual(model.bufferViews.last?.shape, [])
        XCTAssertEqual(model.parameter(named: "bn3.weight").map { Array($0.values) }, [1, 1, 1, 1])
        XCTAssertEqual(model.parameter(named: "bn3.bias").map { Array($0.values) }, [0, 0, 0, 0])
        XCTAssertEqual(Array(model.buffers.prefix(9)), [0, 0, 0, 0, 1, 1, 1, 1, 0])
        XCTAssertEqual(model.layers[0].isConvolution, true)
        XCTAssertEqual(model.layers[1].isConvolution, false)
        XCTAssertEqual(model.layers[3].outputShape, [4, 2, 3])
        XCTAssertEqual(model.layers[7].outputShape, [4])
        func badSpec(_ text: String, _ message: String, line: UInt = #line) {
            XCTAssertThrowsError(try Sequential(spec: try ModelSpec(parsing: text), inputShape: ImageShape(channels: 1, height: 4, width: 4), classes: 2), line: line) { error in
                XCTAssertEqual(error as? ModelError, .badSpec(message), line: line)
            }
        }
        badSpec("bn:eps=0,fc", "'bn:eps=0' needs eps > 0 and momentum from 0 to 1")
        badSpec("bn:momentum=2,fc", "'bn:momentum=2' needs eps > 0 and momentum from 0 to 1")
        badSpec("bn:p=1,fc", "unknown option 'p' in 'bn:p=1' (options here: eps, momentum)")
        badSpec("bn:eps=0.1:eps=0.2,fc", "option 'eps' appears twice in 'bn:eps=0.1:eps=0.2'")
        badSpec("lstm:4,bn,fc", "'bn' cannot follow a recurrent layer")
        badSpec("rnn:4,dropout:0.1,bn,fc", "'bn' cannot follow a recurrent layer")
        badSpec("adaptiveavgpool:0,fc", "'0' in 'adaptiveavgpool:0' is not OH or OHxOW with sizes from 1 to \(ModelSpec.maximumNumber)")
        badSpec("adaptiveavgpool:2x,fc", "'2x' in 'adaptiveavgpool:2x' is not OH or OHxOW with sizes from 1 to \(ModelSpec.maximumNumber)")
        badSpec("globalavgpool:2,fc", "'globalavgpool:2' has 1 fields")
        badSpec("flatten:1,fc", "'flatten:1' has 1 fields")
        badSpec("globalavgpool:ceil,fc", "unknown option 'ceil' in 'globalavgpool:ceil' (options here: none)")
        badSpec("bn:2,fc", "'bn:2' has 1 fields")
        XCTAssertNoThrow(try Sequential(spec: try ModelSpec(parsing: "lstm:4,fc:3,bn,fc"), inputShape: ImageShape(channels: 1, height: 4, width: 4), classes: 2))
    }

    /// Evaluation-mode batch norm is `γ (x − μ)/√(σ² + ε) + β` with the running statistics; a training
    /// pass normalises with the batch's and moves the running ones by the momentum.
    func testBatchNormModes() throws {
        let model = try Sequential(spec: try ModelSpec(parsing: "bn:momentum=0.25,fc"), inputShape: ImageShape(channels: 2, height: 1, width: 2), classes: 2)
        let bn = model.layers[0] as! BatchNorm
        model.parameter(named: "bn1.weight")!.values.baseAddress!.update(from: [2, 3], count: 2)
        model.parameter(named: "bn1.bias")!.values.baseAddress!.update(from: [0.5, -1], count: 2)
        bn.runningMean.update(from: [1, -1], count: 2)
        bn.runningVariance.update(from: [4, 0.25], count: 2)
        let x: [Float] = [1, 3, 0, 2, 5, 7, 4, -2]  // (2, 2, 1, 2)
        let record = ForwardRecord(model)
        model.forward(x, batch: 2, training: false, into: record)
        let eval = Array(UnsafeBufferPointer(start: record.output(of: 0), count: 8))
        let expected = (0..<8).map { i -> Float in
            let c = i / 2 % 2
            let (g, b, m, v): (Float, Float, Float, Float) = c == 0 ? (2, 0.5, 1, 4) : (3, -1, -1, 0.25)
            return g * (x[i] - m) / (v + 1e-5).squareRoot() + b
        }
        for i in 0..<8 { XCTAssertEqual(eval[i], expected[i], accuracy: 1e-5) }
        model.forward(x, batch: 2, training: true, into: record)
        // channel 0 holds 1, 3, 5, 7: mean 4, biased variance 5, unbiased 20/3
        XCTAssertEqual(bn.runningMean[0], 0.75 * 1 + 0.25 * 4, accuracy: 1e-6)
        XCTAssertEqual(bn.runningVariance[0], 0.75 * 4 + 0.25 * 20 / 3, accuracy: 1e-5)
        XCTAssertEqual(bn.batchesTracked[0], 1)
        XCTAssertEqual(record.output(of: 0)[0], 2 * (1 - 4) / (5 + 1e-5).squareRoot() + 0.5, accuracy: 1e-5)
    }
}
