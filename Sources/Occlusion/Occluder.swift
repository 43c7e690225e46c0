import Foundation
import Net

/// Why an occlusion analysis cannot run. Each description is one line.
public enum OcclusionError: LocalizedError, Equatable, Sendable {
    case windowTooLarge(window: Int, height: Int, width: Int)
    case badStride(Int)
    case badWindow(Int)
    case targetOutOfRange(target: Int, classes: Int)
    case layerNotFound(String, available: [String])
    case channelOutOfRange(channel: Int, channels: Int, layer: String)
    case regionOutsideImage(PlaneBox, height: Int, width: Int)
    case imageShape(got: Int, expected: ImageShape)
    case tooFewImages(Int)

    public var errorDescription: String? {
        switch self {
        case let .windowTooLarge(w, h, wd): return "the \(w)x\(w) occluder does not fit the \(h)x\(wd) image"
        case .badStride(let s): return "the occluder's stride must be at least 1, not \(s)"
        case .badWindow(let w): return "the occluder's window must be at least 1 pixel, not \(w)"
        case let .targetOutOfRange(t, n): return "target class \(t) is out of range: the model has classes 0..<\(n)"
        case let .layerNotFound(name, available): return "no layer '\(name)' (layers: \(available.joined(separator: ", ")))"
        case let .channelOutOfRange(c, n, layer): return "channel \(c) is out of range: \(layer) has \(n) channels"
        case let .regionOutsideImage(box, h, w):
            return "region y \(box.y0), x \(box.x0), \(box.height)x\(box.width) is not inside the \(h)x\(w) image"
        case let .imageShape(got, expected): return "the image has \(got) values but the model reads \(expected) (\(expected.count) values)"
        case .tooFewImages(let n): return "correspondence needs at least 2 images, not \(n)"
        }
    }
}

/// The occluder positions of a sweep: a `window`×`window` square moved by `stride` pixels over an
/// `height`×`width` image, row by row. There are ⌊(H−w)/s⌋+1 rows and ⌊(W−w)/s⌋+1 columns of positions;
/// position (r, c) covers rows `r·s ..< r·s + w` and columns `c·s ..< c·s + w` of every channel.
///
/// Captum's `Occlusion` uses ⌈(H−w)/s⌉+1 positions and clips its last window at the border; the two
/// grids agree whenever `s` divides `H−w` (always at stride 1).
public struct OcclusionGrid: Equatable, Sendable, Codable {
    public let height: Int, width: Int, window: Int, stride: Int

    /// Throws when the window does not fit or the stride is not positive.
    public init(height: Int, width: Int, window: Int, stride: Int) throws(OcclusionError) {
        guard window >= 1 else { throw .badWindow(window) }
        guard stride >= 1 else { throw .badStride(stride) }
        guard window <= height, window <= width else { throw .windowTooLarge(window: window, height: height, width: width) }
        self.height = height
        self.width = width
        self.window = window
        self.stride = stride
    }

    public var rows: Int { (height - window) / stride + 1 }
    public var cols: Int { (width - window) / stride + 1 }
    /// Number of positions, `rows · cols`.
    public var count: Int { rows * cols }

    /// The pixels covered at position `index` (row-major over the grid).
    public func box(at index: Int) -> PlaneBox {
        PlaneBox(y: (index / cols) * stride, x: (index % cols) * stride, height: window, width: window)
    }

    public var boxes: [PlaneBox] { (0..<count).map(box(at:)) }
}

/// The value written into occluded pixels.
public enum OcclusionFill: Equatable, Sendable {
    /// The same value in every channel, e.g. 0.5 (mid-gray, Zeiler–Fergus) or 0.
    case constant(Float)
    /// Each channel's mean over the image.
    case mean

    /// One fill value per channel for `image` `(C, H, W)`.
    public func values(for image: UnsafePointer<Float>, _ shape: ImageShape) -> [Float] {
        switch self {
        case .constant(let v): return [Float](repeating: v, count: shape.channels)
        case .mean:
            let plane = shape.height * shape.width
            return (0..<shape.channels).map { c in
                var sum: Double = 0
                for i in 0..<plane { sum += Double(image[c * plane + i]) }
                return Float(sum / Double(plane))
            }
        }
    }
}

/// The number an occlusion map records for a class: its softmax probability or its logit.
public enum ClassScore: String, CaseIterable, Sendable, Codable {
    case probability = "prob"
    case logit
}
