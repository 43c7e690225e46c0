import ArgumentParser
import Deconv
import Foundation
import Net

/// `deconvnet filters`: the first convolution's filters as a grid of tiles.
struct FiltersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filters",
        abstract: "Draw the first layer's convolution filters as a grid (in colour for RGB inputs).")

    @OptionGroup var model: CheckpointOptions
    @OptionGroup var figures: FigureOptions

    @Option(help: ArgumentHelp("PNG (or SVG) to write.", valueName: "file.png"))
    var out: String

    func validate() throws {
        try figures.validate(out: out)
    }
    @OptionGroup var memoryOptions: MemoryOptions

    func run() throws {
        let (loaded, projector) = try model.loadProjector()
        let conv = projector.featureLayers.lazy.map { loaded.model.layers[$0] }.first { $0.isConvolution }!
        let (view, weight) = loaded.model.parameter(named: "\(conv.name).weight")!  // (O, C, k, k)
        let (outChannels, c, k) = (view.shape[0], view.shape[1], view.shape[2])
        let patch = c * k * k
        let scale = tileScale(k, target: 48) * figures.scale
        var tiles: [Canvas] = []
        var captions: [String] = []
        for o in 0..<outChannels {
            let w = Array(weight[o * patch..<(o + 1) * patch])  // (C, k, k)
            if c == 3 {
                tiles.append(tile(w, channels: 3, height: k, width: k, .symmetric, scale: scale))
                captions.append("\(o)")
            } else {
                for ch in 0..<c {
                    tiles.append(tile(Array(w[ch * k * k..<(ch + 1) * k * k]), channels: 1, height: k, width: k, .symmetric, scale: scale))
                    captions.append(c == 1 ? "\(o)" : "\(o).\(ch)")
                }
            }
        }
        let columns = c == 1 || c == 3 ? min(tiles.count > 64 ? 16 : 8, tiles.count) : c
        let grid = Grid(wrapping: tiles, captions: captions, columns: columns).render()
        try figures.write(figure(title: "\(conv.name): \(outChannels) filters \(k)x\(k)" + (c == 3 ? ", RGB" : c == 1 ? "" : ", one tile per input channel"), grid,
                                 notes: [Normalization.symmetric.description + (c == 3 ? " (R, G, B scaled together)" : "")],
                                 extras: c == 3 ? [] : [symmetricKey(unit: "weight")]),
                          to: out)
        print("wrote \(out): \(outChannels) filters of \(conv.name), \(k)x\(k)x\(c)")
    }
}
