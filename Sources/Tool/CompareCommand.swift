import ArgumentParser
import Foundation
import Net

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Side-by-side table of training runs: model, parameters, accuracies, losses, speed.",
        discussion: "Accuracies are on the test split (best over epochs and final); s/epoch and images/s are training-only means over the epochs.")

    @Argument(help: "Run directories written by `deconvnet train --run`.")
    var runs: [String]

    @Flag(help: "Print a JSON array, one object per run.")
    var json = false

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("give at least one run directory") }
    }

    func run() throws {
        let catalog = ModelCatalog()
        let summaries = try loadRuns(runs).map(catalog.summary)
        if json {
            print(String(decoding: try prettyJSON(summaries), as: UTF8.self))
        } else {
            print(runTable(summaries, columns: RunColumn.comparison).text, terminator: "")
        }
    }
}
