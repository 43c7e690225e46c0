import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an event file could not be created, read or written.
public enum EventWriterError: LocalizedError {
    case cannotCreateDirectory(path: String, reason: String)
    case cannotOpen(path: String, reason: String)
    case cannotRead(path: String, reason: String)
    case writeFailed(path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .cannotCreateDirectory(path, reason): "cannot create event directory \(path): \(reason)"
        case let .cannotOpen(path, reason): "cannot open event file \(path): \(reason)"
        case let .cannotRead(path, reason): "cannot read event file \(path): \(reason)"
        case let .writeFailed(path, reason): "cannot write event file \(path): \(reason)"
        }
    }
}

/// Writes TensorBoard event files: scalars, histograms and PNG images, one `Event` record per call.
///
/// The file is `<directory>/events.out.tfevents.<unix seconds>.<hostname><fileSuffix>`, a sequence of
/// TFRecords holding `tensorflow.Event` protos, the first of which says `file_version: "brain.Event:2"`.
/// Records are buffered in memory, so the `add…` calls are cheap enough for every training step; the
/// buffer is written out once it holds 1 MiB or 10 s have passed since the last write, on `flush()`,
/// on `close()`, and when the writer is deinitialised. Use a writer from one thread at a time.
public final class EventWriter {
    /// Path of the event file being written.
    public let path: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    private var lastWrite: Double

    private static let flushBytes = 1 << 20
    private static let flushSeconds = 10.0
    private static let filePrefix = "events.out.tfevents."

    /// Creates `directory` if needed and starts a new event file in it.
    ///
    /// Throws `EventWriterError.cannotOpen` if a file of the same name exists (two writers started in
    /// the same second with the same `fileSuffix`); it is never overwritten.
    public convenience init(directory: String, fileSuffix: String = "") throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw EventWriterError.cannotCreateDirectory(path: directory, reason: fileErrorReason(error))
        }
        let now = Date().timeIntervalSince1970
        let name = "\(Self.filePrefix)\(Int(now)).\(hostName())\(fileSuffix)"
        let path = (directory as NSString).appendingPathComponent(name)
        try self.init(path: path, flags: O_CREAT | O_EXCL)
        buffer += TFRecord.frame(EventProto.fileVersion(wallTime: now))
        try flush()
    }

    /// Reopens the newest event file in `directory` to continue it, as a resumed training run should;
    /// starts a new file as `init(directory:fileSuffix:)` does when there is none.
    ///
    /// "Newest" is the most recently modified file whose name starts with `events.out.tfevents.` and
    /// ends with `fileSuffix`. A torn record at the end, left by a run that died mid-write, is cut off
    /// so that the records appended after it stay readable.
    public convenience init(appendingTo directory: String, fileSuffix: String = "") throws {
        guard let path = Self.newestEventFile(in: directory, fileSuffix: fileSuffix) else {
            try self.init(directory: directory, fileSuffix: fileSuffix)
            return
        }
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw EventWriterError.cannotRead(path: path, reason: "unreadable")
        }
        let validLength = TFRecord.validPrefixLength([UInt8](contents))
        try self.init(path: path, flags: 0)
        if validLength < contents.count, ftruncate(descriptor, off_t(validLength)) != 0 {
            throw EventWriterError.writeFailed(path: path, reason: errnoDescription())
        }
        if validLength == 0 {
            buffer += TFRecord.frame(EventProto.fileVersion(wallTime: Date().timeIntervalSince1970))
            try flush()
        }
    }

    /// Opens `path` for appending with extra `open(2)` flags.
    private init(path: String, flags: Int32) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | flags, 0o644)
        guard fd >= 0 else { throw EventWriterError.cannotOpen(path: path, reason: errnoDescription()) }
        self.path = path
        self.descriptor = fd
        self.lastWrite = Date().timeIntervalSince1970
    }

    deinit {
        if descriptor >= 0 {
            try? flush()
            closeDescriptor(descriptor)
        }
    }

    /// Records `value` under `tag` at `step`; `wallTime` is in seconds since 1970 and defaults to now.
    public func addScalar(_ tag: String, _ value: Float, step: Int, wallTime: Double? = nil) throws {
        try add(tag, .scalar(value), step: step, wallTime: wallTime)
    }

    /// Records the distribution of `values` under `tag` at `step`.
    ///
    /// The histogram has 30 equal-width buckets from the smallest to the largest value, like
    /// `tf.summary.histogram`'s default (not TensorFlow 1's exponential buckets); each `bucket_limit` is
    /// a bucket's right edge, the last one is the maximum, and a value on an edge counts in the bucket
    /// to its left, as `HistogramProto` documents. If all values are equal there is one bucket.
    /// NaNs and infinities are left out of every statistic.
    public func addHistogram(_ tag: String, values: UnsafeBufferPointer<Float>, step: Int,
                             wallTime: Double? = nil) throws {
        try add(tag, .histogram(Histogram(values)), step: step, wallTime: wallTime)
    }

    /// Records the distribution of `values` under `tag` at `step`; see the buffer-pointer overload.
    public func addHistogram(_ tag: String, values: [Float], step: Int, wallTime: Double? = nil) throws {
        try values.withUnsafeBufferPointer { try addHistogram(tag, values: $0, step: step, wallTime: wallTime) }
    }

    /// Records an already PNG-encoded image under `tag` at `step`.
    ///
    /// `width` and `height` are in pixels; `channels` is 1 (grey), 2 (grey and alpha), 3 (RGB) or
    /// 4 (RGBA) and must describe `png`, which is stored as it is.
    public func addImage(_ tag: String, png: [UInt8], width: Int, height: Int, channels: Int, step: Int,
                         wallTime: Double? = nil) throws {
        precondition(width > 0 && height > 0, "image must not be empty")
        precondition((1...4).contains(channels), "channels must be 1, 2, 3 or 4")
        try add(tag, .image(png: png, width: width, height: height, channels: channels),
                step: step, wallTime: wallTime)
    }

    /// Writes the buffered events to the file. On failure the buffered events are dropped.
    public func flush() throws {
        precondition(descriptor >= 0, "EventWriter used after close()")
        lastWrite = Date().timeIntervalSince1970
        guard !buffer.isEmpty else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        try buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw EventWriterError.writeFailed(path: path, reason: errnoDescription())
                }
                offset += written
            }
        }
    }

    /// Flushes and closes the file. Calling it again does nothing; adding events afterwards is an error.
    public func close() throws {
        guard descriptor >= 0 else { return }
        defer {
            closeDescriptor(descriptor)
            descriptor = -1
        }
        try flush()
    }

    private func add(_ tag: String, _ value: SummaryValue, step: Int, wallTime: Double?) throws {
        precondition(descriptor >= 0, "EventWriter used after close()")
        let now = Date().timeIntervalSince1970
        buffer += TFRecord.frame(EventProto.summary(wallTime: wallTime ?? now, step: step, tag: tag, value: value))
        if buffer.count >= Self.flushBytes || now - lastWrite >= Self.flushSeconds { try flush() }
    }

    private static func newestEventFile(in directory: String, fileSuffix: String) -> String? {
        let fileManager = FileManager.default
        let names = (try? fileManager.contentsOfDirectory(atPath: directory)) ?? []
        let candidates = names.filter { $0.hasPrefix(filePrefix) && $0.hasSuffix(fileSuffix) }.map { name in
            let path = (directory as NSString).appendingPathComponent(name)
            let modified = (try? fileManager.attributesOfItem(atPath: path))?[.modificationDate] as? Date
            return (path: path, modified: modified ?? .distantPast)
        }
        return candidates.max { ($0.modified, $0.path) < ($1.modified, $1.path) }?.path
    }
}

/// TFRecord framing: `uint64 length`, `uint32 masked CRC-32C of the length`, the data,
/// `uint32 masked CRC-32C of the data`, all little-endian.
enum TFRecord {
    /// `data` framed as one record.
    static func frame(_ data: [UInt8]) -> [UInt8] {
        var record: [UInt8] = []
        record.reserveCapacity(data.count + 16)
        appendLittleEndian(UInt64(data.count), to: &record)
        appendLittleEndian(CRC32C.maskedChecksum(record), to: &record)
        record += data
        appendLittleEndian(CRC32C.maskedChecksum(data), to: &record)
        return record
    }

    /// The length of the longest prefix of `bytes` made of whole records with valid checksums.
    static func validPrefixLength(_ bytes: [UInt8]) -> Int {
        var offset = 0
        while bytes.count - offset >= 16 {
            let header = bytes[offset..<offset + 8]
            let length = header.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard readUInt32(bytes, at: offset + 8) == CRC32C.maskedChecksum(header),
                  length <= UInt64(bytes.count - offset - 16) else { break }
            let dataStart = offset + 12, dataEnd = dataStart + Int(length)
            guard readUInt32(bytes, at: dataEnd) == CRC32C.maskedChecksum(bytes[dataStart..<dataEnd]) else { break }
            offset = dataEnd + 4
        }
        return offset
    }

    private static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    private static func appendLittleEndian(_ value: some FixedWidthInteger, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// What one `Summary.Value` holds besides its tag.
enum SummaryValue {
    case scalar(Float)
    case histogram(Histogram)
    case image(png: [UInt8], width: Int, height: Int, channels: Int)
}

/// Encodes `tensorflow.Event` (`event.proto`) and the parts of `summary.proto` that the writer uses.
enum EventProto {
    /// `Event { wall_time = 1; file_version = 3 }`, the first record of every event file.
    static func fileVersion(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.string(3, "brain.Event:2")
        return event.data
    }

    /// `Event { wall_time = 1; step = 2; summary = 5 }` with one
    /// `Summary.Value { tag = 1; simple_value = 2 | image = 4 | histo = 5 }`.
    static func summary(wallTime: Double, step: Int, tag: String, value: SummaryValue) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.int64(2, Int64(step))
        event.message(5) { summary in
            summary.message(1) { entry in
                entry.string(1, tag)
                switch value {
                case let .scalar(x):
                    entry.float(2, x)
                case let .image(png, width, height, channels):
                    entry.message(4) { image in
                        image.int64(1, Int64(height))
                        image.int64(2, Int64(width))
                        image.int64(3, Int64(channels))
                        image.bytes(4, png)
                    }
                case let .histogram(histogram):
                    entry.message(5) { histogram.encode(into: &$0) }
                }
            }
        }
        return event.data
    }
}

/// A `HistogramProto`: `bucketCount` equal-width buckets from the smallest to the largest finite value.
struct Histogram: Equatable {
    var min = 0.0, max = 0.0, num = 0.0, sum = 0.0, sumSquares = 0.0
    /// Right edge of each bucket; the last is `max`.
    var bucketLimits: [Double] = [0]
    /// Number of values in each bucket: `(bucketLimits[i - 1], bucketLimits[i]]`, the first from `min`.
    var bucketCounts: [Double] = [0]

    /// Summarises the finite `values`; with none, everything is zero and there is one empty bucket.
    init(_ values: UnsafeBufferPointer<Float>, bucketCount: Int = 30) {
        precondition(bucketCount > 0, "a histogram needs at least one bucket")
        var lo = Double.infinity, hi = -Double.infinity
        for v in values where v.isFinite {
            let x = Double(v)
            lo = Swift.min(lo, x)
            hi = Swift.max(hi, x)
            num += 1
            sum += x
            sumSquares += x * x
        }
        guard num > 0 else { return }
        (min, max) = (lo, hi)
        guard lo < hi else {
            (bucketLimits, bucketCounts) = ([hi], [num])
            return
        }
        let width = (hi - lo) / Double(bucketCount)
        bucketLimits = (1...bucketCount).map { $0 == bucketCount ? hi : lo + width * Double($0) }
        bucketCounts = [Double](repeating: 0, count: bucketCount)
        for v in values where v.isFinite {
            let i = Int(((Double(v) - lo) / width).rounded(.up)) - 1
            bucketCounts[Swift.min(Swift.max(i, 0), bucketCount - 1)] += 1
        }
    }

    /// Writes the fields `min = 1` … `sum_squares = 5`, `bucket_limit = 6`, `bucket = 7`.
    func encode(into proto: inout ProtobufWriter) {
        proto.double(1, min)
        proto.double(2, max)
        proto.double(3, num)
        proto.double(4, sum)
        proto.double(5, sumSquares)
        proto.packedDoubles(6, bucketLimits)
        proto.packedDoubles(7, bucketCounts)
    }
}

private func hostName() -> String {
    var name = [CChar](repeating: 0, count: 256)
    guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
    return String(cString: name)
}

private func errnoDescription() -> String {
    String(cString: strerror(errno))
}

private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}
