import ArgumentParser
import Deconv
import Foundation
import Net

/// `deconvnet project`: one activation of one image projected down to pixel space.
struct ProjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "project",
        abstract: "Project one activation down to pixel space (Zeiler & Fergus's deconvnet).",
        discussion: """
            All other activations of the layer are set to zero; going down, each max pooling is undone \
            through the switches of the forward pass, each convolution's activation is crossed by the \
            method's rule, and each convolution is inverted with its transposed (flipped) filters.
              deconvnet  rectify with ReLU(signal), whatever the model's activation (the paper's deconvnet)
              guided     ReLU(signal) times the activation's derivative (guided backpropagation)
              gradient   the activation's true derivative: the exact input gradient (saliency)
            The projection is that of a unit seed; an activation of value a >= 0 projects to a times it. \
            Layer outputs are after their activation (conv2 is conv2's ReLU output).
            """)

    @OptionGroup var model: CheckpointOptions
    @OptionGroup var source: ImageSource
    @OptionGroup var figures: FigureOptions
    @OptionGroup var projection: ProjectionOptions

    @Option(help: "Layer to project from: conv1, pool1, conv2, pool2, ...")
    var layer: String

    @Option(help: "Channel of the layer (default: the one holding the strongest activation).")
    var channel: Int?

    @Option(help: ArgumentHelp("Position in the feature map, row first (default: the strongest in the channel).", valueName: "y,x"))
    var position: Position?

    @Option(help: "deconvnet, guided or gradient.")
    var method: ProjectionMethod = .deconvnet

    @Option(help: ArgumentHelp("PNG (or SVG) to write: the projection, the input and the receptive-field crops.", valueName: "file.png"))
    var out: String

    @Option(help: ArgumentHelp("Also write the raw projection as float32 .npy, shape [C, H, W] of the input.", valueName: "file.npy"))
    var npy: String?

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        try source.requireOne()
        try figures.validate(out: out)
    }

    func run() throws {
        let (loaded, projector) = try model.loadProjector()
        projection.configure(projector)
        let index = try projector.layerIndex(named: layer)
        if let channel { try projector.validate(channels: [channel], in: index) }
        if let position { try projector.validate(FeatureUnit(channel: channel ?? 0, y: position.y, x: position.x), in: index) }
        let shape = loaded.model.inputShape
        let input = try source.load(for: loaded.model)
        let (pixels, name) = (input.pixels, input.name)
        var projection = [Float](repeating: 0, count: shape.count)
        let at = position.map { (y: $0.y, x: $0.x) }
        pixels.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: index, at: at) }
        let unit = projector.unit(in: index, image: 0, channel: channel, position: at)
        let value = projector.value(of: unit, in: index, image: 0)
        projection.withUnsafeMutableBufferPointer { projector.project([unit], from: index, method: method, into: $0.baseAddress!) }

        let field = projector.receptiveField(of: index)
        let (row, column) = field.origin(y: unit.y, x: unit.x)
        let how = switch (channel, position) {
        case (nil, nil): "strongest in the layer"
        case (nil, _): "strongest channel at that position"
        case (_, nil): "strongest in channel \(unit.channel)"
        default: "as asked"
        }
        print(printable("\(layer) channel \(unit.channel) at y=\(unit.y), x=\(unit.x): activation \(formatValue(value)) (\(how)) for \(name)"))
        print("receptive field \(field.size)x\(field.size) at rows \(row)...\(row + field.size - 1), columns \(column)...\(column + field.size - 1)")

        try figures.write(render(projection, pixels, shape: shape, field: field, unit: unit, value: value, name: name), to: out)
        print("wrote \(out) (\(method.rawValue) projection of a unit seed)")
        if let npy {
            try writeNpy(Tensor(shape: [shape.channels, shape.height, shape.width], data: projection), to: npy)
            print("wrote \(npy) (float32 [\(shape.channels), \(shape.height), \(shape.width)])")
        }
    }

    private func render(_ projection: [Float], _ pixels: [Float], shape: ImageShape, field: ReceptiveField, unit: FeatureUnit, value: Float, name: String) -> Canvas {
        let scale = tileScale(max(shape.height, shape.width), target: 168) * figures.scale
        let (row, column) = field.origin(y: unit.y, x: unit.x)
        func boxed(_ values: [Float], _ normalization: Normalization) -> Canvas {
            var t = ProjectionStyle.tile(values, shape: shape, field: nil, unit: unit, normalization, scale: scale)
            t.outline(x: column * scale - 1, y: row * scale - 1, width: field.size * scale + 2, height: field.size * scale + 2, .highlight, thickness: 1)
            return t
        }
        let cropScale = tileScale(field.size, target: 168) * figures.scale
        let panels = Canvas.panels([
            (boxed(projection, ProjectionStyle.projection), "\(method.rawValue) projection"),
            (boxed(pixels, ProjectionStyle.pixels), "input: \(name)"),
            (ProjectionStyle.tile(projection, shape: shape, field: field, unit: unit, ProjectionStyle.projection, scale: cropScale), "projection, receptive field"),
            (ProjectionStyle.tile(pixels, shape: shape, field: field, unit: unit, ProjectionStyle.pixels, scale: cropScale), "input, receptive field \(field.size)x\(field.size)"),
        ])
        return figure(title: "\(layer) channel \(unit.channel) at (\(unit.y), \(unit.x)): activation \(formatValue(value))", panels,
                      notes: ProjectionStyle.notes + ["red box: receptive field, rows \(row)-\(row + field.size - 1), columns \(column)-\(column + field.size - 1)"],
                      extras: [symmetricKey(unit: "projection")])
    }
}

extension Projector {
    /// The unit of image `image` of the last forward pass that a request names in layer `index`: `channel`
    /// at `position`, with the strongest position of the channel, the strongest channel at the position,
    /// or the strongest unit of the layer filling in what is nil (ties to the first). `project` and
    /// `explore` choose by this one rule.
    func unit(in index: Int, image: Int, channel: Int?, position: (y: Int, x: Int)?) -> FeatureUnit {
        guard let position else { return strongest(in: index, image: image, channel: channel).unit }
        if let channel { return FeatureUnit(channel: channel, y: position.y, x: position.x) }
        let best = (0..<shape(of: index)[0]).max { a, b in
            value(of: FeatureUnit(channel: a, y: position.y, x: position.x), in: index, image: image)
                < value(of: FeatureUnit(channel: b, y: position.y, x: position.x), in: index, image: image)
        }!
        return FeatureUnit(channel: best, y: position.y, x: position.x)
    }
}
