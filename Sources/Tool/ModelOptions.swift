import ArgumentParser
import Deconv
import Net

extension Activation: ExpressibleByArgument {}
extension Initialization: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension Loss: ExpressibleByArgument {}

/// Which network to build: a preset or a spec string, and its size options.
struct ModelOptions: ParsableArguments {
    @Option(help: "Preset (\(ModelSpec.presetNames.joined(separator: ", "))) or a spec such as 'conv:32:5:same,maxpool:2,fc:128,fc'.")
    var model: String = "lenet5"

    @Option(help: "Convolution kernel size of the lenet5 presets (5 or 3).")
    var kernel: Int = 5

    @Option(help: "Activation after every convolution and hidden dense layer: relu, leaky-relu, tanh, sigmoid.")
    var activation: Activation = .relu

    @Option(help: "Hidden units of the recurrent presets.")
    var hidden: Int = 128

    @Option(help: "Stacked layers of the recurrent presets.")
    var layers: Int = 1

    func validate() throws {
        guard kernel > 0, kernel % 2 == 1 else { throw ValidationError("--kernel must be a positive odd number, not \(kernel)") }
        guard hidden > 0 else { throw ValidationError("--hidden must be positive") }
        guard layers > 0 else { throw ValidationError("--layers must be positive") }
        _ = try spec()
    }

    func spec() throws -> ModelSpec {
        do { return try ModelSpec.preset(model, kernel: kernel, hidden: hidden, layers: layers) } catch let error as ModelError {
            throw ValidationError(error.localizedDescription)
        }
    }

    /// The input shape a preset is made for when no data set says otherwise.
    var defaultInputShape: ImageShape {
        ["lenet5-classic", "zfnet"].contains(model) ? ImageShape(channels: 3, height: 32, width: 32) : ImageShape(channels: 1, height: 28, width: 28)
    }
}

/// `--input CxHxW`: the image shape a model without data is built for (`summary`, `bench train`).
struct InputShapeOptions: ParsableArguments {
    @Option(help: "Input shape CxHxW (default: 1x28x28, or 3x32x32 for lenet5-classic and zfnet).")
    var input: String?

    func validate() throws {
        if let input, InputShapeOptions.parse(input) == nil { throw ValidationError("--input must look like 1x28x28, not '\(input)'") }
    }

    /// The shape `--input` gives, else `shape`.
    func shape(default shape: ImageShape) -> ImageShape { input.flatMap(InputShapeOptions.parse) ?? shape }

    private static func parse(_ text: String) -> ImageShape? {
        let dims = text.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ ($0 ?? 0) > 0 && $0! <= ModelSpec.maximumNumber }) else { return nil }
        return ImageShape(channels: dims[0]!, height: dims[1]!, width: dims[2]!)
    }
}

/// `--checkpoint FILE`: the trained model a command reads.
struct CheckpointOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A checkpoint written by deconvnet (.safetensors).", valueName: "file"))
    var checkpoint: String

    /// The model with its class names and metadata, its parameters fixed for analysis
    /// (`loadForAnalysis`), or a one-line error naming the file.
    func load() throws -> LoadedModel {
        try loadForAnalysis(checkpoint)
    }

    /// The model and a projector on it; throws for unreadable checkpoints and for models without
    /// convolutions (recurrent ones).
    func loadProjector() throws -> (LoadedModel, Projector) {
        let loaded = try load()
        return (loaded, try Projector(model: loaded.model))
    }
}

/// The checkpoint at `path` for the commands that look inside a model and never train it: its
/// parameters are fixed (`Sequential.fixParameters`), so that its Winograd layers transform their
/// filters once instead of on every pass.
func loadForAnalysis(_ path: String) throws -> LoadedModel {
    let loaded = try Sequential.load(contentsOf: path)
    do {
        try loaded.model.fixParameters()
    } catch {
        throw CheckpointError.badModel(path: path, reason: error.localizedDescription)
    }
    return loaded
}
