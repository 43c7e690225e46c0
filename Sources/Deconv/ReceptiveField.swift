import Net

/// The square window of input pixels that can influence one activation of a layer, computed exactly
/// from the kernel sizes, strides and paddings below it (square: see `fields(of:)` for rectangular windows).
///
/// Going up through a layer with kernel k, stride s and padding p:
/// `size' = size + (k − 1)·jump`, `offset' = offset − p·jump`, `jump' = jump·s`; the input itself
/// has size 1, jump 1, offset 0; each layer's `window` gives k, s and p (dropout's is 1×1 and leaves the
/// field unchanged). For `lenet5` ('same' padding):
/// conv1 5, pool1 6, conv2 14, pool2 16 pixels.
public struct ReceptiveField: Equatable, Sendable, Codable {
    /// Side of the window in input pixels.
    public var size: Int
    /// Input pixels between the windows of neighbouring positions (the product of the strides below).
    public var jump: Int
    /// Input row (and column) of the window's top-left corner for position (0, 0); negative where
    /// padding puts part of the window outside the image.
    public var offset: Int

    public init(size: Int, jump: Int, offset: Int) {
        self.size = size
        self.jump = jump
        self.offset = offset
    }

    /// The field of one input pixel.
    public static let pixel = ReceptiveField(size: 1, jump: 1, offset: 0)

    /// The field one layer up, through a window of `kernel` with `stride` and `padding`.
    public func through(kernel: Int, stride: Int, padding: Int) -> ReceptiveField {
        ReceptiveField(size: size + (kernel - 1) * jump, jump: jump * stride, offset: offset - padding * jump)
    }

    /// Top-left input corner `(row, column)` of the window of position `(y, x)`; the window is
    /// `size x size` from there and may reach outside the image.
    public func origin(y: Int, x: Int) -> (row: Int, column: Int) {
        (offset + y * jump, offset + x * jump)
    }

    /// The fields of the outputs of `layers` in order, starting from the input; nil from the first
    /// layer without a window (dense, recurrent) on.
    /// Rows and columns are followed apart (kernel height and top padding, kernel width and left
    /// padding; one stride); where they differ (rectangular kernels, unequal padding) the field is the
    /// smallest square that holds both windows.
    public static func fields(of layers: [any Layer]) -> [ReceptiveField?] {
        var rows: ReceptiveField? = .pixel, columns: ReceptiveField? = .pixel
        return layers.map { layer in
            rows = layer.window.flatMap { w in rows?.through(kernel: w.kernelHeight, stride: w.stride, padding: w.padTop) }
            columns = layer.window.flatMap { w in columns?.through(kernel: w.kernelWidth, stride: w.stride, padding: w.padLeft) }
            guard let rows, let columns else { return nil }
            let offset = min(rows.offset, columns.offset)
            return ReceptiveField(size: max(rows.offset + rows.size, columns.offset + columns.size) - offset, jump: rows.jump, offset: offset)
        }
    }
}

extension Projector {
    /// The receptive field of layer `index`'s activations.
    public func receptiveField(of index: Int) -> ReceptiveField {
        ReceptiveField.fields(of: Array(model.layers[0...index]))[index]!
    }
}

/// Copies the `size x size` window at input `(row, column)` out of `planes` `(C, H, W)` into a
/// `(C, size, size)` array, with `fill` where the window leaves the image (0 is what a zero-padded
/// convolution sees there).
public func crop(_ planes: UnsafePointer<Float>, shape: ImageShape, row: Int, column: Int, size: Int, fill: Float = 0) -> [Float] {
    var out = [Float](repeating: fill, count: shape.channels * size * size)
    for c in 0..<shape.channels {
        for i in 0..<size {
            let y = row + i
            guard y >= 0, y < shape.height else { continue }
            for j in 0..<size {
                let x = column + j
                guard x >= 0, x < shape.width else { continue }
                out[(c * size + i) * size + j] = planes[(c * shape.height + y) * shape.width + x]
            }
        }
    }
    return out
}
