import XCTest
@testable import Net
@testable import NetKernels

/// The fast kernels against their loop-based references.
final class KernelTests: XCTestCase {
    func randomArray(_ count: Int, _ random: inout SeededRandom) -> [Float] {
        (0..<count).map { _ in random.uniform(-1, 1) }
    }

    func testOpenBLASKernelsForCPUFlags() {
        let avx2 = Set(["sse3", "avx", "avx2", "fma"])
        XCTAssertEqual(blasKernels(forCPUFlags: avx2.union(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])), "SkylakeX")
        XCTAssertEqual(blasKernels(forCPUFlags: avx2.union(["avx512f"])), "Haswell", "AVX-512 F alone is not SkylakeX's set")
        XCTAssertEqual(blasKernels(forCPUFlags: avx2), "Haswell")
        XCTAssertNil(blasKernels(forCPUFlags: ["sse3", "avx", "avx2"]), "AVX2 without FMA")
        XCTAssertNil(blasKernels(forCPUFlags: []))
    }

    func testSgemmMatchesNaiveForEveryTransposition() {
        var random = SeededRandom(seed: 1)
        let (m, n, k) = (5, 7, 9)
        for ta in [false, true] {
            for tb in [false, true] {
                let a = randomArray(m * k, &random), b = randomArray(k * n, &random)
                var fast = randomArray(m * n, &random)
                var slow = fast
                sgemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a, lda: ta ? m : k, b, ldb: tb ? k : n, beta: 0.5, &fast, ldc: n)
                sgemmNaive(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a, lda: ta ? m : k, b, ldb: tb ? k : n, beta: 0.5, &slow, ldc: n)
                for i in 0..<m * n { XCTAssertEqual(fast[i], slow[i], accuracy: 1e-4) }
            }
        }
    }

    func testConvolutionLayerMatchesNaive() throws {
        var random = SeededRandom(seed: 2)
        for (kernel, padding, stride, n) in [(3, 1, 1, 3), (5, 2, 1, 3), (3, 0, 2, 3), (2, 1, 1, 3), (5, 2, 1, 1), (3, 0, 2, 1)] {
            let g = ConvGeometry(inChannels: 3, height: 7, width: 6, kernel: kernel, stride: stride, padding: padding)
            let layer = Conv2D(name: "conv1", geometry: g, outChannels: 20, activation: .identity)  // ≥ 16: one image splits its channels
            var weight = randomArray(20 * g.patchSize, &random), bias = randomArray(20, &random)
            var dummyW = weight, dummyB = bias
            weight.withUnsafeMutableBufferPointer { w in
                bias.withUnsafeMutableBufferPointer { b in
                    dummyW.withUnsafeMutableBufferPointer { dw in
                        dummyB.withUnsafeMutableBufferPointer { db in
                            layer.bind(parameters: [w.baseAddress!, b.baseAddress!], gradients: [dw.baseAddress!, db.baseAddress!])
                            let input = randomArray(n * g.inputSize, &random)
                            var fast = [Float](repeating: 0, count: n * layer.outputCount)
                            var slow = fast
                            layer.forward(input, &fast, batch: n, training: false, memory: LayerMemory(), workspace: Workspace())
                            conv2dNaive(input, images: n, g, outChannels: 20, weight: w.baseAddress!, bias: b.baseAddress!, &slow)
                            for i in fast.indices { XCTAssertEqual(fast[i], slow[i], accuracy: 1e-4, "k\(kernel) p\(padding) s\(stride) n\(n)") }
                        }
                    }
                }
            }
        }
    }

    /// The direct convolution's output and weight gradient against the loop references, for odd sizes,
    /// paddings, output channels that fill no whole tile (1, 5, 7, 8, 11), rows of more than one block
    /// of four vectors (38 wide) and kernels wider than one block of five columns (7); and `Conv2D` on
    /// a batch, which takes the direct path for its few output channels.
    func testDirectConvolutionMatchesNaive() {
        var random = SeededRandom(seed: 11)
        for (c, o, h, w, kernel, padding) in [
            (3, 6, 32, 32, 5, 0), (2, 11, 7, 9, 3, 1), (1, 8, 6, 13, 5, 2), (4, 3, 5, 5, 1, 0),
            (3, 1, 9, 11, 3, 1), (2, 5, 12, 38, 5, 0), (1, 7, 10, 21, 7, 3), (3, 8, 28, 28, 5, 2), (2, 5, 30, 30, 3, 1),
        ] {
            let g = ConvGeometry(inChannels: c, height: h, width: w, kernel: kernel, padding: padding)
            let direct = DirectConvolution(geometry: g, outChannels: o)
            let x = randomArray(g.inputSize, &random), weight = randomArray(o * g.patchSize, &random), bias = randomArray(o, &random)
            let dy = randomArray(o * g.positions, &random)
            var padded = [Float](repeating: .nan, count: direct.paddedSize)
            var packed = [Float](repeating: .nan, count: direct.packedWeightSize)
            var paddedGradient = [Float](repeating: .nan, count: direct.paddedGradientSize)
            var fast = [Float](repeating: 0, count: o * g.positions), slow = fast
            var fastGradient = [Float](repeating: 1, count: o * g.patchSize)
            direct.pad(x, into: &padded)
            direct.packWeights(weight, into: &packed)
            direct.padGradient(dy, into: &paddedGradient)
            direct.forward(padded: padded, packedWeights: packed, bias: bias, &fast)
            direct.accumulateWeightGradient(padded: padded, paddedGradient: paddedGradient, into: &fastGradient)
            conv2dNaive(x, images: 1, g, outChannels: o, weight: weight, bias: bias, &slow)
            var slowGradient = [Float](repeating: 1, count: o * g.patchSize)  // both accumulate onto what was there
            conv2dBackwardNaive(dy, images: 1, g, outChannels: o, input: x, weight: weight, inputGradient: nil, weightGradient: &slowGradient, biasGradient: nil)
            for i in fast.indices { XCTAssertEqual(fast[i], slow[i], accuracy: 1e-4, "forward c\(c) o\(o) k\(kernel) p\(padding)") }
            for i in fastGradient.indices {
                XCTAssertEqual(fastGradient[i], slowGradient[i], accuracy: 1e-3, "weight gradient c\(c) o\(o) k\(kernel) p\(padding)")
            }
        }
        let g = ConvGeometry(inChannels: 3, height: 12, width: 11, kernel: 5, padding: 1)
        let layer = Conv2D(name: "conv1", geometry: g, outChannels: 6, activation: .identity)
        var weight = randomArray(6 * g.patchSize, &random), bias = randomArray(6, &random)
        var dummyW = weight, dummyB = bias
        let input = randomArray(3 * g.inputSize, &random)
        var fast = [Float](repeating: 0, count: 3 * layer.outputCount), slow = fast
        weight.withUnsafeMutableBufferPointer { w in
            bias.withUnsafeMutableBufferPointer { b in
                dummyW.withUnsafeMutableBufferPointer { dw in
                    dummyB.withUnsafeMutableBufferPointer { db in
                        layer.bind(parameters: [w.baseAddress!, b.baseAddress!], gradients: [dw.baseAddress!, db.baseAddress!])
                        layer.forward(input, &fast, batch: 3, training: false, memory: LayerMemory(), workspace: Workspace())
                        conv2dNaive(input, images: 3, g, outChannels: 6, weight: w.baseAddress!, bias: b.baseAddress!, &slow)
                    }
                }
            }
        }
        for i in fast.indices { XCTAssertEqual(fast[i], slow[i], accuracy: 1e-4, "Conv2D on the direct path") }
    }

    /// The worker pool runs every range of a region exactly once, on distinct workers, over thousands of
    /// short regions in a row (the helpers spin between them) and as the worker count changes.
    func testParallelRangesCoverEachItemOnce() {
        defer { Workers.set(2) }
        for workers in [3, 1, 2, 4, 2] {
            Workers.set(workers)
            for total in [1, 2, 5, 97] {
                for _ in 0..<200 {
                    var hits = [Int](repeating: 0, count: total)
                    var workerOf = [Int](repeating: -1, count: total)
                    hits.withUnsafeMutableBufferPointer { hits in
                        workerOf.withUnsafeMutableBufferPointer { workerOf in
                            parallelRanges(total) { range, worker in
                                for i in range { hits[i] += 1; workerOf[i] = worker }
                            }
                        }
                    }
                    XCTAssertEqual(hits, [Int](repeating: 1, count: total))
                    XCTAssertEqual(Set(workerOf).count, min(total, workers))
                    XCTAssertEqual(workerOf, workerOf.sorted(), "ranges are contiguous and in worker order")
                }
            }
        }
    }

    /// Both ways of splitting a dense layer over the workers: more outputs (and inputs) than samples,
    /// so that the workers split the features, and fewer, so that they split the batch.
    func testDenseLayerMatchesNaiveEitherSplit() {
        Workers.set(2)
        var random = SeededRandom(seed: 5)
        for (n, i, o) in [(2, 9, 6), (8, 6, 3)] {
            let layer = Dense(name: "fc1", inputShape: [i], outFeatures: o, activation: .leakyRelu)
            var weight = randomArray(o * i, &random), bias = randomArray(o, &random)
            var weightGradient = [Float](repeating: 0, count: o * i), biasGradient = [Float](repeating: 0, count: o)
            let x = randomArray(n * i, &random), dy = randomArray(n * o, &random)
            var y = [Float](repeating: 0, count: n * o), d = dy, dx = [Float](repeating: 0, count: n * i)
            weight.withUnsafeMutableBufferPointer { w in
                bias.withUnsafeMutableBufferPointer { b in
                    weightGradient.withUnsafeMutableBufferPointer { dw in
                        biasGradient.withUnsafeMutableBufferPointer { db in
                            layer.bind(parameters: [w.baseAddress!, b.baseAddress!], gradients: [dw.baseAddress!, db.baseAddress!])
                            let memory = LayerMemory()
                            layer.forward(x, &y, batch: n, training: true, memory: memory, workspace: Workspace())
                            layer.backward(x, y, &d, &dx, batch: n, memory: memory, workspace: Workspace())
                        }
                    }
                }
            }
            var slope = [Float](repeating: 0, count: n * o)  // dy · f'(pre-activation)
            for r in 0..<n {
                for c in 0..<o {
                    var pre = bias[c]
                    for k in 0..<i { pre += x[r * i + k] * weight[c * i + k] }
                    XCTAssertEqual(y[r * o + c], pre < 0 ? pre * Activation.leakySlope : pre, accuracy: 1e-5, "y n\(n)")
                    slope[r * o + c] = dy[r * o + c] * (pre < 0 ? Activation.leakySlope : 1)
                }
            }
            for c in 0..<o {
                XCTAssertEqual(biasGradient[c], (0..<n).reduce(0) { $0 + slope[$1 * o + c] }, accuracy: 1e-5, "db n\(n)")
                for k in 0..<i {
                    XCTAssertEqual(weightGradient[c * i + k], (0..<n).reduce(0) { $0 + slope[$1 * o + c] * x[$1 * i + k] }, accuracy: 1e-5, "dW n\(n)")
                }
            }
            for r in 0..<n {
                for k in 0..<i {
                    XCTAssertEqual(dx[r * i + k], (0..<o).reduce(0) { $0 + slope[r * o + $1] * weight[$1 * i + k] }, accuracy: 1e-5, "dx n\(n)")
                }
            }
        }
    }

    func testSumOverLanesMatchesTheLoop() {
        var random = SeededRandom(seed: 6)
        for count in [0, 5, 8, 21, 784] {
            let x = randomArray(count, &random)
            XCTAssertEqual(Double(sum(x, count: count)), x.reduce(0.0) { $0 + Double($1) }, accuracy: 1e-4, "count \(count)")
        }
    }

    func testCol2imIsTheAdjointOfIm2col() {
        var random = SeededRandom(seed: 3)
        let g = ConvGeometry(inChannels: 2, height: 5, width: 6, kernel: 3, stride: 2, padding: 1)
        let images = 2
        let x = randomArray(images * g.inputSize, &random)
        let y = randomArray(g.patchSize * images * g.positions, &random)
        var col = [Float](repeating: 0, count: y.count)
        var back = [Float](repeating: 0, count: x.count)
        im2col(x, images: images, g, &col)
        col2im(y, images: images, g, &back)
        let lhs = zip(col, y).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        let rhs = zip(x, back).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        XCTAssertEqual(lhs, rhs, accuracy: 1e-3)
    }

    func testMaxPoolSwitchesPointAtTheMaxima() {
        let g = ConvGeometry(inChannels: 1, height: 4, width: 4, kernel: 2, stride: 2)
        let input: [Float] = [1, 5, 2, 0,
                              3, 4, 9, 1,
                              0, 0, 7, 8,
                              6, 0, 8, 1]
        var output = [Float](repeating: 0, count: 4)
        var switches = [Int32](repeating: 0, count: 4)
        maxPoolForward(input, planes: 1, g, &output, switches: &switches)
        XCTAssertEqual(output, [5, 9, 6, 8])
        XCTAssertEqual(switches, [1, 6, 12, 11])  // first maximum wins the tie 8 vs 8, as PyTorch
        var back = [Float](repeating: -1, count: 16)
        maxPoolBackward([1, 2, 3, 4], planes: 1, g, switches: switches, &back)
        XCTAssertEqual(back, [0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 4, 3, 0, 0, 0])
    }

    /// The stride-2 fast paths against the loop, for 2×2 windows and for the others (3×3 as AlexNet's
    /// and zfnet's, 3×2): ties (values from a few levels), NaNs, odd widths, rows whose last group of
    /// eight overlaps the one before, and rows narrower than eight outputs.
    func testMaxPoolStrideTwoMatchesNaive() {
        var random = SeededRandom(seed: 8)
        for (kh, kw, stride) in [(2, 2, 2), (3, 3, 2), (3, 2, 2)] {
            for (height, width) in [(20, 20), (28, 28), (6, 21), (16, 17), (10, 10), (7, 9), (4, 6), (55, 55), (27, 27), (13, 13), (19, 18)] {
                let g = ConvGeometry(inChannels: 3, height: height, width: width, kernelHeight: kh, kernelWidth: kw, stride: stride)
                let input = (0..<g.inputSize).map { _ -> Float in
                    let level = Float(random.int(below: 5))
                    return random.int(below: 40) == 0 ? .nan : level
                }
                let count = 3 * g.outHeight * g.outWidth
                var (fast, slow) = ([Float](repeating: 0, count: count), [Float](repeating: 0, count: count))
                var (fastSwitches, slowSwitches) = ([Int32](repeating: -1, count: count), [Int32](repeating: -1, count: count))
                maxPoolForward(input, planes: 3, g, &fast, switches: &fastSwitches)
                maxPoolForwardNaive(input, planes: 3, g, &slow, switches: &slowSwitches)
                let label = "\(kh)x\(kw) stride \(stride) over \(height)x\(width)"
                XCTAssertEqual(fastSwitches, slowSwitches, label)
                XCTAssertEqual(fast.map(\.bitPattern), slow.map(\.bitPattern), label)
            }
        }
    }

    /// Pooling the outputs inside a box alone gives the whole plane's outputs and switches there (a box
    /// narrower than eight outputs widened inside the plane, or gathered where the plane is narrower) and
    /// leaves everything outside the (widened) box as it was.
    func testMaxPoolOfABoxEqualsTheWholePlaneInsideIt() {
        var random = SeededRandom(seed: 9)
        for (kh, kw, height, width, box) in [(3, 3, 27, 27, PlaneBox(y: 3, x: 2, height: 7, width: 5)), (3, 3, 55, 55, PlaneBox(y: 4, x: 4, height: 19, width: 19)),
                                             (3, 3, 13, 13, PlaneBox(y: 1, x: 0, height: 4, width: 6)), (2, 2, 20, 18, PlaneBox(y: 0, x: 3, height: 5, width: 3)),
                                             (3, 2, 16, 33, PlaneBox(y: 2, x: 12, height: 3, width: 4))] {
            let g = ConvGeometry(inChannels: 3, height: height, width: width, kernelHeight: kh, kernelWidth: kw, stride: 2)
            let input = (0..<g.inputSize).map { _ -> Float in random.int(below: 40) == 0 ? .nan : Float(random.int(below: 5)) }
            let count = 3 * g.outHeight * g.outWidth
            var (whole, boxed) = ([Float](repeating: 0, count: count), [Float](repeating: -7, count: count))
            var (wholeSwitches, boxedSwitches) = ([Int32](repeating: 0, count: count), [Int32](repeating: -7, count: count))
            maxPoolForward(input, planes: 3, g, &whole, switches: &wholeSwitches)
            var scratch = [Float](repeating: 0, count: maxPoolBoxScratchSize(g, box, planes: 3))
            maxPoolForward(input, planes: 3, g, outputs: box, &boxed, switches: &boxedSwitches, scratch: &scratch)
            let written = widenedForMaxPooling(box, g)
            XCTAssertTrue(written.intersection(box) == box, "the written box holds the box asked for")
            for plane in 0..<3 {
                for y in 0..<g.outHeight {
                    for x in 0..<g.outWidth {
                        let at = (plane * g.outHeight + y) * g.outWidth + x, label = "\(kh)x\(kw) over \(height)x\(width), box \(box), plane \(plane) at \(y),\(x)"
                        if (written.y0..<written.y1).contains(y) && (written.x0..<written.x1).contains(x) {
                            XCTAssertEqual(boxed[at].bitPattern, whole[at].bitPattern, label)
                            XCTAssertEqual(boxedSwitches[at], wholeSwitches[at], label)
                        } else {
                            XCTAssertEqual(boxed[at], -7, label)
                            XCTAssertEqual(boxedSwitches[at], -7, label)
                        }
                    }
                }
            }
        }
    }

    func testAveragePoolStrideOne() {
        let g = ConvGeometry(inChannels: 1, height: 3, width: 3, kernel: 2, stride: 1)
        var output = [Float](repeating: 0, count: 4)
        avgPoolForward([1, 2, 3, 4, 5, 6, 7, 8, 9], planes: 1, g, includePadding: true, &output)
        XCTAssertEqual(output, [3, 4, 6, 7])
    }
}
