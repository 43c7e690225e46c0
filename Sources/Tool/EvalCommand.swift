import ArgumentParser
import Foundation
import Net

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Loss and accuracy of a checkpoint on a data set.")

    @OptionGroup var checkpoint: CheckpointOptions

    @Option(help: "Data set directory.")
    var data: String

    @Option(help: "Split: test or train.")
    var split: Split = .test

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var memoryOptions: MemoryOptions

    func run() throws {
        let loaded = try checkpoint.load()
        let splits = try loadData(data, for: loaded.model)
        let set = try Tool.split(splits, split, path: data)
        let result = loaded.model.evaluate(set)
        if json {
            print(jsonString(result))
            return
        }
        print("\(set.count) \(split.rawValue) images: loss \(String(format: "%.4f", result.loss)), accuracy \(percent(result.accuracy))")
        for (name, accuracy) in zip(loaded.classNames, result.perClassAccuracy) {
            print(printable("  \(name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(percent(accuracy))"))
        }
    }
}

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Class probabilities for one PNG or JPEG image, converted to the model's channels and size.")

    @OptionGroup var checkpoint: CheckpointOptions

    @Option(help: "A PNG or JPEG file of any size, gray or color.")
    var image: String

    @Option(help: "How many classes to list.")
    var top = 5

    @Flag(help: "Print JSON with every class's probability.")
    var json = false

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1, not \(top)") }
    }
    @OptionGroup var memoryOptions: MemoryOptions

    func run() throws {
        let loaded = try checkpoint.load()
        let model = loaded.model
        let probabilities = classProbabilities(model, try loadImage(image, for: model).input.data)
        let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }
        if json {
            struct Prediction: Encodable { var predicted: String; var index: Int; var probabilities: [String: Float] }
            print(jsonString(Prediction(predicted: loaded.classNames[ranked[0]], index: ranked[0],
                                        probabilities: Dictionary(uniqueKeysWithValues: zip(loaded.classNames, probabilities)))))
            return
        }
        for i in ranked.prefix(top) {
            print(printable("\(loaded.classNames[i].padding(toLength: 14, withPad: " ", startingAt: 0)) \(String(format: "%.4f", probabilities[i]))"))
        }
    }
}
