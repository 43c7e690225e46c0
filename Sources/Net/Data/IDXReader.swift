/// MNIST-style IDX files in one directory: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally gzip-compressed (`.gz`, told apart by
/// content). Images are `(N, H, W)` unsigned bytes, labels `(N)` unsigned bytes.
enum IDXReader: DataSetReader {
    /// Fashion-MNIST's classes, used when the path contains "fashion".
    static let fashionClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    static func recognises(_ directory: String) -> Bool {
        file(directory, "train", "images", dimensions: 3) != nil || file(directory, "t10k", "images", dimensions: 3) != nil
    }

    static func load(_ directory: String, conversion: Conversion) throws(DataError) -> DataSplits {
        let fashion = directory.lowercased().contains("fashion")
        return DataSplits(format: DataFormat.idx.rawValue,
                          train: try split(directory, "train", fashion: fashion, conversion: conversion),
                          test: try split(directory, "t10k", fashion: fashion, conversion: conversion))
    }

    /// The split whose files start with `prefix`, or nil if its images file is absent.
    private static func split(_ directory: String, _ prefix: String, fashion: Bool,
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
        let pixels = conversion.convertRecords(images.bytes, count: images.shape[0], natural: natural,
                                               offset: images.offset, stride: natural.count)
        let labelValues = labels.bytes[labels.offset..<labels.offset + labels.shape[0]].map { Int32($0) }
        let classCount = max(10, Int(labelValues.max() ?? 0) + 1)
        let names = fashion && classCount == 10 ? fashionClassNames : (0..<classCount).map(String.init)
        return Dataset(shape: conversion.target(natural), pixels: pixels, labels: labelValues, classNames: names)
    }

    /// The path of `<prefix>-<kind>-idx<dimensions>-ubyte`, also spelled `...-<kind>.idx...`, plain or `.gz`.
    private static func file(_ directory: String, _ prefix: String, _ kind: String, dimensions: Int) -> String? {
        let stems = ["\(prefix)-\(kind)-idx\(dimensions)-ubyte", "\(prefix)-\(kind).idx\(dimensions)-ubyte"]
        return stems.flatMap { [$0, $0 + ".gz"] }.map { joinPath(directory, $0) }.first(where: fileExists)
    }

    /// An IDX file of unsigned bytes with `dimensions` dimensions: its sizes, and its (decompressed) bytes
    /// with the data starting at `offset`. Checks the magic number and that the data is all there.
    private static func read(_ path: String, dimensions: Int) throws(DataError) -> (shape: [Int], bytes: [UInt8], offset: Int) {
        let bytes = try gunzipIfNeeded(readFile(path), name: path)
        let offset = 4 + 4 * dimensions
        guard bytes.count >= offset else { throw .truncated(path, expectedBytes: offset, actualBytes: bytes.count) }
        guard bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08, Int(bytes[3]) == dimensions else {
            let magic = bytes[0..<4].map { String($0, radix: 16) }.joined(separator: " ")
            throw .malformed(path, reason: "not an IDX file of unsigned bytes with \(dimensions) dimensions"
                             + " (magic bytes \(magic), expected 0 0 8 \(dimensions))")
        }
        let shape = (0..<dimensions).map { d in bytes[4 + 4 * d..<8 + 4 * d].reduce(0) { $0 << 8 | Int($1) } }
        guard let count = checkedProduct(shape), shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw .malformed(path, reason: "bad dimensions \(shape)")
        }
        guard bytes.count >= offset + count else {
            throw .truncated(path, expectedBytes: offset + count, actualBytes: bytes.count)
        }
        return (shape, bytes, offset)
    }
}
