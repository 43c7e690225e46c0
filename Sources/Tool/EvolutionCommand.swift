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
            channel (as 'top' with k 1) and projects it from that position. Writes DIR/evolution.png (.svg with --format svg) and \
            DIR/index.json.
            """)

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Checkpoints of one model, in training order.", valueName: "file"))
    var checkpoints: [String]

    @OptionGroup var search: SearchOptions

    @OptionGroup var figures: FigureOptions
    @OptionGroup var projection: ProjectionOptions


    @Option(help: ArgumentHelp("Output directory (created if missing).", valueName: "dir"))
    var out: String

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        guard !checkpoints.isEmpty else { throw ValidationError("give at least one checkpoint after --checkpoints") }
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
            let loaded = try loadForAnalysis(path)
            let projector = try Projector(model: loaded.model)
            projection.configure(projector)
            if let first, first.spec != loaded.model.spec || first.inputShape != loaded.model.inputShape {
                throw InspectionError.architecturesDiffer(checkpoints[0], path)
            }
            let layerIndex = try projector.layerIndex(named: search.layer)
            if first == nil {
                first = loaded.model
                selected = try search.selectedChannels(projector, layer: layerIndex)
                dataset = try search.dataset(for: loaded.model)
            }
            let data = dataset!
            let best = projector.topActivations(in: data, layer: layerIndex, channels: selected, k: 1).map { $0[0] }
            let projections = projector.project(best, in: data, layer: layerIndex, method: search.method)
            let field = projector.receptiveField(of: layerIndex)
            let scale = tileScale(field.size, target: 42) * figures.scale
            rows.append(best.indices.map { ProjectionStyle.tile(projections[$0], shape: data.shape, field: field, unit: best[$0].unit, ProjectionStyle.projection, scale: scale) })
            headers.append("epoch \(loaded.epoch)")
            index.append(Row(checkpoint: path, epoch: loaded.epoch, tiles: best))
            print("\(path) (epoch \(loaded.epoch)): strongest activations \(best.map { formatValue($0.value) }.joined(separator: " "))")
        }
        try makeDirectory(out)
        let grid = Grid(rows: rows, columnHeaders: selected.map(String.init), rowHeaders: headers).render()
        let file = figures.file("evolution")
        try figures.write(figure(title: "\(search.layer): strongest \(search.method.rawValue) projection per channel over training", grid,
                                 notes: ["columns: channels; rows: checkpoints; each tile the receptive field of the strongest activation in the \(search.split.rawValue) split",
                                         ProjectionStyle.notes[0]], extras: [symmetricKey(unit: "projection")]),
                          to: "\(out)/\(file)")
        try writeJSON(index, to: "\(out)/index.json")
        print("wrote \(out)/\(file) and \(out)/index.json")
    }
}
