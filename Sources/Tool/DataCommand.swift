import ArgumentParser
import Foundation
import Net

/// `deconvnet data DIR`: loads a data set as training would and describes it.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Describe a data set: format, splits, classes with counts, image shape.",
        discussion: "Supported layouts (inside the directory):\n" + DataError.supportedLayouts
    )

    @Argument(help: "The data set's directory.")
    var path: String

    @Flag(help: "Convert images to grayscale (ITU-R BT.601 luma).")
    var grayscale = false

    @Option(help: ArgumentHelp("Resize images to N x N (bilinear, half-pixel centres).", valueName: "N"))
    var size: Int?

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        try validateSizeFlag(size)
    }

    func run() throws {
        let start = Date()
        let data = try DataLoader.load(path, grayscale: grayscale, size: size)
        var summary = DataSummary(data, path: path)
        if json {
            print(String(decoding: try prettyJSON(summary), as: UTF8.self))
        } else {
            summary.classNames = summary.classNames.map(printable)
            print(summary)
            print(String(format: "loaded in %.2f s", Date().timeIntervalSince(start)))
        }
    }
}
