import CZlib
import Foundation

/// The bytes of `data`, decompressed if they start with the gzip magic `1F 8B`, else as they are.
/// Corrupt or truncated gzip data throws `DataError.malformed` naming `name`.
func gunzipIfNeeded(_ data: Data, name: String) throws(DataError) -> [UInt8] {
    guard data.starts(with: [0x1F, 0x8B]) else { return [UInt8](data) }
    var stream = z_stream()
    guard deconvnet_inflate_init(&stream) == Z_OK else { throw .malformed(name, reason: "cannot start zlib") }
    defer { inflateEnd(&stream) }
    var output = [UInt8]()
    output.reserveCapacity(gzipSizeHint(data))
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var status = Z_OK
    data.withUnsafeBytes { input in
        stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress!)
        stream.avail_in = uInt(input.count)
        while status == Z_OK {
            chunk.withUnsafeMutableBufferPointer { chunk in
                stream.next_out = chunk.baseAddress
                stream.avail_out = uInt(chunk.count)
                status = inflate(&stream, Z_NO_FLUSH)
            }
            output.append(contentsOf: chunk[0..<chunk.count - Int(stream.avail_out)])
        }
    }
    switch status {
    case Z_STREAM_END: return output
    case Z_BUF_ERROR: throw .malformed(name, reason: "gzip data is truncated (the stream ends early)")
    default:
        let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
        throw .malformed(name, reason: "gzip data is corrupt: \(message)")
    }
}

/// The uncompressed size a gzip member records in its last four bytes (modulo 2^32), capped as a hint.
private func gzipSizeHint(_ data: Data) -> Int {
    guard data.count >= 4 else { return 0 }
    let size = data.suffix(4).reversed().reduce(0) { $0 << 8 | Int($1) }
    return min(size, 1 << 30)
}
