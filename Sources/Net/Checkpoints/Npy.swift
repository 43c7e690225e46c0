import Foundation

/// The bytes of a NumPy `.npy` file (format version 1.0) holding `tensor` as float32, C order.
///
/// Layout: `\x93NUMPY`, version `1 0`, a little-endian u16 header length, then the header
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded with spaces and ended by `\n`
/// so that data starts at a multiple of 64 bytes, exactly as `numpy.save` writes it; then the values.
public func npyBytes(_ tensor: Tensor) -> [UInt8] {
    let dims = tensor.shape.map(String.init)
    let shape = dims.count == 1 ? "(\(dims[0]),)" : "(\(dims.joined(separator: ", ")))"
    var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }".utf8)
    let prefixLength = 10
    let padding = 64 - (prefixLength + header.count + 1) % 64
    header += [UInt8](repeating: UInt8(ascii: " "), count: padding) + [UInt8(ascii: "\n")]
    precondition(header.count <= Int(UInt16.max), "shape \(tensor.shape) is too long for an .npy 1.0 header")

    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    bytes += [UInt8(header.count & 0xff), UInt8(header.count >> 8)]
    bytes += header
    appendLittleEndian(tensor.data, to: &bytes)
    return bytes
}

/// Writes `tensor` to `path` as a float32, C-order NumPy `.npy` file, atomically
/// (see ``writeAtomically(_:to:)``). Load it with `numpy.load(path)`.
public func writeNpy(_ tensor: Tensor, to path: String) throws(FileWriteError) {
    try writeAtomically(npyBytes(tensor), to: path)
}

/// Why an `.npy` file could not be read. Each description is one readable line.
public enum NpyError: Error, LocalizedError, Equatable, Sendable {
    case fileNotFound(String)
    case unreadable(path: String, reason: String)
    case notNpy(path: String)
    case invalidHeader(path: String, reason: String)
    case unsupported(path: String, reason: String)
    case sizeMismatch(path: String, shape: [Int], byteCount: Int)
    case overBudget(MemoryBudgetError)

    public var errorDescription: String? {
        switch self {
        case .fileNotFound(let path): return "'\(path)' does not exist"
        case .unreadable(let path, let reason): return "cannot read '\(path)': \(reason)"
        case .notNpy(let path): return "'\(path)' is not a NumPy .npy file"
        case .invalidHeader(let path, let reason): return "'\(path)' has an invalid .npy header: \(reason)"
        case .unsupported(let path, let reason): return "'\(path)': \(reason); only little-endian float32 in C order is read"
        case .sizeMismatch(let path, let shape, let count):
            return "'\(path)': shape \(shape) does not match the \(count) bytes of float32 data"
        case .overBudget(let error): return error.errorDescription
        }
    }
}

/// Reads a float32, C-order `.npy` file (format version 1.0 or 2.0), such as ``writeNpy(_:to:)`` writes.
public func readNpy(from path: String) throws(NpyError) -> Tensor {
    let bytes: [UInt8]
    do {
        bytes = [UInt8](try readFile(path))
    } catch {
        switch error {
        case .pathNotFound: throw .fileNotFound(path)
        case .overBudget(let error): throw .overBudget(error)
        case .unreadable(_, let reason): throw .unreadable(path: path, reason: reason)
        default: throw .unreadable(path: path, reason: error.localizedDescription)
        }
    }
    return try parseNpy(bytes, path: path)
}

/// Parses the bytes of a float32, C-order `.npy` file; `path` is used in errors only.
public func parseNpy(_ bytes: [UInt8], path: String = "<memory>") throws(NpyError) -> Tensor {
    guard bytes.count >= 10, bytes[0] == 0x93, bytes[1..<6].elementsEqual("NUMPY".utf8) else {
        throw .notNpy(path: path)
    }
    let headerStart: Int
    let headerLength: Int
    switch bytes[6] {
    case 1:
        headerStart = 10
        headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
    case 2 where bytes.count >= 12:
        headerStart = 12
        headerLength = (8..<12).reduce(0) { $0 | Int(bytes[$1]) << (8 * ($1 - 8)) }
    default:
        throw .unsupported(path: path, reason: "format version \(bytes[6]).\(bytes[7])")
    }
    let dataStart = headerStart + headerLength
    guard dataStart <= bytes.count else { throw .invalidHeader(path: path, reason: "longer than the file") }
    let header = String(decoding: bytes[headerStart..<dataStart], as: UTF8.self)

    guard let descr = npyField("descr", in: header) else { throw .invalidHeader(path: path, reason: "no descr") }
    guard descr == "'<f4'" else { throw .unsupported(path: path, reason: "dtype \(descr)") }
    guard let order = npyField("fortran_order", in: header) else {
        throw .invalidHeader(path: path, reason: "no fortran_order")
    }
    guard order == "False" else { throw .unsupported(path: path, reason: "fortran_order \(order)") }
    guard let shapeText = npyField("shape", in: header), shapeText.hasPrefix("("), shapeText.hasSuffix(")") else {
        throw .invalidHeader(path: path, reason: "no shape tuple")
    }
    var shape: [Int] = []
    for part in shapeText.dropFirst().dropLast().split(separator: ",") {
        let text = part.trimmingCharacters(in: .whitespaces)
        guard let extent = Int(text), extent >= 0 else {
            throw .invalidHeader(path: path, reason: "shape \(shapeText)")
        }
        shape.append(extent)
    }

    let byteCount = bytes.count - dataStart
    var count = 1
    for extent in shape {
        let (product, overflow) = count.multipliedReportingOverflow(by: extent)
        guard !overflow else { throw .sizeMismatch(path: path, shape: shape, byteCount: byteCount) }
        count = product
    }
    guard count.multipliedReportingOverflow(by: 4) == (byteCount, false) else {
        throw .sizeMismatch(path: path, shape: shape, byteCount: byteCount)
    }
    let data = bytes.withUnsafeBytes { raw in
        (0..<count).map { i in
            Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: dataStart + 4 * i, as: UInt32.self)))
        }
    }
    return Tensor(shape: shape, data: data)
}

/// The text of `'key': value` in an `.npy` header dictionary, up to the next top-level comma:
/// `'<f4'`, `False`, `(2, 3)`.
private func npyField(_ key: String, in header: String) -> String? {
    guard let keyRange = header.range(of: "'\(key)':") else { return nil }
    var depth = 0
    var end = header.endIndex
    for index in header[keyRange.upperBound...].indices {
        let c = header[index]
        if c == "(" { depth += 1 }
        if c == ")" { depth -= 1 }
        if (c == "," && depth == 0) || c == "}" {
            end = index
            break
        }
    }
    return header[keyRange.upperBound..<end].trimmingCharacters(in: .whitespaces)
}
