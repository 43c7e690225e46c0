import ArgumentParser
import Foundation
import Net

/// Loads a checkpoint written by `train`, or explains in one line why not.
func loadCheckpoint(_ path: String) throws -> LoadedModel {
    try Sequential.load(contentsOf: path)
}

/// Loads `path` converted to `model`'s input: grayscale for one-channel models and resized to its
/// height when the sizes differ.
func loadData(_ path: String, for model: Sequential) throws -> DataSplits {
    let target = model.inputShape
    var data = try DataLoader.load(path, grayscale: target.channels == 1)
    if let shape = data.shape, shape.height != target.height || shape.width != target.width {
        data = try DataLoader.load(path, grayscale: target.channels == 1, size: target.height)
    }
    guard let shape = data.shape, shape == target else {
        throw ValidationError("\(path) holds \(data.shape?.description ?? "no") images but the model reads \(target)")
    }
    guard data.classNames.count == model.classes else {
        throw ValidationError("\(path) has \(data.classNames.count) classes but the model has \(model.classes)")
    }
    return data
}

/// One split of a data set, or a one-line error when it is missing.
func split(_ data: DataSplits, _ name: Split, path: String) throws -> Dataset {
    guard let set = name == .train ? data.train : data.test, set.count > 0 else {
        throw ValidationError("\(path) has no \(name.rawValue) split")
    }
    return set
}

enum Split: String, ExpressibleByArgument, CaseIterable {
    case train, test
}

/// An image file as a `(1, C, H, W)` tensor in [0, 1], converted to `shape` (grayscale by BT.601 luma,
/// gray to RGB by copying, bilinear resize).
func loadImage(_ path: String, as shape: ImageShape) throws -> Tensor {
    let image = try Image(contentsOfFile: path)
    let bytes = image.planarBytes(shape)
    return Tensor(shape: [1, shape.channels, shape.height, shape.width], data: bytes.map { Float($0) / 255 })
}

/// Prints `text` to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Percent with two decimals.
func percent(_ value: Float) -> String { String(format: "%.2f%%", value * 100) }
