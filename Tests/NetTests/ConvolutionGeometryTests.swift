import XCTest
import TestSupport
@testable import Net

/// Strided, grouped, rectangular and asymmetrically padded convolutions and padded, ceil-mode pooling
/// against their loop oracles (`conv2dNaive`, `conv2dBackwardNaive`, and PyTorch's rules written out
/// here), and the spec language that builds them.
final class ConvolutionGeometryTests: XCTestCase {
    override func setUp() {
        Workers.set(2)
    }

    /// Geometries with stride, groups, rectangular kernels and padding per side.
    let geometries: [(g: ConvGeometry, out: Int)] = [
        (ConvGeometry(inChannels: 4, height: 9, width: 8, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: (1, 1, 1, 1), groups: 2), 6),
        (ConvGeometry(inChannels: 6, height: 7, width: 9, kernelHeight: 3, kernelWidth: 5, stride: 1, padding: (0, 2, 1, 1), groups: 3), 9),
        (ConvGeometry(inChannels: 3, height: 11, width: 10, kernelHeight: 7, kernelWidth: 7, stride: 2, padding: (3, 3, 3, 3)), 20),
        (ConvGeometry(inChannels: 2, height: 6, width: 7, kernelHeight: 2, kernelWidth: 3, stride: 3, padding: (2, 0, 0, 1), groups: 2), 4),
    ]

    func testConvolutionForwardBackwardAndBackwardDataMatchTheOracles() {
        var random = SeededRandom(seed: 5)
        for (g, o) in geometries {
            for n in [1, 3] {
                let what = "\(g) o\(o) n\(n)"
                let layer = Conv2D(name: "conv1", geometry: g, outChannels: o, activation: .identity)
                XCTAssertEqual(layer.parameterShapes[0].shape, [o, g.inChannels / g.groups, g.kernelHeight, g.kernelWidth])
                var weight = (0..<o * g.groupPatchSize).map { _ in random.uniform(-1, 1) }, bias = (0..<o).map { _ in random.uniform(-1, 1) }
                var weightGradient = [Float](repeating: 0, count: weight.count), biasGradient = [Float](repeating: 0, count: o)
                let input = (0..<n * g.inputSize).map { _ in random.uniform(-1, 1) }
                let dy = (0..<n * layer.outputCount).map { _ in random.uniform(-1, 1) }
                var output = [Float](repeating: 0, count: dy.count), expected = output
                var dx = [Float](repeating: 0, count: input.count), expectedDx = dx
                var expectedWeightGradient = weightGradient, expectedBiasGradient = biasGradient
                weight.withUnsafeMutableBufferPointer { w in
                    bias.withUnsafeMutableBufferPointer { b in
                        weightGradient.withUnsafeMutableBufferPointer { dw in
                            biasGradient.withUnsafeMutableBufferPointer { db in
                                layer.bind(parameters: [w.baseAddress!, b.baseAddress!], gradients: [dw.baseAddress!, db.baseAddress!])
                                let (memory, workspace) = (LayerMemory(), Workspace())
                                layer.forward(input, &output, batch: n, training: true, memory: memory, workspace: workspace)
                                conv2dNaive(input, images: n, g, outChannels: o, weight: w.baseAddress!, bias: b.baseAddress!, &expected)
                                var gradient = dy
                                layer.backward(input, output, &gradient, &dx, batch: n, memory: memory, workspace: workspace)
                                conv2dBackwardNaive(dy, images: n, g, outChannels: o, input: input, weight: w.baseAddress!, inputGradient: &expectedDx,
                                                    weightGradient: &expectedWeightGradient, biasGradient: &expectedBiasGradient)
                                // a subset of the output channels across a group boundary, the others zero
                                let channels = 1..<(o - 1)
                                var subset = [Float](), masked = dy
                                for b in 0..<n {
                                    for c in 0..<o {
                                        let plane = Array(dy[(b * o + c) * g.positions..<(b * o + c + 1) * g.positions])
                                        if channels.contains(c) { subset += plane } else {
                                            for i in 0..<g.positions { masked[(b * o + c) * g.positions + i] = 0 }
                                        }
                                    }
                                }
                                var subsetDx = dx, maskedDx = dx
                                layer.backwardData(subset, channels: channels, &subsetDx, batch: n, memory: memory, workspace: workspace)
                                conv2dBackwardNaive(masked, images: n, g, outChannels: o, input: input, weight: w.baseAddress!, inputGradient: &maskedDx,
                                                    weightGradient: nil, biasGradient: nil)
                                for i in subsetDx.indices { XCTAssertEqual(subsetDx[i], maskedDx[i], accuracy: 1e-4, "backwardData \(what)") }
                            }
                        }
                    }
                }
                for i in output.indices { XCTAssertEqual(output[i], expected[i], accuracy: 1e-4, "forward \(what)") }
                for i in dx.indices { XCTAssertEqual(dx[i], expectedDx[i], accuracy: 1e-4, "input gradient \(what)") }
                for i in weightGradient.indices { XCTAssertEqual(weightGradient[i], expectedWeightGradient[i], accuracy: 1e-3, "weight gradient \(what)") }
                for i in biasGradient.indices { XCTAssertEqual(biasGradient[i], expectedBiasGradient[i], accuracy: 1e-3, "bias gradient \(what)") }
            }
        }
    }

    func testOnlyIm2colTakesStridesGroupsAndUnevenPadding() {
        for (g, o) in geometries {
            let layer = Conv2D(name: "conv1", geometry: g, outChannels: o, activation: .relu)
            XCTAssertEqual(layer.path, .im2col)
            XCTAssertNotNil(layer.reasonItCannotTake(.direct))
            XCTAssertNotNil(layer.reasonItCannotTake(.winograd))
        }
        var g = ConvGeometry(inChannels: 8, height: 8, width: 8, kernel: 5, padding: 2)
        XCTAssertEqual(Conv2D(name: "conv1", geometry: g, outChannels: 16, activation: .relu).path, .winograd)
        g.groups = 2
        XCTAssertEqual(Conv2D(name: "conv1", geometry: g, outChannels: 16, activation: .relu).path, .im2col)
    }

    /// PyTorch's output sizes: `F.max_pool2d(torch.zeros(1, 1, H, W), k, s, p, ceil_mode=True).shape`.
    func testPoolingOutputSizesFollowPyTorch() {
        // (size, kernel, stride, padding, ceil) → PyTorch's output size
        for (size, k, s, p, ceil, expected) in [(7, 2, 2, 0, true, 4), (7, 2, 2, 0, false, 3), (6, 3, 2, 1, true, 4), (6, 3, 2, 1, false, 3),
                                                 (5, 3, 2, 1, true, 3), (8, 3, 3, 1, true, 3), (16, 3, 2, 1, false, 8), (4, 3, 2, 1, false, 2),
                                                 (5, 2, 2, 1, true, 3), (2, 3, 2, 1, true, 2)] {
            let g = ConvGeometry(inChannels: 1, height: size, width: size, kernelHeight: k, kernelWidth: k, stride: s, padding: (p, p, p, p), ceilMode: ceil)
            XCTAssertEqual(g.outHeight, expected, "\(size) k\(k) s\(s) p\(p) ceil \(ceil)")
        }
    }

    func testPaddedPoolingMatchesTheDefinition() {
        var random = SeededRandom(seed: 3)
        let (h, w) = (6, 7)
        let input = (0..<2 * h * w).map { _ in random.uniform(-2, -1) }  // all negative: zero padding would win
        for (k, s, pad, ceil) in [(3, 2, (1, 1, 1, 1), true), (2, 2, (0, 1, 1, 0), true), (3, 3, (1, 0, 1, 1), false), (2, 2, (0, 0, 0, 0), true)] {
            let g = ConvGeometry(inChannels: 2, height: h, width: w, kernelHeight: k, kernelWidth: k, stride: s, padding: pad, ceilMode: ceil)
            let count = 2 * g.positions
            var maxima = [Float](repeating: 0, count: count), switches = [Int32](repeating: 0, count: count)
            maxPoolForward(input, planes: 2, g, &maxima, switches: &switches)
            for include in [true, false] {
                var means = [Float](repeating: 0, count: count)
                avgPoolForward(input, planes: 2, g, includePadding: include, &means)
                for c in 0..<2 {
                    for y in 0..<g.outHeight {
                        for x in 0..<g.outWidth {
                            // PyTorch's avg_pool2d: the window clipped to the padded plane, then to the plane
                            let (y0, x0) = (y * s - pad.0, x * s - pad.1)
                            let (y1, x1) = (min(y0 + k, h + pad.2), min(x0 + k, w + pad.3))
                            var values: [(Float, Int)] = []
                            for i in max(y0, 0)..<min(y1, h) {
                                for j in max(x0, 0)..<min(x1, w) { values.append((input[(c * h + i) * w + j], i * w + j)) }
                            }
                            let at = (c * g.outHeight + y) * g.outWidth + x
                            let divisor = include ? (y1 - y0) * (x1 - x0) : values.count
                            XCTAssertEqual(means[at], values.reduce(0) { $0 + $1.0 } / Float(divisor), accuracy: 1e-5)
                            let best = values.max { $0.0 < $1.0 }!
                            XCTAssertEqual(maxima[at], best.0)
                            XCTAssertEqual(Int(switches[at]), best.1)
                        }
                    }
                }
            }
        }
    }

    func testSpecOptionsParseAndPrintCanonically() throws {
        for (text, canonical) in [
            ("conv:64:7:stride=2:pad=3", "conv:64:7:3:stride=2"),
            ("conv:64:3:pad=0/1/1/0:act=identity", "conv:64:3:pad=0/1/1/0:act=identity"),
            ("conv:96:7:pad=1:stride=2:groups=2", "conv:96:7:1:stride=2:groups=2"),
            ("conv:8:3x5:same:groups=4", "conv:8:3x5:same:groups=4"),
            ("conv:8:3x3:pad=2/2/2/2", "conv:8:3:2"),
            ("conv:32:5:same", "conv:32:5:same"),
            ("maxpool:3:2:pad=1", "maxpool:3:2:pad=1"),
            ("maxpool:2:ceil", "maxpool:2:2:ceil"),
            ("avgpool:3:2:exclude-pad:ceil:pad=1/0/1/1", "avgpool:3:2:pad=1/0/1/1:ceil:exclude-pad"),
            ("fc:act=sigmoid", "fc:act=sigmoid"),
            ("fc:10:act=leaky-relu", "fc:10:act=leaky-relu"),
        ] {
            let spec = try ModelSpec(parsing: text)
            XCTAssertEqual(spec.description, canonical, text)
            XCTAssertEqual(try ModelSpec(parsing: spec.description), spec, text)
        }
        let zfnet = "conv:64:7:stride=2:pad=3,maxpool:3:2:pad=1,conv:192:5:2,maxpool:3:2:pad=1,conv:256:3:1,conv:256:3:1,conv:192:3:1,maxpool:3:2:pad=1,"
            + "fc:512,dropout:0.5,fc:512,dropout:0.5,fc"
        let model = try Sequential(spec: ModelSpec(parsing: zfnet), inputShape: ImageShape(channels: 3, height: 32, width: 32), classes: 10)
        XCTAssertEqual(model.layers.map(\.outputShape).prefix(8), [[64, 16, 16], [64, 8, 8], [192, 8, 8], [192, 4, 4], [256, 4, 4], [256, 4, 4], [192, 4, 4], [192, 2, 2]])
    }

    func testBadSpecsNameTheirToken() {
        for (text, fragment) in [
            ("conv:8:3:stride=0", "'0' in 'conv:8:3:stride=0'"),
            ("conv:8:3:groups=3", "groups=3"),
            ("conv:8:3:pad=4", "larger than the kernel"),
            ("conv:8:3:1:pad=1", "twice"),
            ("conv:8:3:stride=2:stride=2", "appears twice"),
            ("conv:8:3:dilation=2", "unknown option 'dilation'"),
            ("maxpool:3:pad=2", "larger than half"),
            ("maxpool:2:exclude-pad", "unknown option 'exclude-pad'"),
            ("fc:act=swish", "act 'swish'"),
            ("conv:8:3:stride=2:1", "not an option"),
            ("conv:8:3x:same", "'' in 'conv:8:3x:same'"),
            ("avgpool:2:pad=1/1", "pad '1/1'"),
        ] {
            XCTAssertThrowsError(try ModelSpec(parsing: text + ",fc"), text) { error in
                guard case ModelError.badSpec(let why) = error else { return XCTFail("\(text): \(error)") }
                XCTAssertTrue(why.contains(fragment), "\(text): \(why)")
            }
        }
        XCTAssertThrowsError(try Sequential(spec: ModelSpec(parsing: "conv:8:3:groups=2,fc"), inputShape: ImageShape(channels: 3, height: 5, width: 5), classes: 2)) {
            XCTAssertTrue("\($0.localizedDescription)".contains("groups=2 in 'conv:8:3:valid:groups=2' does not divide its 3 input channels"), "\($0)")
        }
    }

    func testMultiplyAddsCountGroupsAndStride() throws {
        let model = try Sequential(spec: ModelSpec(parsing: "conv:8:3:stride=2:pad=1:groups=4,fc"), inputShape: ImageShape(channels: 4, height: 8, width: 8), classes: 2)
        XCTAssertEqual(model.layers[0].multiplyAdds, 8 * 1 * 9 * 16)
    }

    /// Forward and input gradient of each new configuration equal PyTorch's `F.conv2d` (after `F.pad`),
    /// `F.max_pool2d` and `F.avg_pool2d` on the same values, within 1e-5 of the largest value.
    func testLayersMatchPyTorch() throws {
        try Python.require("torch")
        struct Case: Encodable {
            var name: String, kind: String, shape: [Int], input: [Float], kernel: [Int], stride: Int, pad: [Int], groups: Int
            var ceil: Bool, include_pad: Bool, weight: [Float], bias: [Float], output_gradient: [Float], output: [Float], input_gradient: [Float]
        }
        var random = SeededRandom(seed: 17)
        var cases: [Case] = []
        func add(_ name: String, _ layer: any Layer, _ g: ConvGeometry, kind: String, includePadding: Bool = true, n: Int = 2) {
            let parameterCount = layer.parameterShapes.reduce(0) { $0 + $1.shape.reduce(1, *) }
            var parameters = (0..<parameterCount).map { _ in random.uniform(-1, 1) }, gradients = [Float](repeating: 0, count: parameterCount)
            let input = (0..<n * g.inputSize).map { _ in random.uniform(-1, 1) }
            let dy = (0..<n * layer.outputCount).map { _ in random.uniform(-1, 1) }
            var output = [Float](repeating: 0, count: dy.count), dx = [Float](repeating: 0, count: input.count), gradient = dy
            parameters.withUnsafeMutableBufferPointer { p in
                gradients.withUnsafeMutableBufferPointer { d in
                    if parameterCount > 0 {
                        let weightCount = parameterCount - layer.outputShape[0]
                        layer.bind(parameters: [p.baseAddress!, p.baseAddress! + weightCount], gradients: [d.baseAddress!, d.baseAddress! + weightCount])
                    }
                    let (memory, workspace) = (LayerMemory(), Workspace())
                    layer.forward(input, &output, batch: n, training: true, memory: memory, workspace: workspace)
                    layer.backward(input, output, &gradient, &dx, batch: n, memory: memory, workspace: workspace)
                }
            }
            let weightCount = parameterCount == 0 ? 0 : parameterCount - layer.outputShape[0]
            cases.append(Case(name: name, kind: kind, shape: [n, g.inChannels, g.height, g.width], input: input, kernel: [g.kernelHeight, g.kernelWidth],
                              stride: g.stride, pad: [g.padTop, g.padLeft, g.padBottom, g.padRight], groups: g.groups, ceil: g.ceilMode,
                              include_pad: includePadding, weight: Array(parameters[..<weightCount]), bias: Array(parameters[weightCount...]),
                              output_gradient: dy, output: output, input_gradient: dx))
        }
        for (i, (g, o)) in geometries.enumerated() {
            add("conv \(i)", Conv2D(name: "conv1", geometry: g, outChannels: o, activation: .identity), g, kind: "conv")
        }
        for (k, s, p, ceil) in [(3, 2, 1, false), (2, 2, 0, true), (3, 2, 1, true), (3, 3, 1, true), (2, 2, 1, true)] {
            let g = ConvGeometry(inChannels: 3, height: 7, width: 8, kernelHeight: k, kernelWidth: k, stride: s, padding: (p, p, p, p), ceilMode: ceil)
            add("maxpool \(k)/\(s) pad \(p) ceil \(ceil)", MaxPool2D(name: "pool1", geometry: g), g, kind: "maxpool")
            for include in [true, false] {
                add("avgpool \(k)/\(s) pad \(p) ceil \(ceil) include \(include)", AvgPool2D(name: "pool1", geometry: g, includePadding: include), g,
                    kind: "avgpool", includePadding: include)
            }
        }
        let path = NSTemporaryDirectory() + "layers-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try JSONEncoder().encode(cases).write(to: URL(fileURLWithPath: path))
        let result = Python.run([Python.script("check_layers_torch.py"), path])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output.split(separator: "\n").filter { $0.contains("\"ok\": true") }.count, cases.count, result.output)
    }
}
