import ArgumentParser
import Foundation
import Net
import Occlusion

extension ImageTransform: ExpressibleByArgument {}

/// `--range FROM:TO:STEP`.
struct RangeArgument: ExpressibleByArgument {
    var from: Float, to: Float, step: Float

    init?(argument: String) {
        let parts = argument.split(separator: ":").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, let a = parts[0], let b = parts[1], let s = parts[2], a.isFinite, b.isFinite, s.isFinite, s > 0, a <= b else { return nil }
        (from, to, step) = (a, b, s)
    }

    init(_ r: (from: Float, to: Float, step: Float)) { (from, to, step) = r }

    /// How many amounts the range holds; a `Double`, so that a range too long to count is refused
    /// rather than trapped on.
    var count: Double { ((Double(to) - Double(from)) / Double(step) + 1e-4).rounded(.down) + 1 }

    var amounts: [Float] {
        (0..<Int(count)).map { from + Float($0) * step }
    }
}

/// `deconvnet invariance`: Zeiler and Fergus's Figure 5 for one image.
struct InvarianceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invariance",
        abstract: "How features and the class probability change as an image is translated, scaled or rotated (Zeiler & Fergus, Figure 5).",
        discussion: """
            For each amount: the Euclidean distance between the feature vectors of the original and the \
            transformed image at the first convolution and at the last hidden layer, and the probability \
            of the class (the true label with --data, else --target, else the original's prediction).
              translate    shift right by the amount in pixels (translate-y: down); vacated pixels are 0
              scale        zoom by the factor about the image centre, bilinear, 0 outside the image
              rotate       rotate counter-clockwise by the amount in degrees about the centre, bilinear, 0 outside
            Default ranges: translate -8:8:1, scale 0.5:1.5:0.05, rotate -180:180:10.
            Writes DIR/invariance.csv and DIR/invariance.svg (a self-contained line chart).
            """)

    @OptionGroup var checkpoint: CheckpointOptions

    @OptionGroup var source: ImageSource

    @Option(help: "translate, translate-y, scale or rotate.")
    var transform: ImageTransform

    @Option(help: ArgumentHelp("Amounts to sweep; write --range=-8:8:1 when FROM is negative.", valueName: "from:to:step"))
    var range: RangeArgument?

    @Option(help: "Class whose probability is plotted (default: the true label, else the predicted class).")
    var target: Int?

    @Option(help: ArgumentHelp("Directory for invariance.csv and invariance.svg.", valueName: "dir"))
    var out: String

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        try source.requireOne()
        if let target, target < 0 { throw ValidationError("--target must be 0 or more, not \(target)") }
        if transform == .scale, let range, range.from <= 0 { throw ValidationError("scale factors must be positive") }
        if let range, range.count > 2000 { throw ValidationError("--range gives more than 2000 amounts") }
    }

    func run() throws {
        let loaded = try checkpoint.load()
        let model = loaded.model
        let input = try source.load(for: model)
        let (pixels, name, label) = (input.pixels, input.name, input.label)
        let amounts = (range ?? RangeArgument(transform.defaultRange)).amounts
        let (first, last) = invarianceLayers(model)
        let predicted = argmax(classProbabilities(model, pixels))
        let cls = target ?? label ?? predicted
        let points = try invarianceCurve(model: model, image: pixels, transform: transform, amounts: amounts,
                                         firstLayer: first, lastLayer: last, target: cls)
        try makeDirectory(out)
        let (firstName, lastName) = (model.layers[first].name, model.layers[last].name)
        let className = cls < loaded.classNames.count ? loaded.classNames[cls] : "class \(cls)"
        var csv = "amount,distance_\(firstName),distance_\(lastName),probability_\(cls),predicted\n"
        for p in points { csv += "\(p.amount),\(p.firstDistance),\(p.lastDistance),\(p.probability),\(p.predicted)\n" }
        try writeAtomically(Array(csv.utf8), to: "\(out)/invariance.csv")
        let unit = transform == .rotate ? "degrees" : transform == .scale ? "scale factor" : "pixels"
        func chart(_ title: String, _ yLabel: String, _ values: [Float], yDomain: ClosedRange<Double>? = nil) -> LineChart {
            var chart = LineChart(title: title, xLabel: unit, yLabel: yLabel, width: 360, yDomain: yDomain, integerX: transform != .scale)
            chart.series = [.init(label: title, color: ReportPage.palette[0], points: zip(points, values).map { (Double($0.amount), Double($1)) }, width: 2)]
            return chart
        }
        let svg = LineChart.document(title: "\(transform.rawValue): \(name), class \(cls) (\(className))", charts: [
            chart("\(firstName): distance to original", "Euclidean distance", points.map(\.firstDistance)),
            chart("\(lastName): distance to original", "Euclidean distance", points.map(\.lastDistance)),
            chart("p(\(className))", "probability", points.map(\.probability), yDomain: 0...1),
        ])
        try writeAtomically(Array(svg.utf8), to: "\(out)/invariance.svg")
        let kept = points.filter { $0.predicted == cls }.count
        print(printable("\(name): \(transform.rawValue) over \(amounts.count) amounts (\(formatValue(amounts.first!))...\(formatValue(amounts.last!)) \(unit)); layers \(firstName) and \(lastName); class \(cls) (\(className))"))
        print(printable("still predicted as class \(cls) at \(kept) of \(points.count) amounts; p(\(className)) \(formatValue(points.map(\.probability).min()!))...\(formatValue(points.map(\.probability).max()!))"))
        print("wrote \(out)/invariance.csv and \(out)/invariance.svg")
    }
}
