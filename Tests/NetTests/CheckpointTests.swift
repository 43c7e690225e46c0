import Foundation
import XCTest
import TestSupport
@testable import Net

/// A fresh empty directory under the system temporary directory, removed at the end of the test.
private func temporaryDirectory(_ test: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "deconvnet-ckpt-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// A safetensors file from a header given as JSON text and a raw data buffer.
private func safetensorsFile(header: String, buffer: [UInt8] = []) -> [UInt8] {
    let json = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + buffer
}

private func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
}

/// Asserts that parsing `bytes` throws `expected`, and that its description is one line.
private func assertParseError(_ bytes: [UInt8], _ expected: CheckpointError, file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try Checkpoint.parse(bytes, path: "x")
        XCTFail("expected \(expected)", file: file, line: line)
    } catch {
        XCTAssertEqual(error, expected, file: file, line: line)
        let message = error.errorDescription ?? ""
        XCTAssertFalse(message.isEmpty || message.contains("\n"), message, file: file, line: line)
    }
}

private let sample = Checkpoint(
    tensors: [
        NamedTensor(name: "conv1.weight", tensor: Tensor(shape: [2, 1, 2, 2], data: (0..<8).map { Float($0) - 3.5 })),
        NamedTensor(name: "conv1.bias", tensor: Tensor(shape: [2], data: [0.25, -1e-7])),
        NamedTensor(name: "scale", tensor: Tensor(shape: [], data: [.pi])),
        NamedTensor(name: "empty", tensor: Tensor(shape: [0, 3], data: [])),
    ],
    metadata: ["spec": "conv(2,2) \"quoted\"\nnext line \\ é", "epoch": "3", "control": "\u{01}\t"]
)

final class CheckpointTests: XCTestCase {
    func testRoundTripKeepsOrderValuesAndMetadata() throws {
        let path = try temporaryDirectory(self) + "/model.safetensors"
        try sample.write(to: path)
        let loaded = try Checkpoint.read(from: path)
        XCTAssertEqual(loaded, sample)
        XCTAssertEqual(loaded.tensors.map(\.name), ["conv1.weight", "conv1.bias", "scale", "empty"])
        XCTAssertEqual(loaded.tensor("conv1.bias"), sample.tensors[1].tensor)
        XCTAssertNil(loaded.tensor("nope"))
        XCTAssertEqual(try Checkpoint.parse(try sample.serialized()), sample, "the bytes in memory read as the file does, the empty tensor too")

        let bytes = try sample.serialized()
        let headerLength = Int(bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        XCTAssertEqual(headerLength % 8, 0)
        XCTAssertEqual(bytes.count, 8 + headerLength + 4 * (8 + 2 + 1))
    }

    func testMetadataAloneFromTheHeader() throws {
        let path = try temporaryDirectory(self) + "/model.safetensors"
        try sample.write(to: path)
        XCTAssertEqual(try Checkpoint.readMetadata(from: path), sample.metadata)
        let bytes = try sample.serialized()
        try writeAtomically(Array(bytes.prefix(20)), to: path)
        XCTAssertThrowsError(try Checkpoint.readMetadata(from: path)) { error in
            guard case .headerTooLarge? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Checkpoint.readMetadata(from: path + ".missing")) { error in
            XCTAssertEqual(error as? CheckpointError, .fileNotFound(path + ".missing"))
        }
    }

    func testExactBytesOfTinyFile() throws {
        let bytes = try Checkpoint(tensors: [NamedTensor(name: "a", tensor: Tensor(shape: [2], data: [1, 2]))]).serialized()
        let json = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertEqual(json.utf8.count, 54)
        let expected: [UInt8] = [56, 0, 0, 0, 0, 0, 0, 0] + Array(json.utf8) + [0x20, 0x20]
            + [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40]
        XCTAssertEqual(bytes, expected)
    }

    func testEmptyCheckpoint() throws {
        let bytes = try Checkpoint().serialized()
        XCTAssertEqual(bytes, [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        XCTAssertEqual(try Checkpoint.parse(bytes), Checkpoint())
    }

    func testReadsHalfBFloatAndDouble() throws {
        let f16: [UInt8] = [0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c]  // 1, -2, 2^-24, +inf
        let bf16: [UInt8] = [0x80, 0x3f, 0x40, 0xc0]  // 1, -3
        let f64 = withUnsafeBytes(of: (0.5 as Double).bitPattern.littleEndian, Array.init)
        let header = #"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},"#
            + #""d":{"dtype":"F64","shape":[1,1],"data_offsets":[12,20]}}"#
        let loaded = try Checkpoint.parse(safetensorsFile(header: header, buffer: f16 + bf16 + f64))
        XCTAssertEqual(loaded.tensors.map(\.name), ["h", "b", "d"])
        XCTAssertEqual(loaded.tensor("h")?.data, [1, -2, 0x1p-24, .infinity])
        XCTAssertEqual(loaded.tensor("b")?.data, [1, -3])
        XCTAssertEqual(loaded.tensor("d"), Tensor(shape: [1, 1], data: [0.5]))
    }

    func testFileErrors() throws {
        let directory = try temporaryDirectory(self)
        XCTAssertThrowsError(try Checkpoint.read(from: directory + "/missing.safetensors")) {
            XCTAssertEqual($0 as? CheckpointError, .fileNotFound(directory + "/missing.safetensors"))
        }
        assertParseError([1, 2, 3, 4, 5], .tooShort(path: "x", byteCount: 5))
        assertParseError([100, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d], .headerTooLarge(path: "x", headerLength: 100, fileSize: 10))
        assertParseError([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                         .headerTooLarge(path: "x", headerLength: .max, fileSize: 8))
        assertParseError(safetensorsFile(header: "{\"a\": "), .invalidHeader(path: "x", reason: "not valid JSON"))
        assertParseError(safetensorsFile(header: "[1, 2]"), .invalidHeader(path: "x", reason: "not a JSON object"))
    }

    func testEntryErrors() {
        let good = #""dtype":"F32","shape":[2],"data_offsets":[0,8]"#
        let buffer = floatBytes([1, 2])
        func file(_ entry: String) -> [UInt8] { safetensorsFile(header: "{\"t\":{\(entry)}}", buffer: buffer) }

        XCTAssertNoThrow(try Checkpoint.parse(file(good)))
        assertParseError(file(#""shape":[2],"data_offsets":[0,8]"#), .missingField(path: "x", tensor: "t", field: "dtype"))
        assertParseError(file(#""dtype":"F32","data_offsets":[0,8]"#), .missingField(path: "x", tensor: "t", field: "shape"))
        assertParseError(file(#""dtype":"F32","shape":[2]"#), .missingField(path: "x", tensor: "t", field: "data_offsets"))
        assertParseError(safetensorsFile(header: #"{"t":[1]}"#),
                         .invalidField(path: "x", tensor: "t", field: "entry", reason: "is not an object"))
        assertParseError(file(#""dtype":"I32","shape":[2],"data_offsets":[0,8]"#),
                         .unsupportedDtype(path: "x", tensor: "t", dtype: "I32"))
        assertParseError(file(#""dtype":"F32","shape":[-2],"data_offsets":[0,8]"#),
                         .invalidField(path: "x", tensor: "t", field: "shape", reason: "is not a list of non-negative integers"))
        assertParseError(file(#""dtype":"F32","shape":[2],"data_offsets":[0]"#),
                         .invalidField(path: "x", tensor: "t", field: "data_offsets", reason: "is not a list of two integers"))
        assertParseError(file(#""dtype":"F32","shape":[2],"data_offsets":[0,12]"#),
                         .offsetsOutOfRange(path: "x", tensor: "t", begin: 0, end: 12, bufferSize: 8))
        assertParseError(file(#""dtype":"F32","shape":[2],"data_offsets":[8,0]"#),
                         .offsetsOutOfRange(path: "x", tensor: "t", begin: 8, end: 0, bufferSize: 8))
        assertParseError(file(#""dtype":"F32","shape":[3],"data_offsets":[0,8]"#),
                         .sizeMismatch(path: "x", tensor: "t", shape: [3], dtype: "F32", byteCount: 8))
        assertParseError(file(#""dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]"#),
                         .sizeMismatch(path: "x", tensor: "t", shape: [4611686018427387904, 4], dtype: "F32", byteCount: 8))
        assertParseError(file(#""dtype":"F32","shape":[1],"data_offsets":[4,8]"#),
                         .notContiguous(path: "x", tensor: "t", begin: 4, expected: 0))
        assertParseError(file(#""dtype":"F32","shape":[1],"data_offsets":[0,4]"#),
                         .trailingBytes(path: "x", used: 4, bufferSize: 8))
    }

    func testMetadataErrors() {
        assertParseError(safetensorsFile(header: #"{"__metadata__":{"epoch":3}}"#), .metadataNotString(path: "x", key: "epoch"))
        assertParseError(safetensorsFile(header: #"{"__metadata__":["a"]}"#), .invalidMetadata(path: "x", reason: "is not an object"))
        XCTAssertEqual(try Checkpoint.parse(safetensorsFile(header: #"{"__metadata__":{"k":"v"}}"#)).metadata, ["k": "v"])
    }

    func testWriteRejectsDuplicateAndReservedNames() {
        let t = Tensor(shape: [1], data: [0])
        XCTAssertThrowsError(try Checkpoint(tensors: [NamedTensor(name: "a", tensor: t), NamedTensor(name: "a", tensor: t)]).serialized()) {
            XCTAssertEqual($0 as? CheckpointError, .duplicateName("a"))
        }
        XCTAssertThrowsError(try Checkpoint(tensors: [NamedTensor(name: "__metadata__", tensor: t)]).serialized()) {
            XCTAssertEqual($0 as? CheckpointError, .reservedName("__metadata__"))
        }
    }

    func testDuplicateJSONKeysDoNotTrap() {
        let buffer = floatBytes([1, 2])
        let header = #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        _ = try? Checkpoint.parse(safetensorsFile(header: header, buffer: buffer))
    }

    /// Truncations and byte flips of a valid file must either parse or throw, never trap.
    func testFuzzedFilesThrowOrParse() throws {
        let valid = try sample.serialized()
        for length in 0..<valid.count {
            _ = try? Checkpoint.parse(Array(valid[..<length]))
        }
        var random = SeededRandom(seed: 7)
        for _ in 0..<3000 {
            var bytes = valid
            for _ in 0..<(1 + random.int(below: 3)) {
                let i = random.int(below: bytes.count)
                bytes[i] = random.int(below: 4) == 0 ? UInt8(random.int(below: 256)) : bytes[i] ^ (1 << UInt8(random.int(below: 8)))
            }
            _ = try? Checkpoint.parse(bytes)
        }
    }

    func testValidateReportsEveryMismatch() throws {
        let checkpoint = Checkpoint(tensors: [
            NamedTensor(name: "conv1.weight", tensor: Tensor(zeros: [6, 3, 5, 5])),
            NamedTensor(name: "fc2.weight", tensor: Tensor(zeros: [10, 4])),
            NamedTensor(name: "foo", tensor: Tensor(zeros: [1])),
        ])
        XCTAssertNoThrow(try checkpoint.validate(expected: [
            ("conv1.weight", [6, 3, 5, 5]), ("fc2.weight", [10, 4]), ("foo", [1]),
        ]))
        do {
            try checkpoint.validate(expected: [("conv1.weight", [32, 1, 5, 5]), ("fc2.weight", [10, 4]), ("fc2.bias", [10])])
            XCTFail("expected a mismatch")
        } catch {
            XCTAssertEqual(error, .incompatible([
                .shape(name: "conv1.weight", found: [6, 3, 5, 5], expected: [32, 1, 5, 5]),
                .missing("fc2.bias"),
                .unexpected("foo"),
            ]))
            XCTAssertEqual(error.errorDescription,
                           "checkpoint tensor conv1.weight has shape [6, 3, 5, 5] but the model expects [32, 1, 5, 5]; "
                           + "missing tensor fc2.bias; unexpected tensor foo")
        }
    }

    /// `CheckpointFile` reads its header on opening and each tensor when asked, in steps of 4 MiB: a
    /// tensor of several steps, in F32 and F16, equals `Checkpoint.read`'s; a file cut short after it was
    /// opened is one line (`unreadable`), not a crash or a tensor of stale values.
    func testCheckpointFileReadsATensorInStepsAndRefusesAFileCutShortAfterOpening() throws {
        let path = try temporaryDirectory(self) + "/large.safetensors"
        let values = (0..<(1 << 20) + 77).map { Float($0 % 1000) / 8 - 60 }  // 4 MiB and 308 bytes of F32
        let halves = [UInt16](repeating: 0x3c00, count: 2_100_003)  // F16 1.0: 4.2 MB, two steps
        let header = #"{"__metadata__":{"k":"v"},"big":{"dtype":"F32","shape":[\#(values.count)],"data_offsets":[0,\#(4 * values.count)]},"#
            + #""half":{"dtype":"F16","shape":[\#(halves.count)],"data_offsets":[\#(4 * values.count),\#(4 * values.count + 2 * halves.count)]}}"#
        let bytes = safetensorsFile(header: header, buffer: floatBytes(values) + halves.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) })
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let file = try CheckpointFile(path: path)
        XCTAssertEqual(file.metadata, ["k": "v"])
        XCTAssertEqual(file.tensors.map(\.name), ["big", "half"])
        XCTAssertEqual(file.tensors.map(\.shape), [[values.count], [halves.count]])
        var read = [Float](repeating: .nan, count: values.count)
        try read.withUnsafeMutableBufferPointer { try file.read("big", into: $0) }
        XCTAssertEqual(read, values)
        XCTAssertEqual(try file.tensor("half").tensor.data, [Float](repeating: 1, count: halves.count))
        XCTAssertEqual(try Checkpoint.read(from: path), try Checkpoint.parse(bytes))

        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: UInt64(bytes.count - 10))
        try handle.close()
        XCTAssertThrowsError(try file.tensor("half")) { error in
            guard case CheckpointError.unreadable(path, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("half"), reason)
        }
        let folder = (path as NSString).deletingLastPathComponent
        XCTAssertThrowsError(try CheckpointFile(path: folder)) { XCTAssertEqual($0 as? CheckpointError, .unreadable(path: folder, reason: "Is a directory")) }
        let data = 4 * values.count + 2 * halves.count
        XCTAssertThrowsError(try CheckpointFile(path: path)) {
            XCTAssertEqual($0 as? CheckpointError, .offsetsOutOfRange(path: path, tensor: "half", begin: 4 * values.count, end: data, bufferSize: data - 10))
        }
    }

    func testAtomicWriteReplacesFileAndLeavesNoTemporary() throws {
        let directory = try temporaryDirectory(self)
        let path = directory + "/model.safetensors"
        try writeAtomically(Array("old".utf8), to: path)
        try sample.write(to: path)
        XCTAssertEqual(try Checkpoint.read(from: path), sample)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["model.safetensors"])

        try writeAtomically(Data("relative".utf8), to: path)
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("relative".utf8))
    }

    func testFailedWritesLeaveOldFileIntact() throws {
        let directory = try temporaryDirectory(self)
        let path = directory + "/model.safetensors"
        try sample.write(to: path)
        let before = FileManager.default.contents(atPath: path)

        let bad = Checkpoint(tensors: [NamedTensor(name: "a", tensor: Tensor(zeros: [1])), NamedTensor(name: "a", tensor: Tensor(zeros: [1]))])
        XCTAssertThrowsError(try bad.write(to: path))
        XCTAssertEqual(FileManager.default.contents(atPath: path), before)

        XCTAssertThrowsError(try sample.write(to: directory + "/no/such/dir/model.safetensors")) { error in
            guard case .writeFailed(.systemError)? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try writeAtomically([1], to: directory + "/")) {
            XCTAssertEqual($0 as? FileWriteError, .invalidPath(directory + "/"))
        }

        // The rename fails after the temporary file is written: the target is a non-empty directory.
        let occupied = directory + "/occupied"
        try FileManager.default.createDirectory(atPath: occupied + "/inside", withIntermediateDirectories: true)
        XCTAssertThrowsError(try sample.write(to: occupied))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), ["model.safetensors", "occupied"])
        XCTAssertEqual(FileManager.default.contents(atPath: path), before)
    }
}

final class CheckpointNpyTests: XCTestCase {
    func testHeaderLayout() {
        let bytes = npyBytes(Tensor(shape: [2, 3], data: [0, 1, 2, 3, 4, 5]))
        XCTAssertEqual(Array(bytes[0..<8]), [0x93] + Array("NUMPY".utf8) + [1, 0])
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        XCTAssertEqual(bytes.count, 10 + headerLength + 24)
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }   "), header)
        XCTAssertTrue(header.hasSuffix(" \n"))
        XCTAssertEqual(Array(bytes[(10 + headerLength)...].prefix(8)), floatBytes([0, 1]))

        let vector = String(decoding: npyBytes(Tensor(shape: [5], data: [0, 0, 0, 0, 0])).dropFirst(10), as: UTF8.self)
        XCTAssertTrue(vector.contains("'shape': (5,), }"))
        let scalar = String(decoding: npyBytes(Tensor(shape: [], data: [1])).dropFirst(10), as: UTF8.self)
        XCTAssertTrue(scalar.contains("'shape': (), }"))
    }

    func testRoundTrip() throws {
        let directory = try temporaryDirectory(self)
        for shape in [[2, 3], [5], [], [1, 0, 4], [2, 1, 2, 2]] {
            let count = shape.reduce(1, *)
            let tensor = Tensor(shape: shape, data: (0..<count).map { Float($0) * 0.5 - 1 })
            let path = directory + "/t.npy"
            try writeNpy(tensor, to: path)
            XCTAssertEqual(try readNpy(from: path), tensor)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["t.npy"])
    }

    func testReadErrors() throws {
        let directory = try temporaryDirectory(self)
        XCTAssertThrowsError(try readNpy(from: directory + "/missing.npy")) {
            XCTAssertEqual($0 as? NpyError, .fileNotFound(directory + "/missing.npy"))
        }
        let path = directory + "/bad.npy"
        try writeAtomically(Array("not numpy at all".utf8), to: path)
        XCTAssertThrowsError(try readNpy(from: path)) { XCTAssertEqual($0 as? NpyError, .notNpy(path: path)) }
        try writeAtomically(Array(npyBytes(Tensor(shape: [2], data: [1, 2])).dropLast()), to: path)
        XCTAssertThrowsError(try readNpy(from: path)) {
            XCTAssertEqual($0 as? NpyError, .sizeMismatch(path: path, shape: [2], byteCount: 7))
        }
    }
}

/// Cross-checks against the reference Python readers; skipped when `safetensors`/`numpy` are not installed.
final class CheckpointPythonTests: XCTestCase {
    func testSafetensorsLoadsInReferenceImplementation() throws {
        try Python.require("safetensors, numpy")
        let path = try temporaryDirectory(self) + "/model.safetensors"
        let checkpoint = Checkpoint(
            tensors: [
                NamedTensor(name: "conv1.bias", tensor: Tensor(shape: [2], data: [0.5, -2])),
                NamedTensor(name: "conv1.weight", tensor: Tensor(shape: [2, 1, 1, 3], data: [1, 2, 3, 4, 5, 6])),
                NamedTensor(name: "fc.weight", tensor: Tensor(shape: [], data: [7])),
            ],
            metadata: ["spec": "conv(2) \"q\"\né"]  // one key: the reference orders several keys by a hash, differently per run
        )
        try checkpoint.write(to: path)
        let result = Python.run([
            Python.script("check_safetensors.py"), path,
            "--expect", #"{"conv1.bias": [2], "conv1.weight": [2, 1, 1, 3], "fc.weight": []}"#,
            "--values", #"{"conv1.bias": [0.5, -2], "conv1.weight": [1, 2, 3, 4, 5, 6]}"#,
            "--metadata", #"{"spec": "conv(2) \"q\"\n\u00e9"}"#,
            "--exact",
        ])
        XCTAssertEqual(result.status, 0, result.output)

        // Any order, scalars and empty tensors load too (not byte-identical: the reference sorts by name).
        try sample.write(to: path)
        let unsorted = Python.run([
            Python.script("check_safetensors.py"), path,
            "--expect", #"{"conv1.weight": [2, 1, 2, 2], "conv1.bias": [2], "scale": [], "empty": [0, 3]}"#,
            "--values", #"{"conv1.weight": [-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5]}"#,
        ])
        XCTAssertEqual(unsorted.status, 0, unsorted.output)
        let wrong = Python.run([Python.script("check_safetensors.py"), path, "--expect", #"{"conv1.weight": [8]}"#])
        XCTAssertNotEqual(wrong.status, 0, "the script should reject wrong expectations")
    }

    func testNpyLoadsInNumPy() throws {
        try Python.require("numpy")
        let directory = try temporaryDirectory(self)
        for (shape, text) in [([2, 3], "2,3"), ([5], "5"), ([], "")] {
            let count = shape.reduce(1, *)
            let path = directory + "/t.npy"
            try writeNpy(Tensor(shape: shape, data: (0..<count).map(Float.init)), to: path)
            let values = "[" + (0..<count).map(String.init).joined(separator: ",") + "]"
            let result = Python.run([Python.script("check_npy.py"), path, "--shape", text, "--values", values, "--exact"])
            XCTAssertEqual(result.status, 0, result.output)
        }
    }
}
