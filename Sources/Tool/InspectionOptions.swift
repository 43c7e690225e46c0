import ArgumentParser
import Deconv
import Foundation
import Net

extension ProjectionMethod: ExpressibleByArgument {}
extension ContrastNormalizationProjection: ExpressibleByArgument {}

/// How projections go through the layers that have a choice: `--lrn gradient|skip`.
struct ProjectionOptions: ParsableArguments {
    @Option(name: .customLong("lrn"), help: ArgumentHelp(
        "Through local response normalisation: gradient (its gradient at the forward input, Captum's definition) or skip (the identity, as Zeiler & Fergus).",
        valueName: "gradient|skip"))
    var contrastNormalization: ContrastNormalizationProjection = .gradient

    /// Sets `projector` up as the options say.
    func configure(_ projector: Projector) {
        projector.contrastNormalization = contrastNormalization
    }
}

/// Failures of the inspection commands that are about files and data, not command-line syntax.
enum InspectionError: LocalizedError, Equatable {
    case indexOutOfRange(Int, count: Int, data: String, split: Split)
    case architecturesDiffer(String, String)

    var errorDescription: String? {
        switch self {
        case let .indexOutOfRange(index, count, path, split):
            return "--index \(index) is out of range: the \(split.rawValue) split of \(path) has images 0-\(count - 1)"
        case let .architecturesDiffer(a, b):
            return "\(b) is a different model from \(a); --checkpoints must be snapshots of one model"
        }
    }
}

/// One split of the data set at `path`, converted to `model`'s input as `train` and `eval` do (`loadData`);
/// the other split is not read when it is stored apart.
func loadSplit(_ path: String, _ name: Split, for model: Sequential) throws -> Dataset {
    try split(loadData(path, for: model, splits: name == .train ? .train : .test), name, path: path)
}

/// One input image: `--image FILE`, or `--data D --index K [--split test]`.
struct ImageSource: ParsableArguments {
    @Option(help: ArgumentHelp("A PNG or JPEG image, converted to the model's input shape.", valueName: "file"))
    var image: String?

    @Option(help: ArgumentHelp("A data set directory to take the image from (with --index).", valueName: "dir"))
    var data: String?

    @Option(help: "Index of the image in --data's split.")
    var index: Int?

    @Option(help: "Split of --data: train or test.")
    var split: Split = .test

    func validate() throws {
        guard (image == nil) != (data == nil) else { throw ValidationError("give either --image FILE or --data DIR --index K") }
        if index != nil && data == nil { throw ValidationError("--index needs --data") }
        if let index, index < 0 { throw ValidationError("--index must be 0 or more, not \(index)") }
    }

    /// Throws unless an image is fully specified (commands that read exactly one image call this).
    func requireOne() throws {
        if data != nil && index == nil { throw ValidationError("--data needs --index K") }
    }

    /// The chosen image converted to `model`'s input (`loadImage` for files, `loadData` for data sets),
    /// with a short name for labels, its class when it comes from a data set, and what was converted.
    func load(for model: Sequential) throws -> InputImage {
        let target = model.inputShape
        if let image {
            let (input, original) = try loadImage(image, for: model)
            return InputImage(pixels: input.data, name: (image as NSString).lastPathComponent, label: nil, conversion: conversionNote(original, to: target, preprocessing: model.preprocessing))
        }
        let dataset = try loadSplit(data!, split, for: model)
        let index = index ?? 0
        guard index < dataset.count else { throw InspectionError.indexOutOfRange(index, count: dataset.count, data: data!, split: split) }
        let label = Int(dataset.labels[index])
        return InputImage(pixels: dataset.image(index).data, name: "\(split.rawValue) #\(index) (\(dataset.classNames[label]))", label: label,
                          conversion: "image \(index) of the \(split.rawValue) split of \(data!), read as the model's input \(target.channels)x\(target.height)x\(target.width) (C x H x W), \(model.preprocessing.summary)")
    }
}

/// One input image, ready for the model.
struct InputImage {
    /// `(C, H, W)` in [0, 1], the model's input shape.
    var pixels: [Float]
    var name: String
    /// The true class, for images of a data set.
    var label: Int?
    /// One line: the original shape and what was done to it.
    var conversion: String
}

/// `--position Y,X`: a position in a feature map, row first.
struct Position: ExpressibleByArgument {
    var y: Int, x: Int

    init?(argument: String) {
        let parts = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let y = parts[0], let x = parts[1] else { return nil }
        (self.y, self.x) = (y, x)
    }
}

/// Parses a channel list such as `0-15`, `3` or `0,4,8-11`; nil when malformed.
func parseChannels(_ text: String) -> [Int]? {
    var channels: [Int] = []
    for part in text.split(separator: ",") {
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        switch bounds.count {
        case 1:
            guard let c = bounds[0] else { return nil }
            channels.append(c)
        case 2:
            guard let lo = bounds[0], let hi = bounds[1], lo <= hi else { return nil }
            channels += Array(lo...hi)
        default:
            return nil
        }
    }
    return channels.isEmpty ? nil : channels
}

extension Projector {
    /// Checks that every channel exists in layer `index`; throws `ProjectionError.channelOutOfRange`.
    func validate(channels: [Int], in index: Int) throws {
        for c in channels { try validate(FeatureUnit(channel: c, y: 0, x: 0), in: index) }
    }
}

/// Creates the directory `path` (and its parents) if it is missing.
func makeDirectory(_ path: String) throws {
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw DataError.writeFailed(path, reason: "cannot create the directory: \(fileErrorReason(error))")
    }
}

/// `value` as indented JSON with sorted keys, for files and `--json` output meant to be read.
func prettyJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(value)
}

/// Writes `value` as pretty JSON to `path` atomically.
func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    try writeAtomically(try prettyJSON(value), to: path)
}

/// What `top` and `evolution` search: a split of a data set, a layer and its channels, and the
/// projection method.
struct SearchOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The data set directory.", valueName: "dir"))
    var data: String

    @Option(help: "Split to search: train or test.")
    var split: Split = .train

    @Option(help: "Layer: conv1, pool1, conv2, pool2, ...")
    var layer: String

    @Option(help: ArgumentHelp("Channels, e.g. 0-15 or 0,4,9 (default: all).", valueName: "list"))
    var channels: String?

    @Option(help: "deconvnet, guided or gradient.")
    var method: ProjectionMethod = .deconvnet

    @Option(help: "Search only the first N images of the split.")
    var limit: Int?

    func validate() throws {
        if let channels, parseChannels(channels) == nil { throw ValidationError("--channels '\(channels)' is not a list such as 0-15 or 0,4,9") }
        if let limit, limit < 1 { throw ValidationError("--limit must be positive") }
    }

    /// The chosen channels of layer `index` (all by default), checked against the layer.
    func selectedChannels(_ projector: Projector, layer index: Int) throws -> [Int] {
        let selected = channels.flatMap(parseChannels) ?? Array(0..<projector.shape(of: index)[0])
        try projector.validate(channels: selected, in: index)
        return selected
    }

    /// The split to search, cut to `--limit` images.
    func dataset(for model: Sequential) throws -> Dataset {
        let dataset = try loadSplit(data, split, for: model)
        if let limit, limit < dataset.count { return slice(dataset, 0..<limit) }
        return dataset
    }
}
