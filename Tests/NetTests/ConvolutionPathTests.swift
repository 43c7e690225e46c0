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

    /// Each path a layer can take (`take(_:)`), forward, backward and `transposedFilter`, against the
    /// oracles, on a batch over two workers and on one image; the paths a layer cannot take are refused.
    func testEveryPathMatchesTheOracles() {
        Workers.set(2)
        var random = SeededRandom(seed: 22)
        for (c, o, h, w, kernel, stride, padding) in [(9, 12, 9, 7, 5, 1, 2), (3, 6, 8, 10, 5, 1, 0), (2, 5, 9, 9, 3, 2, 1)] {
            let g = ConvGeometry(inChannels: c, height: h, width: w, kernel: kernel, stride: stride, padding: padding)
            let layer = Conv2D(name: "conv1", geometry: g, outChannels: o, activation: .identity)
            XCTAssertEqual(layer.path, layer.preferredPath)
            var weight = randomArray(o * g.patchSize, &random), bias = randomArray(o, &random)
            var weightGradient = [Float](repeating: 0, count: weight.count), biasGradient = [Float](repeating: 0, count: o)
            for path in ConvolutionPath.allCases {
                XCTAssertEqual(layer.reasonItCannotTake(path) == nil, path == .im2col || stride == 1 && (path == .direct || kernel == 5), "\(path)")
                guard layer.reasonItCannotTake(path) == nil else { continue }
                layer.take(path)
                XCTAssertEqual(layer.path, path)
                XCTAssertEqual(layer.usesWinograd, path == .winograd)
                for n in [2 * WinogradConvolution.group + 1, 1] {
                    let x = randomArray(n * g.inputSize, &random), dy = randomArray(n * o * g.positions, &random)
                    var expected = [Float](repeating: 0, count: dy.count), expectedDx = [Float](repeating: 0, count: x.count)
                    var expectedDw = [Float](repeating: 0, count: weight.count), expectedDb = [Float](repeating: 0, count: o)
                    conv2dNaive(x, images: n, g, outChannels: o, weight: weight, bias: bias, &expected)
                    conv2dBackwardNaive(dy, images: n, g, outChannels: o, input: x, weight: weight,
                                        inputGradient: &expectedDx, weightGradient: &expectedDw, biasGradient: &expectedDb)
                    var y = [Float](repeating: .nan, count: dy.count), d = dy
                    var dx = [Float](repeating: .nan, count: x.count), transposed = dx
                    weight.withUnsafeMutableBufferPointer { wp in
                        bias.withUnsafeMutableBufferPointer { bp in
                            weightGradient.withUnsafeMutableBufferPointer { dw in
                                biasGradient.withUnsafeMutableBufferPointer { db in
                                    dw.update(repeating: 0)
                                    db.update(repeating: 0)
                                    layer.bind(parameters: [wp.baseAddress!, bp.baseAddress!], gradients: [dw.baseAddress!, db.baseAddress!])
                                    let workspace = Workspace()
                                    layer.forward(x, &y, batch: n, training: true, workspace: workspace)
                                    layer.backward(x, y, &d, &dx, batch: n, workspace: workspace)
                                    layer.transposedFilter(dy, &transposed, batch: n, workspace: workspace)
                                }
                            }
                        }
                    }
                    let label = "\(path) c\(c) o\(o) k\(kernel) s\(stride) p\(padding) n\(n)"
                    for i in y.indices { XCTAssertEqual(y[i], expected[i], accuracy: 1e-4, "y " + label) }
                    for i in dx.indices { XCTAssertEqual(dx[i], expectedDx[i], accuracy: 1e-4, "dx " + label) }
                    for i in weightGradient.indices { XCTAssertEqual(weightGradient[i], expectedDw[i], accuracy: 1e-3, "dW " + label) }
                    for i in biasGradient.indices { XCTAssertEqual(biasGradient[i], expectedDb[i], accuracy: 1e-3, "db " + label) }
                    XCTAssertEqual(transposed, dx, "transposedFilter " + label)
                }
            }
        }
    }
}
