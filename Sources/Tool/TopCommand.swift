import ArgumentParser
import Deconv
import Dispatch
import Foundation
import Net

/// `deconvnet top`: Zeiler & Fergus's Figure 2 for a layer — each channel's strongest images, projected.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "For each channel, the k images that excite it most, projected to pixel space beside their patches.",
        discussion: """
            Forwards the whole split in batches up to the layer, keeps the k strongest images per channel \
            (the maximum over positions), then projects each winner separately from its strongest position \
            (all winners in batches). Writes DIR/channel-NN.png per channel, DIR/overview.png (.svg with --format svg) and \
            DIR/index.json (which image and position each tile came from).
            """)

    @OptionGroup var model: CheckpointOptions

    @OptionGroup var search: SearchOptions

    @OptionGroup var figures: FigureOptions
    @OptionGroup var projection: ProjectionOptions

    @Option(help: "Images per channel.")
    var k: Int = 9


    @Option(name: .customLong("batch-size"), help: "Images per forward pass.")
    var batchSize: Int = 256

    @Option(help: ArgumentHelp("Output directory (created if missing).", valueName: "dir"))
    var out: String

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        guard k > 0 else { throw ValidationError("--k must be positive") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
    }

    func run() throws {
        let (loaded, projector) = try model.loadProjector()
        projection.configure(projector)
        let (layer, method, split) = (search.layer, search.method, search.split)
        let index = try projector.layerIndex(named: layer)
        let selected = try search.selectedChannels(projector, layer: index)
        let dataset = try search.dataset(for: loaded.model)

        let start = DispatchTime.now().uptimeNanoseconds
        let top = projector.topActivations(in: dataset, layer: index, channels: selected, k: k, batchSize: batchSize)
        let searched = DispatchTime.now().uptimeNanoseconds
        let hits = top.flatMap { $0 }
        let projections = projector.project(hits, in: dataset, layer: index, method: method, batchSize: batchSize)
        let done = DispatchTime.now().uptimeNanoseconds
        print(String(format: "%@: top %d of %d %@ images for %d channels in %.2f s (search %.2f s, %d projections %.2f s)",
                     layer, k, dataset.count, split.rawValue, selected.count, Double(done - start) / 1e9,
                     Double(searched - start) / 1e9, hits.count, Double(done - searched) / 1e9))

        try makeDirectory(out)
        let field = projector.receptiveField(of: index)
        let shape = dataset.shape
        var entries: [TopIndex.Channel] = []
        var blocks: [Canvas] = []
        var offset = 0
        for (slot, channel) in selected.enumerated() {
            let mine = top[slot]
            let projected = Array(projections[offset..<offset + mine.count])
            offset += mine.count
            let file = figures.file(String(format: "channel-%02d", channel))
            let images = mine.map { Array(dataset.image($0.image).data) }
            let block = TopBlock(hits: mine, projections: projected, images: images, shape: shape, field: field, labels: mine.map { dataset.classNames[Int(dataset.labels[$0.image])] })
            try figures.write(figure(title: "\(layer) channel \(channel): top \(mine.count) of \(dataset.count) \(split.rawValue) images",
                                     block.render(scale: tileScale(field.size, target: 84) * figures.scale, captions: true),
                                     notes: ProjectionStyle.notes + ["left: \(method.rawValue) projections from each image's strongest position; right: the matching patches; captions: activation, image #index and class"],
                                     extras: [symmetricKey(unit: "projection")]),
                              to: "\(out)/\(file)")
            blocks.append(block.render(scale: tileScale(field.size, target: 28) * figures.scale, captions: false).captioned("channel \(channel)"))
            entries.append(TopIndex.Channel(channel: channel, file: file, tiles: mine.enumerated().map { rank, hit in
                let (row, column) = field.origin(y: hit.unit.y, x: hit.unit.x)
                return TopIndex.Tile(rank: rank, image: hit.image, label: dataset.classNames[Int(dataset.labels[hit.image])],
                                     y: hit.unit.y, x: hit.unit.x, activation: hit.value, cropRow: row, cropColumn: column)
            }))
        }
        let overview = Grid(wrapping: blocks, columns: selected.count > 16 ? 8 : 4).render()
        let overviewFile = figures.file("overview")
        try figures.write(figure(title: "\(layer): top \(k) \(split.rawValue) images per channel, \(method.rawValue) projections beside patches", overview,
                                 notes: ProjectionStyle.notes, extras: [symmetricKey(unit: "projection")]),
                          to: "\(out)/\(overviewFile)")
        try writeJSON(TopIndex(checkpoint: model.checkpoint, data: search.data, split: split.rawValue, layer: layer, method: method.rawValue, k: k,
                               images: dataset.count, receptiveField: field, channels: entries), to: "\(out)/index.json")
        print("wrote \(out)/\(overviewFile), \(selected.count) channel \(figures.format.rawValue.uppercased())s and \(out)/index.json")
    }
}

/// Images `range` of `dataset`, renumbered from 0, with its preprocessing.
func slice(_ dataset: Dataset, _ range: Range<Int>) -> Dataset {
    let n = dataset.shape.count
    var part = Dataset(shape: dataset.shape, pixels: Array(dataset.pixels[range.lowerBound * n..<range.upperBound * n]),
                       labels: Array(dataset.labels[range]), classNames: dataset.classNames)
    part.preprocessing = dataset.preprocessing
    return part
}

/// One channel's winners as two grids side by side: projections (left) and input patches (right),
/// both cropped to the receptive field of the winning position.
struct TopBlock {
    var hits: [TopActivation]
    var projections: [[Float]]
    var images: [[Float]]
    var shape: ImageShape
    var field: ReceptiveField
    var labels: [String]

    func render(scale: Int, captions: Bool) -> Canvas {
        let columns = Int(Double(max(hits.count, 1)).squareRoot().rounded(.up))
        let left = hits.indices.map { ProjectionStyle.tile(projections[$0], shape: shape, field: field, unit: hits[$0].unit, ProjectionStyle.projection, scale: scale) }
        let right = hits.indices.map { ProjectionStyle.tile(images[$0], shape: shape, field: field, unit: hits[$0].unit, ProjectionStyle.pixels, scale: scale) }
        var leftGrid = Grid(wrapping: left, captions: captions ? hits.map { "a=" + formatValue($0.value) } : nil, columns: columns)
        var rightGrid = Grid(wrapping: right, captions: captions ? hits.indices.map { "#\(hits[$0].image) \(labels[$0])" } : nil, columns: columns)
        if !captions { (leftGrid.gap, rightGrid.gap) = (1, 1) }
        return Canvas.row([leftGrid.render(), rightGrid.render()], gap: captions ? 16 : 4)
    }
}

/// `DIR/index.json` of `deconvnet top`: where every tile came from.
struct TopIndex: Encodable {
    struct Tile: Encodable {
        var rank: Int
        /// Index of the image in the split.
        var image: Int
        var label: String
        /// Position of the activation in the layer's feature map.
        var y: Int, x: Int
        var activation: Float
        /// Input row and column of the receptive field's top-left corner (may be negative).
        var cropRow: Int, cropColumn: Int
    }

    struct Channel: Encodable {
        var channel: Int
        var file: String
        var tiles: [Tile]
    }

    var checkpoint: String
    var data: String
    var split: String
    var layer: String
    var method: String
    var k: Int
    var images: Int
    var receptiveField: ReceptiveField
    var channels: [Channel]
}
