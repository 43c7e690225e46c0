/// The bins of adaptive pooling from `(H, W)` to `(outH, outW)`, PyTorch's rule: output row `i` reads
/// input rows `⌊i·H/outH⌋ ..< ⌈(i+1)·H/outH⌉`, and columns alike.
public struct AdaptiveBins: Equatable, Sendable {
    public var height: Int, width: Int, outHeight: Int, outWidth: Int

    public init(height: Int, width: Int, outHeight: Int, outWidth: Int) {
        (self.height, self.width, self.outHeight, self.outWidth) = (height, width, outHeight, outWidth)
    }

    /// The input rows of each output row.
    public var rows: [Range<Int>] { AdaptiveBins.bins(height, outHeight) }
    /// The input columns of each output column.
    public var columns: [Range<Int>] { AdaptiveBins.bins(width, outWidth) }

    static func bins(_ size: Int, _ out: Int) -> [Range<Int>] {
        (0..<out).map { i in (i * size / out)..<(((i + 1) * size + out - 1) / out) }
    }
}

/// Adaptive average pooling of `planes` planes `(H, W)` into `(planes, outH, outW)`: each output the
/// mean of its bin, summed in row order.
public func adaptiveAvgPoolForward(_ input: UnsafePointer<Float>, planes: Int, _ bins: AdaptiveBins, _ output: UnsafeMutablePointer<Float>) {
    let (rows, columns) = (bins.rows, bins.columns)
    for plane in 0..<planes {
        let (src, dst) = (input + plane * bins.height * bins.width, output + plane * bins.outHeight * bins.outWidth)
        for (i, r) in rows.enumerated() {
            for (j, c) in columns.enumerated() {
                var total: Float = 0
                for y in r { for x in c { total += src[y * bins.width + x] } }
                dst[i * bins.outWidth + j] = total / Float(r.count * c.count)
            }
        }
    }
}

/// The adjoint: each value of `signal` `(planes, outH, outW)` spread evenly over its bin of
/// `inputGradient` `(planes, H, W)` (overwritten; overlapping bins add).
public func adaptiveAvgPoolBackward(_ signal: UnsafePointer<Float>, planes: Int, _ bins: AdaptiveBins, _ inputGradient: UnsafeMutablePointer<Float>) {
    let (rows, columns) = (bins.rows, bins.columns)
    inputGradient.update(repeating: 0, count: planes * bins.height * bins.width)
    for plane in 0..<planes {
        let (src, dst) = (signal + plane * bins.outHeight * bins.outWidth, inputGradient + plane * bins.height * bins.width)
        for (i, r) in rows.enumerated() {
            for (j, c) in columns.enumerated() {
                let share = src[i * bins.outWidth + j] / Float(r.count * c.count)
                for y in r { for x in c { dst[y * bins.width + x] += share } }
            }
        }
    }
}
