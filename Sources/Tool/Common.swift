import ArgumentParser
import Foundation
import Net

/// Why a command cannot start on the files it was given: a data set, a model and a run directory that
/// do not fit together. These are run-time failures (exit 1), not bad flags (a `ValidationError`, 64).
enum SetupError: LocalizedError, Equatable {
    case imageShape(path: String, found: ImageShape?, expected: ImageShape)
    case classCount(path: String, found: Int, expected: Int)
    case missingSplit(path: String, Split)
    case modelDoesNotFit(model: String, shape: ImageShape, reason: String)
    case runExists(String)

    var errorDescription: String? {
        switch self {
        case let .imageShape(path, found, expected):
            return "\(path) holds \(found?.description ?? "no") images but the model reads \(expected)"
        case let .classCount(path, found, expected):
            return "\(path) has \(found) classes but the model has \(expected)"
        case let .missingSplit(path, split):
            return "\(path) has no \(split.rawValue) split"
        case let .modelDoesNotFit(model, shape, reason):
            return "\(model) on \(shape) images: \(reason)"
        case .runExists(let directory):
            return "\(directory) already holds a run: continue it with --resume \(directory)/checkpoint.safetensors, or choose another --run"
        }
    }
}

/// Loads `path` converted to `model`'s input: grayscale for one-channel models, resized to its
/// height when the sizes differ (or always, by the model's shorter-side rule), and its floats made by
/// the model's `preprocessing`. Only the `splits` asked for are read when the data set keeps them in
/// separate files.
func loadData(_ path: String, for model: Sequential, splits: SplitSelection = .both) throws -> DataSplits {
    let target = model.inputShape
    // resizing to the size images already have changes nothing, so one pass reads and converts
    var data = try DataLoader.load(path, grayscale: target.channels == 1, size: target.height == target.width ? target.height : nil,
                                   resize: model.preprocessing.resize, splits: splits)
    data.train?.preprocessing = model.preprocessing
    data.test?.preprocessing = model.preprocessing
    if data.shape == nil && splits != .both { return data }  // the one split asked for is absent: `split` says so
    guard let shape = data.shape, shape == target else {
        throw SetupError.imageShape(path: path, found: data.shape, expected: target)
    }
    guard data.classNames.count == model.classes else {
        throw SetupError.classCount(path: path, found: data.classNames.count, expected: model.classes)
    }
    return data
}

/// One split of a data set, or a one-line error when it is missing.
func split(_ data: DataSplits, _ name: Split, path: String) throws -> Dataset {
    guard let set = name == .train ? data.train : data.test, set.count > 0 else {
        throw SetupError.missingSplit(path: path, name)
    }
    return set
}

enum Split: String, ExpressibleByArgument, CaseIterable {
    case train, test
}

/// An image file as `model`'s input `(1, C, H, W)` (grayscale by BT.601 luma, gray to RGB by copying,
/// bilinear resize by the model's rule, then its `preprocessing`: pixels / 255, mean and std), and the
/// file's own shape.
func loadImage(_ path: String, for model: Sequential) throws -> (input: Tensor, original: ImageShape) {
    let image = try Image(contentsOfFile: path)
    let shape = model.inputShape
    let bytes = image.planarBytes(shape, resize: model.preprocessing.resize)
    var input = Tensor(zeros: [1, shape.channels, shape.height, shape.width])
    input.data.withUnsafeMutableBufferPointer { out in
        model.preprocessing.floats(bytes, count: 1, shape: shape, into: out.baseAddress!)
    }
    return (input, image.shape)
}

/// What `loadImage` did to an image of shape `original` to make it `target`, in one line.
func conversionNote(_ original: ImageShape, to target: ImageShape, preprocessing: Preprocessing = .standard) -> String {
    func describe(_ s: ImageShape) -> String { "\(s.width)x\(s.height) \(s.channels == 1 ? "gray" : "RGB")" }
    var steps: [String] = []
    if original.channels == 3 && target.channels == 1 { steps.append("BT.601 grayscale (0.299 R + 0.587 G + 0.114 B)") }
    if original.channels == 1 && target.channels == 3 { steps.append("gray copied into R, G and B") }
    if case .shorterSide(let side) = preprocessing.resize {
        steps.append("bilinear resize of the shorter side to \(side), centre crop \(target.width)x\(target.height)")
    } else if original.height != target.height || original.width != target.width {
        steps.append("bilinear resize to \(target.width)x\(target.height)")
    }
    return "\(describe(original)) → " + (steps.isEmpty ? "" : steps.joined(separator: ", ") + " → ")
        + "model input \(target.channels)x\(target.height)x\(target.width) (C x H x W), " + preprocessing.valueSummary
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

/// `path` made absolute against the current directory and standardised (no `.` or `..`), so that a
/// run records where its data is wherever it is resumed from.
func absolutePath(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
}

/// A float flag's value; refuses `nan` and `inf`, which `Float`'s own parser accepts.
func finiteNumber(_ text: String) throws -> Float {
    guard let value = Float(text), value.isFinite else { throw ValidationError("'\(text)' is not a finite number") }
    return value
}

/// `text` with its control characters (terminal escape sequences, carriage returns, newlines, tabs)
/// written as `\x1B`-style escapes: for names read from files (class names) before a terminal shows them.
func printable(_ text: String) -> String {
    var result = ""
    for scalar in text.unicodeScalars {
        if scalar.properties.generalCategory == .control {
            result += String(format: "\\x%02X", scalar.value)
        } else {
            result.unicodeScalars.append(scalar)
        }
    }
    return result
}

/// Percent with two decimals.
func percent(_ value: Float) -> String { String(format: "%.2f%%", value * 100) }
