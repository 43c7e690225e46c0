import Foundation
import XCTest
@testable import Net

/// Sizes from outside are checked against `MemoryBudget.current` before anything is allocated, and loaded
/// values are checked: each case below ends in one `Error` naming the file, tensor or flag.
final class MemoryBudgetTests: XCTestCase {
    /// Runs `body` under a budget of `bytes`, restoring the one before.
    private func withBudget<T>(_ bytes: Int, _ body: () throws -> T) rethrows -> T {
        let saved = MemoryBudget.current
        MemoryBudget.current = MemoryBudget(bytes: bytes)
        defer { MemoryBudget.current = saved }
        return try body()
    }

    func testParsingSizes() {
        XCTAssertEqual(MemoryBudget(parsing: "4G")?.bytes, 4 << 30)
        XCTAssertEqual(MemoryBudget(parsing: "4GiB")?.bytes, 4 << 30)
        XCTAssertEqual(MemoryBudget(parsing: "512m")?.bytes, 512 << 20)
        XCTAssertEqual(MemoryBudget(parsing: "1.5K")?.bytes, 1536)
        XCTAssertEqual(MemoryBudget(parsing: "1000000")?.bytes, 1_000_000)
        for bad in ["", "0", "-1G", "G", "4X", "1e3", "nan", "8388608T", " 4 G"] {
            XCTAssertNil(MemoryBudget(parsing: bad), bad)
        }
        XCTAssertEqual(MemoryBudget.standard.bytes, Int(ProcessInfo.processInfo.physicalMemory / 2))
    }

    func testSizesAreCheckedForOverflow() throws {
        XCTAssertEqual(MemoryBudget.size(of: [3, 4], elementSize: 4), 48)
        XCTAssertNil(MemoryBudget.size(of: [1 << 32, 1 << 32]))
        XCTAssertNil(MemoryBudget.size(of: [Int.max, 2]))
        XCTAssertNil(MemoryBudget.size(of: [-1, 2]))
        XCTAssertNil(MemoryBudget.sum([Int.max, 1]))
        XCTAssertNil(MemoryBudget.sum([1, nil]))
        let budget = MemoryBudget(bytes: 1 << 30)
        XCTAssertNoThrow(try budget.check(1 << 30, for: "x"))
        XCTAssertThrowsError(try budget.check(shape: [1 << 40, 1 << 40], for: "f.idx")) { error in
            XCTAssertEqual(error.localizedDescription,
                           "f.idx needs more than 8.00 EiB, over the memory budget of 1.00 GiB (raise it with --max-memory)")
        }
        XCTAssertThrowsError(try budget.check((1 << 30) + 1, for: "--batch-size 9")) { error in
            XCTAssertTrue(error.localizedDescription.hasPrefix("--batch-size 9 needs 1.00 GiB, over the memory budget of 1.00 GiB"))
        }
    }

    /// `smallJPEG` with the frame header's height and width replaced.
    private func jpeg(width: Int, height: Int) -> [UInt8] {
        var bytes = smallJPEG
        let frame = (0..<bytes.count - 1).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 }!
        bytes[frame + 5] = UInt8(height >> 8); bytes[frame + 6] = UInt8(height & 0xFF)
        bytes[frame + 7] = UInt8(width >> 8); bytes[frame + 8] = UInt8(width & 0xFF)
        return bytes
    }

    func testJPEGBombIsRefusedFromItsHeader() throws {
        XCTAssertEqual(jpeg(width: 8, height: 8), smallJPEG)
        let started = Date()
        assertDataError(try Image.decode(jpeg(width: 60000, height: 60000), name: "bomb.jpg"), mentions: "bomb.jpg", "60000x60000", "\(Image.maximumPixels)")
        // under the pixel cap but over the budget: refused by the budget, also before decoding
        try withBudget(1 << 20) {
            assertDataError(try Image.decode(jpeg(width: 2000, height: 2000), name: "big.jpg"),
                            mentions: "big.jpg", "2000x2000", "11.4 MiB", "1.00 MiB", "--max-memory")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "the header alone decides")
    }

    func testJPEGWhoseDataEndsEarlyFailsAtOnce() {
        // a 4000x4000 header on 8x8 pixels' worth of data: not 16 million gray pixels, an error
        assertDataError(try Image.decode(jpeg(width: 4000, height: 4000), name: "short.jpg"), mentions: "short.jpg", "truncated")
    }

    /// A PNG of `width x height` gray pixels, with its IHDR size then rewritten to `declared` (CRC mended).
    private func png(declaring declared: (width: Int, height: Int)) throws -> [UInt8] {
        var bytes = [UInt8](try grayImage(width: 4, height: 4).pngData())
        let ihdr = 12  // signature 8, length 4, then "IHDR"
        for (i, value) in [declared.width, declared.height].enumerated() {
            for b in 0..<4 { bytes[ihdr + 4 + 4 * i + b] = UInt8(truncatingIfNeeded: value >> (24 - 8 * b)) }
        }
        let crc = crc32(bytes[ihdr..<ihdr + 17])
        for b in 0..<4 { bytes[ihdr + 17 + b] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * b)) }
        return bytes
    }

    func testPNGIsCheckedAgainstPixelCapAndBudget() throws {
        assertDataError(try Image.decode(png(declaring: (40000, 40000)), name: "bomb.png"), mentions: "bomb.png", "40000x40000")
        try withBudget(1 << 20) {
            assertDataError(try Image.decode(png(declaring: (2000, 2000)), name: "big.png"), mentions: "big.png", "--max-memory")
        }
    }

    func testFilesOverTheBudgetAreNotRead() throws {
        let path = try makeTemporaryDirectory() + "/image.png"
        try write([UInt8](repeating: 7, count: 4096), to: path)
        try withBudget(1024) {
            assertDataError(try Image(contentsOfFile: path), mentions: path, "4.00 KiB", "1.00 KiB")
            XCTAssertThrowsError(try Checkpoint.read(from: path)) { XCTAssertTrue("\($0.localizedDescription)".contains("--max-memory")) }
            XCTAssertThrowsError(try readNpy(from: path)) { XCTAssertTrue("\($0.localizedDescription)".contains("--max-memory")) }
        }
    }

    func testGzipIDXInflatesOnlyWhatItsHeaderDeclares() throws {
        // the header declares 2 images of 2x2; the stream goes on with 64 MB of zeros
        let file = idxFile(dimensions: [2, 2, 2], values: Array(1...8)) + [UInt8](repeating: 0, count: 64 << 20)
        let compressed = gzip(file)
        XCTAssertLessThan(compressed.count, 100_000)
        let array = try IDXReader.parse(Data(compressed), name: "bomb.gz", dimensions: 3)
        XCTAssertEqual(array.shape, [2, 2, 2])
        XCTAssertEqual(array.bytes.count, 16 + 8)
        XCTAssertEqual(Array(array.bytes[16...]), Array(1...8))
        // a header that declares more than the budget is refused before inflating
        let huge = gzip(idxFile(dimensions: [60000, 2800, 2800], values: []))
        try withBudget(1 << 30) {
            assertDataError(try IDXReader.parse(Data(huge), name: "huge.gz", dimensions: 3), mentions: "huge.gz", "60000x2800x2800", "438 GiB")
        }
        assertDataError(try IDXReader.parse(Data(gzip(idxFile(dimensions: [2, 2, 2], values: [1, 2, 3]))), name: "short.gz", dimensions: 3),
                        mentions: "short.gz", "truncated")
    }

    func testIDXLabelOutsideTheClassesNamesFileAndIndex() throws {
        let directory = try makeTemporaryDirectory()
        try write(idxFile(dimensions: [3, 1, 1], values: [1, 2, 3]), to: directory + "/train-images-idx3-ubyte")
        try write(idxFile(dimensions: [3], values: [0, 255, 1]), to: directory + "/train-labels-idx1-ubyte")
        assertDataError(try DataLoader.load(directory), mentions: directory + "/train-labels-idx1-ubyte", "label 255 at index 1", "10 classes")
        // classes.txt names the classes, and so their number
        try write([UInt8]((0..<256).map { "class \($0)" }.joined(separator: "\n").utf8), to: directory + "/classes.txt")
        let splits = try DataLoader.load(directory)
        XCTAssertEqual(splits.classNames.count, 256)
        XCTAssertEqual(splits.classNames[255], "class 255")
    }

    func testCIFARLabelOutsideTheClassesNamesFileAndIndex() throws {
        let directory = try makeTemporaryDirectory()
        let record = [UInt8](repeating: 0, count: 3073)
        try write(record + [10] + record.dropFirst(), to: directory + "/test_batch.bin")
        assertDataError(try DataLoader.load(directory), mentions: directory + "/test_batch.bin", "label 10 at index 1")
    }

    func testDataSetsAreCheckedBeforeTheyAreConverted() throws {
        let directory = try makeTemporaryDirectory()
        for c in 0..<2 {
            try FileManager.default.createDirectory(atPath: "\(directory)/train/\(c)", withIntermediateDirectories: true)
            try grayImage(width: 64, height: 64).writePNG(toFile: "\(directory)/train/\(c)/a.png")
        }
        try withBudget(6000) {
            assertDataError(try DataLoader.load(directory), mentions: "2 images of 1x64x64", "--max-memory")
            XCTAssertEqual(try? DataLoader.load(directory, size: 8).train?.pixels.count, 2 * 64, "resized as they are read")
        }
    }

    func testCheckpointWithNonFiniteWeightNamesTheTensor() throws {
        let model = try Sequential(spec: ModelSpec(parsing: "fc:3,fc"), inputShape: ImageShape(channels: 1, height: 2, width: 2), classes: 2)
        var checkpoint = model.checkpoint(classNames: ["a", "b"], epoch: 1, step: 1)
        let index = checkpoint.tensors.firstIndex { $0.name == "fc2.weight" }!
        checkpoint.tensors[index].tensor.data[4] = .nan
        let path = try makeTemporaryDirectory() + "/nan.safetensors"
        try checkpoint.write(to: path)
        XCTAssertThrowsError(try Sequential.load(contentsOf: path)) { error in
            XCTAssertTrue(error.localizedDescription.contains("\(path): tensor fc2.weight holds nan at index 4"), error.localizedDescription)
        }
        checkpoint.tensors[index].tensor.data[4] = -.infinity
        try checkpoint.write(to: path)
        XCTAssertThrowsError(try Sequential.load(contentsOf: path)) { XCTAssertTrue($0.localizedDescription.contains("-inf")) }
    }

    func testCheckpointShapesAreComparedBeforeTheModelIsBuilt() throws {
        let model = try Sequential(spec: ModelSpec.preset("lenet5"), inputShape: ImageShape(channels: 1, height: 28, width: 28), classes: 10)
        var checkpoint = model.checkpoint(classNames: (0..<10).map(String.init), epoch: 0, step: 0)
        let path = try makeTemporaryDirectory() + "/reshaped.safetensors"
        /// The message loading the checkpoint gives with `input_shape` [1, side, side], under an 8 GB budget.
        func loadError(side: Int) throws -> String {
            checkpoint.metadata[CheckpointKey.inputShape] = "[1, \(side), \(side)]"
            try checkpoint.write(to: path)
            return withBudget(8 << 30) {
                do {
                    _ = try Sequential.load(contentsOf: path)
                    return "loaded"
                } catch {
                    return error.localizedDescription
                }
            }
        }
        // lenet5 on 300x300 would take 2.9 GB (4.1 GB by the stage bound): the mismatch is reported, found
        // before the model is allocated
        let mismatch = try loadError(side: 300)
        XCTAssertTrue(mismatch.hasPrefix(path) && mismatch.contains("fc1.weight") && mismatch.contains("[1024, 3136]"), mismatch)
        // on 2000x2000, 183 GB by the stage bound: the metadata is wrong about the tensors
        let tooBig = try loadError(side: 2000)
        XCTAssertTrue(tooBig.hasPrefix(path) && tooBig.contains("input_shape [1, 2000, 2000]") && tooBig.contains("183 GiB"), tooBig)
    }

    func testModelsAreCheckedBeforeTheyAreBuilt() throws {
        let input = ImageShape(channels: 1, height: 28, width: 28)
        func build(_ spec: String, _ shape: ImageShape = input) throws -> Sequential {
            try Sequential(spec: ModelSpec(parsing: spec), inputShape: shape, classes: 10)
        }
        for spec in ["conv:99999999:3,fc", "lstm:100000000,fc", "conv:8:3:99999999999,fc"] {
            XCTAssertThrowsError(try build(spec), spec) { XCTAssertTrue($0.localizedDescription.contains("to 16777216"), "\($0)") }
        }
        for spec in ["conv:16777216:3,fc", "lstm:16777216,fc", "conv:16777216:1,conv:8:3,fc", "fc:16777216,fc:16777216,fc", "lstm:4096:16777216,fc"] {
            XCTAssertThrowsError(try build(spec), spec) { error in
                guard case ModelError.overBudget = error else { return XCTFail("\(spec): \(error)") }
            }
        }
        XCTAssertThrowsError(try build("fc", ImageShape(channels: 1, height: 1 << 25, width: 1))) { XCTAssertTrue("\($0.localizedDescription)".contains("16777216")) }
        // the bound on a stage covers what its layer really takes
        for name in ModelSpec.presetNames {
            let model = try Sequential(spec: ModelSpec.preset(name), inputShape: input, classes: 10)
            var shape = [1, 28, 28], bound = 0
            for (stage, layer) in zip(model.spec.stages, model.layers) {
                bound += Sequential.stageFloats(stage, input: shape, classes: 10)!
                shape = layer.outputShape
            }
            XCTAssertGreaterThanOrEqual(bound, 2 * model.parameterCount + model.layers.reduce(0) { $0 + $1.outputCount }, name)
        }
    }

    func testBatchBuffersAreChecked() throws {
        let model = try Sequential(spec: ModelSpec.preset("lenet5"), inputShape: ImageShape(channels: 1, height: 28, width: 28), classes: 10)
        XCTAssertNil(model.batchBytes(Int.max))
        XCTAssertGreaterThan(model.batchBytes(1_000_000)!, 1 << 30)
        XCTAssertNoThrow(try model.checkBatch(100, for: "--batch-size 100"))
        XCTAssertThrowsError(try model.checkBatch(Int.max, for: "--batch-size \(Int.max)")) {
            XCTAssertTrue($0.localizedDescription.hasPrefix("--batch-size 9223372036854775807 (9223372036854775807 images of 1x28x28 a step, with "), "\($0)")
            XCTAssertTrue($0.localizedDescription.contains("of scratch for --workers \(Workers.count)) needs more than"), "\($0)")
        }
    }

    /// A step's budget counts the workspace its convolution reserves for the workers of the batch, and a pass
    /// reserves for those workers alone: one image with 64 workers holds one worker's scratch.
    func testTheBudgetCountsTheWorkspaceOfTheWorkersABatchUses() throws {
        let model = try Sequential(spec: ModelSpec(parsing: "conv:4:5,fc"), inputShape: ImageShape(channels: 3, height: 32, width: 32), classes: 10)
        let saved = (workers: Workers.count, budget: MemoryBudget.current)
        defer {
            Workers.set(saved.workers)
            MemoryBudget.current = saved.budget
        }
        Workers.set(1)
        let (floats, one) = model.layers[0].workspace(batch: 64)
        XCTAssertEqual(one, 1)
        XCTAssertGreaterThanOrEqual(floats, 3 * 25 * 28 * 28, "one image's columns")
        let withOne = model.batchBytes(64)!
        Workers.set(64)
        XCTAssertEqual(model.layers[0].workspace(batch: 64).workers, 64)
        XCTAssertEqual(model.layers[0].workspace(batch: 1).workers, 1)
        XCTAssertEqual(model.batchBytes(64)! - withOne, 63 * floats * 4)
        // the evaluation after each epoch splits 100 test images over all 64 workers, a step of 8 over 8
        XCTAssertEqual(model.batchBytes(8, evaluating: 100)! - model.batchBytes(8)!, 56 * floats * 4)
        for n in [1, 8] {
            let record = ForwardRecord(model)
            let input = [Float](repeating: 0.5, count: n * 3 * 32 * 32)
            _ = input.withUnsafeBufferPointer { model.forward($0.baseAddress!, batch: n, training: true, into: record) }
            XCTAssertEqual(record.workspace.reservedFloats, n * floats, "\(n) images")
        }
        // a budget that holds the buffers and one worker's scratch, not 64 workers' scratch
        MemoryBudget.current = MemoryBudget(bytes: withOne)
        Workers.set(1)
        XCTAssertNoThrow(try model.checkBatch(64, for: "--batch-size 64"))
        Workers.set(64)
        XCTAssertThrowsError(try model.checkBatch(64, for: "--batch-size 64")) {
            XCTAssertTrue($0.localizedDescription.contains("--workers 64"), "\($0)")
            XCTAssertTrue($0.localizedDescription.contains(MemoryBudget.format(64 * floats * 4) + " of scratch"), "\($0)")
        }
    }
}

/// CRC-32 (ISO-HDLC, as PNG chunks use).
private func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}
