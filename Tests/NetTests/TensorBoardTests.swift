import Foundation
import XCTest
import TestSupport
@testable import Net

final class TensorBoardTests: XCTestCase {
    func testCRC32CCheckValue() {
        XCTAssertEqual(CRC32C.checksum("123456789".utf8), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
    }

    func testMaskedCRC() {
        // (0xE3069283 >> 15) | (0xE3069283 << 17) = 0x0001C60D | 0x25060000 = 0x2507C60D;
        // 0x2507C60D + 0xA282EAD8 = 0xC78AB0E5.
        XCTAssertEqual(CRC32C.mask(0xE306_9283), 0xC78A_B0E5)
        XCTAssertEqual(CRC32C.mask(0), 0xA282_EAD8)
    }

    func testVarints() {
        var proto = ProtobufWriter()
        proto.int64(1, 300)
        proto.int64(2, -1)
        XCTAssertEqual(proto.data, [0x08, 0xAC, 0x02, 0x10] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
    }

    func testScalarEventBytes() {
        let event = EventProto.summary(wallTime: 1, step: 3, tag: "a", value: .scalar(0.5))
        XCTAssertEqual(event, Self.scalarEvent)
    }

    func testScalarRecordFraming() {
        let record = TFRecord.frame(Self.scalarEvent)
        let expected: [UInt8] = [0x17, 0, 0, 0, 0, 0, 0, 0,  // length 23
                                 0xE7, 0xCE, 0xF8, 0x1E]      // masked CRC of the length
            + Self.scalarEvent
            + [0xA4, 0x69, 0x2D, 0x17]                        // masked CRC of the event
        XCTAssertEqual(record, expected)
        XCTAssertEqual(TFRecord.validPrefixLength(record + record), 2 * record.count)
        XCTAssertEqual(TFRecord.validPrefixLength(record + record.dropLast()), record.count)
    }

    func testHistogramEncoding() {
        let histogram = [Float(-1), 0.5, 2].withUnsafeBufferPointer { Histogram($0, bucketCount: 2) }
        // 0.5 sits on the edge between the buckets and counts in the left one.
        XCTAssertEqual(histogram.bucketLimits, [0.5, 2])
        XCTAssertEqual(histogram.bucketCounts, [2, 1])
        var proto = ProtobufWriter()
        histogram.encode(into: &proto)
        func le(_ x: Double) -> [UInt8] { withUnsafeBytes(of: x.bitPattern.littleEndian, Array.init) }
        let expected = [0x09] + le(-1) + [0x11] + le(2) + [0x19] + le(3)  // min, max, num
            + [0x21] + le(1.5) + [0x29] + le(5.25)                     // sum, sum_squares
            + [0x32, 16] + le(0.5) + le(2)                             // bucket_limit, packed
            + [0x3A, 16] + le(2) + le(1)                               // bucket, packed
        XCTAssertEqual(proto.data, expected)
    }

    func testDefaultHistogramBuckets() {
        let values: [Float] = (0..<100).map { Float($0 - 50) / 10 } + [.nan, .infinity]
        let histogram = values.withUnsafeBufferPointer { Histogram($0) }
        XCTAssertEqual(histogram.num, 100)
        XCTAssertEqual(histogram.min, -5)
        XCTAssertEqual(histogram.max, Double(Float(4.9)))
        XCTAssertEqual(histogram.bucketLimits.count, 30)
        XCTAssertEqual(histogram.bucketLimits.last, histogram.max)
        XCTAssertEqual(histogram.bucketCounts.reduce(0, +), 100)
        let constant = [Float](repeating: 7, count: 5).withUnsafeBufferPointer { Histogram($0) }
        XCTAssertEqual(constant.bucketLimits, [7])
        XCTAssertEqual(constant.bucketCounts, [5])
    }

    func testWrittenFileReadsBack() throws {
        let directory = temporaryDirectory()
        let writer = try EventWriter(directory: directory, fileSuffix: ".test")
        try writer.addScalar("loss", 0.25, step: 7, wallTime: 100)
        try writer.addHistogram("w", values: [1, 2, 3, 4], step: 8)
        try writer.addImage("img", png: Self.png, width: 2, height: 2, channels: 3, step: 9)
        try writer.close()

        let name = (writer.path as NSString).lastPathComponent
        XCTAssertTrue(name.hasPrefix("events.out.tfevents.") && name.hasSuffix(".test"), name)
        let events = try readEvents(writer.path)
        XCTAssertEqual(events.count, 4)
        XCTAssertEqual(events[0].string(3), "brain.Event:2")

        XCTAssertEqual(events[1].double(1), 100)
        XCTAssertEqual(events[1].int(2), 7)
        let scalar = try XCTUnwrap(value(of: events[1]))
        XCTAssertEqual(scalar.string(1), "loss")
        XCTAssertEqual(scalar.float(2), 0.25)

        XCTAssertEqual(events[2].int(2), 8)
        let histogram = try XCTUnwrap(value(of: events[2])?.message(5))
        XCTAssertEqual(histogram.double(1), 1)
        XCTAssertEqual(histogram.double(2), 4)
        XCTAssertEqual(histogram.double(3), 4)
        XCTAssertEqual(histogram.double(5), 30)
        XCTAssertEqual(histogram.packedDoubles(6).count, 30)
        XCTAssertEqual(histogram.packedDoubles(7).reduce(0, +), 4)

        XCTAssertEqual(events[3].int(2), 9)
        let image = try XCTUnwrap(value(of: events[3])?.message(4))
        XCTAssertEqual([image.int(1), image.int(2), image.int(3)], [2, 2, 3])
        XCTAssertEqual(image.bytes(4), Self.png)
    }

    func testAppendingContinuesNewestFileAndDropsTornRecord() throws {
        let directory = temporaryDirectory()
        let first = try EventWriter(directory: directory)
        try first.addScalar("loss", 1, step: 0)
        try first.close()
        // A run that died while writing a record.
        let torn = TFRecord.frame(EventProto.summary(wallTime: 0, step: 1, tag: "loss", value: .scalar(2)))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: first.path))
        handle.seekToEndOfFile()
        handle.write(Data(torn.dropLast(3)))
        handle.closeFile()

        let resumed = try EventWriter(appendingTo: directory)
        XCTAssertEqual(resumed.path, first.path)
        try resumed.addScalar("loss", 3, step: 1)
        try resumed.close()

        let events = try readEvents(first.path)
        XCTAssertEqual(events.map { $0.int(2) }, [nil, 0, 1])
        XCTAssertEqual(events.compactMap { value(of: $0)?.float(2) }, [1, 3])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).count, 1)
    }

    func testAppendingToEmptyDirectoryStartsNewFile() throws {
        let directory = temporaryDirectory() + "/run"
        let writer = try EventWriter(appendingTo: directory)
        try writer.close()
        XCTAssertEqual(try readEvents(writer.path).first?.string(3), "brain.Event:2")
    }

    /// Writes a run in two sessions, like a resumed training run, and has TensorBoard's own
    /// `EventAccumulator` check it via Tests/python/check_tensorboard.py.
    func testRealTensorBoardReaderAcceptsFile() throws {
        try Python.require("tensorboard")
        let directory = temporaryDirectory()
        let weights: [Float] = (0..<100).map { Float($0 - 50) / 10 }
        let first = try EventWriter(directory: directory)
        try first.addScalar("loss", 2.5, step: 0)
        try first.addScalar("loss", 1.25, step: 1)
        try first.addHistogram("fc1/weight", values: weights, step: 0)
        try first.addImage("sample", png: Self.png, width: 2, height: 2, channels: 3, step: 1)
        try first.close()
        let resumed = try EventWriter(appendingTo: directory)
        try resumed.addScalar("loss", 0.1, step: 2)
        try resumed.addHistogram("fc1/weight", values: weights.map { $0 * 2 }, step: 2)
        try resumed.close()

        let expectations: [String: Any] = [
            "scalars": ["loss": [["step": 0, "value": 2.5], ["step": 1, "value": 1.25], ["step": 2, "value": 0.1]]],
            "histograms": ["fc1/weight": [["step": 0, "num": 100, "min": -5, "max": Double(Float(4.9)), "buckets": 30],
                                          ["step": 2, "num": 100, "min": -10, "max": Double(Float(9.8))]]],
            "images": ["sample": [["step": 1, "width": 2, "height": 2, "bytes": Self.png.count]]],
        ]
        let expectationsPath = directory + "/expectations.json"
        try JSONSerialization.data(withJSONObject: expectations).write(to: URL(fileURLWithPath: expectationsPath))
        let result = Python.run([Python.script("check_tensorboard.py"), directory, expectationsPath])
        XCTAssertEqual(result.status, 0, result.output)
    }

    // MARK: - Helpers

    /// wall_time 1.0, step 3, summary { value { tag "a", simple_value 0.5 } }, encoded by hand.
    static let scalarEvent: [UInt8] = [
        0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F,  // field 1, fixed64: 1.0
        0x10, 0x03,                          // field 2, varint: 3
        0x2A, 0x0A,                          // field 5 (Summary), 10 bytes
        0x0A, 0x08,                          //   field 1 (Value), 8 bytes
        0x0A, 0x01, 0x61,                    //     field 1 (tag): "a"
        0x15, 0, 0, 0, 0x3F,                 //     field 2, fixed32: 0.5
    ]

    /// A 2×2 red RGB PNG.
    static let png: [UInt8] = Array(hex: "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73"
        + "0000001649444154789c63fccfc0c0c0c0c0c4c0c0c0c0c000000d1d01036ac29be90000000049454e44ae426082")

    private func temporaryDirectory() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}

// MARK: - A small independent reader

private struct ReadError: Error, CustomStringConvertible {
    var description: String
}

/// Reads every TFRecord in the file at `path`, checking both CRCs, and decodes each as a message.
private func readEvents(_ path: String) throws -> [ProtoMessage] {
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    func uint(_ range: Range<Int>) -> UInt64 { bytes[range].reversed().reduce(0) { $0 << 8 | UInt64($1) } }
    var events: [ProtoMessage] = []
    var offset = 0
    while offset < bytes.count {
        guard bytes.count - offset >= 16 else { throw ReadError(description: "truncated record at \(offset)") }
        let length = Int(uint(offset..<offset + 8))
        guard UInt32(uint(offset + 8..<offset + 12)) == CRC32C.maskedChecksum(bytes[offset..<offset + 8]),
              offset + 16 + length <= bytes.count else { throw ReadError(description: "bad length at \(offset)") }
        let data = Array(bytes[offset + 12..<offset + 12 + length])
        guard UInt32(uint(offset + 12 + length..<offset + 16 + length)) == CRC32C.maskedChecksum(data) else {
            throw ReadError(description: "bad data CRC at \(offset)")
        }
        events.append(try ProtoMessage(data))
        offset += 16 + length
    }
    return events
}

/// The `Summary.Value` of an event: `Event.summary (5)`, then `Summary.value (1)`.
private func value(of event: ProtoMessage) -> ProtoMessage? {
    event.message(5)?.message(1)
}

/// A protobuf message decoded into raw fields by number; enough to read back what EventWriter writes.
private struct ProtoMessage {
    enum Field { case varint(UInt64), fixed64(UInt64), bytes([UInt8]), fixed32(UInt32) }
    var fields: [Int: Field] = [:]

    init(_ bytes: [UInt8]) throws {
        var offset = 0
        func varint() throws -> UInt64 {
            var result: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard offset < bytes.count else { throw ReadError(description: "truncated varint") }
                let byte = bytes[offset]
                offset += 1
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return result }
                shift += 7
            }
        }
        func fixed(_ count: Int) throws -> UInt64 {
            guard offset + count <= bytes.count else { throw ReadError(description: "truncated fixed field") }
            defer { offset += count }
            return bytes[offset..<offset + count].reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        while offset < bytes.count {
            let key = try varint()
            let field = Int(key >> 3)
            switch key & 7 {
            case 0: fields[field] = .varint(try varint())
            case 1: fields[field] = .fixed64(try fixed(8))
            case 5: fields[field] = .fixed32(UInt32(try fixed(4)))
            case 2:
                let length = Int(try varint())
                guard offset + length <= bytes.count else { throw ReadError(description: "truncated bytes field") }
                fields[field] = .bytes(Array(bytes[offset..<offset + length]))
                offset += length
            default: throw ReadError(description: "unexpected wire type \(key & 7)")
            }
        }
    }

    func int(_ field: Int) -> Int64? {
        if case let .varint(v)? = fields[field] { Int64(bitPattern: v) } else { nil }
    }
    func double(_ field: Int) -> Double? {
        if case let .fixed64(v)? = fields[field] { Double(bitPattern: v) } else { nil }
    }
    func float(_ field: Int) -> Float? {
        if case let .fixed32(v)? = fields[field] { Float(bitPattern: v) } else { nil }
    }
    func bytes(_ field: Int) -> [UInt8]? {
        if case let .bytes(v)? = fields[field] { v } else { nil }
    }
    func string(_ field: Int) -> String? {
        bytes(field).map { String(decoding: $0, as: UTF8.self) }
    }
    func message(_ field: Int) -> ProtoMessage? {
        bytes(field).flatMap { try? ProtoMessage($0) }
    }
    func packedDoubles(_ field: Int) -> [Double] {
        let raw = bytes(field) ?? []
        return stride(from: 0, to: raw.count, by: 8).map { i in
            Double(bitPattern: raw[i..<i + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) })
        }
    }
}

private extension Array where Element == UInt8 {
    init(hex: String) {
        let digits = Array(hex.utf8)
        self = stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16)! }
    }
}
