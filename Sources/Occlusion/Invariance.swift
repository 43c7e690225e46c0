import Foundation
import Net

/// Image transformations for Zeiler and Fergus's invariance study (Figure 5). Each maps a `(C, H, W)`
/// image to one of the same shape; pixels that come from outside the image are 0.
public enum ImageTransform: String, CaseIterable, Sendable, Codable {
    /// Shift by `amount` pixels: right for `translate`, down for `translate-y`; vacated pixels are 0.
    case translate
    case translateY = "translate-y"
    /// Zoom by the factor `amount` about the image centre ((H−1)/2, (W−1)/2), bilinear: output pixel p
    /// samples the input at c + (p − c)/amount. Above 1 enlarges (and crops), below 1 shrinks (zero border).
    case scale
    /// Rotate by `amount` degrees counter-clockwise (as displayed, rows going down) about the centre,
    /// bilinear: output pixel p samples the input at c + R(−amount)(p − c).
    case rotate

    /// The amounts swept by default: ±8 pixels in steps of 1, factors 0.5…1.5 in steps of 0.05,
    /// −180…180 degrees in steps of 10.
    public var defaultRange: (from: Float, to: Float, step: Float) {
        switch self {
        case .translate, .translateY: return (-8, 8, 1)
        case .scale: return (0.5, 1.5, 0.05)
        case .rotate: return (-180, 180, 10)
        }
    }

    /// The amount that leaves the image unchanged.
    public var identity: Float { self == .scale ? 1 : 0 }

    /// `image` `(C, H, W)` transformed by `amount`.
    public func apply(_ image: [Float], _ shape: ImageShape, amount: Float) -> [Float] {
        let (h, w) = (shape.height, shape.width)
        precondition(image.count == shape.count, "the image must be \(shape)")
        switch self {
        case .translate, .translateY:
            let d = Int(amount.rounded())
            let (dy, dx) = self == .translate ? (0, d) : (d, 0)
            var out = [Float](repeating: 0, count: image.count)
            for c in 0..<shape.channels {
                for y in 0..<h where y - dy >= 0 && y - dy < h {
                    for x in 0..<w where x - dx >= 0 && x - dx < w {
                        out[(c * h + y) * w + x] = image[(c * h + y - dy) * w + x - dx]
                    }
                }
            }
            return out
        case .scale:
            precondition(amount > 0, "a scale factor must be positive")
            return resample(image, shape) { y, x in (y / amount, x / amount) }
        case .rotate:
            let a = Double(amount) * .pi / 180
            let (cosA, sinA) = (Float(cos(a)), Float(sin(a)))
            // Counter-clockwise on screen with rows going down: the source of offset (u, v) = (x, y) is
            // (cos·u − sin·v, sin·u + cos·v).
            return resample(image, shape) { v, u in (sinA * u + cosA * v, cosA * u - sinA * v) }
        }
    }

    /// Bilinear resampling: output pixel at offset (v, u) from the centre reads the input at the
    /// offset `source(v, u)`, with 0 outside the image.
    private func resample(_ image: [Float], _ shape: ImageShape, source: (Float, Float) -> (Float, Float)) -> [Float] {
        let (h, w) = (shape.height, shape.width)
        let (cy, cx) = (Float(h - 1) / 2, Float(w - 1) / 2)
        var out = [Float](repeating: 0, count: image.count)
        for y in 0..<h {
            for x in 0..<w {
                let (sv, su) = source(Float(y) - cy, Float(x) - cx)
                let (sy, sx) = (sv + cy, su + cx)
                let (y0, x0) = (Int(sy.rounded(.down)), Int(sx.rounded(.down)))
                let (fy, fx) = (sy - Float(y0), sx - Float(x0))
                for c in 0..<shape.channels {
                    func at(_ yy: Int, _ xx: Int) -> Float {
                        yy >= 0 && yy < h && xx >= 0 && xx < w ? image[(c * h + yy) * w + xx] : 0
                    }
                    let top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
                    let bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
                    out[(c * h + y) * w + x] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }
}

/// One point of an invariance curve.
public struct InvariancePoint: Equatable, Sendable, Codable {
    public var amount: Float
    /// Euclidean distance between the feature vectors of the original and the transformed image at the
    /// first and at the last layer studied.
    public var firstDistance: Float
    public var lastDistance: Float
    /// Probability of the class of interest for the transformed image.
    public var probability: Float
    /// The most probable class of the transformed image.
    public var predicted: Int
}

/// Zeiler and Fergus's Figure 5 for one image: the distances between the original's and the transformed
/// image's feature vectors at `firstLayer` and `lastLayer`, and the probability of class `target`, for
/// each amount. All transformed copies go through the network in one batch.
public func invarianceCurve(
    model: Sequential, image: [Float], transform: ImageTransform, amounts: [Float], firstLayer: Int, lastLayer: Int, target: Int
) throws(OcclusionError) -> [InvariancePoint] {
    let shape = model.inputShape
    guard image.count == shape.count else { throw .imageShape(got: image.count, expected: shape) }
    guard target >= 0 && target < model.classes else { throw .targetOutOfRange(target: target, classes: model.classes) }
    var batch = image
    for a in amounts { batch += transform.apply(image, shape, amount: a) }
    let n = amounts.count + 1
    let record = ForwardRecord(model)
    batch.withUnsafeBufferPointer { _ = model.forward($0.baseAddress!, batch: n, training: false, into: record) }
    func distance(_ layer: Int, _ i: Int) -> Float {
        let count = model.layers[layer].outputCount
        let out = record.output(of: layer)
        var sum: Float = 0
        for k in 0..<count {
            let d = out[k] - out[i * count + k]
            sum += d * d
        }
        return sum.squareRoot()
    }
    let classes = model.classes
    var probabilities = [Float](repeating: 0, count: n * classes)
    probabilities.withUnsafeMutableBufferPointer { softmax(record.output(of: model.layers.count - 1), batch: n, classes: classes, $0.baseAddress!) }
    return amounts.enumerated().map { k, a in
        let row = probabilities[((k + 1) * classes)..<((k + 2) * classes)]
        return InvariancePoint(amount: a, firstDistance: distance(firstLayer, k + 1), lastDistance: distance(lastLayer, k + 1),
                               probability: row[row.startIndex + target], predicted: argmax(row))
    }
}

/// The layers of Figure 5 for `model`: the first convolution (or the first layer) and the last hidden
/// layer (the last layer before the classifier that is not a dropout).
public func invarianceLayers(_ model: Sequential) -> (first: Int, last: Int) {
    let first = model.layers.firstIndex { $0.isConvolution } ?? 0
    let hidden = model.layers.indices.dropLast().last { !model.layers[$0].isIdentityInEvaluation } ?? first
    return (first, hidden)
}
