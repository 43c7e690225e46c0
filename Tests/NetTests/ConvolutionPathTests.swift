import XCTest
@testable import Net

/// The convolution oracles against each other, and every path `Conv2D` can take against them.
final class ConvolutionPathTests: XCTestCase {
    func randomArray(_ count: Int, _ random: inout SeededRandom) -> [Float] {
        (0..<count).map { _ in random.uniform(-1, 1) }
    }

    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    /// `conv2dBackwardNaive` is the adjoint of `conv2dNaive`: ⟨dy, W ⋆ x⟩ = ⟨dx, x⟩ = ⟨dW, W⟩ without
    /// bias, and the bias gradient sums dy per channel; with stride 2, padding and a kernel wider than tall
    /// images, in Double.
    func testNaiveBackwardIsTheAdjointOfNaiveForward() {
        var random = SeededRandom(seed: 21)
        for (c, o, h, w, kernel, stride, padding, n) in [(2, 3, 7, 6, 3, 1, 1, 2), (3, 2, 9, 8, 5, 2, 2, 1), (1, 4, 5, 5, 2, 1, 0, 3)] {
            let g = ConvGeometry(inChannels: c, height: h, width: w, kernel: kernel, stride: stride, padding: padding)
            let x = (0..<n * g.inputSize).map { _ in Double(random.uniform(-1, 1)) }
            let weight = (0..<o * g.patchSize).map { _ in Double(random.uniform(-1, 1)) }
            let dy = (0..<n * o * g.positions).map { _ in Double(random.uniform(-1, 1)) }
            var y = [Double](repeating: 0, count: dy.count), dx = [Double](repeating: .nan, count: x.count)
            var dw = [Double](repeating: 0, count: weight.count), db = [Double](repeating: 1, count: o)
            conv2dNaive(x, images: n, g, outChannels: o, weight: weight, bias: nil, &y)
            conv2dBackwardNaive(dy, images: n, g, outChannels: o, input: x, weight: weight, inputGradient: &dx, weightGradient: &dw, biasGradient: &db)
            let product = dot(dy, y)
            XCTAssertEqual(dot(dx, x), product, accuracy: 1e-9 * max(1, abs(product)), "dx, k\(kernel) s\(stride) p\(padding)")
            XCTAssertEqual(dot(dw, weight), product, accuracy: 1e-9 * max(1, abs(product)), "dW, k\(kernel) s\(stride) p\(padding)")
            for k in 0..<o {
                let total = (0..<n).reduce(1.0) { sum, b in sum + dy[(b * o + k) * g.positions ..< (b * o + k + 1) * g.positions].reduce(0, +) }
                XCTAssertEqual(db[k], total, accuracy: 1e-9, "db, k\(kernel) s\(stride) p\(padding)")
            }
        }
    }

    /// Each path a layer can take (`take(_:)`), forward, backward and `backwardData` (of every output
    /// channel and of two of them), against the oracles, on a batch over two workers and on one image;
    /// the paths a layer cannot take are refused. The last two shapes have at least
    /// `rowSplittingMinimumPositions` outputs, so that one image is split by output rows (AlexNet's
    /// conv1 is 11×11 with stride 4 and padding 2).
    func testEveryPathMatchesTheOracles() {
        Workers.set(2)
        var random = SeededRandom(seed: 22)
        for (c, o, h, w, kernel, stride, padding) in [(9, 12, 9, 7, 5, 1, 2), (3, 6, 8, 10, 5, 1, 0), (2, 5, 9, 9, 3, 2, 1),
                                                               (3, 4, 99, 95, 11, 4, 2), (2, 3, 24, 24, 3, 1, 1)] {
            let g = ConvGeometry(inChannels: c, height: h, width: w, kernel: kernel, stride: stride, padding: padding)
            let layer = Conv2D(name: "conv1", geometry: g, outChannels: o, activation: .identity)
            XCTAssertEqual(layer.path, layer.preferredPath)
            XCTAssertEqual(g.positions >= Conv2D.rowSplittingMinimumPositions, h > 20)
            let weight = randomArray(o * g.patchSize, &random), bias = randomArray(o, &random)
            for path in ConvolutionPath.allCases {
                XCTAssertEqual(layer.reasonItCannotTake(path) == nil, path == .im2col || stride == 1 && (path == .direct || kernel == 5 || kernel == 3), "\(path)")
                guard layer.reasonItCannotTake(path) == nil else { continue }
                layer.take(path)
                XCTAssertEqual(layer.path, path)
                XCTAssertEqual(layer.usesWinograd, path == .winograd)
                // more than two groups of images over two workers (a Winograd group is 4 or more images)
                let batch = path == .winograd ? 2 * WinogradConvolution(geometry: g, outChannels: o).group + 1 : 9
                for n in [batch, 1] {
                    let x = randomArray(n * g.inputSize, &random), dy = randomArray(n * o * g.positions, &random)
                    var expected = [Float](repeating: 0, count: dy.count), expectedDx = [Float](repeating: 0, count: x.count)
                    var expectedDw = [Float](repeating: 0, count: weight.count), expectedDb = [Float](repeating: 0, count: o)
                    conv2dNaive(x, images: n, g, outChannels: o, weight: weight, bias: bias, &expected)
                    conv2dBackwardNaive(dy, images: n, g, outChannels: o, input: x, weight: weight,
                                        inputGradient: &expectedDx, weightGradient: &expectedDw, biasGradient: &expectedDb)
                    let run = layer.passes(x, dy, weight: weight, bias: bias, batch: n)
                    var subsetDx = [Float](repeating: 0, count: x.count), unusedDw = expectedDw, unusedDb = expectedDb
                    conv2dBackwardNaive(run.maskedGradient, images: n, g, outChannels: o, input: x, weight: weight,
                                        inputGradient: &subsetDx, weightGradient: &unusedDw, biasGradient: &unusedDb)
                    let label = "\(path) c\(c) o\(o) k\(kernel) s\(stride) p\(padding) n\(n)"
                    for i in run.y.indices { XCTAssertEqual(run.y[i], expected[i], accuracy: 1e-4, "y " + label) }
                    for i in run.dx.indices { XCTAssertEqual(run.dx[i], expectedDx[i], accuracy: 1e-4, "dx " + label) }
                    for i in run.dw.indices { XCTAssertEqual(run.dw[i], expectedDw[i], accuracy: 1e-3, "dW " + label) }
                    for i in run.db.indices { XCTAssertEqual(run.db[i], expectedDb[i], accuracy: 1e-3, "db " + label) }
                    // to rounding, not to the bit: a pass may split its products differently (WinogradTests)
                    let scale = run.dx.reduce(Float(0)) { max($0, abs($1)) }
                    for i in run.dx.indices { XCTAssertEqual(run.transposed[i], run.dx[i], accuracy: 1e-5 * scale, "backwardData " + label) }
                    for i in run.subset.indices { XCTAssertEqual(run.subset[i], subsetDx[i], accuracy: 1e-4, "backwardData of channels " + label) }
                }
            }
        }
    }
}

/// What one training step's passes through a convolution layer give, and `backwardData`'s results: of
/// the whole output gradient (`transposed`), and of its output channels `subsetChannels` only
/// (`subset`, equal to the input gradient of `maskedGradient`, the output gradient with the other
/// channels zeroed).
struct ConvolutionPasses {
    var y, dx, dw, db, transposed, subset, maskedGradient: [Float]
}

extension Conv2D {
    /// The output channels `passes` gives `backwardData` alone: two in the middle.
    var subsetChannels: Range<Int> { (outChannels / 2)..<(outChannels / 2 + min(2, outChannels)) }

    /// forward of `x` `(n, C, H, W)`, backward of `dy` `(n, O, outH, outW)` with the parameter gradients
    /// zeroed first, and `backwardData` of `dy` and of its `subsetChannels`, with the layer bound to
    /// copies of `weight` and `bias`; outputs pre-filled with NaN.
    func passes(_ x: [Float], _ dy: [Float], weight: [Float], bias: [Float], batch n: Int) -> ConvolutionPasses {
        var (weight, bias) = (weight, bias)
        var dw = [Float](repeating: 0, count: weight.count), db = [Float](repeating: 0, count: bias.count)
        var y = [Float](repeating: .nan, count: dy.count), d = dy
        var dx = [Float](repeating: .nan, count: x.count), transposed = dx, subset = dx
        let (plane, channels) = (geometry.positions, subsetChannels)
        let dySubset = (0..<n).flatMap { b in dy[((b * outChannels + channels.lowerBound) * plane)..<((b * outChannels + channels.upperBound) * plane)] }
        let masked = dy.indices.map { channels.contains($0 / plane % outChannels) ? dy[$0] : 0 }
        weight.withUnsafeMutableBufferPointer { w in
            bias.withUnsafeMutableBufferPointer { b in
                dw.withUnsafeMutableBufferPointer { dwp in
                    db.withUnsafeMutableBufferPointer { dbp in
                        bind(parameters: [w.baseAddress!, b.baseAddress!], gradients: [dwp.baseAddress!, dbp.baseAddress!])
                        let (workspace, memory) = (Workspace(), LayerMemory())
                        forward(x, &y, batch: n, training: true, memory: memory, workspace: workspace)
                        backward(x, y, &d, &dx, batch: n, memory: memory, workspace: workspace)
                        backwardData(dy, channels: nil, &transposed, batch: n, memory: memory, workspace: workspace)
                        backwardData(dySubset, channels: channels, &subset, batch: n, memory: memory, workspace: workspace)
                    }
                }
            }
        }
        return ConvolutionPasses(y: y, dx: dx, dw: dw, db: db, transposed: transposed, subset: subset, maskedGradient: masked)
    }
}
