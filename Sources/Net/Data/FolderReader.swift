import Dispatch

/// Images in class folders inside split folders: `DIR/train/<class>/*.{png,jpg,jpeg}` and
/// `DIR/test/<class>/...`, split names in any case (the course's `Train` and `Test` included).
///
/// The classes are the folder names of both splits together: sorted as numbers when every name is a
/// number (format "course-folders"), by name otherwise ("class-folders"). Files within a class are taken
/// in name order and decoded by content, not extension; other files and hidden ones are ignored.
enum FolderReader: DataSetReader {
    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    static func recognises(_ directory: String) -> Bool {
        splitFolders(directory).contains { $0.map { !classFolders($0).isEmpty } ?? false }
    }

    static func load(_ directory: String, conversion: Conversion) throws(DataError) -> DataSplits {
        let splits = splitFolders(directory)
        let folders = splits.map { $0.map(classFolders) ?? [] }
        let numeric = folders.joined().allSatisfy { Int($0) != nil }
        let names = Set(folders.joined()).sorted(by: numeric ? { Int($0)! < Int($1)! } : { $0 < $1 })
        var files: [[String]] = [], labels: [[Int32]] = []
        for (split, classes) in zip(splits, folders) {
            let (splitFiles, splitLabels) = try imageFiles(split, classes: classes, classNames: names)
            files.append(splitFiles)
            labels.append(splitLabels)
        }
        var (shape, pixels) = try decodeAll(Array(files.joined()), conversion: conversion)
        let trainBytes = files[0].count * shape.count
        let testPixels = Array(pixels[trainBytes...])
        pixels.removeSubrange(trainBytes...)  // the train split keeps the buffer instead of a copy
        func dataset(_ split: Int, _ pixels: [UInt8]) -> Dataset? {
            splits[split] == nil ? nil : Dataset(shape: shape, pixels: pixels, labels: labels[split], classNames: names)
        }
        return DataSplits(format: (numeric ? DataFormat.courseFolders : .classFolders).rawValue,
                          train: dataset(0, pixels), test: dataset(1, testPixels))
    }

    /// The train and test folders of `directory` (matched ignoring case), nil where absent.
    private static func splitFolders(_ directory: String) -> [String?] {
        let entries = visibleEntries(directory)
        return ["train", "test"].map { split in
            entries.first { $0.lowercased() == split && isDirectory(joinPath(directory, $0)) }.map { joinPath(directory, $0) }
        }
    }

    /// The names of the subfolders of a split folder.
    private static func classFolders(_ split: String) -> [String] {
        visibleEntries(split).filter { isDirectory(joinPath(split, $0)) }
    }

    /// The image files of a split folder in class order, with their labels: the index in `classNames`
    /// of their folder.
    private static func imageFiles(_ split: String?, classes: [String],
                                   classNames: [String]) throws(DataError) -> ([String], [Int32]) {
        guard let split else { return ([], []) }
        var files: [String] = [], labels: [Int32] = []
        for (label, name) in classNames.enumerated() where classes.contains(name) {
            let classFiles = try imageFiles(joinPath(split, name))
            files += classFiles
            labels += Array(repeating: Int32(label), count: classFiles.count)
        }
        return (files, labels)
    }

    /// The paths of the image files in a class folder, in name order; throws if there are none.
    private static func imageFiles(_ folder: String) throws(DataError) -> [String] {
        let files = visibleEntries(folder).filter { name in
            guard let dot = name.lastIndex(of: ".") else { return false }
            return imageExtensions.contains(name[name.index(after: dot)...].lowercased())
        }
        guard !files.isEmpty else { throw .emptyClassFolder(folder) }
        return files.map { joinPath(folder, $0) }
    }

    /// Decodes `files` in parallel into one `(N, C, H, W)` buffer. The shape is the first image's as
    /// converted by `conversion`, raised to 3 channels if any image is color and `grayscale` is off.
    private static func decodeAll(_ files: [String], conversion: Conversion) throws(DataError) -> (ImageShape, [UInt8]) {
        guard let firstFile = files.first else { return (ImageShape(channels: 1, height: 1, width: 1), []) }
        let first = (file: firstFile, shape: try Image(contentsOfFile: firstFile).shape)
        var target = conversion.target(first.shape)
        var (pixels, needsColor) = try decode(files, to: target, conversion: conversion, first: first)
        if needsColor {
            target.channels = 3
            (pixels, _) = try decode(files, to: target, conversion: conversion, first: first)
        }
        return (target, pixels)
    }

    private enum Outcome {
        case decoded, needsColor, failed(DataError)
    }

    /// One pass of `decodeAll` at a fixed `target` shape; `needsColor` says a color image met a gray target.
    private static func decode(_ files: [String], to target: ImageShape, conversion: Conversion,
                               first: (file: String, shape: ImageShape)) throws(DataError) -> (pixels: [UInt8], needsColor: Bool) {
        try conversion.checkBudget(count: files.count, target: target, name: first.file + " and the other image files")
        var pixels = [UInt8](repeating: 0, count: files.count * target.count)
        var outcomes = [Outcome](repeating: .decoded, count: files.count)
        pixels.withUnsafeMutableBufferPointer { pixels in
            outcomes.withUnsafeMutableBufferPointer { outcomes in
                let (pixelBase, outcomeBase) = (pixels.baseAddress!, outcomes.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: files.count) { i in
                    outcomeBase[i] = decodeOne(files[i], to: target, at: pixelBase + i * target.count,
                                               conversion: conversion, first: first)
                }
            }
        }
        var needsColor = false
        for outcome in outcomes {
            switch outcome {
            case .decoded: break
            case .needsColor: needsColor = true
            case .failed(let error): throw error
            }
        }
        return (pixels, needsColor)
    }

    private static func decodeOne(_ file: String, to target: ImageShape, at destination: UnsafeMutablePointer<UInt8>,
                                  conversion: Conversion, first: (file: String, shape: ImageShape)) -> Outcome {
        let image: Image
        do {
            image = try Image(contentsOfFile: file)
        } catch {
            return .failed(error)
        }
        if conversion.size == nil && (image.height != target.height || image.width != target.width) {
            return .failed(.mixedShapes(first: first.file, first.shape, other: file, image.shape))
        }
        if image.channels > target.channels && !conversion.grayscale { return .needsColor }
        conversion.write(image, target, to: destination)
        return .decoded
    }
}
