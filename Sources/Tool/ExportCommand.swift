import ArgumentParser
import Foundation
import Net

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Copy a checkpoint without its optimizer state (a third of the size; cannot be resumed).")

    @OptionGroup var checkpoint: CheckpointOptions

    @Option(help: "Where to write the weights-only checkpoint.")
    var out: String

    @OptionGroup var memoryOptions: MemoryOptions

    func run() throws {
        // loaded as a model to check it, but not fixed for analysis: nothing here runs it
        let loaded = try Sequential.load(contentsOf: checkpoint.checkpoint)
        // the model's tensors and all the metadata but the optimizer's
        var exported = loaded.model.checkpoint(classNames: loaded.classNames, epoch: loaded.epoch, step: loaded.step, extra: loaded.checkpoint.metadata)
        for key in [CheckpointKey.optimizer, CheckpointKey.optimizerSteps] { exported.metadata[key] = nil }
        try exported.write(to: out)
        print("\(out): \(exported.tensors.count) tensors, \(loaded.model.parameterCount) parameters")
    }
}
