import ArgumentParser
import Foundation
import Net

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report of one or more training runs.",
        discussion: """
        Writes OUT/index.html, one self-contained page (inline SVG charts, images embedded, no network): \
        loss, accuracy, learning rate and timing against epochs (and steps), activation statistics per \
        layer, the first-layer filter strip, the model's layers, and a sortable table of final and best \
        metrics with the best run (by best test accuracy) starred. Above \(ReportPage.overlayLimit) runs \
        each run gets its own small chart instead of one colour in a shared chart.
        """)

    @Argument(help: "Run directories written by `deconvnet train --run`.")
    var runs: [String]

    @Option(help: "Output directory for index.html.")
    var out: String

    @Option(help: "Page title.")
    var title: String?

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("give at least one run directory") }
    }

    func run() throws {
        let records = try loadRuns(runs)
        let path = try writeReport(ReportPage(runs: records, title: title), to: out)
        print("report of \(records.count) run\(records.count == 1 ? "" : "s"): \(path)")
    }
}

/// Reads run directories, named by their last path component (two when those repeat); prints each
/// run's warnings (torn lines it skipped) on stderr.
func loadRuns(_ paths: [String]) throws -> [RunRecord] {
    let records = try zip(paths, runNames(paths)).map { try RunRecord.load($0, name: $1) }
    for warning in records.flatMap(\.warnings) { printError(warning) }
    return records
}

/// Writes `page` to `directory/index.html` atomically, creating the directory; returns the file's path.
@discardableResult
func writeReport(_ page: ReportPage, to directory: String) throws -> String {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = directory + "/index.html"
    try writeAtomically(Data(page.html.utf8), to: path)
    return path
}
