import ArgumentParser
import Deconv
import Foundation
import Net

/// `deconvnet featuremaps`: every feature map of a layer for one or a few images.
struct FeatureMapsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "featuremaps",
        abstract: "Draw every feature map of a layer for one image, or for the first N images of a split.",
        discussion: "All maps of a figure share one colour scale (its minimum to its maximum), shown by a colour bar.")

    @OptionGroup var model: CheckpointOptions
    @OptionGroup var source: ImageSource
    @OptionGroup var figures: FigureOptions

    @Option(help: "Layer: conv1, pool1, conv2, pool2, ...")
    var layer: String

    @Option(help: "Show the first N images of --data's split, one row each (instead of --index).")
    var images: Int?

    @Option(help: ArgumentHelp("PNG (or SVG) to write.", valueName: "file.png"))
    var out: String

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        try figures.validate(out: out)
        if let images {
            guard images > 0 else { throw ValidationError("--images must be positive") }
            guard source.data != nil, source.index == nil else { throw ValidationError("--images N needs --data DIR and no --index") }
        } else {
            try source.requireOne()
        }
    }

    func run() throws {
        let (loaded, projector) = try model.loadProjector()
        let index = try projector.layerIndex(named: layer)
        let shape = loaded.model.inputShape
        var inputs: [[Float]] = []
        var names: [String] = []
        if let images {
            let data = try loadSplit(source.data!, source.split, for: loaded.model)
            for i in 0..<min(images, data.count) {
                inputs.append(data.image(i).data)
                names.append("#\(i) \(data.classNames[Int(data.labels[i])])")
            }
        } else {
            let input = try source.load(for: loaded.model)
            inputs = [input.pixels]
            names = [input.name]
        }
        let batch = inputs.flatMap { $0 }
        batch.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: inputs.count, through: index) }
        let s = projector.shape(of: index)
        let maps = FeatureMapFigure(activations: Array(UnsafeBufferPointer(start: projector.activations(of: index), count: inputs.count * s[0] * s[1] * s[2])),
                                    mapShape: s, inputs: inputs, names: names, inputShape: shape)
        try figures.write(maps.render(title: "\(layer): \(s[0]) feature maps \(s[1])x\(s[2])" + (images == nil ? " for \(names[0])" : " for \(inputs.count) \(source.split.rawValue) images"),
                                      scale: figures.scale),
                          to: out)
        print("wrote \(out): \(s[0]) maps of \(layer) for \(inputs.count) image\(inputs.count == 1 ? "" : "s"), activations \(formatRange(maps.range.lo, maps.range.hi))")
    }
}
