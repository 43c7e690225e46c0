/// A dense float32 array with a shape, row-major (C order). Images are NCHW: `(N, C, H, W)`.
public struct Tensor: Equatable, Sendable {
    /// Extent of each dimension, outermost first.
    public var shape: [Int]
    /// The values in row-major order; `data.count == shape.reduce(1, *)`.
    public var data: [Float]

    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not match \(data.count) values")
        self.shape = shape
        self.data = data
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// Number of elements.
    public var count: Int { data.count }
}

/// The per-sample shape of an image batch: `(C, H, W)`.
public struct ImageShape: Equatable, Hashable, Sendable, CustomStringConvertible, Codable {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// Values per image, `C * H * W`.
    public var count: Int { channels * height * width }
    public var description: String { "\(channels)x\(height)x\(width)" }
}

/// The product of `extents`, or `nil` if it overflows (for sizes read from untrusted files).
func checkedProduct(_ extents: [Int]) -> Int? {
    var product = 1
    for extent in extents {
        let (p, overflow) = product.multipliedReportingOverflow(by: extent)
        if overflow { return nil }
        product = p
    }
    return product
}
