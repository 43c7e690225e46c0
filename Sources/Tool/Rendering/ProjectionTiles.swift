import Deconv
import Net

/// Drawing rules shared by the projection figures (`project`, `top`, `evolution`): projections are
/// scaled symmetrically per tile (0 = mid-gray), input pixels on their fixed [0, 1] range, and crops
/// follow the receptive field, with 0 where it leaves the image (the zero padding the network sees).
enum ProjectionStyle {
    static let projection = Normalization.symmetric
    static let pixels = Normalization.range(0, 1)

    static let notes = [
        "projections: " + Normalization.symmetric.description + "; unit seed",
        "patches: the input under the receptive field; outside the image shown as 0 (the zero padding the network sees)",
    ]

    /// The part of `values` `(C, H, W)` of `shape` under `field` at `unit`, as a tile (the whole
    /// image when `field` is nil).
    static func tile(_ values: [Float], shape: ImageShape, field: ReceptiveField?, unit: FeatureUnit, _ normalization: Normalization, scale: Int) -> Canvas {
        guard let field else {
            return Tool.tile(values, channels: shape.channels, height: shape.height, width: shape.width, normalization, scale: scale)
        }
        let (row, column) = field.origin(y: unit.y, x: unit.x)
        let part = values.withUnsafeBufferPointer { crop($0.baseAddress!, shape: shape, row: row, column: column, size: field.size) }
        return Tool.tile(part, channels: shape.channels, height: field.size, width: field.size, normalization, scale: scale)
    }
}
