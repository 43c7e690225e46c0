/// A rectangle of an image plane, half-open: rows `y0..<y1`, columns `x0..<x1`, all channels.
public struct PlaneBox: Equatable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var y0: Int, y1: Int, x0: Int, x1: Int

    public init(y0: Int, y1: Int, x0: Int, x1: Int) {
        self.y0 = y0
        self.y1 = max(y0, y1)
        self.x0 = x0
        self.x1 = max(x0, x1)
    }

    /// The box with its top-left corner at (y, x) and the given size.
    public init(y: Int, x: Int, height: Int, width: Int) {
        self.init(y0: y, y1: y + height, x0: x, x1: x + width)
    }

    public static let empty = PlaneBox(y0: 0, y1: 0, x0: 0, x1: 0)

    public var height: Int { y1 - y0 }
    public var width: Int { x1 - x0 }
    public var area: Int { height * width }
    public var isEmpty: Bool { y1 <= y0 || x1 <= x0 }

    public func contains(y: Int, x: Int) -> Bool { y >= y0 && y < y1 && x >= x0 && x < x1 }

    /// The overlap of two boxes (`.empty` when they do not overlap).
    public func intersection(_ other: PlaneBox) -> PlaneBox {
        let b = PlaneBox(y0: max(y0, other.y0), y1: min(y1, other.y1), x0: max(x0, other.x0), x1: min(x1, other.x1))
        return b.isEmpty ? .empty : b
    }

    public var description: String { "rows \(y0)..<\(y1), cols \(x0)..<\(x1)" }
}
