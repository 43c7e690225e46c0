import Foundation

/// MNIST-style IDX files in one directory: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally gzip-compressed (`.gz`, told apart by
/// content). Images are `(N, H, W)` unsigned bytes, labels `(N)` unsigned bytes.
///
/// There are 10 classes (MNIST's digits, or Fashion-MNIST's names when the path contains "fashion") unless a
/// `classes.txt` beside the files names them, one per line, in label order. A label outside the classes is
/// an error naming the file and the label's index, not a reason to grow the model.
enum IDXReader: DataSetReader {
    /// Fashion-MNIST's classes, used when the path contains "fashion".
    static let fashionClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    static func recognises(_ directory: String) -> Bool {
        file(directory, "train", "images", dimensions: 3) != nil || file(directory, "t10k", "images", dimensions: 3) != nil
    }

    /// The file that names the classes, one per line, when they are not the 10 digits.
    static let classNamesFile = "classes.txt"

    static func load(_ directory: String, conversion: Conversion) throws(DataError) -> DataSplits {
        let fashion = directory.lowercased().contains("fashion")
        let names = try readClassNames(joinPath(directory, classNamesFile))
            ?? (fashion ? fashionClassNames : (0..<10).map(String.init))
        return DataSplits(format: DataFormat.idx.rawValue,
                          train: conversion.splits.contains(.train) ? try split(directory, "train", classNames: names, conversion: conversion) : nil,
                          test: conversion.splits.contains(.test) ? try split(directory, "t10k", classNames: names, conversion: conversion) : nil)
    }

    /// The split whose files start with `prefix`, or nil if its images file is absent.
    private static func split(_ directory: String, _ prefix: String, classNames names: [String],
                              conversion: Conversion) throws(DataError) -> Dataset? {
        guard let imagesPath = file(directory, prefix, "images", dimensions: 3) else { return nil }
        guard let labelsPath = file(directory, prefix, "labels", dimensions: 1) else {
            throw .malformed(imagesPath, reason: "no matching \(prefix)-labels-idx1-ubyte[.gz] beside it")
        }
        let images = try read(imagesPath, dimensions: 3)
        let labels = try read(labelsPath, dimensions: 1)
        guard images.shape[0] == labels.shape[0] else {
            throw .malformed(labelsPath, reason: "has \(labels.shape[0]) labels but \(imagesPath) has \(images.shape[0]) images")
        }
        let natural = ImageShape(channels: 1, height: images.shape[1], width: images.shape[2])
        let labelValues = labels.bytes[labels.offset..<labels.offset + labels.shape[0]].map { Int32($0) }
        try checkLabels(labelValues, classCount: names.count, file: labelsPath)
        let pixels = try conversion.convertRecords(images.bytes, count: images.shape[0], natural: natural,
                                                   offset: images.offset, stride: natural.count, name: imagesPath)
        return Dataset(shape: conversion.target(natural), pixels: pixels, labels: labelValues, classNames: names)
    }

    /// The path of `<prefix>-<kind>-idx<dimensions>-ubyte`, also spelled `...-<kind>.idx...`, plain or `.gz`.
    private static func file(_ directory: String, _ prefix: String, _ kind: String, dimensions: Int) -> String? {
        let stems = ["\(prefix)-\(kind)-idx\(dimensions)-ubyte", "\(prefix)-\(kind).idx\(dimensions)-ubyte"]
        return stems.flatMap { [$0, $0 + ".gz"] }.map { joinPath(directory, $0) }.first(where: fileExists)
    }

    /// An IDX file of unsigned bytes with `dimensions` dimensions: its sizes, and its (decompressed) bytes
    /// with the data starting at `offset`.
    private static func read(_ path: String, dimensions: Int) throws(DataError) -> IDXArray {
        try parse(readFile(path), name: path, dimensions: dimensions)
    }

    /// Parses the bytes of an IDX file, plain or gzip. Checks the magic number, that the data the header
    /// declares fits `MemoryBudget.current` (before inflating it) and that it is all there; inflates no
    /// more than the header declares. `name` is used in errors.
    static func parse(_ data: Data, name: String, dimensions: Int) throws(DataError) -> IDXArray {
        let offset = 4 + 4 * dimensions
        var shape: [Int] = [], total = 0
        let bytes = try readPrefix(data, name: name, headerSize: offset) { header throws(DataError) -> Int in
            guard header.count >= offset else { throw .truncated(name, expectedBytes: offset, actualBytes: header.count) }
            guard header[0] == 0, header[1] == 0, header[2] == 0x08, Int(header[3]) == dimensions else {
                let magic = header[0..<4].map { String($0, radix: 16) }.joined(separator: " ")
                throw .malformed(name, reason: "not an IDX file of unsigned bytes with \(dimensions) dimensions"
                                 + " (magic bytes \(magic), expected 0 0 8 \(dimensions))")
            }
            shape = (0..<dimensions).map { d in header[4 + 4 * d..<8 + 4 * d].reduce(0) { $0 << 8 | Int($1) } }
            guard let count = checkedProduct(shape), shape.dropFirst().allSatisfy({ $0 > 0 }) else {
                throw .malformed(name, reason: "bad dimensions \(shape)")
            }
            total = offset + count
            do throws(MemoryBudgetError) {
                try MemoryBudget.current.check(total, for: "\(name) (\(shape.map(String.init).joined(separator: "x")) bytes)")
            } catch {
                throw .overBudget(error)
            }
            return total
        }
        guard bytes.count >= total else { throw .truncated(name, expectedBytes: total, actualBytes: bytes.count) }
        return IDXArray(shape: shape, bytes: bytes, offset: offset)
    }
}

/// The sizes and bytes of an IDX file; the data starts at `offset`.
struct IDXArray {
    var shape: [Int]
    var bytes: [UInt8]
    var offset: Int
}
