/// Random changes to training images, applied to a float batch in place.
public enum Augmentation: String, CaseIterable, Sendable, Codable {
    /// Mirror left–right with probability 1/2.
    case flip
    /// Shift by up to 2 pixels in each direction, filling with 0.
    case shift

    /// Parses a comma-separated list such as `flip,shift`; throws `ConfigurationError.unknownAugmentation`.
    public static func list(parsing text: String) throws(ConfigurationError) -> [Augmentation] {
        try text.split(separator: ",").map { (name) throws(ConfigurationError) in
            guard let a = Augmentation(rawValue: String(name)) else { throw .unknownAugmentation(String(name)) }
            return a
        }
    }

    /// Applies `self` to each image of `batch` `(n, C, H, W)`.
    public func apply(_ batch: UnsafeMutablePointer<Float>, count n: Int, shape: ImageShape, random: inout SeededRandom) {
        let (c, h, w) = (shape.channels, shape.height, shape.width)
        var plane = [Float](repeating: 0, count: h * w)
        for b in 0..<n {
            switch self {
            case .flip:
                guard random.int(below: 2) == 1 else { continue }
                for ch in 0..<c {
                    let p = batch + (b * c + ch) * h * w
                    for y in 0..<h {
                        var (l, r) = (y * w, y * w + w - 1)
                        while l < r { (p[l], p[r]) = (p[r], p[l]); l += 1; r -= 1 }
                    }
                }
            case .shift:
                let dy = random.int(below: 5) - 2, dx = random.int(below: 5) - 2
                guard dy != 0 || dx != 0 else { continue }
                for ch in 0..<c {
                    let p = batch + (b * c + ch) * h * w
                    for y in 0..<h {
                        for x in 0..<w {
                            let (sy, sx) = (y - dy, x - dx)
                            plane[y * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? p[sy * w + sx] : 0
                        }
                    }
                    plane.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: h * w) }
                }
            }
        }
    }
}
