import XCTest
@testable import Net
@testable import NetKernels

/// Winograd's F(4×4, 3×3) and F(2×2, 5×5) kernels and the Conv2D path that uses them, against loop references.
final class WinogradTests: XCTestCase {
    /// (C, O, H, W, padding, images): odd sizes (partial tiles), no padding and 'same' padding, channel
    /// counts that are not multiples of the eight lanes, rows of fewer than four tiles (the transforms
    /// gather their lanes from consecutive tiles) and of four or more, up to longer than eight lanes
    /// (40 wide: 10 and 19 tiles).
    let shapes = [(3, 5, 14, 14, 2, 2), (5, 3, 7, 9, 0, 2), (9, 6, 7, 9, 2, 3), (2, 3, 9, 20, 1, 1), (2, 3, 5, 40, 1, 1)]
    /// Each shape runs with both kernel sizes (for 3×3, padding 2 is wider than 'same': Winograd takes it too).
    let kernels = [5, 3]

    func randomArray(_ count: Int, _ random: inout SeededRandom) -> [Float] {
        (0..<count).map { _ in random.uniform(-1, 1) }
    }

    /// max |a − b| / max |b|: the error relative to the size of the result (infinite when `a` has a NaN).
    func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        guard a.count == b.count, a.allSatisfy(\.isFinite) else { return .infinity }
        let scale = b.reduce(0) { max($0, abs($1)) }
        return zip(a, b).reduce(0) { max($0, abs(Double($1.0) - $1.1)) } / max(scale, 1e-30)
    }

    /// y `(n, O, outH, outW)` through the kernels, all images in one group.
    func winogradForward(_ x: [Float], _ w: [Float], _ bias: [Float], images n: Int, _ g: ConvGeometry, outChannels o: Int) -> [Float] {
        let t = WinogradTiling(g)
        let ld = t.leadingDimension(images: n)
        var u = [Float](repeating: 0, count: t.points * o * g.inChannels)
        var v = [Float](repeating: 0, count: t.points * g.inChannels * ld), m = [Float](repeating: 0, count: t.points * o * ld)
        var plane = [Float](repeating: 0, count: t.scratchSize)
        var y = [Float](repeating: .nan, count: n * o * g.positions)
        winogradWeightTransform(w, outChannels: o, inChannels: g.inChannels, channels: 0..<o, t, &u)
        winogradInputTransform(x, images: n, channels: 0..<g.inChannels, t, &v, ld: ld, scratch: &plane)
        winogradFilter(u, v, &m, outChannels: o, inChannels: g.inChannels, channels: 0..<o, points: t.points, tiles: n * t.tiles, ld: ld)
        winogradOutputTransform(m, images: n, outChannels: o, channels: 0..<o, t, ld: ld, bias: bias, &y)
        return y
    }

    /// Weight gradient `(O, C, r, r)` and input gradient `(n, C, H, W)` of Σ dy ⊙ y through the kernels.
    func winogradGradients(_ x: [Float], _ w: [Float], _ dy: [Float], images n: Int, _ g: ConvGeometry, outChannels o: Int) -> (dw: [Float], dx: [Float]) {
        let (t, c) = (WinogradTiling(g), g.inChannels)
        let ld = t.leadingDimension(images: n)
        var u = [Float](repeating: 0, count: t.points * o * c), du = u
        var v = [Float](repeating: 0, count: t.points * c * ld), dm = [Float](repeating: 0, count: t.points * o * ld)
        var plane = [Float](repeating: 0, count: t.scratchSize)
        var dw = [Float](repeating: 0, count: o * g.patchSize), dx = [Float](repeating: .nan, count: n * g.inputSize)
        winogradWeightTransform(w, outChannels: o, inChannels: c, channels: 0..<o, t, &u)
        winogradOutputTransformAdjoint(dy, images: n, outChannels: o, channels: 0..<o, t, &dm, ld: ld, scratch: &plane)
        winogradInputTransform(x, images: n, channels: 0..<c, t, &v, ld: ld, scratch: &plane)
        winogradWeightGradient(dm, v, &du, outChannels: o, inChannels: c, points: t.points, tiles: n * t.tiles, ld: ld)
        winogradWeightTransformAdjoint(du, outChannels: o, inChannels: c, channels: 0..<o, t, &dw)
        winogradInputGradient(u, dm, &v, outChannels: o, inChannels: c, channels: 0..<c, points: t.points, tiles: n * t.tiles, ld: ld)
        winogradInputTransformAdjoint(v, images: n, channels: 0..<c, t, ld: ld, &dx, scratch: &plane)
        return (dw, dx)
    }

    /// The same gradients by `conv2dNaive` and `conv2dBackwardNaive` in Double, plus the forward output without bias.
    func referenceGradients(_ x: [Float], _ w: [Float], _ dy: [Float], images n: Int, _ g: ConvGeometry, outChannels o: Int) -> (y: [Double], dw: [Double], dx: [Double]) {
        let (x, w, dy) = (x.map(Double.init), w.map(Double.init), dy.map(Double.init))
        var y = [Double](repeating: 0, count: n * o * g.positions)
        var dw = [Double](repeating: 0, count: o * g.patchSize), dx = [Double](repeating: .nan, count: n * g.inputSize)
        conv2dNaive(x, images: n, g, outChannels: o, weight: w, bias: nil, &y)
        conv2dBackwardNaive(dy, images: n, g, outChannels: o, input: x, weight: w, inputGradient: &dx, weightGradient: &dw, biasGradient: nil)
        return (y, dw, dx)
    }

    func testForwardMatchesNaive() {
        var random = SeededRandom(seed: 11)
        for (c, o, h, w, pad, n) in shapes {
            for kernel in kernels {
                let g = ConvGeometry(inChannels: c, height: h, width: w, kernel: kernel, padding: pad)
                let x = randomArray(n * g.inputSize, &random), weight = randomArray(o * g.patchSize, &random), bias = randomArray(o, &random)
                var naive = [Float](repeating: 0, count: n * o * g.positions)
                conv2dNaive(x, images: n, g, outChannels: o, weight: weight, bias: bias, &naive)
                let fast = winogradForward(x, weight, bias, images: n, g, outChannels: o)
                XCTAssertLessThan(relativeError(fast, naive.map(Double.init)), 1e-5, "k\(kernel) C\(c) O\(o) \(h)x\(w) p\(pad)")
            }
        }
        for kernel in kernels {
            let gathers = Set(shapes.map { WinogradTiling(ConvGeometry(inChannels: $0.0, height: $0.2, width: $0.3, kernel: kernel, padding: $0.4)).gathers })
            XCTAssertEqual(gathers, [false, true], "k\(kernel): the shapes take both kinds of transform")
        }
    }

    func testWeightAndInputGradientsMatchLoops() {
        var random = SeededRandom(seed: 12)
        for (c, o, h, w, pad, n) in shapes {
            for kernel in kernels {
                let g = ConvGeometry(inChannels: c, height: h, width: w, kernel: kernel, padding: pad)
                let x = randomArray(n * g.inputSize, &random), weight = randomArray(o * g.patchSize, &random)
                let dy = randomArray(n * o * g.positions, &random)
                let fast = winogradGradients(x, weight, dy, images: n, g, outChannels: o)
                let slow = referenceGradients(x, weight, dy, images: n, g, outChannels: o)
                XCTAssertLessThan(relativeError(fast.dw, slow.dw), 1e-5, "dW k\(kernel) C\(c) O\(o) \(h)x\(w) p\(pad)")
                XCTAssertLessThan(relativeError(fast.dx, slow.dx), 1e-5, "dX k\(kernel) C\(c) O\(o) \(h)x\(w) p\(pad)")
            }
        }
    }

    /// lenet5's conv2 shape (32 → 64 channels, 14×14, 5×5, padding 2) and zfnet's conv4 (256 → 256,
    /// 4×4, 3×3, padding 1) at He-scale weights and inputs in [0, 1]: float32 error against Double, a few
    /// times that of the direct convolution.
    func testFloatErrorAtLeNet5AndZFNetShapes() {
        var random = SeededRandom(seed: 13)
        for (c, o, size, kernel, n) in [(32, 64, 14, 5, 2), (256, 256, 4, 3, 3)] {
            let g = ConvGeometry(inChannels: c, height: size, width: size, kernel: kernel, padding: kernel / 2)
            let x = (0..<n * g.inputSize).map { _ in random.uniform(0, 1) }
            let scale = (2 / Float(g.patchSize)).squareRoot()
            let weight = (0..<o * g.patchSize).map { _ in random.uniform(-1, 1) * scale * 1.7 }
            let dy = randomArray(n * o * g.positions, &random)
            let y = winogradForward(x, weight, [Float](repeating: 0, count: o), images: n, g, outChannels: o)
            let (dw, dx) = winogradGradients(x, weight, dy, images: n, g, outChannels: o)
            let reference = referenceGradients(x, weight, dy, images: n, g, outChannels: o)
            XCTAssertLessThan(relativeError(y, reference.y), 2e-5, "k\(kernel)")
            XCTAssertLessThan(relativeError(dw, reference.dw), 2e-5, "k\(kernel)")
            XCTAssertLessThan(relativeError(dx, reference.dx), 2e-5, "k\(kernel)")
        }
    }

    /// One image with enough tile rows for each of two workers to multiply and transform back its own
    /// blocks of rows (`singleImageBlockRows`), with a partial last tile row and a ReLU, with the filters
    /// transformed on the call and given, against the loops; the workspace is pre-filled with NaN.
    func testOneImageInBlocksOfTileRowsMatchesLoops() throws {
        Workers.set(2)
        var random = SeededRandom(seed: 15)
        let (c, o) = (9, 8)
        for kernel in kernels {
            let g = ConvGeometry(inChannels: c, height: 58, width: 61, kernel: kernel, padding: kernel / 2)
            let winograd = WinogradConvolution(geometry: g, outChannels: o)
            let rows = try XCTUnwrap(winograd.singleImageBlockRows, "k\(kernel)")
            XCTAssertGreaterThan(winograd.tiling.rows, 2 * rows, "k\(kernel): each worker takes more than one block")
            XCTAssertNotEqual(winograd.tiling.rows % rows, 0, "k\(kernel): a short last block")
            let x = randomArray(g.inputSize, &random), weight = randomArray(o * g.patchSize, &random), bias = randomArray(o, &random)
            var naive = [Float](repeating: 0, count: o * g.positions)
            conv2dNaive(x, images: 1, g, outChannels: o, weight: weight, bias: bias, &naive)
            let expected = naive.map { Double(max($0, 0)) }
            var u = [Float](repeating: 0, count: winograd.transformedFilterCount)
            winograd.transformFilters(weight, into: &u)
            for given in [false, true] {
                let workspace = Workspace()
                workspace.reserve(winograd.scratchSize, workers: winograd.workers(batch: 1))
                for worker in 0..<winograd.workers(batch: 1) { workspace.floats(winograd.scratchSize, worker: worker).update(repeating: .nan, count: winograd.scratchSize) }
                var y = [Float](repeating: .nan, count: o * g.positions)
                u.withUnsafeBufferPointer { u in
                    winograd.forward(x, weight: weight, transformedFilters: given ? u.baseAddress! : nil, bias: bias, activation: .relu, &y, batch: 1, workspace: workspace)
                }
                XCTAssertLessThan(relativeError(y, expected), 1e-5, "k\(kernel) filters given: \(given)")
            }
        }
        XCTAssertNil(WinogradConvolution(geometry: ConvGeometry(inChannels: c, height: 58, width: 61, kernel: 3, padding: 1), outChannels: 512).singleImageBlockRows,
                     "more output channels than tiles: the workers split the output channels")
    }

    /// A Conv2D that takes the Winograd path, over two workers with more than one group each, one image
    /// (its own channel split), and `backwardData` (all channels and two of them), against the loops.
    func testLayerTakesWinogradAndMatchesLoops() {
        Workers.set(2)
        var random = SeededRandom(seed: 14)
        let (c, o) = (17, 16)
        for kernel in kernels {
            let g = ConvGeometry(inChannels: c, height: 7, width: 9, kernel: kernel, padding: kernel / 2)
            let layer = Conv2D(name: "conv2", geometry: g, outChannels: o, activation: .identity)
            XCTAssertTrue(layer.usesWinograd)
            XCTAssertFalse(Conv2D(name: "conv1", geometry: ConvGeometry(inChannels: 1, height: 7, width: 9, kernel: kernel, padding: kernel / 2),
                                  outChannels: o, activation: .identity).usesWinograd)
            let weight = randomArray(o * g.patchSize, &random), bias = randomArray(o, &random)
            for n in [2 * WinogradConvolution(geometry: g, outChannels: o).group + 3, 1] {
                let x = randomArray(n * g.inputSize, &random), dy = randomArray(n * o * g.positions, &random)
                let reference = referenceGradients(x, weight, dy, images: n, g, outChannels: o)
                let run = layer.passes(x, dy, weight: weight, bias: bias, batch: n)
                let withBias = reference.y.enumerated().map { $0.element + Double(bias[$0.offset / g.positions % o]) }
                let label = "k\(kernel) n\(n)"
                XCTAssertLessThan(relativeError(run.y, withBias), 1e-5, "y \(label)")
                XCTAssertLessThan(relativeError(run.dw, reference.dw), 1e-5, "dW \(label)")
                XCTAssertLessThan(relativeError(run.dx, reference.dx), 1e-5, "dX \(label)")
                // not to the bit: one image's `backwardData` splits the input channels between the workers, so its
                // products have other row counts than `backward`'s, and OpenBLAS's Haswell kernels round those apart
                XCTAssertLessThan(relativeError(run.transposed, run.dx.map(Double.init)), 1e-5, "backwardData \(label)")
                let masked = referenceGradients(x, weight, run.maskedGradient, images: n, g, outChannels: o)
                XCTAssertLessThan(relativeError(run.subset, masked.dx), 1e-5, "backwardData of channels \(label)")
                let biasReference = (0..<o).map { k in (0..<n).reduce(0.0) { total, b in total + (0..<g.positions).reduce(0.0) { $0 + Double(dy[(b * o + k) * g.positions + $1]) } } }
                XCTAssertLessThan(relativeError(run.db, biasReference), 1e-5, "db \(label)")
            }
        }
    }

    /// A model whose parameters are fixed keeps each Winograd layer's transformed filters (4 floats per
    /// weight of a 3×3 layer, 1.44 of a 5×5 one) and gives the same evaluation passes as before, to the
    /// bit: one image and a batch of several groups, forward and `backwardData` of every channel and of
    /// some; a budget too small for the filters refuses with `overBudget` and leaves the model as it was.
    func testFixedParametersKeepTheTransformedFiltersAndGiveTheSamePasses() throws {
        Workers.set(2)
        let model = try Sequential(spec: try ModelSpec(parsing: "conv:12:3:same,conv:16:3:same,conv:10:5:same,fc"),
                                   inputShape: ImageShape(channels: 9, height: 11, width: 13), classes: 3, seed: 4)
        let convs = model.layers.compactMap { $0 as? Conv2D }  // layers 0, 1, 2
        XCTAssertEqual(convs.map(\.usesWinograd), [true, true, true])
        XCTAssertEqual(convs.map(\.derivedParameterCount), [36 * 12 * 9, 36 * 16 * 12, 36 * 10 * 16])
        var random = SeededRandom(seed: 15)
        let batches = [1, 2 * WinogradConvolution(geometry: convs[2].geometry, outChannels: 10).group + 1]
        func passes() -> [[Float]] {
            batches.flatMap { n -> [[Float]] in
                let x = randomArray(n * model.inputShape.count, &random)
                let record = ForwardRecord(model)
                _ = x.withUnsafeBufferPointer { model.forward($0.baseAddress!, batch: n, training: false, into: record) }
                return convs.indices.flatMap { i -> [[Float]] in
                    let conv = convs[i]
                    let output = Array(UnsafeBufferPointer(start: record.output(of: i), count: n * conv.outputCount))
                    return [output] + [nil, 2..<5].map { channels -> [Float] in
                        let signal = randomArray(n * (channels?.count ?? conv.outChannels) * conv.geometry.positions, &random)
                        var dx = [Float](repeating: .nan, count: n * conv.inputCount)
                        dx.withUnsafeMutableBufferPointer { d in
                            conv.backwardData(signal, channels: channels, d.baseAddress!, batch: n, memory: record.memories[i], workspace: record.workspace)
                        }
                        return dx
                    }
                }
            }
        }
        let seed = random
        let before = passes()
        let saved = MemoryBudget.current
        MemoryBudget.current = MemoryBudget(bytes: 4 * 36 * (12 * 9 + 16 * 12 + 10 * 16) - 1)
        XCTAssertThrowsError(try model.fixParameters()) { error in
            guard case ModelError.overBudget = error else { return XCTFail("\(error)") }
        }
        MemoryBudget.current = saved
        XCTAssertFalse(model.parametersAreFixed)
        try model.fixParameters()
        XCTAssertTrue(model.parametersAreFixed)
        random = seed
        XCTAssertEqual(passes(), before)
    }
}
