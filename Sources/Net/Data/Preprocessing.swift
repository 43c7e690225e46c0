import Foundation

/// How an image becomes a model's input, part of the model and recorded in its checkpoint
/// (`CheckpointKey.preprocessing`): a resize rule, then pixels / 255, then per-channel
/// `(x − mean) / std`. Checkpoints without it keep the rule deconvnet always had (`standard`).
public struct Preprocessing: Equatable, Sendable, Codable {
    /// The image's geometry.
    public enum Resize: Equatable, Sendable {
        /// Bilinear resize straight to the input's height and width (deconvnet's rule).
        case stretch
        /// torchvision's `Resize(S)` then `CenterCrop`: the shorter side to `S` pixels (the longer one to
        /// `Int(S · long / short)`), bilinear, then the centre crop of the input's size, its top-left corner
        /// at `Int((size − crop) / 2 rounded)` as torchvision places it. The interpolation is
        /// `Image.resized`'s (no antialiasing).
        case shorterSide(Int)
    }

    public var resize: Resize
    /// Per-channel mean and standard deviation of pixels in [0, 1] (ImageNet's: 0.485, 0.456, 0.406 and
    /// 0.229, 0.224, 0.225); empty for none.
    public var mean: [Float]
    public var std: [Float]

    public init(resize: Resize = .stretch, mean: [Float] = [], std: [Float] = []) {
        precondition(mean.count == std.count && std.allSatisfy { $0 > 0 }, "mean and std pair up; std is positive")
        self.resize = resize
        self.mean = mean
        self.std = std
    }

    /// Stretch to size, pixels / 255, nothing else.
    public static let standard = Preprocessing()

    /// Whether the model reads mean/std-normalised pixels.
    public var isNormalized: Bool { !mean.isEmpty }

    /// `image` resized and cropped by `resize` to `shape` (channels converted as `Image.converted(to:)`).
    public func image(_ image: Image, to shape: ImageShape) -> Image {
        guard case .shorterSide(let side) = resize else { return image.converted(to: shape) }
        let recoloured = image.converted(to: ImageShape(channels: shape.channels, height: image.height, width: image.width))
        let (w, h) = (recoloured.width, recoloured.height)
        let (newWidth, newHeight) = w <= h ? (side, max(Int(Double(side) * Double(h) / Double(w)), 1))
            : (max(Int(Double(side) * Double(w) / Double(h)), 1), side)
        var resized = recoloured.resized(width: newWidth, height: newHeight)
        if resized.width < shape.width || resized.height < shape.height {
            // torchvision pads a crop larger than the image; a stretch to the crop is what this does instead
            resized = resized.resized(width: max(resized.width, shape.width), height: max(resized.height, shape.height))
        }
        let top = Int((Double(resized.height - shape.height) / 2).rounded()), left = Int((Double(resized.width - shape.width) / 2).rounded())
        var pixels = [UInt8](repeating: 0, count: shape.count)
        let c = shape.channels
        for y in 0..<shape.height {
            let from = ((top + y) * resized.width + left) * c
            pixels.replaceSubrange(y * shape.width * c..<(y + 1) * shape.width * c, with: resized.pixels[from..<from + shape.width * c])
        }
        return Image(width: shape.width, height: shape.height, channels: c, pixels: pixels)
    }

    /// Writes `count` planar `(C, H, W)` byte images as the model's floats: `(b / 255 − mean[c]) / std[c]`.
    public func floats(_ bytes: UnsafePointer<UInt8>, count: Int, shape: ImageShape, into out: UnsafeMutablePointer<Float>) {
        let plane = shape.height * shape.width
        for image in 0..<count {
            for c in 0..<shape.channels {
                let base = (image * shape.channels + c) * plane
                if isNormalized {
                    let m = mean[c % mean.count], s = 1 / std[c % std.count]
                    for i in 0..<plane { out[base + i] = (Float(bytes[base + i]) * (1.0 / 255.0) - m) * s }
                } else {
                    for i in 0..<plane { out[base + i] = Float(bytes[base + i]) * (1.0 / 255.0) }
                }
            }
        }
    }

    /// One line for reports: what is done after decoding.
    public var summary: String {
        guard case .shorterSide(let s) = resize else { return valueSummary }
        return "shorter side to \(s), centre crop, " + valueSummary
    }

    /// How bytes become floats, in one line: `pixels / 255` and the mean and std if any.
    public var valueSummary: String {
        isNormalized ? "pixels / 255, (x - mean \(mean)) / std \(std)" : "pixels / 255"
    }

    // the metadata form: {"resize":"stretch"} or {"resize":"shorter-side","size":256}, plus mean and std
    private enum CodingKeys: String, CodingKey { case resize, size, mean, std }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .resize) {
        case "stretch": resize = .stretch
        case "shorter-side":
            let size = try c.decode(Int.self, forKey: .size)
            guard 1...ModelSpec.maximumNumber ~= size else { throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription: "size \(size)") }
            resize = .shorterSide(size)
        case let other: throw DecodingError.dataCorruptedError(forKey: .resize, in: c, debugDescription: "unknown resize '\(other)'")
        }
        mean = try c.decodeIfPresent([Float].self, forKey: .mean) ?? []
        std = try c.decodeIfPresent([Float].self, forKey: .std) ?? []
        guard mean.count == std.count, std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw DecodingError.dataCorruptedError(forKey: .std, in: c, debugDescription: "mean and std must pair up, std positive")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch resize {
        case .stretch: try c.encode("stretch", forKey: .resize)
        case .shorterSide(let s):
            try c.encode("shorter-side", forKey: .resize)
            try c.encode(s, forKey: .size)
        }
        if isNormalized {
            try c.encode(mean, forKey: .mean)
            try c.encode(std, forKey: .std)
        }
    }
}
