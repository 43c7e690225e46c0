import ArgumentParser
import Deconv
import Foundation
import Net
import Occlusion

/// `deconvnet inspect`: one page showing what a network makes of one image.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Write DIR/index.html: one image through the network, from prediction to projections.",
        discussion: """
            The page (it opens from disk; no network) shows the image as the network sees it and how it was \
            converted, the top-5 class probabilities, occlusion maps of the predicted and the true class \
            (true class from --data; an --image has no label), the deconvnet, guided-backprop and gradient \
            projections of the strongest feature maps of the last convolution, the gradient saliency of the \
            predicted class's logit, and the last convolution's feature maps. Every picture is a PNG in DIR. \
            Recurrent models have no convolution: their page has the prediction, the occlusion maps and the \
            saliency.
            """)

    @OptionGroup var model: CheckpointOptions
    @OptionGroup var source: ImageSource

    @Option(help: "How many of the last convolution's feature maps to project (those with the largest activations).")
    var features = 8

    @Option(help: "Occluder side in pixels (default: 8, at most half the image side).")
    var window: Int?

    @Option(help: "Pixels between occluder positions.")
    var stride = 1

    @Option(help: ArgumentHelp("Directory for index.html and its PNGs (created if missing).", valueName: "dir"))
    var out: String

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        try source.requireOne()
        guard features >= 1 else { throw ValidationError("--features must be at least 1, not \(features)") }
        if let window, window < 1 { throw ValidationError("--window must be at least 1, not \(window)") }
        guard stride >= 1 else { throw ValidationError("--stride must be at least 1, not \(stride)") }
    }

    func run() throws {
        let checkpoint = self.model.checkpoint
        let loaded = try loadCheckpoint(checkpoint)  // not CheckpointOptions.load: recurrent models get a page too
        let model = loaded.model
        let shape = model.inputShape
        let input = try source.load(for: model)
        func name(_ c: Int) -> String {
            guard c < loaded.classNames.count, loaded.classNames[c] != "\(c)" else { return "class \(c)" }
            return "\(c) \(loaded.classNames[c])"
        }
        let probabilities = classProbabilities(model, input.pixels)
        let predicted = argmax(probabilities)
        try makeDirectory(out)

        var page = InspectPage(title: "\(input.name) through \((checkpoint as NSString).lastPathComponent)",
                               lead: "model \(model.spec.description)\(model.usesActivation ? " (\(model.activation.rawValue))" : ""), input \(shape.channels)x\(shape.height)x\(shape.width), \(model.classes) classes")
        let scale = OcclusionStyle.imageScale(shape)
        page.section("Input", try picture(tile(input.pixels, channels: shape.channels, height: shape.height, width: shape.width, .range(0, 1), scale: scale), "input.png",
                                          "\(input.name) as the network sees it, upscaled \(scale)x (nearest neighbour); pixels on their fixed range, 0 black to 1 white")
                     + InspectPage.note("Conversion: " + input.conversion + "."))

        var verdict = "Predicted: \(name(predicted)), p = \(String(format: "%.4f", probabilities[predicted])). "
        if let label = input.label {
            verdict += "True class: \(name(label)), p = \(String(format: "%.4f", probabilities[label])): " + (label == predicted ? "correct." : "wrong.")
        } else {
            verdict += "No true class: an --image file has no label (use --data DIR --index K for a labelled image)."
        }
        page.section("Prediction", InspectPage.note(verdict) + InspectPage.probabilityTable(probabilities, name: name, count: 5, label: input.label))

        page.section("Occlusion", try occlusion(model, input, predicted: predicted, name: name))

        if let projector = try? Projector(model: model), let layer = projector.featureLayers.last(where: { model.layers[$0] is Conv2D }) {
            let (projections, maps) = try convolutionSections(projector, layer: layer, input)
            page.section("Projections of the strongest features", projections)
            page.section("Saliency", try saliency(model, input, predicted: predicted, name: name))
            page.section("Feature maps", maps)
        } else {
            let why = InspectPage.note(ProjectionError.noConvolution(spec: model.spec.description).localizedDescription + ".")
            page.section("Projections of the strongest features", why)
            page.section("Saliency", try saliency(model, input, predicted: predicted, name: name))
            page.section("Feature maps", why)
        }
        try writeAtomically(Array(page.html.utf8), to: "\(out)/index.html")
        print("\(input.name): predicted \(name(predicted)) (p = \(String(format: "%.4f", probabilities[predicted])))" + (input.label.map { ", true class \(name($0))" } ?? ""))
        print("wrote \(out)/index.html")
    }

    /// Writes `canvas` as `DIR/file` and returns its `<figure>`.
    private func picture(_ canvas: Canvas, _ file: String, _ caption: String) throws -> String {
        try canvas.writePNG(to: "\(out)/\(file)")
        return InspectPage.figure(file, width: canvas.width, height: canvas.height, caption: caption)
    }

    /// Class-score occlusion maps for the predicted class and, when known and different, the true one.
    private func occlusion(_ model: Sequential, _ input: InputImage, predicted: Int, name: (Int) -> String) throws -> String {
        let shape = model.inputShape
        var options = OcclusionOptions()
        options.window = window ?? max(1, min(8, min(shape.height, shape.width) / 2))
        options.stride = stride
        let sweep = OcclusionSweep(model: model)
        var targets = [(predicted, "predicted")]
        if let label = input.label, label != predicted { targets.append((label, "true")) }
        var html = ""
        for (target, role) in targets {
            options.target = target
            let maps = try sweep.run(input.pixels, label: input.label, options: options)
            let (lo, hi) = (maps.classScore.min()!, maps.classScore.max()!)
            html += try picture(OcclusionStyle.classScoreFigure(maps, input.pixels, targetName: name(target)), "occlusion-\(role).png",
                                "Occlusion, \(role) class \(name(target)): its probability with a gray (0.5) \(options.window)x\(options.window) square at each position (stride \(options.stride)); heat scale from the map's min \(formatValue(lo)) to max \(formatValue(hi)), lowest position outlined in red")
        }
        if input.label == nil {
            html += InspectPage.note("No true-class map: an --image file has no label.")
        } else if input.label == predicted {
            html += InspectPage.note("The true class is the predicted class, so its map is the one above.")
        }
        return html
    }

    /// The projections of the last convolution's strongest feature maps by the three methods, and its
    /// feature maps.
    private func convolutionSections(_ projector: Projector, layer: Int, _ input: InputImage) throws -> (projections: String, maps: String) {
        let shape = projector.model.inputShape
        let layerName = projector.model.layers[layer].name
        let s = projector.shape(of: layer)
        input.pixels.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: layer) }
        let maps = FeatureMapFigure(activations: Array(UnsafeBufferPointer(start: projector.activations(of: layer), count: s[0] * s[1] * s[2])),
                                    mapShape: s, inputs: [input.pixels], names: [input.name], inputShape: shape)
        let strongest = (0..<s[0]).map { projector.strongest(in: layer, image: 0, channel: $0) }
            .sorted { $0.value > $1.value }.prefix(features)
        let units = strongest.map(\.unit)

        let n = units.count
        let batch = Array([[Float]](repeating: input.pixels, count: n).joined())
        var projected = [Float](repeating: 0, count: n * shape.count)
        let scale = tileScale(max(shape.height, shape.width), target: 84)
        var rows: [[Canvas?]] = []
        for method in ProjectionMethod.allCases {
            batch.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: n, through: layer) }
            projected.withUnsafeMutableBufferPointer { projector.project(units, from: layer, method: method, into: $0.baseAddress!) }
            rows.append(units.indices.map { b in
                ProjectionStyle.tile(Array(projected[b * shape.count..<(b + 1) * shape.count]), shape: shape, field: nil, unit: units[b], ProjectionStyle.projection, scale: scale)
            })
        }
        let grid = Grid(rows: rows, columnHeaders: strongest.map { "ch \($0.unit.channel)" }, rowHeaders: ProjectionMethod.allCases.map(\.rawValue)).render()
        let body = Canvas.row([ProjectionStyle.tile(input.pixels, shape: shape, field: nil, unit: units[0], ProjectionStyle.pixels, scale: scale).captioned("input"), grid], gap: 16)
        let figure = Tool.figure(title: "\(layerName): the \(n) strongest of \(s[0]) feature maps, projected to pixel space", body, notes: ProjectionStyle.notes + [
            "columns: channels by their largest activation (" + strongest.map { "\($0.unit.channel): \(formatValue($0.value)) at (\($0.unit.y), \($0.unit.x))" }.joined(separator: ", ") + ")",
            "rows: deconvnet (ReLU of the signal), guided (also masked by the forward activation), gradient (the exact input gradient)",
        ])
        let projections = try picture(figure, "projections.png",
                                      "\(layerName): deconvnet, guided-backprop and gradient projections of the \(n) feature maps with the largest activations, each from its strongest position (unit seed); each tile scaled symmetrically, 0 = mid-gray")
        let (lo, hi) = maps.range
        let mapsHTML = try picture(maps.render(title: "\(layerName): \(s[0]) feature maps \(s[1])x\(s[2]) for \(input.name)"), "featuremaps.png",
                                   "\(layerName): all \(s[0]) feature maps (after the activation), heat colours on one scale for all maps from \(formatValue(lo)) to \(formatValue(hi)) (colour bar)")
        return (projections, mapsHTML)
    }

    /// The gradient of the predicted class's logit with respect to the input (Simonyan et al.'s saliency).
    private func saliency(_ model: Sequential, _ input: InputImage, predicted: Int, name: (Int) -> String) throws -> String {
        let shape = model.inputShape
        let gradient = inputGradient(model, input.pixels, logit: predicted)
        let plane = shape.height * shape.width
        let magnitude = (0..<plane).map { i in (0..<shape.channels).map { abs(gradient[$0 * plane + i]) }.max()! }
        let scale = OcclusionStyle.imageScale(shape)
        let (lo, hi) = (magnitude.min() ?? 0, magnitude.max() ?? 0)
        let body = Canvas.row([
            tile(input.pixels, channels: shape.channels, height: shape.height, width: shape.width, .range(0, 1), scale: scale).captioned("input"),
            tile(gradient, channels: shape.channels, height: shape.height, width: shape.width, .symmetric, scale: scale).captioned("gradient"),
            tile(magnitude, channels: 1, height: shape.height, width: shape.width, .minMax, colorMap: .heat, scale: scale).captioned("|gradient|"),
        ], gap: 12)
        let canvas = figure(title: "saliency: d logit(\(name(predicted))) / d input", body,
                            notes: ["gradient: " + Normalization.symmetric.description, "|gradient|: the largest magnitude over channels; " + Normalization.minMax.description],
                            extras: [colorBar(.heat, lo: lo, hi: hi, caption: "|gradient|")])
        return try picture(canvas, "saliency.png",
                           "Gradient saliency of the predicted class's logit (\(name(predicted))) with respect to the input: signed, scaled symmetrically (0 = mid-gray); magnitude, heat from its min to its max")
    }
}

/// The gradient `(C, H, W)` of `model`'s logit `c` with respect to the input image `pixels`
/// (`Sequential.backward` from a one-hot logit gradient, evaluation mode). Leaves the parameter
/// gradients zeroed.
func inputGradient(_ model: Sequential, _ pixels: [Float], logit c: Int) -> [Float] {
    var gradient = [Float](repeating: 0, count: pixels.count)
    var seed = [Float](repeating: 0, count: model.classes)
    seed[c] = 1
    pixels.withUnsafeBufferPointer { x in
        model.forward(x.baseAddress!, batch: 1, training: false)
        gradient.withUnsafeMutableBufferPointer { model.backward(seed, inputGradient: $0.baseAddress!) }
    }
    model.zeroGradients()
    return gradient
}
