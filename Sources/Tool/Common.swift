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
    // resizing to the size images already have changes nothing, so one pass reads and converts
    let data = try DataLoader.load(path, grayscale: target.channels == 1, size: target.height == target.width ? target.height : nil)
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
/// gray to RGB by copying, bilinear resize), and the file's own shape.
func loadImage(_ path: String, as shape: ImageShape) throws -> (input: Tensor, original: ImageShape) {
    let image = try Image(contentsOfFile: path)
    let bytes = image.planarBytes(shape)
    return (Tensor(shape: [1, shape.channels, shape.height, shape.width], data: bytes.map { Float($0) / 255 }), image.shape)
}

/// What `loadImage` did to an image of shape `original` to make it `target`, in one line.
func conversionNote(_ original: ImageShape, to target: ImageShape) -> String {
    func describe(_ s: ImageShape) -> String { "\(s.width)x\(s.height) \(s.channels == 1 ? "gray" : "RGB")" }
    var steps: [String] = []
    if original.channels == 3 && target.channels == 1 { steps.append("BT.601 grayscale (0.299 R + 0.587 G + 0.114 B)") }
    if original.channels == 1 && target.channels == 3 { steps.append("gray copied into R, G and B") }
    if original.height != target.height || original.width != target.width { steps.append("bilinear resize to \(target.width)x\(target.height)") }
    return "\(describe(original)) → " + (steps.isEmpty ? "" : steps.joined(separator: ", ") + " → ")
        + "model input \(target.channels)x\(target.height)x\(target.width) (C x H x W), pixels / 255"
}

/// Softmax probabilities `(classes)` of `model` for one image `(C, H, W)` in [0, 1].
func classProbabilities(_ model: Sequential, _ pixels: [Float]) -> [Float] {
    let record = ForwardRecord(model)
    return pixels.withUnsafeBufferPointer { x in
        softmax(Array(UnsafeBufferPointer(start: model.forward(x.baseAddress!, batch: 1, training: false, into: record), count: model.classes)))
    }
}

/// Prints `text` to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Percent with two decimals.
func percent(_ value: Float) -> String { String(format: "%.2f%%", value * 100) }
