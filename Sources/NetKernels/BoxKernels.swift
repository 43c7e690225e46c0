/// Kernels for copies of one sample that differ from it only inside a box of each plane (occluded
/// copies of an image): a layer's changed outputs are recomputed, or updated by the change of its
/// input, from the unchanged sample's values and the changed boxes alone. The oracles are the whole
/// layer run on each copy rebuilt in full (`conv2dNaive`, the pooling kernels, a dense loop).

/// The changed part of one layer's values for a group of copies of one sample: copy `b` differs from
/// the unchanged sample only inside `boxes[b]`, and its values there, `(C, box.h, box.w)`, start at
/// `values + offsets[b]`.
public struct BoxedValues {
    public var boxes: [PlaneBox]
    public var values: UnsafeMutablePointer<Float>
    public var offsets: [Int]

    public init(boxes: [PlaneBox], values: UnsafeMutablePointer<Float>, offsets: [Int]) {
        precondition(offsets.count >= boxes.count, "one offset per box")
        self.boxes = boxes
        self.values = values
        self.offsets = offsets
    }

    /// The block offsets of `boxes` laid out one after another with `channels` planes each:
    /// `boxes.count + 1` values, the last one the total size.
    public static func offsets(_ boxes: [PlaneBox], channels: Int) -> [Int] {
        var offsets = [Int](repeating: 0, count: boxes.count + 1)
        for (b, box) in boxes.enumerated() { offsets[b + 1] = offsets[b] + channels * box.area }
        return offsets
    }
}

/// The output positions of a convolution or pooling window of geometry `g` that overlap `box` of its
/// input: rows `⌈(y0 + p − k + 1)/s⌉ … ⌊(y1 − 1 + p)/s⌋` (p the top padding; columns likewise with
/// the left padding), clipped to the output (`.empty` if none).
public func changedOutputs(_ box: PlaneBox, _ g: ConvGeometry) -> PlaneBox {
    guard !box.isEmpty else { return .empty }
    func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
    let (pt, pl, s) = (g.padTop, g.padLeft, g.stride)
    let y0 = max(0, -floorDiv(-(box.y0 + pt - g.kernelHeight + 1), s)), y1 = min(g.outHeight, floorDiv(box.y1 - 1 + pt, s) + 1)
    let x0 = max(0, -floorDiv(-(box.x0 + pl - g.kernelWidth + 1), s)), x1 = min(g.outWidth, floorDiv(box.x1 - 1 + pl, s) + 1)
    let out = PlaneBox(y0: y0, y1: y1, x0: x0, x1: x1)
    return out.isEmpty ? .empty : out
}

extension ConvGeometry {
    /// The input region, in input coordinates and reaching into the padding, that the windows of the
    /// output positions `outputs` read.
    public func inputPatch(_ outputs: PlaneBox) -> PlaneBox {
        PlaneBox(y: outputs.y0 * stride - padTop, x: outputs.x0 * stride - padLeft,
                 height: (outputs.height - 1) * stride + kernelHeight, width: (outputs.width - 1) * stride + kernelWidth)
    }
}

/// Writes `region` of one changed copy of `base` `(C, H, W)` into `patch` `(C, region.h, region.w)`:
/// zero outside the image, `values` `(C, box.h, box.w)` inside `box`, `base` elsewhere. With
/// `channelsLast`, all three are channels last instead: `(H, W, C)`, `(box.h, box.w, C)` and
/// `(region.h, region.w, C)`.
public func fillPatch(
    _ base: UnsafePointer<Float>, c: Int, h: Int, w: Int, region: PlaneBox,
    box: PlaneBox, values: UnsafePointer<Float>, _ patch: UnsafeMutablePointer<Float>, channelsLast: Bool = false
) {
    let (fy0, fx0, fh, fw) = (region.y0, region.x0, region.height, region.width)
    let a = min(fw, max(0, -fx0)), e = max(a, min(fw, w - fx0))
    let xa = max(box.x0, fx0), xe = min(box.x1, fx0 + fw)
    // planes of positions `unit` floats wide: C planes of one float each, or one plane of C floats each
    let (planes, unit) = channelsLast ? (1, c) : (c, 1)
    for ch in 0..<planes {
        let plane = base + ch * h * w
        let changed = values + ch * box.area
        for r in 0..<fh {
            let iy = fy0 + r
            let row = patch + (ch * fh + r) * fw * unit
            if iy < 0 || iy >= h {
                row.update(repeating: 0, count: fw * unit)
                continue
            }
            row.update(repeating: 0, count: a * unit)
            (row + a * unit).update(from: plane + (iy * w + fx0 + a) * unit, count: (e - a) * unit)
            (row + e * unit).update(repeating: 0, count: (fw - e) * unit)
            if iy >= box.y0 && iy < box.y1 && xa < xe {
                (row + (xa - fx0) * unit).update(from: changed + ((iy - box.y0) * box.width + xa - box.x0) * unit, count: (xe - xa) * unit)
            }
        }
    }
}

/// Floats of scratch `convolveBoxes` needs for the output boxes `outputs`.
public func convolveBoxesScratchSize(_ g: ConvGeometry, outChannels o: Int, outputs: [PlaneBox]) -> Int {
    let n = outputs.reduce(0) { $0 + $1.area }
    let patch = outputs.map { $0.isEmpty ? 0 : g.inChannels * g.inputPatch($0).area }.max() ?? 0
    return max(1, (g.patchSize + o) * n + patch)
}

/// The outputs `to.boxes[b]` of the convolution `y = f(W ⋆ x + b)` (geometry `g`, any stride, padding
/// and groups, `weight` `(O, C/groups, kh, kw)`, `bias` `(O)`) for copies of `input` `(C, H, W)`
/// changed as `from` says, written into `to` (per copy `(O, box.h, box.w)`). The windows under every
/// copy's outputs, read from a patch of its input, go into one im2col matrix `(C·kh·kw, Σ areas)` and
/// one sgemm per group. `scratch` holds
/// `convolveBoxesScratchSize` floats.
public func convolveBoxes(
    _ input: UnsafePointer<Float>, _ g: ConvGeometry, outChannels o: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    activation: Activation, from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>
) {
    let (c, kh, kw, st) = (g.inChannels, g.kernelHeight, g.kernelWidth, g.stride)
    let k = g.patchSize
    let columnOffsets = BoxedValues.offsets(to.boxes, channels: 1)
    let n = columnOffsets[to.boxes.count]
    guard n > 0 else { return }
    let col = scratch  // (C·kh·kw, n)
    let product = col + k * n  // (O, n)
    let patch = product + o * n  // (C, fh, fw), one copy at a time
    for (b, box) in to.boxes.enumerated() where !box.isEmpty {
        let region = g.inputPatch(box)
        let (fh, fw) = (region.height, region.width)
        fillPatch(input, c: c, h: g.height, w: g.width, region: region, box: from.boxes[b], values: from.values + from.offsets[b], patch)
        let (oh, ow) = (box.height, box.width)
        for ch in 0..<c {
            for i in 0..<kh {
                for j in 0..<kw {
                    let row = col + ((ch * kh + i) * kw + j) * n + columnOffsets[b]
                    for y in 0..<oh {
                        let src = patch + (ch * fh + y * st + i) * fw + j
                        let dst = row + y * ow
                        if st == 1 {
                            dst.update(from: src, count: ow)
                        } else {
                            for x in 0..<ow { dst[x] = src[x * st] }
                        }
                    }
                }
            }
        }
    }
    // (O/groups, n) = W[group] (O/groups, K/groups) × col[group] (K/groups, n), for each group
    let (kg, og) = (g.groupPatchSize, o / g.groups)
    for group in 0..<g.groups {
        sgemm(transposeA: false, transposeB: false, m: og, n: n, k: kg, weight + group * og * kg, lda: kg, col + group * kg * n, ldb: n,
              product + group * og * n, ldc: n)
    }
    for (b, box) in to.boxes.enumerated() where !box.isEmpty {
        let area = box.area
        let block = to.values + to.offsets[b]
        for ch in 0..<o {
            let src = product + ch * n + columnOffsets[b]
            let dst = block + ch * area
            let bias = bias[ch]
            for i in 0..<area { dst[i] = src[i] + bias }
        }
        activation.apply(block, count: o * area)
    }
}

/// The Winograd tiling of a box `outputs` of the stride-1 convolution `g`'s outputs, and the input
/// region under its tiles: the tiling of a patch without padding whose outputs are the box, and that
/// patch grown to whole tiles (its last rows and columns feed only the outputs past the box).
private func boxTiling(_ g: ConvGeometry, _ outputs: PlaneBox) -> (tiling: WinogradTiling, region: PlaneBox) {
    let region = g.inputPatch(outputs)
    let tiling = WinogradTiling(ConvGeometry(inChannels: g.inChannels, height: region.height, width: region.width,
                                             kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth))
    let margin = g.kernelHeight - 1
    return (tiling, PlaneBox(y: region.y0, x: region.x0, height: tiling.tile * tiling.rows + margin, width: tiling.tile * tiling.columns + margin))
}

/// The multiply-adds per input and output channel of `convolveBoxesWinograd`'s products for the output
/// boxes `outputs`: n² per tile.
public func winogradBoxProducts(_ g: ConvGeometry, outputs: [PlaneBox]) -> Int {
    outputs.filter { !$0.isEmpty }.reduce(0) { let t = boxTiling(g, $1).tiling; return $0 + t.tiles * t.points }
}

/// Floats of scratch `convolveBoxesWinograd` needs for the output boxes `outputs`.
public func convolveBoxesWinogradScratchSize(_ g: ConvGeometry, outChannels o: Int, inputs: [PlaneBox], outputs: [PlaneBox]) -> Int {
    let boxes = outputs.filter { !$0.isEmpty }.map { ($0, boxTiling(g, $0)) }
    guard let points = boxes.first?.1.tiling.points else { return 1 }
    let tiles = boxes.reduce(0) { $0 + $1.1.tiling.tiles }
    let patch = boxes.map { g.inChannels * $0.1.region.area }.max()!
    let values = inputs.map { g.inChannels * $0.area }.max()!
    let sum = boxes.map { o * $0.0.area }.max()!
    return points * (g.inChannels + o) * tiles + patch + max(values, sum)
}

/// `convolveBoxes` through Winograd's minimal filtering (`Winograd.swift`) for a 3×3 or 5×5 stride-1
/// convolution with one group and the same padding on every side, given the unchanged input channels
/// last, `inputChannelsLast` `(H, W, C)`, and the transformed filters `u` `(n², O, C)`
/// (`winogradWeightTransform`). Each copy's patch under its outputs, channels last (its changed values
/// transposed into it), is transformed as an image of its own, eight channels to the lanes, into V
/// `(n², T, C)`, the copies' tiles one after another; M[ξ] `(T, O)` = V[ξ] × U[ξ]ᵀ in n² sgemms over
/// all copies' tiles; each copy's rows of M are transformed back into its outputs. `scratch` holds
/// `convolveBoxesWinogradScratchSize` floats.
public func convolveBoxesWinograd(
    _ inputChannelsLast: UnsafePointer<Float>, _ g: ConvGeometry, outChannels o: Int, transformedFilters u: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    activation: Activation, from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>
) {
    let c = g.inChannels
    let boxes = to.boxes.map { $0.isEmpty ? nil : boxTiling(g, $0) }
    var firstTiles = [Int](repeating: 0, count: boxes.count + 1)
    for (b, box) in boxes.enumerated() { firstTiles[b + 1] = firstTiles[b] + (box?.tiling.tiles ?? 0) }
    let tiles = firstTiles[boxes.count]
    guard tiles > 0, let points = boxes.lazy.compactMap({ $0?.tiling.points }).first else { return }
    let largestPatch = boxes.map { c * ($0?.region.area ?? 0) }.max()!
    let v = scratch  // (n², T, C)
    let m = v + points * tiles * c  // (n², T, O)
    let patch = m + points * tiles * o  // (fh, fw, C), one copy at a time
    let changed = patch + largestPatch  // (box.h, box.w, C) of the input, then (box.h, box.w, O) of the output: one copy at a time
    for (b, box) in boxes.enumerated() {
        guard let (tiling, region) = box else { continue }
        let inputBox = from.boxes[b]
        channelsLast(from.values + from.offsets[b], channels: c, positions: inputBox.area, changed)
        fillPatch(inputChannelsLast, c: c, h: g.height, w: g.width, region: region, box: inputBox, values: changed, patch, channelsLast: true)
        winogradInputTransformChannelsLast(patch, width: region.width, channels: c, tiling, v, tiles: tiles, first: firstTiles[b])
    }
    for xi in 0..<points {
        // M[ξ] (T, O) = V[ξ] (T, C) × U[ξ]ᵀ (C, O)
        sgemm(transposeA: false, transposeB: true, m: tiles, n: o, k: c, v + xi * tiles * c, lda: c, u + xi * o * c, ldb: c,
              m + xi * tiles * o, ldc: o)
    }
    for (b, box) in boxes.enumerated() {
        guard let (tiling, _) = box else { continue }
        let area = to.boxes[b].area
        winogradOutputTransformChannelsLast(m, tiles: tiles, first: firstTiles[b], outChannels: o, tiling, bias: bias, changed)
        activation.apply(changed, count: o * area)
        channelsLast(changed, channels: area, positions: o, to.values + to.offsets[b])
    }
}

/// A convolution weight `(O, C, kh, kw)` rearranged for `convolveByChange`: `(C, kh·kw·O)`.
public func weightsByInputChannel(_ weight: UnsafePointer<Float>, _ g: ConvGeometry, outChannels o: Int) -> [Float] {
    let (c, kk) = (g.inChannels, g.kernelHeight * g.kernelWidth)
    var w = [Float](repeating: 0, count: o * g.patchSize)
    for out in 0..<o {
        for ch in 0..<c {
            for ij in 0..<kk { w[(ch * kk + ij) * o + out] = weight[(out * c + ch) * kk + ij] }
        }
    }
    return w
}

/// `(P, C)` = the transpose of `x` `(C, P)`: a pre-activation `(O, outH, outW)` in the channels-last
/// layout `(outH, outW, O)` that `convolveByChange` adds to.
/// Blocks of eight channels by up to eight positions go through the lanes: a transpose one value at a
/// time, stored at a stride of C, ran 3–6 times slower on the boxes of an occlusion sweep.
public func channelsLast(_ x: UnsafePointer<Float>, channels c: Int, positions p: Int, _ y: UnsafeMutablePointer<Float>) {
    let lanes = Lanes.scalarCount
    for c0 in stride(from: 0, to: c, by: lanes) {
        let k = min(lanes, c - c0)
        for p0 in stride(from: 0, to: p, by: lanes) {
            let n = min(lanes, p - p0)
            let row = x + c0 * p + p0
            func load(_ j: Int) -> Lanes { j < k ? loadLanes(row + j * p, n) : Lanes() }
            let (r0, r1, r2, r3, r4, r5, r6, r7) = (load(0), load(1), load(2), load(3), load(4), load(5), load(6), load(7))
            for j in 0..<n { storeLanes(Lanes(r0[j], r1[j], r2[j], r3[j], r4[j], r5[j], r6[j], r7[j]), y + (p0 + j) * c + c0, k) }
        }
    }
}

/// Floats of scratch `convolveByChange` needs for the input boxes `inputs` and output boxes `outputs`.
public func convolveByChangeScratchSize(_ g: ConvGeometry, outChannels o: Int, inputs: [PlaneBox], outputs: [PlaneBox]) -> Int {
    let n = inputs.reduce(0) { $0 + $1.area }
    let widest = outputs.map(\.area).max() ?? 0
    return max(1, n * (g.inChannels + g.kernelHeight * g.kernelWidth * o) + widest * o)
}

/// The outputs `to.boxes[b]` of a stride-1 convolution `y = f(W ⋆ x + b)` for copies of an input
/// changed as `from` says, from the change of the input alone, given the unchanged input channels last,
/// `inputChannelsLast` `(H, W, C)`: Δ `(Σ input areas, C)` = changed − unchanged input inside each
/// copy's box; Z `(Σ, kh·kw·O)` = Δ × `weights` (from `weightsByInputChannel`) in one sgemm; each row
/// of Z then adds, tap by tap, an O-vector at the output its input pixel reaches (input (y, x) reaches
/// output (y + p − i, x + p − j) through tap (i, j)), on top of the unchanged sample's pre-activation
/// `pre` `(outH, outW, O)` (`W ⋆ x + b`, channels last, so that those additions are contiguous). The
/// sum is activated and written into `to` as `(O, box.h, box.w)`. Its multiply-adds scale with the
/// changed input box rather than the larger changed output box. `scratch` holds
/// `convolveByChangeScratchSize` floats.
public func convolveByChange(
    _ inputChannelsLast: UnsafePointer<Float>, _ g: ConvGeometry, outChannels o: Int, weights: UnsafePointer<Float>, pre: UnsafePointer<Float>,
    activation: Activation, from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>
) {
    precondition(g.stride == 1, "convolveByChange needs stride 1")
    precondition(g.groups == 1 && g.uniformPadding != nil, "convolveByChange needs one group and the same padding on every side")
    let (c, w, kh, kw, p) = (g.inChannels, g.width, g.kernelHeight, g.kernelWidth, g.padTop)
    let ow = g.outWidth
    let rowOffsets = BoxedValues.offsets(from.boxes, channels: 1)
    let n = rowOffsets[from.boxes.count]
    let taps = kh * kw * o
    let delta = scratch  // (n, C)
    let z = delta + n * c  // (n, kh·kw·O)
    let sum = z + n * taps  // (bh, bw, O), one copy at a time
    for (b, box) in from.boxes.enumerated() where !box.isEmpty {
        let rows = delta + rowOffsets[b] * c
        channelsLast(from.values + from.offsets[b], channels: c, positions: box.area, rows)
        for y in 0..<box.height {
            let changed = rows + y * box.width * c, unchanged = inputChannelsLast + ((box.y0 + y) * w + box.x0) * c
            for i in 0..<(box.width * c) { changed[i] -= unchanged[i] }
        }
    }
    if n > 0 {
        // (n, kh·kw·O) = Δ (n, C) × W' (C, kh·kw·O)
        sgemm(transposeA: false, transposeB: false, m: n, n: taps, k: c, delta, lda: c, weights, ldb: taps, z, ldc: taps)
    }
    for (b, out) in to.boxes.enumerated() where !out.isEmpty {
        let (bh, bw) = (out.height, out.width)
        for y in 0..<bh { (sum + y * bw * o).update(from: pre + ((out.y0 + y) * ow + out.x0) * o, count: bw * o) }
        let box = from.boxes[b]
        for y in 0..<box.height {
            for x in 0..<box.width {
                let zrow = z + (rowOffsets[b] + y * box.width + x) * taps
                for i in 0..<kh {
                    let oy = box.y0 + y + p - i - out.y0
                    guard oy >= 0 && oy < bh else { continue }
                    for j in 0..<kw {
                        let ox = box.x0 + x + p - j - out.x0
                        guard ox >= 0 && ox < bw else { continue }
                        addRow(zrow + (i * kw + j) * o, sum + (oy * bw + ox) * o, count: o)
                    }
                }
            }
        }
        activation.apply(sum, count: bh * bw * o)
        channelsLast(sum, channels: bh * bw, positions: o, to.values + to.offsets[b])
    }
}

/// Floats of scratch `poolBoxes` needs for the output boxes `outputs`: a pooled box and max pooling's
/// switches for the widest box once widened (`widenedForMaxPooling`), then the largest input patch.
/// It holds for average pooling too, which widens nothing.
public func poolBoxesScratchSize(_ g: ConvGeometry, outputs: [PlaneBox]) -> Int {
    let patch = outputs.filter { !$0.isEmpty }.map { g.inChannels * g.inputPatch(widenedForMaxPooling($0, g)).area }.max() ?? 0
    return max(1, 2 * g.inChannels * widestForMaxPooling(g, outputs) + patch)
}

/// `box` of a max pooling's output widened to the `maxPoolVectorRowMinimum` columns its vector kernel
/// takes when it is narrower and the plane has them (narrower rows have their windows gathered): columns are
/// added on the right, or on the left at the plane's edge. Otherwise `box` itself.
func widenedForMaxPooling(_ box: PlaneBox, _ g: ConvGeometry) -> PlaneBox {
    guard let width = maxPoolVectorRowMinimum(g), box.width < width, g.outWidth >= width else { return box }
    return PlaneBox(y: box.y0, x: min(box.x0, g.outWidth - width), height: box.height, width: width)
}

/// Positions of the largest non-empty box of `outputs` once widened for max pooling.
private func widestForMaxPooling(_ g: ConvGeometry, _ outputs: [PlaneBox]) -> Int {
    outputs.filter { !$0.isEmpty }.map { widenedForMaxPooling($0, g).area }.max() ?? 0
}

/// The outputs `to.boxes[b]` of a pooling layer of geometry `g` (max or average, `includePadding` as
/// `avgPoolForward`) for copies of `input` `(C, H, W)` changed as `from` says, written into `to` (per
/// copy `(C, box.h, box.w)`): for each copy, the patch `(C, fh, fw)` of its input under those outputs
/// (for max pooling, of the box `widenedForMaxPooling`, then cut out) is pooled, by the layer's own
/// kernel (`maxPoolForward`, `avgPoolForward`) when every window lies inside the plane, else by
/// `poolWindows`, which leaves the padding out as the layer does. `scratch` holds
/// `poolBoxesScratchSize` floats.
public func poolBoxes(
    _ input: UnsafePointer<Float>, _ g: ConvGeometry, maximum: Bool, includePadding: Bool,
    from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>
) {
    let widest = g.inChannels * widestForMaxPooling(g, to.boxes)
    let pooled = scratch  // (C, box.h, widened.w)
    let switches = UnsafeMutableRawPointer(scratch + widest).bindMemory(to: Int32.self, capacity: widest)
    let patch = scratch + 2 * widest
    for (b, box) in to.boxes.enumerated() where !box.isEmpty {
        let output = to.values + to.offsets[b]
        let widened = maximum ? widenedForMaxPooling(box, g) : box
        let region = g.inputPatch(widened)
        fillPatch(input, c: g.inChannels, h: g.height, w: g.width, region: region, box: from.boxes[b], values: from.values + from.offsets[b], patch)
        guard g.windowsInsidePlane else {
            poolWindows(patch, planes: g.inChannels, g, outputs: box, region: region, maximum: maximum, includePadding: includePadding, output)
            continue
        }
        let patchGeometry = ConvGeometry(inChannels: g.inChannels, height: region.height, width: region.width, kernelHeight: g.kernelHeight,
                                         kernelWidth: g.kernelWidth, stride: g.stride)
        guard maximum else {
            avgPoolForward(patch, planes: g.inChannels, patchGeometry, includePadding: includePadding, output)
            continue
        }
        maxPoolForward(patch, planes: g.inChannels, patchGeometry, widened == box ? output : pooled, switches: switches)
        guard widened != box else { continue }
        for row in 0..<(g.inChannels * box.height) {
            (output + row * box.width).update(from: pooled + row * widened.width + box.x0 - widened.x0, count: box.width)
        }
    }
}

/// Writes copy `b` of `changes` in full, `(C, H, W)` at `output + b·C·H·W`: `base` `(C, H, W)` with
/// the copy's box pasted in.
public func pasteBoxes(_ changes: BoxedValues, base: UnsafePointer<Float>, c: Int, h: Int, w: Int, _ output: UnsafeMutablePointer<Float>) {
    let count = c * h * w
    for (b, box) in changes.boxes.enumerated() {
        let dst = output + b * count
        dst.update(from: base, count: count)
        guard !box.isEmpty else { continue }
        for ch in 0..<c {
            for y in 0..<box.height {
                (dst + (ch * h + box.y0 + y) * w + box.x0).update(from: changes.values + changes.offsets[b] + (ch * box.height + y) * box.width, count: box.width)
            }
        }
    }
}

/// Changed − unchanged values inside each copy's box: `changes`' block `b` minus the same box of
/// `base` `(C, H, W)`, written as `(C, box.h, box.w)` at `output + offsets[b]`.
public func boxDifferences(
    _ changes: BoxedValues, base: UnsafePointer<Float>, c: Int, h: Int, w: Int, _ output: UnsafeMutablePointer<Float>, offsets: [Int]
) {
    for (b, box) in changes.boxes.enumerated() {
        let dst = output + offsets[b]
        for ch in 0..<c {
            for y in 0..<box.height {
                let row = base + (ch * h + box.y0 + y) * w + box.x0
                let from = changes.values + changes.offsets[b] + (ch * box.height + y) * box.width
                let to = dst + (ch * box.height + y) * box.width
                for x in 0..<box.width { to[x] = from[x] - row[x] }
            }
        }
    }
}

/// How the plane sums of channel `channel` change: for each copy `b`, the sum over its box of
/// changed − unchanged values of that channel (`base` `(C, H, W)`), added to `sums[b]`.
public func addChannelSumChanges(
    _ changes: BoxedValues, base: UnsafePointer<Float>, h: Int, w: Int, channel: Int, _ sums: UnsafeMutablePointer<Float>
) {
    for (b, box) in changes.boxes.enumerated() {
        let block = changes.values + changes.offsets[b] + channel * box.area
        var delta: Float = 0
        for y in 0..<box.height {
            let row = base + (channel * h + box.y0 + y) * w + box.x0
            for x in 0..<box.width { delta += block[y * box.width + x] - row[x] }
        }
        sums[b] += delta
    }
}

/// A dense weight `(O, C·H·W)` over an image input rearranged for `denseByChange`: `(H·W, C, O)`,
/// one `(C, O)` block per input location, so that the rows of the channels that change there can be
/// copied out whole.
public func weightsByLocation(_ weight: UnsafePointer<Float>, outFeatures o: Int, channels c: Int, locations: Int) -> [Float] {
    var w = [Float](repeating: 0, count: o * c * locations)
    for l in 0..<locations {
        for ch in 0..<c {
            for out in 0..<o { w[(l * c + ch) * o + out] = weight[out * c * locations + ch * locations + l] }
        }
    }
    return w
}

/// The rows of a dense layer's input changes regrouped by input location, for `denseByChange`.
public struct ChangesByLocation {
    /// `(H·W + 1)`: location `l`'s rows are `starts[l] ..< starts[l + 1]`, `starts[H·W]` rows in all.
    public var starts: [Int]
    /// The copy each row belongs to.
    public var members: [Int]
    /// The most rows of any location.
    public var widest: Int
    private let width: Int

    /// The rows of copies changed inside `boxes` of planes `h`×`w`: one per copy and changed location.
    public init(_ boxes: [PlaneBox], height h: Int, width w: Int) {
        width = w
        let locations = h * w
        var counts = [Int](repeating: 0, count: locations + 1)
        for box in boxes {
            for y in box.y0..<box.y1 {
                for x in box.x0..<box.x1 { counts[y * w + x + 1] += 1 }
            }
        }
        widest = counts.max() ?? 0
        for l in 0..<locations { counts[l + 1] += counts[l] }  // now the start of each location's rows
        starts = counts
        members = [Int](repeating: 0, count: counts[locations])
        forEachRow(boxes) { row, b, _, _ in members[row] = b }
    }

    /// Calls `body(row, copy, y, x)` for every changed location of every copy, in the order of `members`.
    private func forEachRow(_ boxes: [PlaneBox], _ body: (Int, Int, Int, Int) -> Void) {
        var fillLevel = Array(starts.dropLast())
        for (b, box) in boxes.enumerated() {
            for y in box.y0..<box.y1 {
                for x in box.x0..<box.x1 {
                    body(fillLevel[y * width + x], b, y, x)
                    fillLevel[y * width + x] += 1
                }
            }
        }
    }

    /// Per location `l`, the channels that change in at least one of its rows (after `gather`), ascending:
    /// `changedChannels[channelStarts[l] ..< channelStarts[l + 1]]`.
    public private(set) var changedChannels: [Int] = []
    public private(set) var channelStarts: [Int] = [0]

    /// Writes `changes` (the boxes of `init`, changed − unchanged input, per copy `(C, box.h, box.w)`)
    /// into `gathered`, location by location: location `l`'s rows start at `starts[l] · C` and hold only
    /// its changed channels, `(rows, changed)`, which this records. A channel whose change is exactly 0
    /// in every row of a location adds nothing there (with random AlexNet weights, a third of fc1's).
    public mutating func gather(_ changes: BoxedValues, channels c: Int, into gathered: UnsafeMutablePointer<Float>) {
        forEachRow(changes.boxes) { row, b, y, x in
            let box = changes.boxes[b]
            let src = changes.values + changes.offsets[b] + (y - box.y0) * box.width + (x - box.x0)
            let dst = gathered + row * c
            for ch in 0..<c { dst[ch] = src[ch * box.area] }
        }
        changedChannels = []
        channelStarts = [0]
        var changed = [Bool](repeating: false, count: c)
        for l in 0..<(starts.count - 1) {
            let block = gathered + starts[l] * c, rows = starts[l + 1] - starts[l]
            for ch in 0..<c { changed[ch] = false }
            for r in 0..<rows {
                for ch in 0..<c where block[r * c + ch] != 0 { changed[ch] = true }
            }
            let kept = (0..<c).filter { changed[$0] }
            changedChannels += kept
            channelStarts.append(changedChannels.count)
            // in place: each value moves to an index no later than its own, after every value read before it
            if kept.count < c {
                for r in 0..<rows {
                    for (j, ch) in kept.enumerated() { block[r * kept.count + j] = block[r * c + ch] }
                }
            }
        }
    }
}

/// Output features `features` of a dense layer `y = f(W·x + b)` for `copies` copies of its input
/// changed by Δ: `output[b, features]` = f(`pre` + Σ over the copy's changed locations l of W_l · Δx_l),
/// `pre` `(O)` being the unchanged sample's `W·x + b`, `weights` from `weightsByLocation` and Δ gathered
/// by location into `gathered` (`groups`). One sgemm per location over the copies that changed there and
/// the channels that changed there (their weight rows copied into `scratch` when some channels did not).
/// `output` is `(copies, O)`; `scratch` holds `(groups.widest + C) · features.count` floats.
public func denseByChange(
    pre: UnsafePointer<Float>, weights: UnsafePointer<Float>, gathered: UnsafePointer<Float>, _ groups: ChangesByLocation,
    channels c: Int, outFeatures o: Int, features: Range<Int>, copies n: Int, activation: Activation,
    _ output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
) {
    let (o0, k) = (features.lowerBound, features.count)
    let (product, rowsOfChanged) = (scratch, scratch + groups.widest * k)
    for b in 0..<n { (output + b * o + o0).update(from: pre + o0, count: k) }
    let starts = groups.starts
    for l in 0..<(starts.count - 1) where starts[l + 1] > starts[l] {
        let rows = starts[l + 1] - starts[l]
        let channels = groups.changedChannels[groups.channelStarts[l]..<groups.channelStarts[l + 1]]
        guard !channels.isEmpty else { continue }
        var block = weights + l * c * o + o0, ldb = o  // (C, k) of W_lᵀ
        if channels.count < c {
            for (j, ch) in channels.enumerated() { (rowsOfChanged + j * k).update(from: weights + (l * c + ch) * o + o0, count: k) }
            (block, ldb) = (UnsafePointer(rowsOfChanged), k)
        }
        // (n_l, k) = Δ (n_l, changed) × W_lᵀ (changed, k)
        sgemm(transposeA: false, transposeB: false, m: rows, n: k, k: channels.count, gathered + starts[l] * c, lda: channels.count,
              block, ldb: ldb, product, ldc: k)
        for r in 0..<rows { addRow(product + r * k, output + groups.members[starts[l] + r] * o + o0, count: k) }
    }
    for b in 0..<n { activation.apply(output + b * o + o0, count: k) }
}
