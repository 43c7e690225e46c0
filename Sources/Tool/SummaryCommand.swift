import ArgumentParser
import Foundation
import Net

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Per layer: output shape, parameters and multiply-adds per image; totals.",
        discussion: "A training step costs about three times the forward multiply-adds (forward, weight gradient, input gradient).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Input shape CxHxW (default: 1x28x28, or 3x32x32 for lenet5-classic).")
    var input: String?

    @Option(help: "Number of classes.")
    var classes = 10

    @Option(help: "Describe the model in this checkpoint instead.")
    var checkpoint: String?

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        if let input, parseShape(input) == nil { throw ValidationError("--input must look like 1x28x28, not '\(input)'") }
        guard classes > 1 else { throw ValidationError("--classes must be at least 2") }
    }

    private func parseShape(_ text: String) -> ImageShape? {
        let dims = text.split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else { return nil }
        return ImageShape(channels: dims[0], height: dims[1], width: dims[2])
    }

    func run() throws {
        let model: Sequential
        if let checkpoint {
            model = try Sequential.load(contentsOf: checkpoint).model
        } else {
            let shape = input.flatMap(parseShape) ?? modelOptions.defaultInputShape
            do {
                model = try Sequential(spec: try modelOptions.spec(), inputShape: shape, classes: classes, activation: modelOptions.activation)
            } catch let error as ModelError {
                throw ValidationError(error.localizedDescription)
            }
        }
        print("model \(model.spec)\(model.usesActivation ? "  activation \(model.activation.rawValue)" : "")  input \(model.inputShape)")
        print(layerTable(model).text, terminator: "")
        let macs = model.layers.reduce(0) { $0 + $1.multiplyAdds }
        print(String(format: "forward %.1f MFLOP per image, training step about %.1f MFLOP per image", Double(2 * macs) / 1e6, Double(6 * macs) / 1e6))
    }
}
