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

    @Option(help: ArgumentHelp("PNG to write.", valueName: "file.png"))
    var out: String

    @OptionGroup var memoryOptions: MemoryOptions

    func run() throws {
        let (loaded, projector) = try model.load()
        let conv = projector.featureLayers.lazy.compactMap { loaded.model.layers[$0] as? Conv2D }.first!
        let g = conv.geometry
        let (k, c) = (g.kernelHeight, g.inChannels)
        let scale = tileScale(k, target: 48)
        var tiles: [Canvas] = []
        var captions: [String] = []
        for o in 0..<conv.outChannels {
            let w = Array(UnsafeBufferPointer(start: conv.weight + o * g.patchSize, count: g.patchSize))  // (C, k, k)
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
        let columns = c == 1 || c == 3 ? min(8, tiles.count) : c
        let grid = Grid(wrapping: tiles, captions: captions, columns: columns).render()
        try figure(title: "\(conv.name): \(conv.outChannels) filters \(k)x\(k)" + (c == 3 ? ", RGB" : c == 1 ? "" : ", one tile per input channel"), grid,
                   notes: [Normalization.symmetric.description + (c == 3 ? " (R, G, B scaled together)" : "")])
            .writePNG(to: out)
        print("wrote \(out): \(conv.outChannels) filters of \(conv.name), \(k)x\(k)x\(c)")
    }
}
