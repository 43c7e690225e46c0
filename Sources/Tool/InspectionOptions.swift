import ArgumentParser
import Deconv
import Foundation
import Net

extension ProjectionMethod: ExpressibleByArgument {}

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

/// `--checkpoint C`: a model to look inside, with a projector over it.
struct CheckpointOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A checkpoint written by deconvnet (.safetensors).", valueName: "file"))
    var checkpoint: String

    /// The model and a projector on it; throws for unreadable checkpoints and for models without
    /// convolutions (recurrent ones).
    func load() throws -> (LoadedModel, Projector) {
        let loaded = try Sequential.load(contentsOf: checkpoint)
        return (loaded, try Projector(model: loaded.model))
    }
}

/// One split of the data set at `path`, converted to `model`'s input as `train` and `eval` do (`loadData`).
func loadSplit(_ path: String, _ name: Split, for model: Sequential) throws -> Dataset {
    try split(loadData(path, for: model), name, path: path)
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

    /// The chosen image as `(C, H, W)` floats in [0, 1] for `model`'s input, and a short name for labels.
    func load(for model: Sequential) throws -> (pixels: [Float], name: String) {
        if let image {
            return (try loadImage(image, as: model.inputShape).data, (image as NSString).lastPathComponent)
        }
        let dataset = try loadSplit(data!, split, for: model)
        let index = index ?? 0
        guard index < dataset.count else { throw InspectionError.indexOutOfRange(index, count: dataset.count, data: data!, split: split) }
        return (dataset.image(index).data, "\(split.rawValue) #\(index) (\(dataset.classNames[Int(dataset.labels[index])]))")
    }
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
        throw DataError.writeFailed(path, reason: "cannot create the directory")
    }
}

/// Writes `value` as pretty JSON to `path` atomically.
func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try writeAtomically(try encoder.encode(value), to: path)
}
