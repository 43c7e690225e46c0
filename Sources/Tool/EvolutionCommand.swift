import ArgumentParser
import Deconv
import Foundation
import Net

/// `deconvnet evolution`: Zeiler & Fergus's Figure 4 — how each channel's strongest projection changes over training.
struct EvolutionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evolution",
        abstract: "The strongest projection of each channel at each saved epoch: one row per checkpoint, one column per channel.",
        discussion: """
            For every checkpoint, searches the split for the image with the strongest activation of each \
            channel (as 'top' with k 1) and projects it from that position. Writes DIR/evolution.png and \
            DIR/index.json.
            """)

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Checkpoints of one model, in training order.", valueName: "file"))
    var checkpoints: [String]

    @Option(help: ArgumentHelp("The data set directory.", valueName: "dir"))
    var data: String

    @Option(help: "Split to search: train or test.")
    var split: Split = .train

    @Option(help: "Layer: conv1, pool1, conv2, pool2, ...")
    var layer: String

    @Option(help: ArgumentHelp("Channels, e.g. 0-15 or 0,4,9 (default: all).", valueName: "list"))
    var channels: String?

    @Option(help: "deconvnet, guided or gradient.")
    var method: ProjectionMethod = .deconvnet

    @Option(help: "Search only the first N images of the split.")
    var limit: Int?

    @Option(help: ArgumentHelp("Output directory (created if missing).", valueName: "dir"))
    var out: String

    func validate() throws {
        guard !checkpoints.isEmpty else { throw ValidationError("give at least one checkpoint after --checkpoints") }
        if let channels, parseChannels(channels) == nil { throw ValidationError("--channels '\(channels)' is not a list such as 0-15 or 0,4,9") }
        if let limit, limit < 1 { throw ValidationError("--limit must be positive") }
    }

    private struct Row: Encodable {
        var checkpoint: String
        var epoch: Int
        var tiles: [TopActivation]
    }

    func run() throws {
        var rows: [[Canvas?]] = []
        var headers: [String] = []
        var index: [Row] = []
        var dataset: Dataset?
        var selected: [Int] = []
        var first: Sequential?
        for path in checkpoints {
            let loaded = try Sequential.load(contentsOf: path)
            let projector = try Projector(model: loaded.model)
            if let first, first.spec != loaded.model.spec || first.inputShape != loaded.model.inputShape {
                throw InspectionError.architecturesDiffer(checkpoints[0], path)
            }
            let layerIndex = try projector.layerIndex(named: layer)
            if first == nil {
                first = loaded.model
                selected = channels.flatMap(parseChannels) ?? Array(0..<projector.shape(of: layerIndex)[0])
                try projector.validate(channels: selected, in: layerIndex)
                var data = try loadSplit(self.data, split, for: loaded.model)
                if let limit, limit < data.count { data = prefix(data, limit) }
                dataset = data
            }
            let data = dataset!
            let best = projector.topActivations(in: data, layer: layerIndex, channels: selected, k: 1).map { $0[0] }
            let projections = projector.project(best, in: data, layer: layerIndex, method: method)
            let field = projector.receptiveField(of: layerIndex)
            let scale = tileScale(field.size, target: 42)
            rows.append(best.indices.map { ProjectionStyle.tile(projections[$0], shape: data.shape, field: field, unit: best[$0].unit, ProjectionStyle.projection, scale: scale) })
            headers.append("epoch \(loaded.epoch)")
            index.append(Row(checkpoint: path, epoch: loaded.epoch, tiles: best))
            print("\(path) (epoch \(loaded.epoch)): strongest activations \(best.map { formatValue($0.value) }.joined(separator: " "))")
        }
        try makeDirectory(out)
        let grid = Grid(rows: rows, columnHeaders: selected.map(String.init), rowHeaders: headers).render()
        try figure(title: "\(layer): strongest \(method.rawValue) projection per channel over training", grid,
                   notes: ["columns: channels; rows: checkpoints; each tile the receptive field of the strongest activation in the \(split.rawValue) split",
                           ProjectionStyle.notes[0]])
            .writePNG(to: "\(out)/evolution.png")
        try writeJSON(index, to: "\(out)/index.json")
        print("wrote \(out)/evolution.png and \(out)/index.json")
    }
}
