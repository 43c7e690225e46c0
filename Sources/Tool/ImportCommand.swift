import ArgumentParser
import Foundation
import Net

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Make a deconvnet checkpoint of a network trained elsewhere: an ONNX model, or a PyTorch state dict (safetensors) with its spec.",
        discussion: """
            deconvnet import model.onnx --out M.safetensors [--classes names.txt] [--mean R,G,B --std R,G,B] [--resize S] [--input CxHxW]
            deconvnet import --state-dict sd.safetensors --model SPEC --input CxHxW --classes names.txt --out M.safetensors
            Nothing is written when the model cannot be imported.
            """)

    @Argument(help: ArgumentHelp("An ONNX model (.onnx); external data files beside it are read.", valueName: "model.onnx"))
    var onnx: String?

    @Option(name: .customLong("state-dict"), help: ArgumentHelp("A PyTorch state_dict saved with safetensors, instead of an ONNX model.", valueName: "file"))
    var stateDict: String?

    @Option(help: "The spec of --state-dict's model, e.g. 'conv:64:11:2:stride=4,maxpool:3:2,…,fc'.")
    var model: String?

    @Option(help: "The model activation of --state-dict's spec.")
    var activation: Activation = .relu

    @Option(help: ArgumentHelp("The input's size, CxHxW; needed when the ONNX input is dynamic, and for --state-dict.", valueName: "CxHxW"))
    var input: String?

    @Option(help: ArgumentHelp("Class names, one a line, in output order (default: 0, 1, …).", valueName: "file"))
    var classes: String?

    @Option(help: ArgumentHelp("Per-channel mean of pixels in [0, 1] that the model subtracts, e.g. 0.485,0.456,0.406 (with --std).", valueName: "R,G,B"))
    var mean: String?

    @Option(help: ArgumentHelp("Per-channel standard deviation the model divides by, e.g. 0.229,0.224,0.225 (with --mean).", valueName: "R,G,B"))
    var std: String?

    @Option(help: ArgumentHelp("torchvision's rule: resize the shorter side to S, then crop the input's size from the centre (default: stretch to the input's size).", valueName: "S"))
    var resize: Int?

    @Option(help: "Where to write the checkpoint.")
    var out: String

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        guard (onnx == nil) != (stateDict == nil) else { throw ValidationError("give either an ONNX model or --state-dict FILE") }
        if stateDict != nil {
            guard model != nil, input != nil, classes != nil else { throw ValidationError("--state-dict needs --model SPEC, --input CxHxW and --classes FILE") }
            _ = try spec()
        } else if model != nil {
            throw ValidationError("--model is for --state-dict; an ONNX model brings its own layers")
        }
        _ = try inputShape()
        _ = try preprocessing()
        if let resize, !(1...ModelSpec.maximumNumber ~= resize) { throw ValidationError("--resize must be from 1 to \(ModelSpec.maximumNumber), not \(resize)") }
    }

    private func spec() throws -> ModelSpec {
        do { return try ModelSpec.preset(model ?? "") } catch let error as ModelError { throw ValidationError(error.localizedDescription) }
    }

    private func inputShape() throws -> ImageShape? {
        guard let input else { return nil }
        let parts = input.split(separator: "x").map { Int($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 != nil && 1...ModelSpec.maximumNumber ~= $0! }) else {
            throw ValidationError("--input must be CxHxW, such as 3x224x224, not '\(input)'")
        }
        return ImageShape(channels: parts[0]!, height: parts[1]!, width: parts[2]!)
    }

    private func preprocessing() throws -> Preprocessing {
        guard (mean == nil) == (std == nil) else { throw ValidationError("--mean and --std go together") }
        func list(_ text: String?, _ flag: String) throws -> [Float] {
            guard let text else { return [] }
            return try text.split(separator: ",", omittingEmptySubsequences: false).map { try finiteNumber(String($0)) }
        }
        let (m, s) = (try list(mean, "--mean"), try list(std, "--std"))
        guard m.count == s.count else { throw ValidationError("--mean has \(m.count) values but --std has \(s.count)") }
        guard s.allSatisfy({ $0 > 0 }) else { throw ValidationError("--std values must be positive") }
        return Preprocessing(resize: resize.map { .shorterSide($0) } ?? .stretch, mean: m, std: s)
    }

    func run() throws {
        let given = try inputShape()
        let imported: ImportedNetwork
        var classNames = try classes.map(readClassFile)
        if let onnx {
            imported = try ONNXImporter.read(onnx, inputShape: given)
        } else {
            imported = try StateDictImporter.read(stateDict!, spec: try spec(), inputShape: given!, classes: classNames!.count, activation: activation)
        }
        if let names = classNames, names.count != imported.classes {
            throw ImportError.classCount(path: classes!, found: names.count, expected: imported.classes)
        }
        let rule = try preprocessing()
        if rule.isNormalized, rule.mean.count != imported.inputShape.channels {
            throw ImportError.inputShape("--mean and --std have \(rule.mean.count) values but the model reads \(imported.inputShape.channels) channels")
        }
        classNames = classNames ?? (0..<imported.classes).map(String.init)
        let network = try imported.model()
        network.preprocessing = rule
        try network.checkpoint(classNames: classNames!, epoch: 0, step: 0, extra: imported.metadata).write(to: out)
        print("wrote \(out): \(network.spec) (activation \(network.activation.rawValue)), input \(network.inputShape.channels)x\(network.inputShape.height)x\(network.inputShape.width), "
              + "\(network.classes) classes, \(network.parameterCount) parameters, from \(imported.metadata[CheckpointKey.source] ?? "?")")
    }

    /// The class names in `path`, one a non-empty line.
    private func readClassFile(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ImportError.badTensor(name: path, reason: "cannot read the class file") }
        let names = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ImportError.classCount(path: path, found: 0, expected: 1) }
        return names
    }
}
