import Foundation

/// A tensor with the name it is stored under in a checkpoint, e.g. `conv1.weight`.
public struct NamedTensor: Equatable, Sendable {
    public var name: String
    public var tensor: Tensor
    /// Whether the tensor holds whole numbers stored as I64 (PyTorch's `num_batches_tracked`); others are F32.
    public var isInteger: Bool

    public init(name: String, tensor: Tensor, isInteger: Bool = false) {
        self.name = name
        self.tensor = tensor
        self.isInteger = isInteger
    }
}

/// Named tensors plus string metadata, stored as a safetensors file.
///
/// The file is an 8-byte little-endian header length `N`, `N` bytes of JSON
/// (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}`,
/// padded with spaces to a multiple of 8), then the tensors' bytes, contiguous and little-endian, with
/// offsets relative to the start of that byte buffer. Files written here load with the `safetensors`
/// Python package and PyTorch's `load_state_dict`.
public struct Checkpoint: Equatable, Sendable {
    /// The tensors in file order; names are unique.
    public var tensors: [NamedTensor]
    /// Free-form string metadata (`__metadata__` in the header), e.g. the model spec or the epoch.
    public var metadata: [String: String]

    public init(tensors: [NamedTensor] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor stored under `name`, or `nil`.
    public func tensor(_ name: String) -> Tensor? {
        tensors.first { $0.name == name }?.tensor
    }

    /// The complete file contents: header length, JSON header, float32 data (int64 for integer tensors).
    /// Throws if two tensors share a name or a tensor is named `__metadata__`.
    public func serialized() throws(CheckpointError) -> [UInt8] {
        var seen = Set<String>()
        for entry in tensors {
            guard entry.name != metadataKey else { throw .reservedName(entry.name) }
            guard seen.insert(entry.name).inserted else { throw .duplicateName(entry.name) }
        }

        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            fields.append("\(jsonString(metadataKey)):{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for entry in tensors {
            let dtype = entry.isInteger ? DType.i64 : .f32
            let end = offset + entry.tensor.count * dtype.size
            let shape = entry.tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(entry.name)):{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array("{\(fields.joined(separator: ","))}".utf8)
        header += [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)

        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes += $0 }
        bytes += header
        for entry in tensors {
            if entry.isInteger {
                for value in entry.tensor.data { withUnsafeBytes(of: Int64(value).littleEndian) { bytes += $0 } }
            } else {
                appendLittleEndian(entry.tensor.data, to: &bytes)
            }
        }
        return bytes
    }

    /// Writes the checkpoint to `path` as float32 safetensors, atomically (see ``writeAtomically(_:to:)``):
    /// an interrupted write leaves any previous file at `path` intact.
    public func write(to path: String) throws(CheckpointError) {
        let bytes = try serialized()
        do {
            try writeAtomically(bytes, to: path)
        } catch {
            throw .writeFailed(error)
        }
    }

    /// Reads a safetensors file. F32 tensors are read as they are; F16, BF16, F64 and I64 are converted
    /// to Float (I64 ones marked `isInteger`). Tensors come back in the order of their data offsets, which
    /// is the order they were written. The whole file must fit `MemoryBudget.current`; `CheckpointFile`
    /// reads one tensor at a time instead.
    public static func read(from path: String) throws(CheckpointError) -> Checkpoint {
        do { try checkFileFitsBudget(path) } catch { throw .overBudget(error) }
        let file = try CheckpointFile(path: path)
        var tensors: [NamedTensor] = []
        for (name, _) in file.tensors { tensors.append(try file.tensor(name)) }
        return Checkpoint(tensors: tensors, metadata: file.metadata)
    }

    /// The `__metadata__` of a safetensors file, read from its header alone: the tensors (tens of
    /// megabytes for a LeNet5) are not read, for tools that only need a run's settings.
    public static func readMetadata(from path: String) throws(CheckpointError) -> [String: String] {
        try CheckpointFile(path: path).metadata
    }

    /// Parses the bytes of a safetensors file; `path` is used in error messages only.
    public static func parse(_ bytes: [UInt8], path: String = "<memory>") throws(CheckpointError) -> Checkpoint {
        guard bytes.count >= 8 else { throw .tooShort(path: path, byteCount: bytes.count) }
        let headerLength = littleEndianLength(bytes[0..<8])
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw .headerTooLarge(path: path, headerLength: headerLength, fileSize: bytes.count)
        }
        let layout = try TensorLayout(header: Data(bytes[8..<(8 + Int(headerLength))]), fileSize: bytes.count, path: path)
        let tensors = bytes.withUnsafeBytes { raw in
            layout.entries.map { entry in
                let data = [Float](unsafeUninitializedCapacity: entry.count) { buffer, initialized in
                    if let out = buffer.baseAddress {  // none for an empty tensor
                        decode(UnsafeRawBufferPointer(rebasing: raw[(layout.bufferStart + entry.begin)..<(layout.bufferStart + entry.end)]),
                               count: entry.count, as: entry.dtype, into: out)
                    }
                    initialized = entry.count
                }
                return NamedTensor(name: entry.name, tensor: Tensor(shape: entry.shape, data: data), isInteger: entry.dtype == .i64)
            }
        }
        return Checkpoint(tensors: tensors, metadata: layout.metadata)
    }

    /// Checks that the checkpoint holds exactly the tensors a model expects, with the expected shapes.
    /// Throws ``CheckpointError/incompatible(_:)`` listing every missing, unexpected or misshapen tensor.
    public func validate(expected: [(name: String, shape: [Int])]) throws(CheckpointError) {
        try Checkpoint.validate(tensors.map { ($0.name, $0.tensor.shape) }, expected: expected)
    }

    /// ``validate(expected:)`` of tensors known by name and shape alone (`CheckpointFile.tensors`).
    public static func validate(_ found: [(name: String, shape: [Int])], expected: [(name: String, shape: [Int])]) throws(CheckpointError) {
        let shapes = Dictionary(found.map { ($0.name, $0.shape) }, uniquingKeysWith: { first, _ in first })
        var problems: [CheckpointMismatch] = []
        for (name, shape) in expected {
            if let foundShape = shapes[name] {
                if foundShape != shape {
                    problems.append(.shape(name: name, found: foundShape, expected: shape))
                }
            } else {
                problems.append(.missing(name))
            }
        }
        let expectedNames = Set(expected.map(\.name))
        for (name, _) in found where !expectedNames.contains(name) {
            problems.append(.unexpected(name))
        }
        guard problems.isEmpty else { throw .incompatible(problems) }
    }
}

/// One difference between a checkpoint and the tensors a model expects.
public enum CheckpointMismatch: Equatable, Sendable, CustomStringConvertible {
    case missing(String)
    case unexpected(String)
    case shape(name: String, found: [Int], expected: [Int])

    public var description: String {
        switch self {
        case .missing(let name): return "missing tensor \(name)"
        case .unexpected(let name): return "unexpected tensor \(name)"
        case .shape(let name, let found, let expected):
            return "checkpoint tensor \(name) has shape \(found) but the model expects \(expected)"
        }
    }
}

/// Why a checkpoint could not be read, written or used. Each description is one readable line.
public enum CheckpointError: Error, LocalizedError, Equatable, Sendable {
    case fileNotFound(String)
    case unreadable(path: String, reason: String)
    case tooShort(path: String, byteCount: Int)
    case headerTooLarge(path: String, headerLength: UInt64, fileSize: Int)
    case invalidHeader(path: String, reason: String)
    case missingField(path: String, tensor: String, field: String)
    case invalidField(path: String, tensor: String, field: String, reason: String)
    case unsupportedDtype(path: String, tensor: String, dtype: String)
    case offsetsOutOfRange(path: String, tensor: String, begin: Int, end: Int, bufferSize: Int)
    case sizeMismatch(path: String, tensor: String, shape: [Int], dtype: String, byteCount: Int)
    case notContiguous(path: String, tensor: String, begin: Int, expected: Int)
    case trailingBytes(path: String, used: Int, bufferSize: Int)
    case invalidMetadata(path: String, reason: String)
    case metadataNotString(path: String, key: String)
    case duplicateName(String)
    case reservedName(String)
    case writeFailed(FileWriteError)
    case incompatible([CheckpointMismatch])
    /// A readable checkpoint whose metadata does not describe a model this tool can build.
    case badModel(path: String, reason: String)
    /// A checkpoint whose optimizer state cannot continue this run.
    case notResumable(String)
    case overBudget(MemoryBudgetError)
    /// A model parameter is NaN or infinite.
    case nonFinite(tensor: String, index: Int, value: Float)

    public var errorDescription: String? {
        switch self {
        case .fileNotFound(let path):
            return "checkpoint '\(path)' does not exist"
        case .unreadable(let path, let reason):
            return "cannot read checkpoint '\(path)': \(reason)"
        case .tooShort(let path, let count):
            return "'\(path)' is not a safetensors file: \(count) bytes is shorter than the 8-byte header length"
        case .headerTooLarge(let path, let length, let size):
            return "'\(path)' is not a safetensors file: header length \(length) is larger than the file (\(size) bytes)"
        case .invalidHeader(let path, let reason):
            return "'\(path)' has an invalid safetensors header: \(reason)"
        case .missingField(let path, let tensor, let field):
            return "'\(path)': tensor \(tensor) has no \(field)"
        case .invalidField(let path, let tensor, let field, let reason):
            return "'\(path)': \(field) of tensor \(tensor) \(reason)"
        case .unsupportedDtype(let path, let tensor, let dtype):
            return "'\(path)': tensor \(tensor) has dtype \(dtype); supported are F32, F16, BF16, F64, I64"
        case .offsetsOutOfRange(let path, let tensor, let begin, let end, let size):
            return "'\(path)': tensor \(tensor) has data_offsets [\(begin), \(end)] outside the \(size)-byte data buffer"
        case .sizeMismatch(let path, let tensor, let shape, let dtype, let count):
            return "'\(path)': tensor \(tensor) of shape \(shape) and dtype \(dtype) does not fit its \(count) bytes"
        case .notContiguous(let path, let tensor, let begin, let expected):
            return "'\(path)': tensor \(tensor) starts at byte \(begin) of the data buffer, expected \(expected) (gap or overlap)"
        case .trailingBytes(let path, let used, let size):
            return "'\(path)': tensors cover \(used) bytes but the data buffer has \(size)"
        case .invalidMetadata(let path, let reason):
            return "'\(path)': __metadata__ \(reason)"
        case .metadataNotString(let path, let key):
            return "'\(path)': metadata value for \(key) is not a string"
        case .duplicateName(let name):
            return "two tensors are named \(name)"
        case .reservedName(let name):
            return "a tensor cannot be named \(name)"
        case .writeFailed(let error):
            return error.errorDescription
        case .incompatible(let problems):
            return problems.map(\.description).joined(separator: "; ")
        case let .badModel(path, reason):
            return "\(path): \(reason)"
        case .notResumable(let reason):
            return reason
        case .overBudget(let error):
            return error.errorDescription
        case .nonFinite(let tensor, let index, let value):
            return "tensor \(tensor) holds \(value) at index \(index): the weights are broken (a diverged run?)"
        }
    }
}

private let metadataKey = "__metadata__"

/// Element types a checkpoint can be read from; F32 is written, and I64 for integer tensors.
private enum DType: String {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64"

    /// Bytes per element.
    var size: Int {
        switch self {
        case .f16, .bf16: return 2
        case .f32: return 4
        case .f64, .i64: return 8
        }
    }
}

/// Appends `values` as little-endian float32 bytes.
func appendLittleEndian(_ values: [Float], to bytes: inout [UInt8]) {
    #if _endian(little)
    values.withUnsafeBytes { bytes += $0 }
    #else
    for value in values {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }
    #endif
}

/// The first `count` little-endian values of `dtype` in `raw`, converted to Float into `out`. The caller
/// has checked that they lie inside `raw`.
private func decode(_ raw: UnsafeRawBufferPointer, count: Int, as dtype: DType, into out: UnsafeMutablePointer<Float>) {
    for i in 0..<count {
        let at = i * dtype.size
        switch dtype {
        case .f32:
            out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
        case .f16:
            out[i] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)))
        case .bf16:
            out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))) << 16)
        case .f64:
            out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))))
        case .i64:
            out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self)))
        }
    }
}

/// The 8-byte little-endian header length at the start of a safetensors file.
private func littleEndianLength(_ bytes: some Collection<UInt8>) -> UInt64 {
    bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
}

/// Where each tensor of a safetensors file lies, from its JSON header, checked against the file's size:
/// every entry has a known dtype, a shape of non-negative sizes and offsets inside the data buffer that
/// fit the shape, and the entries cover the buffer from start to end without gaps or overlaps.
/// `Checkpoint.parse` and `CheckpointFile` both read through it.
private struct TensorLayout {
    struct Entry {
        let name: String, dtype: DType, shape: [Int], begin: Int, end: Int
        var count: Int { (end - begin) / dtype.size }
    }
    /// In the order of their offsets.
    let entries: [Entry]
    let metadata: [String: String]
    /// The byte of the file where the data buffer starts.
    let bufferStart: Int

    init(header: Data, fileSize: Int, path: String) throws(CheckpointError) {
        bufferStart = 8 + header.count
        let object = try parseHeader(header, path: path)
        let bufferSize = fileSize - bufferStart
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for name in object.keys.sorted() {
            let value = object[name]!
            if name == metadataKey {
                metadata = try parseMetadata(value, path: path)
                continue
            }
            guard case .object(let info) = value else {
                throw .invalidField(path: path, tensor: name, field: "entry", reason: "is not an object")
            }
            for field in ["dtype", "shape", "data_offsets"] where info[field] == nil {
                throw .missingField(path: path, tensor: name, field: field)
            }
            guard case .string(let dtypeName) = info["dtype"]! else {
                throw .invalidField(path: path, tensor: name, field: "dtype", reason: "is not a string")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw .unsupportedDtype(path: path, tensor: name, dtype: dtypeName)
            }
            guard let shape = info["shape"]!.intArray, shape.allSatisfy({ $0 >= 0 }) else {
                throw .invalidField(path: path, tensor: name, field: "shape",
                                    reason: "is not a list of non-negative integers")
            }
            guard let offsets = info["data_offsets"]!.intArray, offsets.count == 2 else {
                throw .invalidField(path: path, tensor: name, field: "data_offsets",
                                    reason: "is not a list of two integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard 0 <= begin, begin <= end, end <= bufferSize else {
                throw .offsetsOutOfRange(path: path, tensor: name, begin: begin, end: end, bufferSize: bufferSize)
            }
            guard let count = checkedProduct(shape),
                  case (let expected, false) = count.multipliedReportingOverflow(by: dtype.size),
                  expected == end - begin else {
                throw .sizeMismatch(path: path, tensor: name, shape: shape, dtype: dtype.rawValue, byteCount: end - begin)
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var position = 0
        for entry in entries {
            guard entry.begin == position else {
                throw .notContiguous(path: path, tensor: entry.name, begin: entry.begin, expected: position)
            }
            position = entry.end
        }
        guard position == bufferSize else {
            throw .trailingBytes(path: path, used: position, bufferSize: bufferSize)
        }
        self.entries = entries
        self.metadata = metadata
    }
}

/// A safetensors file opened for reading one tensor at a time: its header is read and checked against
/// the file's size when it is opened (`TensorLayout`), and a tensor's bytes are read only when asked for,
/// a few megabytes at a time, so that a model's parameters go straight into their block without the
/// file or a copy of its tensors in memory (an imported VGG-11 is 531 MB of them).
public final class CheckpointFile {
    public let path: String
    private let layout: TensorLayout
    private let handle: FileHandle

    /// The `__metadata__` of the header.
    public var metadata: [String: String] { layout.metadata }
    /// Each tensor's name and shape, in file order.
    public var tensors: [(name: String, shape: [Int])] { layout.entries.map { ($0.name, $0.shape) } }

    /// Bytes read per step of `read(_:into:)`.
    private static let chunkBytes = 4 << 20

    /// Opens `path` and reads its header; the header must fit `MemoryBudget.current`.
    public init(path: String) throws(CheckpointError) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FileManager.default.fileExists(atPath: path) ? .unreadable(path: path, reason: "cannot be opened") : .fileNotFound(path)
        }
        self.path = path
        self.handle = handle
        let prefix = [UInt8](try CheckpointFile.io(path) { try handle.read(upToCount: 8) ?? Data() })
        guard prefix.count == 8 else { throw .tooShort(path: path, byteCount: prefix.count) }
        let headerLength = littleEndianLength(prefix)
        let fileSize = Int(try CheckpointFile.io(path) { try handle.seekToEnd() })
        guard headerLength <= UInt64(fileSize - 8) else { throw .headerTooLarge(path: path, headerLength: headerLength, fileSize: fileSize) }
        do { try MemoryBudget.current.check(Int(headerLength), for: "the header of \(path)") } catch { throw .overBudget(error) }
        let header = try CheckpointFile.io(path) { () throws -> Data in
            try handle.seek(toOffset: 8)
            return try handle.read(upToCount: Int(headerLength)) ?? Data()
        }
        guard header.count == Int(headerLength) else { throw .unreadable(path: path, reason: "it ends inside its header") }
        layout = try TensorLayout(header: header, fileSize: fileSize, path: path)
    }

    deinit { try? handle.close() }

    /// `body`'s result, or its Foundation error as `unreadable` with the system's reason ("Is a directory").
    private static func io<T>(_ path: String, _ body: () throws -> T) throws(CheckpointError) -> T {
        do { return try body() } catch { throw .unreadable(path: path, reason: fileErrorReason(error)) }
    }

    /// Decodes tensor `name` into `destination`, which holds exactly its element count, converting as
    /// `Checkpoint.read` does. Throws `unreadable` when the file ends early (it changed since it was
    /// opened). Precondition: `name` is one of `tensors`.
    public func read(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws(CheckpointError) {
        try read(entry(name), into: destination)
    }

    /// Tensor `name`, read whole. Precondition: `name` is one of `tensors`.
    public func tensor(_ name: String) throws(CheckpointError) -> NamedTensor {
        let entry = entry(name)
        var data = [Float](repeating: 0, count: entry.count)
        try data.withUnsafeMutableBufferPointer { buffer throws(CheckpointError) in try read(entry, into: buffer) }
        return NamedTensor(name: name, tensor: Tensor(shape: entry.shape, data: data), isInteger: entry.dtype == .i64)
    }

    private func entry(_ name: String) -> TensorLayout.Entry {
        guard let entry = layout.entries.first(where: { $0.name == name }) else { preconditionFailure("no tensor \(name) in \(path)") }
        return entry
    }

    /// Reads `entry`'s bytes with `pread` (no shared file position) into one scratch buffer of at most
    /// `chunkBytes`, decoding each step into `destination`.
    private func read(_ entry: TensorLayout.Entry, into destination: UnsafeMutableBufferPointer<Float>) throws(CheckpointError) {
        precondition(entry.count == destination.count, "tensor \(entry.name) has \(entry.count) values, not \(destination.count)")
        let step = max(1, CheckpointFile.chunkBytes / entry.dtype.size)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: min(step, entry.count) * entry.dtype.size, alignment: 16)
        defer { scratch.deallocate() }
        var done = 0
        while done < entry.count {
            let count = min(step, entry.count - done), byteCount = count * entry.dtype.size
            var filled = 0
            while filled < byteCount {
                let offset = off_t(layout.bufferStart + entry.begin + done * entry.dtype.size + filled)
                let got = pread(handle.fileDescriptor, scratch.baseAddress! + filled, byteCount - filled, offset)
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else {
                    throw .unreadable(path: path, reason: got == 0 ? "it ends inside tensor \(entry.name)" : String(cString: strerror(errno)))
                }
                filled += got
            }
            decode(UnsafeRawBufferPointer(scratch), count: count, as: entry.dtype, into: destination.baseAddress! + done)
            done += count
        }
    }
}

/// IEEE 754 binary16 to Float, written out so it does not depend on `Float16` being available.
private func halfToFloat(_ bits: UInt16) -> Float {
    let sign: Float = bits & 0x8000 != 0 ? -1 : 1
    let exponent = Int((bits >> 10) & 0x1f)
    let mantissa = Float(bits & 0x3ff)
    switch exponent {
    case 0: return sign * mantissa * 0x1p-24
    case 31: return mantissa == 0 ? sign * .infinity : .nan
    default: return sign * (1 + mantissa / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
    }
}

/// `string` as a JSON string literal, escaped the way serde_json (the reference writer) does.
private func jsonString(_ string: String) -> String {
    var out = "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        case _ where scalar.value < 0x20:
            out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// A parsed JSON value; just enough structure to check a header field by field.
private enum JSONValue: Decodable {
    case null, bool(Bool), int(Int), double(Double), string(String)
    case array([JSONValue]), object([String: JSONValue])

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: Key.self) {
            var object: [String: JSONValue] = [:]
            for key in keyed.allKeys { object[key.stringValue] = try keyed.decode(JSONValue.self, forKey: key) }
            self = .object(object)
        } else if var unkeyed = try? decoder.unkeyedContainer() {
            var array: [JSONValue] = []
            while !unkeyed.isAtEnd { array.append(try unkeyed.decode(JSONValue.self)) }
            self = .array(array)
        } else {
            let single = try decoder.singleValueContainer()
            if single.decodeNil() { self = .null }
            else if let value = try? single.decode(Bool.self) { self = .bool(value) }
            else if let value = try? single.decode(Int.self) { self = .int(value) }
            else if let value = try? single.decode(Double.self) { self = .double(value) }
            else { self = .string(try single.decode(String.self)) }
        }
    }

    /// The elements as integers, if this is an array of integers.
    var intArray: [Int]? {
        guard case .array(let items) = self else { return nil }
        var ints: [Int] = []
        for item in items {
            guard case .int(let value) = item else { return nil }
            ints.append(value)
        }
        return ints
    }
}

private func parseHeader(_ bytes: Data, path: String) throws(CheckpointError) -> [String: JSONValue] {
    let value: JSONValue
    do {
        value = try JSONDecoder().decode(JSONValue.self, from: bytes)
    } catch {
        throw .invalidHeader(path: path, reason: "not valid JSON")
    }
    guard case .object(let object) = value else {
        throw .invalidHeader(path: path, reason: "not a JSON object")
    }
    return object
}

private func parseMetadata(_ value: JSONValue, path: String) throws(CheckpointError) -> [String: String] {
    guard case .object(let object) = value else { throw .invalidMetadata(path: path, reason: "is not an object") }
    var metadata: [String: String] = [:]
    for (key, value) in object {
        guard case .string(let string) = value else { throw .metadataNotString(path: path, key: key) }
        metadata[key] = string
    }
    return metadata
}
