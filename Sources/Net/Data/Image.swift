/// An 8-bit image in memory, pixels interleaved row by row: `(H, W, C)` with C = 1 (gray) or 3 (RGB).
///
/// Decoding and encoding live in `ImageCodec.swift`; this file holds the pixel conversions, each with a
/// fixed rule so that data sets convert the same way everywhere.
public struct Image: Equatable, Sendable {
    /// Columns.
    public var width: Int
    /// Rows.
    public var height: Int
    /// 1 (gray) or 3 (RGB).
    public var channels: Int
    /// `height * width * channels` bytes, `(H, W, C)`.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(channels == 1 || channels == 3, "an image has 1 or 3 channels, not \(channels)")
        precondition(width > 0 && height > 0, "an image is at least 1x1")
        precondition(pixels.count == width * height * channels, "pixels do not match \(height)x\(width)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image from planar bytes `(C, H, W)`, the layout of `Dataset.pixels`; `planar.count == shape.count`.
    public init(planar: ArraySlice<UInt8>, shape: ImageShape) {
        precondition(planar.count == shape.count, "\(planar.count) bytes do not match shape \(shape)")
        let (c, plane) = (shape.channels, shape.height * shape.width)
        var hwc = [UInt8](repeating: 0, count: planar.count)
        let start = planar.startIndex
        for ch in 0..<c {
            for i in 0..<plane { hwc[i * c + ch] = planar[start + ch * plane + i] }
        }
        self.init(width: shape.width, height: shape.height, channels: c, pixels: hwc)
    }

    /// The shape `(C, H, W)` this image has in a data set.
    public var shape: ImageShape { ImageShape(channels: channels, height: height, width: width) }

    /// Gray by ITU-R BT.601 luma, `round(0.299 R + 0.587 G + 0.114 B)` with halves rounded up, computed
    /// exactly in integers. A gray image is returned unchanged.
    public func grayscale() -> Image {
        guard channels == 3 else { return self }
        var gray = [UInt8](repeating: 0, count: width * height)
        for i in gray.indices {
            let (r, g, b) = (Int(pixels[3 * i]), Int(pixels[3 * i + 1]), Int(pixels[3 * i + 2]))
            gray[i] = UInt8((299 * r + 587 * g + 114 * b + 500) / 1000)
        }
        return Image(width: width, height: height, channels: 1, pixels: gray)
    }

    /// RGB with the gray value replicated into R, G and B. An RGB image is returned unchanged.
    public func rgb() -> Image {
        guard channels == 1 else { return self }
        var color = [UInt8](repeating: 0, count: width * height * 3)
        for (i, v) in pixels.enumerated() {
            color[3 * i] = v
            color[3 * i + 1] = v
            color[3 * i + 2] = v
        }
        return Image(width: width, height: height, channels: 3, pixels: color)
    }

    /// Resized by bilinear interpolation with half-pixel centres (`align_corners=False`): output pixel `o`
    /// samples input coordinate `max((o + 0.5) * in / out - 0.5, 0)`, neighbours past the edge repeat the
    /// edge, and values are rounded to the nearest integer. This is PyTorch's
    /// `F.interpolate(mode="bilinear", align_corners=False, antialias=False)`; PIL's `BILINEAR` agrees when
    /// enlarging but low-pass filters when shrinking, which this does not.
    public func resized(width newWidth: Int, height newHeight: Int) -> Image {
        precondition(newWidth > 0 && newHeight > 0, "cannot resize to \(newHeight)x\(newWidth)")
        if newWidth == width && newHeight == height { return self }
        let xs = bilinearTaps(from: width, to: newWidth), ys = bilinearTaps(from: height, to: newHeight)
        let c = channels
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * c)
        for (oy, y) in ys.enumerated() {
            let row0 = y.i0 * width, row1 = y.i1 * width
            for (ox, x) in xs.enumerated() {
                for ch in 0..<c {
                    let p00 = Float(pixels[(row0 + x.i0) * c + ch]), p01 = Float(pixels[(row0 + x.i1) * c + ch])
                    let p10 = Float(pixels[(row1 + x.i0) * c + ch]), p11 = Float(pixels[(row1 + x.i1) * c + ch])
                    let top = p00 + (p01 - p00) * x.w1, bottom = p10 + (p11 - p10) * x.w1
                    let v = top + (bottom - top) * y.w1
                    out[(oy * newWidth + ox) * c + ch] = UInt8(min(max(v.rounded(), 0), 255))
                }
            }
        }
        return Image(width: newWidth, height: newHeight, channels: c, pixels: out)
    }

    /// Converted to `shape`: channels first (`grayscale()` or `rgb()`), then size (`resized`).
    public func converted(to shape: ImageShape) -> Image {
        precondition(shape.channels == 1 || shape.channels == 3, "an image has 1 or 3 channels")
        let recoloured = shape.channels == 1 ? grayscale() : rgb()
        return recoloured.resized(width: shape.width, height: shape.height)
    }

    /// The image converted to `shape` by `resize` (see `Preprocessing.image(_:to:)`) as planar bytes
    /// `(C, H, W)`, `shape.count` of them.
    public func planarBytes(_ shape: ImageShape, resize: Preprocessing.Resize = .stretch) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: shape.count)
        out.withUnsafeMutableBufferPointer { writePlanar(shape, resize: resize, to: $0.baseAddress!) }
        return out
    }

    /// Writes the image converted to `shape` by `resize` as `(C, H, W)` bytes at `destination`.
    func writePlanar(_ shape: ImageShape, resize: Preprocessing.Resize = .stretch, to destination: UnsafeMutablePointer<UInt8>) {
        let image = self.shape == shape && resize == .stretch ? self : Preprocessing(resize: resize).image(self, to: shape)
        let (c, plane) = (shape.channels, shape.height * shape.width)
        image.pixels.withUnsafeBufferPointer { hwc in
            for ch in 0..<c {
                for i in 0..<plane { destination[ch * plane + i] = hwc[i * c + ch] }
            }
        }
    }
}

/// One output coordinate of a bilinear resize along one axis: `(1 - w1) * in[i0] + w1 * in[i1]`.
private struct BilinearTap {
    var i0: Int
    var i1: Int
    var w1: Float
}

/// The taps for resizing an axis of `n` samples to `m`, half-pixel centres, clamped at the edges.
private func bilinearTaps(from n: Int, to m: Int) -> [BilinearTap] {
    let scale = Float(n) / Float(m)
    return (0..<m).map { o in
        let source = max((Float(o) + 0.5) * scale - 0.5, 0)
        let i0 = min(Int(source), n - 1)
        return BilinearTap(i0: i0, i1: min(i0 + 1, n - 1), w1: source - Float(i0))
    }
}
