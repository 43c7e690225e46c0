import CZlib
import Foundation

/// The bytes at the start of `data`, decompressed if they start with the gzip magic `1F 8B`, else as they
/// are. `headerSize` bytes (or all there are, if fewer) are read first and handed to `size`, which returns how
/// many bytes to read in all; more are never inflated, so a small file that inflates to far more than its
/// header promises costs only what the header promises. Returns fewer than `size` bytes when the data ends
/// first. Corrupt or truncated gzip data throws `DataError.malformed` naming `name`.
func readPrefix(_ data: Data, name: String, headerSize: Int,
                size: ([UInt8]) throws(DataError) -> Int) throws(DataError) -> [UInt8] {
    guard data.starts(with: [0x1F, 0x8B]) else {
        let total = try size([UInt8](data.prefix(headerSize)))
        return [UInt8](data.prefix(total))
    }
    let inflater = try Inflater(data, name: name)
    var output = try inflater.read(headerSize)
    output += try inflater.read(try size(output) - output.count)
    return output
}

/// One gzip stream, inflated a piece at a time.
private final class Inflater {
    /// Allocated, not a stored `z_stream`: zlib keeps a pointer to it and checks it on every call.
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    private let input: UnsafeMutableBufferPointer<Bytef>
    private let name: String
    private var ended = false

    init(_ data: Data, name: String) throws(DataError) {
        self.name = name
        input = .allocate(capacity: data.count)
        _ = input.initialize(from: data)
        stream.initialize(to: z_stream())
        guard deconvnet_inflate_init(stream) == Z_OK else {
            input.deallocate()
            stream.deallocate()
            throw .malformed(name, reason: "cannot start zlib")
        }
        stream.pointee.next_in = input.baseAddress
        stream.pointee.avail_in = uInt(input.count)
    }

    deinit {
        inflateEnd(stream)
        input.deallocate()
        stream.deallocate()
    }

    /// The next `count` bytes of the inflated stream, or fewer where it ends. Memory follows the bytes the
    /// stream really holds, a megabyte at a time, not `count`.
    func read(_ count: Int) throws(DataError) -> [UInt8] {
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: min(max(count, 0), 1 << 20))
        while output.count < count && !ended {
            let room = min(count - output.count, chunk.count)
            let (status, produced) = chunk.withUnsafeMutableBufferPointer { chunk -> (Int32, Int) in
                stream.pointee.next_out = chunk.baseAddress
                stream.pointee.avail_out = uInt(room)
                let status = inflate(stream, Z_NO_FLUSH)
                return (status, room - Int(stream.pointee.avail_out))
            }
            output += chunk[..<produced]
            switch status {
            case Z_OK: break
            case Z_STREAM_END: ended = true
            case Z_BUF_ERROR: throw .malformed(name, reason: "gzip data is truncated (the stream ends early)")
            default:
                let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw .malformed(name, reason: "gzip data is corrupt: \(message)")
            }
        }
        return output
    }
}
