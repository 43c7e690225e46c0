import Net

/// What an occlusion sweep measures and how.
public struct OcclusionOptions: Sendable {
    /// Side of the square occluder, in pixels.
    public var window = 8
    /// Pixels between neighbouring occluder positions.
    public var stride = 1
    public var fill: OcclusionFill = .constant(0.5)
    /// The class whose score is mapped; nil: the true label when known, else the predicted class.
    public var target: Int?
    public var score: ClassScore = .probability
    /// The layer whose feature map is tracked (`conv2`, `pool1`, …); nil: the last convolution (or, in a
    /// model without one, the last hidden layer).
    public var featureLayer: String?
    /// The tracked feature map (a unit, for a vector output); nil: the one with the largest total activation
    /// for the unoccluded image.
    public var featureChannel: Int?

    public init() {}
}

/// Zeiler and Fergus's Figure 7 for one image, plus Captum's per-pixel occlusion attribution.
/// Position maps are `(rows, cols)` over `grid`, row-major.
public struct OcclusionMaps: Sendable {
    public var grid: OcclusionGrid
    /// Image shape `(C, H, W)`.
    public var shape: ImageShape
    /// The fill value per channel.
    public var fill: [Float]
    /// The scored class and how it was chosen: `target`, `label` or `predicted`.
    public var target: Int
    public var targetSource: String
    public var score: ClassScore
    /// Softmax probabilities of the unoccluded image, `(classes)`.
    public var probabilities: [Float]
    /// The target's score for the unoccluded image.
    public var baseScore: Float
    /// `(rows, cols)`: the target's score with the occluder at each position (Figure 7 d).
    public var classScore: [Float]
    /// The tracked feature map: its layer's index and name, and its channel.
    public var featureLayer: Int
    public var featureLayerName: String
    public var featureChannel: Int
    /// The feature map's total activation for the unoccluded image.
    public var baseFeatureActivity: Float
    /// `(rows, cols)`: the feature map's total activation with the occluder at each position (Figure 7 b).
    public var featureActivity: [Float]
    /// `(rows, cols)`: the most probable class with the occluder at each position (Figure 7 e).
    public var mostProbableClass: [Int]
    /// `(C, H, W)`: for each pixel, the mean over the occluder positions covering it of
    /// `score(unoccluded) − score(occluded)`; 0 where no position covers it (Captum's `Occlusion` convention).
    public var attribution: [Float]

    /// The position with the lowest class score, as (row, col).
    public var minimumScorePosition: (row: Int, col: Int) {
        let i = classScore.indices.min { classScore[$0] < classScore[$1] }!
        return (i / grid.cols, i % grid.cols)
    }
}

extension OcclusionSweep {
    /// The layer index a `featureLayer` name refers to, or the default: the last convolution (after its
    /// activation: its batch norm, when one took it), else the last layer before the classifier.
    public func featureLayerIndex(_ name: String?) throws(OcclusionError) -> Int {
        if let name {
            guard let found = model.layer(named: name) else { throw .layerNotFound(name, available: model.layers.map(\.name)) }
            return found.index
        }
        if let last = model.layers.lastIndex(where: { $0.isConvolution }) { return model.activatedOutput(of: last) }
        return max(0, model.layers.count - 2)
    }

    /// Number of feature maps (units, for a vector output) of layer `index`.
    public func featureChannels(_ index: Int) -> Int { model.layers[index].outputShape[0] }

    /// Sweeps an occluder over `image` `(C, H, W)` in [0, 1] and returns the four maps.
    /// `label` is the image's true class when known. Throws for a window that does not fit, a zero
    /// stride, a target, layer or channel out of range, or an image of the wrong size.
    public func run(_ image: [Float], label: Int? = nil, options: OcclusionOptions = OcclusionOptions()) throws(OcclusionError) -> OcclusionMaps {
        let shape = model.inputShape
        guard image.count == shape.count else { throw .imageShape(got: image.count, expected: shape) }
        let grid = try OcclusionGrid(height: shape.height, width: shape.width, window: options.window, stride: options.stride)
        let classes = model.classes
        if let t = options.target, t < 0 || t >= classes { throw .targetOutOfRange(target: t, classes: classes) }
        if let l = label, l < 0 || l >= classes { throw .targetOutOfRange(target: l, classes: classes) }
        let layerIndex = try featureLayerIndex(options.featureLayer)
        let channels = featureChannels(layerIndex)
        if let c = options.featureChannel, c < 0 || c >= channels {
            throw .channelOutOfRange(channel: c, channels: channels, layer: model.layers[layerIndex].name)
        }

        var pass: UnoccludedPass?
        time(0) { pass = basePass(image) }
        let unoccluded = pass!
        let base = unoccluded.outputs
        let logits = base[model.layers.count - 1]
        let probabilities = softmax(logits)
        let predicted = argmax(probabilities[...])
        let (target, source): (Int, String) = options.target.map { ($0, "target") } ?? label.map { ($0, "label") } ?? (predicted, "predicted")
        let channel = options.featureChannel ?? (0..<channels).max {
            channelSum(base[layerIndex], layer: layerIndex, channel: $0) < channelSum(base[layerIndex], layer: layerIndex, channel: $1)
        }!
        let fill = image.withUnsafeBufferPointer { options.fill.values(for: $0.baseAddress!, shape) }

        let boxes = grid.boxes
        let result = evaluate(image, boxes: boxes, fill: fill, feature: Feature(layer: layerIndex, channel: channel), unoccluded: unoccluded)
        var classScore = [Float](repeating: 0, count: boxes.count)
        var mostProbable = [Int](repeating: 0, count: boxes.count)
        for b in boxes.indices {
            let row = result.logits[(b * classes)..<((b + 1) * classes)]
            mostProbable[b] = argmax(row)
            classScore[b] = options.score == .logit ? row[row.startIndex + target] : softmax(Array(row))[target]
        }
        let baseScore = options.score == .logit ? logits[target] : probabilities[target]
        let attribution = occlusionAttribution(grid: grid, channels: shape.channels, baseScore: baseScore, scores: classScore)
        return OcclusionMaps(
            grid: grid, shape: shape, fill: fill, target: target, targetSource: source, score: options.score,
            probabilities: probabilities, baseScore: baseScore, classScore: classScore,
            featureLayer: layerIndex, featureLayerName: model.layers[layerIndex].name, featureChannel: channel,
            baseFeatureActivity: channelSum(base[layerIndex], layer: layerIndex, channel: channel),
            featureActivity: result.featureActivity, mostProbableClass: mostProbable, attribution: attribution)
    }
}

/// Captum's `Occlusion` attribution from per-position scores: for each pixel, the mean of
/// `baseScore − scores[position]` over the positions whose box covers it, 0 where none does; the same
/// value in every channel. Returns `(channels, H, W)`.
public func occlusionAttribution(grid: OcclusionGrid, channels: Int, baseScore: Float, scores: [Float]) -> [Float] {
    precondition(scores.count == grid.count, "one score per position")
    let (h, w) = (grid.height, grid.width)
    var sum = [Float](repeating: 0, count: h * w)
    var covered = [Int](repeating: 0, count: h * w)
    for (i, score) in scores.enumerated() {
        let box = grid.box(at: i)
        let d = baseScore - score
        for y in box.y0..<box.y1 {
            for x in box.x0..<box.x1 {
                sum[y * w + x] += d
                covered[y * w + x] += 1
            }
        }
    }
    let plane = (0..<(h * w)).map { covered[$0] > 0 ? sum[$0] / Float(covered[$0]) : 0 }
    return Array((0..<channels).map { _ in plane }.joined())
}
