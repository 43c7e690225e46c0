import Foundation

/// CIFAR-10's binary batches in one directory: `data_batch_1.bin` ... `data_batch_5.bin` (train, those
/// present, in order) and `test_batch.bin`. Each record is 1 label byte then 3072 image bytes `(3, 32, 32)`.
/// Class names come from `batches.meta.txt` (one per line) when present.
enum CIFARBinaryReader: DataSetReader {
    /// CIFAR-10's classes in label order.
    static let standardClassNames = ["airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck"]
    static let trainFiles = (1...5).map { "data_batch_\($0).bin" }
    static let testFile = "test_batch.bin"
    private static let natural = ImageShape(channels: 3, height: 32, width: 32)
    private static let recordSize = 1 + 3 * 32 * 32

    static func recognises(_ directory: String) -> Bool {
        (trainFiles + [testFile]).contains { fileExists(joinPath(directory, $0)) }
    }

    static func load(_ directory: String, conversion: Conversion) throws(DataError) -> DataSplits {
        let names = try classNames(directory)
        let trainPaths = conversion.splits.contains(.train) ? trainFiles.map { joinPath(directory, $0) }.filter(fileExists) : []
        let testPaths = conversion.splits.contains(.test) ? [joinPath(directory, testFile)].filter(fileExists) : []
        return DataSplits(format: DataFormat.cifarBinary.rawValue,
                          train: try split(trainPaths, classNames: names, conversion: conversion),
                          test: try split(testPaths, classNames: names, conversion: conversion))
    }

    /// The names in `batches.meta.txt`, one per non-empty line, or the standard names if it is absent.
    private static func classNames(_ directory: String) throws(DataError) -> [String] {
        try readClassNames(joinPath(directory, "batches.meta.txt")) ?? standardClassNames
    }

    /// The records of `paths` concatenated, or nil if there are none.
    private static func split(_ paths: [String], classNames: [String], conversion: Conversion) throws(DataError) -> Dataset? {
        guard !paths.isEmpty else { return nil }
        var bytes = [UInt8](), labels = [Int32]()
        for path in paths {
            let records = try parse(readFile(path), name: path, classCount: classNames.count)
            do {
                try MemoryBudget.current.check(bytes.count + records.bytes.count, for: paths.joined(separator: ", "))
            } catch {
                throw .overBudget(error)
            }
            bytes += records.bytes
            labels += records.labels
        }
        let pixels = try conversion.convertRecords(bytes, count: labels.count, natural: natural, offset: 1, stride: recordSize,
                                                   name: paths.joined(separator: ", "))
        return Dataset(shape: conversion.target(natural), pixels: pixels, labels: labels, classNames: classNames)
    }

    /// The records of one batch file: its bytes as they are (label then image, `recordSize` each) and its
    /// labels, each checked against `classCount`. `name` is used in errors.
    static func parse(_ data: Data, name: String, classCount: Int) throws(DataError) -> (bytes: [UInt8], labels: [Int32]) {
        guard !data.isEmpty, data.count % recordSize == 0 else {
            let whole = (data.count / recordSize + 1) * recordSize
            throw .truncated(name, expectedBytes: whole, actualBytes: data.count)
        }
        let bytes = [UInt8](data)
        let labels = (0..<bytes.count / recordSize).map { Int32(bytes[$0 * recordSize]) }
        try checkLabels(labels, classCount: classCount, file: name)
        return (bytes, labels)
    }
}
