import Net

/// One layer's row of Zeiler and Fergus's correspondence table (section 4.2, Table 1).
public struct CorrespondenceRow: Equatable, Sendable, Codable {
    public var layer: String
    /// Δ for the chosen region: the mean over image pairs of the normalised Hamming distance between
    /// the signs of their feature changes, in [0, 1] (0: every image's features moved the same way).
    public var delta: Float
    /// The mean Δ over the random regions of the same size (nil without random regions).
    public var randomDelta: Float?
    /// The standard deviation of Δ over the random regions.
    public var randomStd: Float?
    /// Length of the layer's feature vector.
    public var features: Int
}

/// Δ of a set of feature changes ε_i (one per image, equal lengths): the mean over pairs i < j of
/// H(sign ε_i, sign ε_j) / length, where H counts the entries whose signs (−1, 0, +1) differ. Zeiler
/// and Fergus sum H over ordered pairs i ≠ j; dividing by the number of pairs and the length makes
/// values comparable across layers and image counts.
public func signHammingDelta(_ changes: [[Float]]) -> Float {
    precondition(changes.count >= 2, "Δ needs at least two images")
    let length = changes[0].count
    precondition(changes.allSatisfy { $0.count == length }, "feature changes of equal length")
    guard length > 0 else { return 0 }
    let signs = changes.map { $0.map { $0 > 0 ? Int8(1) : $0 < 0 ? Int8(-1) : 0 } }
    var total = 0, pairs = 0
    for i in signs.indices {
        for j in (i + 1)..<signs.count {
            var differ = 0
            for k in 0..<length where signs[i][k] != signs[j][k] { differ += 1 }
            total += differ
            pairs += 1
        }
    }
    return Float(total) / Float(pairs * length)
}

/// Zeiler and Fergus's correspondence analysis: occlude the same `region` in every image and measure,
/// per layer, how consistently the feature vectors change (Δ, see `signHammingDelta`), against
/// `randomRegions` regions of the same size placed uniformly at random (the same random region in
/// every image, as in the paper). Lower Δ: the layer ties that part of the object together across images.
///
/// `images` are `(C, H, W)` in [0, 1]; `layers` are layer indices (default: every layer except dropouts
/// and the classifier). Fill values are computed per image (so `.mean` uses each image's own means).
public func correspondence(
    model: Sequential, images: [[Float]], region: PlaneBox, fill: OcclusionFill = .constant(0.5),
    layers: [Int]? = nil, randomRegions: Int = 0, seed: UInt64 = 0
) throws(OcclusionError) -> [CorrespondenceRow] {
    let shape = model.inputShape
    guard images.count >= 2 else { throw .tooFewImages(images.count) }
    for image in images where image.count != shape.count { throw .imageShape(got: image.count, expected: shape) }
    let bounds = PlaneBox(y0: 0, y1: shape.height, x0: 0, x1: shape.width)
    guard !region.isEmpty, region.intersection(bounds) == region else { throw .regionOutsideImage(region, height: shape.height, width: shape.width) }
    let layers = layers ?? model.layers.indices.filter { !model.layers[$0].isIdentityInEvaluation && $0 < model.layers.count - 1 }

    var random = SeededRandom(seed: seed)
    var regions = [region]
    for _ in 0..<randomRegions {
        regions.append(PlaneBox(y: random.int(below: shape.height - region.height + 1), x: random.int(below: shape.width - region.width + 1),
                                height: region.height, width: region.width))
    }
    // Batch: the originals, then each region's occluded copies.
    let n = images.count
    var batch: [Float] = []
    batch.reserveCapacity((regions.count + 1) * n * shape.count)
    for image in images { batch += image }
    for r in regions {
        for image in images {
            let fillValues = image.withUnsafeBufferPointer { fill.values(for: $0.baseAddress!, shape) }
            batch += occluded(image, shape, box: r, fill: fillValues)
        }
    }
    var deltas = [[Float]](repeating: [], count: layers.count)  // per layer, per region
    let record = ForwardRecord(model)
    batch.withUnsafeBufferPointer { x in
        _ = model.forward(x.baseAddress!, batch: (regions.count + 1) * n, training: false, into: record)
    }
    for (li, layer) in layers.enumerated() {
        let count = model.layers[layer].outputCount
        let out = record.output(of: layer)
        for r in regions.indices {
            let changes = (0..<n).map { i in
                (0..<count).map { k in out[i * count + k] - out[((r + 1) * n + i) * count + k] }
            }
            deltas[li].append(signHammingDelta(changes))
        }
    }
    return layers.enumerated().map { li, layer in
        let random = deltas[li].dropFirst()
        let mean = random.isEmpty ? nil : random.reduce(0, +) / Float(random.count)
        let std = mean.map { m in (random.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Float(random.count)).squareRoot() }
        return CorrespondenceRow(layer: model.layers[layer].name, delta: deltas[li][0], randomDelta: mean, randomStd: std,
                                 features: model.layers[layer].outputCount)
    }
}

/// `image` `(C, H, W)` with `box` (clipped to the image) set to `fill[c]` in every channel c.
public func occluded(_ image: [Float], _ shape: ImageShape, box: PlaneBox, fill: [Float]) -> [Float] {
    var out = image
    let b = box.intersection(PlaneBox(y0: 0, y1: shape.height, x0: 0, x1: shape.width))
    for c in 0..<shape.channels {
        for y in b.y0..<b.y1 {
            for x in b.x0..<b.x1 { out[(c * shape.height + y) * shape.width + x] = fill[c] }
        }
    }
    return out
}
