/// A minimal protocol-buffer wire-format decoder, the reading twin of `ProtobufWriter`: one message's
/// bytes, read field by field. Every length is checked against the bytes that are left before it is
/// used, so truncated or hostile input throws `ProtobufError` instead of reading past the end.
struct ProtobufReader {
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
    }

    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    var isAtEnd: Bool { position >= bytes.endIndex }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func nextField() throws(ProtobufError) -> (number: Int, wireType: WireType)? {
        if isAtEnd { return nil }
        let key = try varint()
        guard let wireType = WireType(rawValue: UInt8(key & 7)), key >> 3 > 0, key >> 3 < 1 << 29 else {
            throw .malformed("bad field key \(key) at byte \(position - bytes.startIndex)")
        }
        return (Int(key >> 3), wireType)
    }

    mutating func varint() throws(ProtobufError) -> UInt64 {
        var result: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            guard position < bytes.endIndex else { throw .truncated }
            let byte = bytes[position]
            position += 1
            guard shift < 64 else { throw .malformed("a varint longer than ten bytes") }
            result |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte < 0x80 { return result }
        }
        throw .malformed("a varint longer than ten bytes")
    }

    /// An `int64` or `int32` field (negative values are ten-byte two's complement).
    mutating func int64() throws(ProtobufError) -> Int64 {
        Int64(bitPattern: try varint())
    }

    mutating func fixed32() throws(ProtobufError) -> UInt32 {
        let raw = try take(4)
        return raw.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func fixed64() throws(ProtobufError) -> UInt64 {
        let raw = try take(8)
        return raw.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func float() throws(ProtobufError) -> Float {
        Float(bitPattern: try fixed32())
    }

    /// A length-delimited field's bytes (a string, bytes, nested message or packed values), without copying.
    mutating func lengthDelimited() throws(ProtobufError) -> ArraySlice<UInt8> {
        let length = try varint()
        guard length <= UInt64(bytes.endIndex - position) else { throw .truncated }
        return try take(Int(length))
    }

    mutating func string() throws(ProtobufError) -> String {
        String(decoding: try lengthDelimited(), as: UTF8.self)
    }

    /// A nested message's reader.
    mutating func message() throws(ProtobufError) -> ProtobufReader {
        ProtobufReader(try lengthDelimited())
    }

    /// Values of a `repeated int64` field, packed or not: appends to `values`.
    mutating func int64s(_ wireType: WireType, into values: inout [Int64]) throws(ProtobufError) {
        if wireType == .varint { values.append(try int64()); return }
        guard wireType == .lengthDelimited else { throw .malformed("an integer list of wire type \(wireType.rawValue)") }
        var packed = try message()
        while !packed.isAtEnd { values.append(try packed.int64()) }
    }

    /// Values of a `repeated float` field, packed or not: appends to `values`.
    mutating func floats(_ wireType: WireType, into values: inout [Float]) throws(ProtobufError) {
        if wireType == .fixed32 { values.append(try float()); return }
        guard wireType == .lengthDelimited else { throw .malformed("a float list of wire type \(wireType.rawValue)") }
        var packed = try message()
        guard (packed.bytes.count) % 4 == 0 else { throw .malformed("a packed float list of \(packed.bytes.count) bytes") }
        values.reserveCapacity(values.count + packed.bytes.count / 4)
        while !packed.isAtEnd { values.append(try packed.float()) }
    }

    /// Skips a field of `wireType` that the caller does not read.
    mutating func skip(_ wireType: WireType) throws(ProtobufError) {
        switch wireType {
        case .varint: _ = try varint()
        case .fixed64: _ = try take(8)
        case .lengthDelimited: _ = try lengthDelimited()
        case .fixed32: _ = try take(4)
        case .startGroup, .endGroup: throw .malformed("groups are not used by this format")
        }
    }

    private mutating func take(_ count: Int) throws(ProtobufError) -> ArraySlice<UInt8> {
        guard count <= bytes.endIndex - position else { throw .truncated }
        defer { position += count }
        return bytes[position..<position + count]
    }
}

/// Bytes that are not a well-formed protocol-buffer message.
enum ProtobufError: Error, Equatable {
    case truncated
    case malformed(String)

    var reason: String {
        switch self {
        case .truncated: return "truncated (a field runs past the end of its message)"
        case .malformed(let why): return why
        }
    }
}
