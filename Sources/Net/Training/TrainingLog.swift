import Foundation

/// Summary statistics of a layer's activations over a batch.
public struct ActivationStatistics: Codable, Equatable, Sendable {
    public var mean: Float
    public var std: Float
    public var min: Float
    public var max: Float
    public var median: Float
    /// Fraction of values exactly 0 (dead ReLUs).
    public var zeroFraction: Float

    enum CodingKeys: String, CodingKey {
        case mean, std, min, max, median, zeroFraction = "zero_fraction"
    }

    /// Statistics of `values`; `std` is the population standard deviation, `median` the lower middle value.
    public init(_ values: UnsafeBufferPointer<Float>) {
        precondition(!values.isEmpty)
        var sum: Double = 0, squares: Double = 0, zeros = 0
        for v in values {
            sum += Double(v)
            squares += Double(v) * Double(v)
            if v == 0 { zeros += 1 }
        }
        let n = Double(values.count)
        mean = Float(sum / n)
        std = Float(Swift.max(0, squares / n - (sum / n) * (sum / n)).squareRoot())
        min = values.min()!
        max = values.max()!
        var copy = Array(values)
        median = copy.withUnsafeMutableBufferPointer { select($0, rank: ($0.count - 1) / 2) }
        zeroFraction = Float(Double(zeros) / n)
    }
}

/// The value of rank `k` (0-based, ascending) in `values`, by quickselect with a median-of-three pivot;
/// reorders `values`. Linear time on average, where sorting a probe batch's millions of activations
/// would dominate the cost of logging.
func select(_ values: UnsafeMutableBufferPointer<Float>, rank k: Int) -> Float {
    var (low, high) = (0, values.count - 1)
    while low < high {
        let mid = low + (high - low) / 2
        let pivot = Swift.max(Swift.min(values[low], values[mid]), Swift.min(Swift.max(values[low], values[mid]), values[high]))
        var (i, j) = (low, high)
        while i <= j {
            while values[i] < pivot { i += 1 }
            while values[j] > pivot { j -= 1 }
            if i <= j {
                values.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        if k <= j { high = j } else if k >= i { low = i } else { return values[k] }
    }
    return values[k]
}

/// One line of `RUN/activations.jsonl`: every convolution layer's statistics at one evaluation.
public struct ActivationRecord: Codable, Sendable {
    public var epoch: Int
    public var step: Int
    public var layers: [String: ActivationStatistics]
}

/// Appends `line` to the text file at `path` (created if missing) by rewriting it atomically, so that
/// a run killed mid-write leaves the old lines whole. The files are one short line per epoch.
func appendLine(_ line: String, to path: String) throws {
    let previous = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    try writeAtomically(Data((previous + line + "\n").utf8), to: path)
}

/// Draws a convolution's weights `(O, C, kh, kw)` (of `shape`) as one image row: the figure of the
/// training log's filter snapshots.
public typealias FilterDrawing = (_ weights: UnsafePointer<Float>, _ shape: [Int]) -> Image

/// Images stacked top to bottom with a 1-pixel gap; all must have the same width and channels.
func stackRows(_ rows: [Image]) -> Image? {
    guard let first = rows.first, rows.allSatisfy({ $0.width == first.width && $0.channels == first.channels }) else { return nil }
    var pixels: [UInt8] = []
    var height = 0
    for (i, row) in rows.enumerated() {
        if i > 0 {
            pixels += [UInt8](repeating: 40, count: first.width * first.channels)
            height += 1
        }
        pixels += row.pixels
        height += row.height
    }
    return Image(width: first.width, height: height, channels: first.channels, pixels: pixels)
}

/// What the training loop records besides metrics: activation statistics of the convolution layers on a
/// fixed batch (`RUN/activations.jsonl`, TensorBoard histograms), weight histograms, and, given a
/// `FilterDrawing`, first-layer filter snapshots (`RUN/filters/epoch-N.png`, `RUN/filters/strip.png`, a
/// TensorBoard image).
final class TrainingLog {
    let model: Sequential
    let runDirectory: String
    let events: EventWriter
    let drawFilters: FilterDrawing?
    private var probe: [Float]
    private let probeCount: Int

    /// `probe` images are the first (up to) 100 of `data`.
    init(model: Sequential, runDirectory: String, events: EventWriter, probe data: Dataset, drawFilters: FilterDrawing?) {
        self.model = model
        self.drawFilters = drawFilters
        self.runDirectory = runDirectory
        self.events = events
        probeCount = Swift.min(100, data.count)
        probe = [Float](repeating: 0, count: probeCount * data.shape.count)
        probe.withUnsafeMutableBufferPointer { data.fill($0.baseAddress!, indices: Array(0..<probeCount)[...]) }
    }

    var activationsPath: String { runDirectory + "/activations.jsonl" }
    var filtersDirectory: String { runDirectory + "/filters" }

    /// Records everything for the state after `epoch` (0 = before training).
    func record(epoch: Int, step: Int) throws {
        guard probeCount > 0 else { return }
        let record = ForwardRecord(model)
        probe.withUnsafeBufferPointer { _ = model.forward($0.baseAddress!, batch: probeCount, training: false, into: record) }
        var layers: [String: ActivationStatistics] = [:]
        for (i, layer) in model.layers.enumerated() where layer.isConvolution {
            let values = UnsafeBufferPointer(start: record.output(of: i), count: probeCount * layer.outputCount)
            layers[layer.name] = ActivationStatistics(values)
            try events.addHistogram("activations/\(layer.name)", values: values, step: epoch)
        }
        if !layers.isEmpty {
            try appendLine(jsonString(ActivationRecord(epoch: epoch, step: step, layers: layers)), to: activationsPath)
        }
        for view in model.views {
            try events.addHistogram("weights/\(view.name)", values: UnsafeBufferPointer(rebasing: model.parameters[view.offset..<view.offset + view.count]), step: epoch)
        }
        // batch norm's running statistics; num_batches_tracked, a single count, is no distribution
        for view in model.bufferViews where !view.shape.isEmpty {
            try events.addHistogram("buffers/\(view.name)", values: UnsafeBufferPointer(rebasing: model.buffers[view.offset..<view.offset + view.count]), step: epoch)
        }
        try recordFilters(epoch: epoch)
        try events.flush()
    }

    private func recordFilters(epoch: Int) throws {
        guard let drawFilters, let conv = model.layers.first as? Conv2D else { return }
        let row = drawFilters(conv.weight, conv.parameterShapes[0].shape)
        try FileManager.default.createDirectory(atPath: filtersDirectory, withIntermediateDirectories: true)
        try row.writePNG(toFile: "\(filtersDirectory)/epoch-\(epoch).png")
        try events.addImage("filters/\(conv.name)", png: [UInt8](try row.pngData()), width: row.width, height: row.height, channels: row.channels, step: epoch)
        let epochs = visibleEntries(filtersDirectory).compactMap { name -> Int? in
            guard name.hasPrefix("epoch-"), name.hasSuffix(".png") else { return nil }
            return Int(name.dropFirst(6).dropLast(4))
        }.sorted()
        let rows = try epochs.map { try Image(contentsOfFile: "\(filtersDirectory)/epoch-\($0).png") }
        if let strip = stackRows(rows) { try strip.writePNG(toFile: "\(filtersDirectory)/strip.png") }
    }
}
