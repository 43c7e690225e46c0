import XCTest
@testable import Net

/// The box kernels (a layer's outputs for copies of one sample changed inside a box) against the whole
/// layer run on each copy rebuilt in full: `conv2dNaive`, the naive pooling kernels, a dense loop.
/// Scratch and outputs start as NaN, so a read of anything the kernels did not write shows.
final class BoxKernelTests: XCTestCase {
    /// Copies of a random `(C, H, W)` sample, copy `b` changed inside `boxes[b]` (clipped to the plane)
    /// to random values.
    struct Copies {
        var base: [Float]
        var boxes: [PlaneBox]
        var values: [Float]
        var offsets: [Int]
        let c: Int, h: Int, w: Int

        init(c: Int, h: Int, w: Int, boxes: [PlaneBox], _ random: inout SeededRandom) {
            (self.c, self.h, self.w) = (c, h, w)
            base = (0..<(c * h * w)).map { _ in random.uniform(-1, 1) }
            self.boxes = boxes.map { $0.intersection(PlaneBox(y0: 0, y1: h, x0: 0, x1: w)) }
            offsets = BoxedValues.offsets(self.boxes, channels: c)
            values = (0..<offsets.last!).map { _ in random.uniform(-1, 1) }
        }

        /// Copy `b` in full, `(C, H, W)`.
        func rebuilt(_ b: Int) -> [Float] {
            var x = base
            let box = boxes[b]
            for ch in 0..<c {
                for y in box.y0..<box.y1 {
                    for xx in box.x0..<box.x1 { x[(ch * h + y) * w + xx] = values[offsets[b] + (ch * box.height + y - box.y0) * box.width + xx - box.x0] }
                }
            }
            return x
        }

        func withBoxedValues<R>(_ body: (BoxedValues, UnsafePointer<Float>) -> R) -> R {
            var values = values
            return values.withUnsafeMutableBufferPointer { v in
                base.withUnsafeBufferPointer { body(BoxedValues(boxes: boxes, values: v.baseAddress!, offsets: offsets), $0.baseAddress!) }
            }
        }
    }

    /// Boxes that break the kernels: corners and borders, hanging over the plane, one pixel, a whole
    /// plane, a row or a column, and an empty box.
    func adversarialBoxes(h: Int, w: Int) -> [PlaneBox] {
        [PlaneBox(y: -2, x: -2, height: 4, width: 4), PlaneBox(y: h - 2, x: w - 1, height: 5, width: 5), PlaneBox(y: h / 2, x: w / 2, height: 1, width: 1),
         PlaneBox(y: 0, x: 0, height: h, width: w), PlaneBox(y: h - 1, x: 0, height: 1, width: w), PlaneBox(y: 0, x: w - 1, height: h, width: 1),
         PlaneBox(y: 1, x: 2, height: 3, width: 2), .empty]
    }

    /// Checks `changed` (per copy `(O, box.h, box.w)` inside `changedOutputs`) against the full outputs of
    /// every copy, and that outside those boxes the full output equals the unchanged one (bit for bit).
    func assertBoxes(_ changed: [Float], offsets: [Int], outputs: [PlaneBox], full: (Int) -> [Float], unchanged: [Float],
                     o: Int, oh: Int, ow: Int, accuracy: Float, _ what: String) {
        for (b, box) in outputs.enumerated() {
            let y = full(b)
            for ch in 0..<o {
                for yy in 0..<oh {
                    for xx in 0..<ow {
                        let i = (ch * oh + yy) * ow + xx
                        if box.contains(y: yy, x: xx) {
                            let got = changed[offsets[b] + (ch * box.height + yy - box.y0) * box.width + xx - box.x0]
                            XCTAssertEqual(got, y[i], accuracy: accuracy, "\(what) copy \(b) (\(ch), \(yy), \(xx))")
                        } else {
                            XCTAssertEqual(y[i].bitPattern, unchanged[i].bitPattern, "\(what) copy \(b) (\(ch), \(yy), \(xx)) outside \(box)")
                        }
                    }
                }
            }
        }
    }

    func convolved(_ x: [Float], _ g: ConvGeometry, o: Int, weight: [Float], bias: [Float], _ activation: Activation) -> [Float] {
        var y = [Float](repeating: 0, count: o * g.positions)
        conv2dNaive(x, images: 1, g, outChannels: o, weight: weight, bias: bias, &y)
        y.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count) }
        return y
    }

    /// Runs `update(weight, bias, unchanged, from, input, to)` for a random convolution of geometry `g`
    /// on the adversarial copies and checks its outputs against `conv2dNaive` on every rebuilt copy.
    func checkConvolution(
        _ g: ConvGeometry, o: Int, _ activation: Activation, _ random: inout SeededRandom, accuracy: Float = 1e-4,
        _ update: (_ weight: [Float], _ bias: [Float], _ copies: Copies, _ from: BoxedValues, _ input: UnsafePointer<Float>, _ to: BoxedValues) -> Void
    ) {
        let weight = (0..<(o * g.groupPatchSize)).map { _ in random.uniform(-1, 1) }, bias = (0..<o).map { _ in random.uniform(-1, 1) }
        let copies = Copies(c: g.inChannels, h: g.height, w: g.width, boxes: adversarialBoxes(h: g.height, w: g.width), &random)
        let outputs = copies.boxes.map { changedOutputs($0, g) }
        let offsets = BoxedValues.offsets(outputs, channels: o)
        var changed = [Float](repeating: .nan, count: offsets.last!)
        copies.withBoxedValues { from, input in
            changed.withUnsafeMutableBufferPointer { update(weight, bias, copies, from, input, BoxedValues(boxes: outputs, values: $0.baseAddress!, offsets: offsets)) }
        }
        let what = "c\(g.inChannels) o\(o) \(g.kernelHeight)x\(g.kernelWidth) s\(g.stride) p\(g.padTop)"
        assertBoxes(changed, offsets: offsets, outputs: outputs, full: { convolved(copies.rebuilt($0), g, o: o, weight: weight, bias: bias, activation) },
                    unchanged: convolved(copies.base, g, o: o, weight: weight, bias: bias, activation), o: o, oh: g.outHeight, ow: g.outWidth,
                    accuracy: accuracy, what)
    }

    /// One input channel and many, padding 0–2, strides 1–3 (rows and columns no window reads), square
    /// and non-square kernels, 1×1.
    func testConvolveBoxesMatchesNaive() {
        var random = SeededRandom(seed: 21)
        for (c, o, h, w, kh, kw, stride, padding, activation) in [
            (1, 3, 9, 8, 3, 3, 1, 1, Activation.relu), (7, 4, 10, 9, 3, 3, 2, 1, .tanh), (2, 5, 11, 11, 5, 5, 1, 2, .identity),
            (3, 2, 9, 10, 2, 2, 3, 0, .relu), (1, 1, 6, 7, 1, 1, 1, 0, .leakyRelu), (16, 6, 8, 8, 5, 3, 1, 2, .relu), (4, 3, 7, 12, 3, 5, 2, 0, .sigmoid),
        ] {
            var g = ConvGeometry(inChannels: c, height: h, width: w, kernel: kh, stride: stride, padding: padding)
            g.kernelWidth = kw
            checkConvolveBoxes(g, o: o, activation, &random)
        }
        // groups, padding per side, strides with a last row no window reads
        for (g, o) in [
            (ConvGeometry(inChannels: 4, height: 9, width: 8, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: (1, 1, 1, 1), groups: 2), 6),
            (ConvGeometry(inChannels: 6, height: 7, width: 9, kernelHeight: 3, kernelWidth: 5, stride: 1, padding: (0, 2, 1, 1), groups: 3), 9),
            (ConvGeometry(inChannels: 3, height: 11, width: 10, kernelHeight: 7, kernelWidth: 7, stride: 2, padding: (3, 3, 3, 3)), 5),
            (ConvGeometry(inChannels: 2, height: 8, width: 7, kernelHeight: 2, kernelWidth: 3, stride: 3, padding: (2, 0, 0, 1), groups: 2), 4),
        ] {
            checkConvolveBoxes(g, o: o, .relu, &random)
        }
    }

    private func checkConvolveBoxes(_ g: ConvGeometry, o: Int, _ activation: Activation, _ random: inout SeededRandom) {
        checkConvolution(g, o: o, activation, &random) { weight, bias, _, from, input, to in
            var scratch = [Float](repeating: .nan, count: convolveBoxesScratchSize(g, outChannels: o, outputs: to.boxes))
            convolveBoxes(input, g, outChannels: o, weight: weight, bias: bias, activation: activation, from: from, to: to, scratch: &scratch)
        }
    }

    /// Stride 1 with padding 0–2, one input channel and many, square and non-square kernels.
    func testConvolveByChangeMatchesNaive() {
        var random = SeededRandom(seed: 22)
        for (c, o, h, w, kh, kw, padding, activation) in [
            (1, 3, 9, 8, 3, 3, 1, Activation.relu), (16, 4, 10, 9, 3, 3, 0, .tanh), (2, 5, 11, 11, 5, 5, 2, .identity),
            (5, 1, 7, 12, 3, 5, 1, .leakyRelu), (3, 9, 6, 6, 1, 1, 0, .relu),
        ] {
            var g = ConvGeometry(inChannels: c, height: h, width: w, kernel: kh, padding: padding)
            g.kernelWidth = kw
            checkConvolution(g, o: o, activation, &random) { weight, bias, copies, from, input, to in
                var scratch = [Float](repeating: .nan, count: convolveByChangeScratchSize(g, outChannels: o, inputs: from.boxes, outputs: to.boxes))
                let preActivation = convolved(copies.base, g, o: o, weight: weight, bias: bias, .identity)
                var pre = [Float](repeating: .nan, count: preActivation.count)
                channelsLast(preActivation, channels: o, positions: g.positions, &pre)
                let rearranged = weight.withUnsafeBufferPointer { weightsByInputChannel($0.baseAddress!, g, outChannels: o) }
                var inputChannelsLast = [Float](repeating: .nan, count: g.inputSize)
                channelsLast(input, channels: c, positions: h * w, &inputChannelsLast)
                convolveByChange(inputChannelsLast, g, outChannels: o, weights: rearranged, pre: pre, activation: activation, from: from, to: to, scratch: &scratch)
            }
        }
    }

    /// 3×3 and 5×5 with padding 0–2; channels and output channels below, at and past a multiple of the
    /// eight lanes; planes of one tile and of several in each direction. Winograd's float error on these
    /// sums of up to 19·25 products of values in [−1, 1] stays under the tolerance of 5e-4.
    func testConvolveBoxesWinogradMatchesNaive() {
        var random = SeededRandom(seed: 25)
        for (c, o, h, w, k, padding, activation) in [
            (1, 3, 9, 8, 3, 1, Activation.relu), (8, 8, 13, 13, 3, 1, .identity), (19, 13, 14, 11, 3, 0, .tanh), (9, 17, 6, 6, 3, 2, .leakyRelu),
            (5, 8, 12, 12, 5, 2, .relu), (16, 3, 9, 13, 5, 0, .sigmoid),
        ] {
            let g = ConvGeometry(inChannels: c, height: h, width: w, kernel: k, padding: padding)
            checkConvolution(g, o: o, activation, &random, accuracy: 5e-4) { weight, bias, _, from, input, to in
                let winograd = WinogradConvolution(geometry: g, outChannels: o)
                var u = [Float](repeating: .nan, count: winograd.transformedFilterCount)
                winograd.transformFilters(weight, into: &u)
                var scratch = [Float](repeating: .nan, count: convolveBoxesWinogradScratchSize(g, outChannels: o, inputs: from.boxes, outputs: to.boxes))
                var inputChannelsLast = [Float](repeating: .nan, count: g.inputSize)
                channelsLast(input, channels: c, positions: h * w, &inputChannelsLast)
                convolveBoxesWinograd(inputChannelsLast, g, outChannels: o, transformedFilters: u, bias: bias, activation: activation, from: from, to: to, scratch: &scratch)
            }
        }
    }

    /// The channels-last patch is the planar patch transposed, for regions inside, across and outside
    /// the plane's edges and boxes that it covers in part or not at all.
    func testFillPatchChannelsLastIsThePlanarPatchTransposed() {
        var random = SeededRandom(seed: 27)
        let (c, h, w) = (11, 9, 10)
        let copies = Copies(c: c, h: h, w: w, boxes: adversarialBoxes(h: h, w: w), &random)
        var baseChannelsLast = [Float](repeating: .nan, count: c * h * w)
        channelsLast(copies.base, channels: c, positions: h * w, &baseChannelsLast)
        for (b, box) in copies.boxes.enumerated() {
            var values = [Float](repeating: .nan, count: c * box.area)
            copies.values.withUnsafeBufferPointer { channelsLast($0.baseAddress! + copies.offsets[b], channels: c, positions: box.area, &values) }
            for region in [PlaneBox(y: -2, x: -3, height: 6, width: 7), PlaneBox(y: 3, x: 2, height: 5, width: 11), PlaneBox(y: 0, x: 0, height: h, width: w),
                           PlaneBox(y: h - 1, x: w - 2, height: 4, width: 4)] {
                var planar = [Float](repeating: .nan, count: c * region.area), last = planar, expected = planar
                copies.values.withUnsafeBufferPointer { v in
                    fillPatch(copies.base, c: c, h: h, w: w, region: region, box: box, values: v.baseAddress! + copies.offsets[b], &planar)
                }
                fillPatch(baseChannelsLast, c: c, h: h, w: w, region: region, box: box, values: values, &last, channelsLast: true)
                channelsLast(planar, channels: c, positions: region.area, &expected)
                XCTAssertEqual(last.map(\.bitPattern), expected.map(\.bitPattern), "box \(box) region \(region)")
            }
        }
    }

    /// The blocked transpose against the plain one, with sizes below, at and past multiples of eight.
    func testChannelsLastIsTheTranspose() {
        var random = SeededRandom(seed: 26)
        for (c, p) in [(1, 1), (8, 8), (9, 17), (16, 64), (384, 144), (3, 100), (100, 3)] {
            let x = (0..<(c * p)).map { _ in random.uniform(-1, 1) }
            var y = [Float](repeating: .nan, count: c * p)
            channelsLast(x, channels: c, positions: p, &y)
            for ch in 0..<c {
                for i in 0..<p where y[i * c + ch].bitPattern != x[ch * p + i].bitPattern {
                    XCTFail("(\(c), \(p)): position \(i) channel \(ch)")
                    return
                }
            }
        }
    }

    /// Max and average pooling, windows 2 and 3, strides 1–3, odd sizes whose last row and column no
    /// window reads, planes narrower and wider than eight outputs.
    func testPoolBoxesMatchesNaive() {
        var random = SeededRandom(seed: 23)
        let cases: [(Int, Int, Int, Int, Int, (Int, Int, Int, Int), Bool)] = [
            (1, 8, 8, 2, 2, (0, 0, 0, 0), false), (3, 9, 11, 2, 2, (0, 0, 0, 0), false), (2, 7, 7, 3, 2, (0, 0, 0, 0), false),
            (1, 6, 5, 2, 1, (0, 0, 0, 0), false), (4, 10, 11, 3, 3, (0, 0, 0, 0), false),
            // planes of eight outputs a row and more, where narrower boxes are widened for the vector kernels
            (3, 23, 27, 3, 2, (0, 0, 0, 0), false), (2, 20, 21, 2, 2, (0, 0, 0, 0), false), (2, 12, 19, 2, 1, (0, 0, 0, 0), false),
            // padded and ceil-mode windows, which leave the padding out
            (2, 8, 8, 3, 2, (1, 1, 1, 1), false), (2, 7, 9, 3, 2, (1, 0, 1, 1), true), (1, 7, 5, 2, 2, (0, 0, 0, 0), true), (3, 6, 7, 3, 3, (1, 1, 1, 1), true),
        ]
        for (c, h, w, k, stride, pad, ceil) in cases {
            let g = ConvGeometry(inChannels: c, height: h, width: w, kernelHeight: k, kernelWidth: k, stride: stride, padding: pad, ceilMode: ceil)
            let copies = Copies(c: c, h: h, w: w, boxes: adversarialBoxes(h: h, w: w), &random)
            let outputs = copies.boxes.map { changedOutputs($0, g) }
            let offsets = BoxedValues.offsets(outputs, channels: c)
            for (maximum, includePadding) in [(true, true), (false, true), (false, false)] {
                func full(_ x: [Float]) -> [Float] {
                    var y = [Float](repeating: 0, count: c * g.positions)
                    if maximum {
                        var switches = [Int32](repeating: 0, count: c * g.positions)
                        maxPoolForwardNaive(x, planes: c, g, &y, switches: &switches)
                    } else {
                        avgPoolForward(x, planes: c, g, includePadding: includePadding, &y)
                    }
                    return y
                }
                var changed = [Float](repeating: .nan, count: offsets.last!)
                var scratch = [Float](repeating: .nan, count: poolBoxesScratchSize(g, outputs: outputs))
                copies.withBoxedValues { from, input in
                    changed.withUnsafeMutableBufferPointer { out in
                        poolBoxes(input, g, maximum: maximum, includePadding: includePadding, from: from,
                                  to: BoxedValues(boxes: outputs, values: out.baseAddress!, offsets: offsets), scratch: &scratch)
                    }
                }
                assertBoxes(changed, offsets: offsets, outputs: outputs, full: { full(copies.rebuilt($0)) }, unchanged: full(copies.base),
                            o: c, oh: g.outHeight, ow: g.outWidth, accuracy: 1e-6,
                            "\(maximum ? "max" : "avg") c\(c) \(h)x\(w) k\(k) s\(stride) pad \(pad) ceil \(ceil) include \(includePadding)")
            }
        }
    }

    /// `y = f(W·x + b)` over an image input, updated by the change of each copy, against the dense loop;
    /// the features split in two ranges as the workers split them, one input channel and several. Some
    /// channels keep their value at some locations in every copy (channel 1 everywhere, channel 0 on
    /// every other column), so that the product leaves them out there, or skips the location.
    func testDenseByChangeMatchesNaive() {
        var random = SeededRandom(seed: 24)
        for (c, h, w, o) in [(3, 5, 4, 70), (1, 6, 6, 9)] {
            let i = c * h * w
            let weight = (0..<(o * i)).map { _ in random.uniform(-1, 1) }, bias = (0..<o).map { _ in random.uniform(-1, 1) }
            var copies = Copies(c: c, h: h, w: w, boxes: adversarialBoxes(h: h, w: w), &random)
            for (b, box) in copies.boxes.enumerated() {
                for ch in 0..<min(c, 2) {
                    for y in box.y0..<box.y1 {
                        for x in box.x0..<box.x1 where ch == 1 || x % 2 == 0 {
                            copies.values[copies.offsets[b] + (ch * box.height + y - box.y0) * box.width + x - box.x0] = copies.base[(ch * h + y) * w + x]
                        }
                    }
                }
            }
            func dense(_ x: [Float]) -> [Float] {
                var y = (0..<o).map { r in (0..<i).reduce(bias[r]) { $0 + weight[r * i + $1] * x[$1] } }
                y.withUnsafeMutableBufferPointer { Activation.tanh.apply($0.baseAddress!, count: o) }
                return y
            }
            var pre = (0..<o).map { r in (0..<i).reduce(bias[r]) { $0 + weight[r * i + $1] * copies.base[$1] } }
            let rearranged = weight.withUnsafeBufferPointer { weightsByLocation($0.baseAddress!, outFeatures: o, channels: c, locations: h * w) }
            let n = copies.boxes.count
            var differences = [Float](repeating: .nan, count: copies.offsets.last!)
            var gathered = [Float](repeating: .nan, count: copies.offsets.last!)
            var output = [Float](repeating: .nan, count: n * o)
            copies.withBoxedValues { changes, base in
                differences.withUnsafeMutableBufferPointer { d in
                    boxDifferences(changes, base: base, c: c, h: h, w: w, d.baseAddress!, offsets: changes.offsets)
                    var groups = ChangesByLocation(changes.boxes, height: h, width: w)
                    groups.gather(BoxedValues(boxes: changes.boxes, values: d.baseAddress!, offsets: changes.offsets), channels: c, into: &gathered)
                    let expectedChannels = (0..<(h * w)).map { l in (0..<c).filter { ch in ch == 2 || (ch == 0 && l % w % 2 == 1) } }
                    for l in 0..<(h * w) where groups.starts[l + 1] > groups.starts[l] {
                        XCTAssertEqual(Array(groups.changedChannels[groups.channelStarts[l]..<groups.channelStarts[l + 1]]), expectedChannels[l], "c\(c) location \(l)")
                    }
                    for features in [0..<min(o, 64), min(o, 64)..<o] {
                        var scratch = [Float](repeating: .nan, count: (groups.widest + c) * features.count)
                        denseByChange(pre: &pre, weights: rearranged, gathered: gathered, groups, channels: c, outFeatures: o, features: features,
                                      copies: n, activation: .tanh, &output, scratch: &scratch)
                    }
                }
            }
            for b in 0..<n {
                let reference = dense(copies.rebuilt(b))
                for r in 0..<o { XCTAssertEqual(output[b * o + r], reference[r], accuracy: 1e-4, "c\(c) copy \(b) feature \(r)") }
            }
        }
    }

    /// Pasting the boxes back gives each copy in full, and the channel sums change by the box differences.
    func testPasteAndChannelSums() {
        var random = SeededRandom(seed: 25)
        let (c, h, w) = (3, 6, 7)
        let copies = Copies(c: c, h: h, w: w, boxes: adversarialBoxes(h: h, w: w), &random)
        let n = copies.boxes.count
        var pasted = [Float](repeating: .nan, count: n * c * h * w)
        var sums = [Float](repeating: 0, count: n)
        copies.withBoxedValues { changes, base in
            pasteBoxes(changes, base: base, c: c, h: h, w: w, &pasted)
            addChannelSumChanges(changes, base: base, h: h, w: w, channel: 2, &sums)
        }
        let plane = h * w
        let baseSum = copies.base[(2 * plane)..<(3 * plane)].reduce(0, +)
        for b in 0..<n {
            let full = copies.rebuilt(b)
            XCTAssertEqual(Array(pasted[(b * c * plane)..<((b + 1) * c * plane)]), full, "copy \(b)")
            XCTAssertEqual(baseSum + sums[b], full[(2 * plane)..<(3 * plane)].reduce(0, +), accuracy: 1e-4, "copy \(b)")
        }
    }

    func testChangedOutputs() {
        let conv = ConvGeometry(inChannels: 1, height: 28, width: 28, kernel: 5, padding: 2)
        XCTAssertEqual(changedOutputs(PlaneBox(y: 0, x: 10, height: 8, width: 8), conv), PlaneBox(y0: 0, y1: 10, x0: 8, x1: 20))
        let pool = ConvGeometry(inChannels: 1, height: 28, width: 28, kernel: 2, stride: 2)
        XCTAssertEqual(changedOutputs(PlaneBox(y0: 3, y1: 6, x0: 4, x1: 6), pool), PlaneBox(y0: 1, y1: 3, x0: 2, x1: 3))
        let odd = ConvGeometry(inChannels: 1, height: 5, width: 5, kernel: 2, stride: 2)  // row 4 is in no window
        XCTAssertTrue(changedOutputs(PlaneBox(y0: 4, y1: 5, x0: 0, x1: 5), odd).isEmpty)
        XCTAssertTrue(changedOutputs(.empty, conv).isEmpty)
    }
}
