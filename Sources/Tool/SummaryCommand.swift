import ArgumentParser
import Foundation
import Net

struct SummaryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary",
        abstract: "Per layer: output shape, parameters and multiply-adds per image; totals.",
        discussion: "A training step costs about three times the forward multiply-adds (forward, weight gradient, input gradient).")

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var inputOptions: InputShapeOptions

    @Option(help: "Number of classes.")
    var classes = 10

    @Option(help: "Describe the model in this checkpoint instead.")
    var checkpoint: String?

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        guard classes > 1 else { throw ValidationError("--classes must be at least 2") }
    }

    func run() throws {
        let model: Sequential
        if let checkpoint {
            model = try Sequential.load(contentsOf: checkpoint).model
        } else {
            let shape = inputOptions.shape(default: modelOptions.defaultInputShape)
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
