import ArgumentParser
import Deconv
import Foundation
import Net
import Occlusion

extension ClassScore: ExpressibleByArgument {}

/// `--fill`: a number (every channel), `zero`, or `mean` (each channel's mean over the image).
struct FillArgument: ExpressibleByArgument, CustomStringConvertible {
    var fill: OcclusionFill

    init?(argument: String) {
        switch argument.lowercased() {
        case "mean": fill = .mean
        case "zero": fill = .constant(0)
        case "gray", "grey": fill = .constant(0.5)
        default:
            guard let v = Float(argument), v.isFinite else { return nil }
            fill = .constant(v)
        }
    }

    init(_ fill: OcclusionFill) { self.fill = fill }

    var description: String {
        switch fill {
        case .mean: return "mean"
        case .constant(let v): return v == 0 ? "zero" : "\(v)"
        }
    }
}

/// `deconvnet occlude`: Zeiler and Fergus's occlusion sensitivity (Figure 7) for one image.
struct OccludeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "occlude",
        abstract: "Slide a square occluder over an image and map how the network's output changes (Zeiler & Fergus, Figure 7).",
        discussion: """
            For every occluder position (a grid of floor((H-w)/s)+1 by floor((W-w)/s)+1), with the square \
            set to --fill in every channel:
              class-score          the target class's probability (or logit); target: --target, else the \
            true label (--data), else the predicted class (Figure 7 d)
              feature-activity     the summed activation of one feature map (--layer, --channel; default the \
            strongest map of the last convolution for the unoccluded image), with the deconvnet projection of \
            its strongest activation (Figure 7 b, c)
              most-probable-class  the argmax class (Figure 7 e)
              attribution          per pixel, the mean over the windows covering it of score(original) - \
            score(occluded), 0 where no window covers it: Captum's Occlusion with sliding_window_shapes=(C,w,w), \
            strides=(C,s,s), baselines=fill (Captum adds a clipped last window when s does not divide H-w)
            Writes DIR/<map>.png (.svg with --format svg) and DIR/occlusion.json; with --npy also DIR/<map>.npy (float32; position \
            maps [rows, cols], attribution [C, H, W], feature-projection [C, H, W], and input [C, H, W]: the image as \
            the network saw it). Tests/python/check_occlusion_captum.py compares the attribution with Captum's.
            """)

    @OptionGroup var checkpoint: CheckpointOptions

    @OptionGroup var source: ImageSource
    @OptionGroup var figures: FigureOptions

    @Option(help: "Occluder side in pixels.")
    var window = 8

    @Option(help: "Pixels between occluder positions.")
    var stride = 1

    @Option(help: "Occluder value: a number in every channel, zero, or mean (each channel's image mean).")
    var fill = FillArgument(.constant(0.5))

    @Option(help: "Class whose score is mapped (default: the true label, else the predicted class).")
    var target: Int?

    @Option(help: "prob (softmax probability) or logit.")
    var score: ClassScore = .probability

    @Option(help: "Layer whose feature map is tracked (default: the last convolution).")
    var layer: String?

    @Option(help: "Feature map of --layer (default: the strongest for the unoccluded image).")
    var channel: Int?

    @Option(help: ArgumentHelp("Directory for the maps.", valueName: "dir"))
    var out: String

    @Flag(help: "Also write the maps as float32 .npy arrays.")
    var npy = false

    @Option(help: "incremental (recompute only what the occluder changes) or full (every layer for every position; the reference).")
    var mode: OcclusionSweep.Mode = .incremental

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        try source.requireOne()
        guard window >= 1 else { throw ValidationError("--window must be at least 1, not \(window)") }
        guard stride >= 1 else { throw ValidationError("--stride must be at least 1, not \(stride)") }
        if let target, target < 0 { throw ValidationError("--target must be 0 or more, not \(target)") }
        if let channel, channel < 0 { throw ValidationError("--channel must be 0 or more, not \(channel)") }
        if channel != nil && layer == nil { throw ValidationError("--channel needs --layer") }
    }

    func run() throws {
        let loaded = try checkpoint.load()
        let model = loaded.model
        let input = try source.load(for: model)
        let (pixels, name, label) = (input.pixels, input.name, input.label)
        var options = OcclusionOptions()
        options.window = window
        options.stride = stride
        options.fill = fill.fill
        options.target = target
        options.score = score
        options.featureLayer = layer
        options.featureChannel = channel
        let start = Date()
        let maps = try OcclusionSweep(model: model, mode: mode).run(pixels, label: label, options: options)
        let seconds = Date().timeIntervalSince(start)
        try makeDirectory(out)

        let names = loaded.classNames
        let targetName = maps.target < names.count ? names[maps.target] : "class \(maps.target)"
        let minimum = maps.minimumScorePosition
        let grid = maps.grid
        print(printable("\(name): \(grid.rows)x\(grid.cols) positions of a \(window)x\(window) occluder (stride \(stride), fill \(fill)) in \(String(format: "%.0f", seconds * 1e3)) ms"))
        print(printable("target \(maps.target) (\(targetName), \(maps.targetSource)): \(score.rawValue) \(formatValue(maps.baseScore)) unoccluded, lowest \(formatValue(maps.classScore.min()!)) with the occluder at row \(minimum.row * stride), column \(minimum.col * stride)"))
        print("feature: \(maps.featureLayerName) channel \(maps.featureChannel), total activation \(formatValue(maps.baseFeatureActivity)) unoccluded, \(formatValue(maps.featureActivity.min()!))...\(formatValue(maps.featureActivity.max()!)) occluded")

        let projection = featureProjection(model, pixels, maps)
        try writeSummary(maps, names: names, name: name, projectionUnit: projection?.unit)
        try render(maps, pixels, names: names, targetName: targetName, projection: projection)
        if npy {
            let positions = [grid.rows, grid.cols]
            let shape = [maps.shape.channels, maps.shape.height, maps.shape.width]
            try writeNpy(Tensor(shape: positions, data: maps.classScore), to: "\(out)/class-score.npy")
            try writeNpy(Tensor(shape: positions, data: maps.featureActivity), to: "\(out)/feature-activity.npy")
            try writeNpy(Tensor(shape: positions, data: maps.mostProbableClass.map(Float.init)), to: "\(out)/most-probable-class.npy")
            try writeNpy(Tensor(shape: shape, data: maps.attribution), to: "\(out)/attribution.npy")
            try writeNpy(Tensor(shape: shape, data: pixels), to: "\(out)/input.npy")
            if let projection { try writeNpy(Tensor(shape: shape, data: projection.values), to: "\(out)/feature-projection.npy") }
        }
        print("wrote \(out)/{class-score,feature-activity,most-probable-class,attribution}.\(figures.format.rawValue), occlusion.json\(npy ? " and .npy arrays" : "")")
    }

    /// The deconvnet projection of the tracked feature map's strongest activation for the unoccluded
    /// image (Figure 7 c), when the layer can be projected (convolutional part of the network).
    private func featureProjection(_ model: Sequential, _ pixels: [Float], _ maps: OcclusionMaps) -> (unit: FeatureUnit, values: [Float])? {
        guard let projector = try? Projector(model: model), projector.featureLayers.contains(maps.featureLayer) else { return nil }
        var values = [Float](repeating: 0, count: model.inputShape.count)
        pixels.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: maps.featureLayer) }
        let unit = projector.strongest(in: maps.featureLayer, image: 0, channel: maps.featureChannel).unit
        values.withUnsafeMutableBufferPointer { projector.project([unit], from: maps.featureLayer, method: .deconvnet, into: $0.baseAddress!) }
        return (unit, values)
    }

    private struct Summary: Encodable {
        var image: String
        var window: Int, stride: Int, rows: Int, cols: Int
        var fill: [Float]
        var target: Int, targetName: String, targetSource: String, score: String
        var baseScore: Float, minimumScore: Float, minimumAt: [Int]
        var probabilities: [Float]
        var featureLayer: String, featureChannel: Int, baseFeatureActivity: Float
        var featureProjectionUnit: [Int]?
        var classScore: [[Float]], featureActivity: [[Float]], mostProbableClass: [[Int]]
        var classNames: [String]
        var attributionConvention: String
    }

    private func writeSummary(_ maps: OcclusionMaps, names: [String], name: String, projectionUnit: FeatureUnit?) throws {
        let grid = maps.grid
        func rows<T>(_ values: [T]) -> [[T]] { (0..<grid.rows).map { Array(values[($0 * grid.cols)..<(($0 + 1) * grid.cols)]) } }
        let m = maps.minimumScorePosition
        let summary = Summary(
            image: name, window: grid.window, stride: grid.stride, rows: grid.rows, cols: grid.cols, fill: maps.fill,
            target: maps.target, targetName: maps.target < names.count ? names[maps.target] : "", targetSource: maps.targetSource,
            score: maps.score.rawValue, baseScore: maps.baseScore, minimumScore: maps.classScore.min()!, minimumAt: [m.row * grid.stride, m.col * grid.stride],
            probabilities: maps.probabilities, featureLayer: maps.featureLayerName, featureChannel: maps.featureChannel,
            baseFeatureActivity: maps.baseFeatureActivity, featureProjectionUnit: projectionUnit.map { [$0.channel, $0.y, $0.x] },
            classScore: rows(maps.classScore), featureActivity: rows(maps.featureActivity), mostProbableClass: rows(maps.mostProbableClass),
            classNames: names,
            attributionConvention: "captum: per pixel, mean over covering windows of score(original) - score(occluded); 0 where uncovered")
        try writeJSON(summary, to: "\(out)/occlusion.json")
    }

    private func render(_ maps: OcclusionMaps, _ pixels: [Float], names: [String], targetName: String, projection: (unit: FeatureUnit, values: [Float])?) throws {
        let shape = maps.shape
        let grid = maps.grid
        let (scale, mapScale) = (OcclusionStyle.imageScale(shape, scale: figures.scale), OcclusionStyle.mapScale(grid, scale: figures.scale))
        let input = OcclusionStyle.input(pixels, shape, scale: scale)
        let where_ = OcclusionStyle.positionNote(grid)
        func write(_ canvas: Canvas, _ stem: String) throws { try figures.write(canvas, to: "\(out)/\(figures.file(stem))") }
        try write(OcclusionStyle.classScoreFigure(maps, pixels, targetName: targetName, tileScale: figures.scale), "class-score")
        let scoreLabel = OcclusionStyle.scoreLabel(maps, targetName: targetName)

        // Feature activity, with the projection of the feature's strongest activation.
        let (fLo, fHi) = (maps.featureActivity.min()!, maps.featureActivity.max()!)
        let activityOverlay = OcclusionStyle.overlay(pixels, shape, map: OcclusionStyle.spread(maps.featureActivity, grid), lo: fLo, hi: fHi, scale: scale)
        var panels = [input,
                      (tile(maps.featureActivity, channels: 1, height: grid.rows, width: grid.cols, .range(fLo, fHi), colorMap: .heat, scale: mapScale),
                       "total activation by position"),
                      (activityOverlay, "over the image")]
        var notes = [where_]
        if let projection {
            panels.append((tile(projection.values, channels: shape.channels, height: shape.height, width: shape.width, .symmetric, scale: scale),
                           "deconvnet projection, unoccluded"))
            notes.append("projection: the feature's strongest activation at (\(projection.unit.y), \(projection.unit.x)), unit seed; " + Normalization.symmetric.description)
        }
        try write(figure(title: "feature activity: \(maps.featureLayerName) channel \(maps.featureChannel), \(formatValue(maps.baseFeatureActivity)) unoccluded",
                         Canvas.panels(panels), notes: notes,
                         extras: [colorBar(.heat, lo: fLo, hi: fHi, unit: "activation summed over the map")]), "feature-activity")

        // Most probable class, with a legend.
        let classes = Array(Set(maps.mostProbableClass)).sorted()
        var counts: [Int: Int] = [:]
        for c in maps.mostProbableClass { counts[c, default: 0] += 1 }
        let spreadClass = OcclusionStyle.spread(maps.mostProbableClass.map(Float.init), grid).map { OcclusionStyle.color(ofClass: Int($0)) }
        var classGrid = Canvas(width: grid.cols, height: grid.rows)
        for (i, c) in maps.mostProbableClass.enumerated() { classGrid[i % grid.cols, i / grid.cols] = OcclusionStyle.color(ofClass: c) }
        try write(figure(title: "most probable class by occluder position", Canvas.panels([
            input, (classGrid.upscaled(mapScale), "class by position"),
            (OcclusionStyle.overlay(pixels, shape, colors: spreadClass, scale: scale), "over the image"),
            (OcclusionStyle.legend(classes, names: names, counts: counts), ""),
        ]), notes: [where_]), "most-probable-class")

        // Attribution, Captum's convention, symmetric around 0.
        let plane = Array(maps.attribution[0..<(shape.height * shape.width)])
        let bound = max(plane.map(abs).max() ?? 0, 1e-12)
        let attributionMap = OcclusionStyle.overlay(pixels, shape, map: plane, lo: -bound, hi: bound, colorMap: .gray, scale: scale)
        try write(figure(title: "occlusion attribution (Captum's convention) for \(scoreLabel)", Canvas.panels([
            input, (tile(plane, channels: 1, height: shape.height, width: shape.width, .symmetric, scale: scale), "attribution"),
            (attributionMap, "over the image"),
        ]), notes: ["per pixel: mean over the windows covering it of score(original) - score(occluded); 0 where none covers it",
                             "white: occluding lowers the score (evidence for the class); black: raises it; " + Normalization.symmetric.description],
            extras: [colorBar(.gray, lo: -bound, hi: bound, unit: "attribution (\(maps.score == .probability ? "probability" : "logit") change)")]), "attribution")
    }
}
