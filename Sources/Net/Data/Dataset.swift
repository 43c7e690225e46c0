/// Labelled images held as bytes, `(N, C, H, W)`, converted to floats in [0, 1] one batch at a time.
public struct Dataset: Sendable {
    /// Per-image shape.
    public var shape: ImageShape
    /// `count * shape.count` bytes, NCHW, 0...255.
    public var pixels: [UInt8]
    /// One class index per image, in `0..<classNames.count`.
    public var labels: [Int32]
    /// Class names in class-index order.
    public var classNames: [String]
    /// How bytes become the model's floats (pixels / 255, then the model's mean and std, if any).
    public var preprocessing = Preprocessing.standard

    public init(shape: ImageShape, pixels: [UInt8], labels: [Int32], classNames: [String]) {
        precondition(pixels.count == labels.count * shape.count, "pixels do not match labels and shape")
        self.shape = shape
        self.pixels = pixels
        self.labels = labels
        self.classNames = classNames
    }

    /// Number of images.
    public var count: Int { labels.count }

    /// Writes the images at `indices` as the model's floats (in [0, 1] unless `preprocessing` normalises)
    /// into `batch`, `(indices.count, C, H, W)`.
    public func fill(_ batch: UnsafeMutablePointer<Float>, indices: ArraySlice<Int>) {
        let n = shape.count
        pixels.withUnsafeBufferPointer { src in
            for (row, index) in indices.enumerated() {
                preprocessing.floats(src.baseAddress! + index * n, count: 1, shape: shape, into: batch + row * n)
            }
        }
    }

    /// The image at `index` as a `(1, C, H, W)` tensor (see `fill`).
    public func image(_ index: Int) -> Tensor {
        var t = Tensor(zeros: [1, shape.channels, shape.height, shape.width])
        t.data.withUnsafeMutableBufferPointer { fill($0.baseAddress!, indices: [index][...]) }
        return t
    }
}

/// Throws unless every label is in `0..<classCount`, naming `file` and the index of the first that is not.
func checkLabels(_ labels: [Int32], classCount: Int, file: String) throws(DataError) {
    guard let index = labels.firstIndex(where: { $0 < 0 || Int($0) >= classCount }) else { return }
    throw .malformed(file, reason: "label \(labels[index]) at index \(index) is outside the \(classCount) classes (0...\(classCount - 1))")
}
