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
            predicted class's logit, and the last convolution's feature maps. Every picture is a bare PNG tile in DIR or DIR/tiles; titles, captions and colour-bar labels are text on the page. \
            Recurrent models have no convolution: their page has the prediction, the occlusion maps and the \
            saliency.
            """)

    @OptionGroup var model: CheckpointOptions
    @OptionGroup var source: ImageSource
    @OptionGroup var tiles: TileOptions
    @OptionGroup var projection: ProjectionOptions

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
        let checkpoint = model.checkpoint
        let loaded = try model.load()  // not loadProjector: recurrent models get a page too
        let model = loaded.model
        let shape = model.inputShape
        if let window, window > max(1, min(shape.height, shape.width) / 2) {
            throw ValidationError("--window \(window) is more than half the side of this model's \(shape.height)x\(shape.width) input (at most \(max(1, min(shape.height, shape.width) / 2)))")
        }
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
        let scale = OcclusionStyle.imageScale(shape, scale: tiles.scale)
        page.section("Input", InspectPage.figure(try picture(tile(input.pixels, channels: shape.channels, height: shape.height, width: shape.width, .range(0, 1), scale: scale), "input.png", alt: input.name),
                                                 caption: "\(input.name) as the network sees it, upscaled \(scale)x (nearest neighbour); pixels on their fixed range, 0 black to 1 white")
                     + InspectPage.note("Conversion: " + input.conversion + "."))

        var verdict = "Predicted: \(name(predicted)), p = \(String(format: "%.4f", probabilities[predicted])). "
        if let label = input.label {
            verdict += "True class: \(name(label)), p = \(String(format: "%.4f", probabilities[label])): " + (label == predicted ? "correct." : "wrong.")
        } else {
            verdict += "No true class: an --image file has no label (use --data DIR --index K for a labelled image)."
        }
        page.section("Prediction", InspectPage.note(verdict) + InspectPage.probabilityTable(probabilities, name: name, count: 5, label: input.label))

        page.section("Occlusion", try occlusion(model, input, predicted: predicted, name: name))

        if let projector = try? Projector(model: model), let convolution = projector.featureLayers.last(where: { model.layers[$0].isConvolution }) {
            projection.configure(projector)
            let layer = model.activatedOutput(of: convolution)
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
        print(printable("\(input.name): predicted \(name(predicted)) (p = \(String(format: "%.4f", probabilities[predicted])))" + (input.label.map { ", true class \(name($0))" } ?? "")))
        print("wrote \(out)/index.html")
    }

    /// Writes `canvas` (a bare tile) as `DIR/file` and returns it as a picture on the page.
    private func picture(_ canvas: Canvas, _ file: String, alt: String) throws -> PageTile {
        try canvas.image.writePNG(toFile: "\(out)/\(file)")
        return PageTile(file: file, width: canvas.width, height: canvas.height, alt: alt)
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
            let (map, overlay) = OcclusionStyle.classScoreTiles(maps, input.pixels, tileScale: tiles.scale)
            let label = OcclusionStyle.scoreLabel(maps, targetName: name(target))
            html += InspectPage.panels([
                (try picture(map, "occlusion-\(role)-map.png", alt: "\(label) by occluder position"), "\(label) by occluder position"),
                (try picture(overlay, "occlusion-\(role).png", alt: "\(label) over the image"), "over the image; red: lowest"),
            ], caption: "Occlusion, \(role) class \(name(target)): its probability with a gray (0.5) \(options.window)x\(options.window) square at each position (stride \(options.stride)), \(formatValue(maps.baseScore)) unoccluded; heat scale from the map's min \(formatValue(lo)) to max \(formatValue(hi)), lowest position outlined in red",
               key: try InspectPage.inline(colorBar(.heat, lo: lo, hi: hi, unit: "probability")))
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
        let scale = tileScale(max(shape.height, shape.width), target: 84) * tiles.scale
        try makeDirectory("\(out)/tiles")
        let inputTile = try picture(ProjectionStyle.tile(input.pixels, shape: shape, field: nil, unit: units[0], ProjectionStyle.pixels, scale: scale), "tiles/input.png", alt: input.name)
        var rows: [(header: String, tiles: [PageTile])] = []
        for method in ProjectionMethod.allCases {
            batch.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: n, through: layer) }
            projected.withUnsafeMutableBufferPointer { projector.project(units, from: layer, method: method, into: $0.baseAddress!) }
            rows.append((method.rawValue, [inputTile] + (try units.indices.map { b in
                try picture(ProjectionStyle.tile(Array(projected[b * shape.count..<(b + 1) * shape.count]), shape: shape, field: nil, unit: units[b], ProjectionStyle.projection, scale: scale),
                            "tiles/\(method.rawValue)-ch\(units[b].channel).png", alt: "\(method.rawValue) projection of channel \(units[b].channel)")
            })))
        }
        let projections = InspectPage.tileTable(
            corner: "", columns: ["input"] + strongest.map { "ch \($0.unit.channel): \(formatValue($0.value)) at (\($0.unit.y), \($0.unit.x))" }, rows: rows,
            caption: "\(layerName): deconvnet, guided-backprop and gradient projections of the \(n) feature maps with the largest activations (of \(s[0])), each from its strongest position (unit seed); columns: channel, its largest activation and where. "
                + "Rows: deconvnet (ReLU of the signal), guided (also masked by the forward activation), gradient (the exact input gradient). Each tile scaled symmetrically, 0 = mid-gray.",
            key: try InspectPage.inline(symmetricKey(unit: "projection")))
        let (lo, hi) = maps.range
        let mapScale = tileScale(max(s[1], s[2]), target: 56) * tiles.scale
        let mapTiles = try (0..<s[0]).map { c in
            (try picture(maps.mapTile(image: 0, channel: c, scale: mapScale), "tiles/featuremap-\(c).png", alt: "\(layerName) channel \(c)"), "\(c)")
        }
        let mapsHTML = InspectPage.panels(mapTiles, caption: "\(layerName): all \(s[0]) feature maps \(s[1])x\(s[2]) (after the activation), numbered by channel, heat colours on one scale for all maps from \(formatRange(lo, hi)) (colour bar)",
                                          key: try InspectPage.inline(colorBar(.heat, lo: lo, hi: hi, unit: "activation")))
        return (projections, mapsHTML)
    }

    /// The gradient of the predicted class's logit with respect to the input (Simonyan et al.'s saliency).
    private func saliency(_ model: Sequential, _ input: InputImage, predicted: Int, name: (Int) -> String) throws -> String {
        let shape = model.inputShape
        let gradient = inputGradient(model, input.pixels, logit: predicted)
        let plane = shape.height * shape.width
        let magnitude = (0..<plane).map { i in (0..<shape.channels).map { abs(gradient[$0 * plane + i]) }.max()! }
        let scale = OcclusionStyle.imageScale(shape, scale: tiles.scale)
        let (lo, hi) = (magnitude.min() ?? 0, magnitude.max() ?? 0)
        return InspectPage.panels([
            (try picture(tile(input.pixels, channels: shape.channels, height: shape.height, width: shape.width, .range(0, 1), scale: scale), "input.png", alt: input.name), "input"),
            (try picture(tile(gradient, channels: shape.channels, height: shape.height, width: shape.width, .symmetric, scale: scale), "saliency-gradient.png", alt: "gradient"),
             "gradient (symmetric: 0 = mid-gray)"),
            (try picture(tile(magnitude, channels: 1, height: shape.height, width: shape.width, .minMax, colorMap: .heat, scale: scale), "saliency.png", alt: "|gradient|"),
             "|gradient|, largest over channels"),
        ], caption: "Gradient saliency of the predicted class's logit (\(name(predicted))) with respect to the input: signed, scaled symmetrically (0 = mid-gray); magnitude, heat from its min to its max",
           key: try InspectPage.inline(colorBar(.heat, lo: lo, hi: hi, unit: "|∂ logit / ∂ pixel|")))
    }
}
