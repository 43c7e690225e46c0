import Foundation
import Net

/// The numbers that compare runs: final and best metrics, size and speed. `compare --json` prints an
/// array of these; `sweep` and `report` tabulate them.
struct RunSummary: Encodable, Equatable {
    var run: String
    var path: String
    var model: String?
    var parameters: Int?
    var epochs: Int
    var steps: Int
    var finalTrainLoss: Float?
    var finalTrainAcc: Float?
    var finalTestLoss: Float?
    var finalTestAcc: Float?
    var bestTrainLoss: Float?
    var bestTrainAcc: Float?
    var bestTestLoss: Float?
    var bestTestAcc: Float?
    /// The epoch of the best test accuracy.
    var bestEpoch: Int?
    /// Training seconds over all epochs (without evaluation).
    var seconds: Double
    var secondsPerEpoch: Double?
    var imagesPerSecond: Double?
    var diverged: Bool

    enum CodingKeys: String, CodingKey {
        case run, path, model, parameters, epochs, steps
        case finalTrainLoss = "final_train_loss", finalTrainAcc = "final_train_acc", finalTestLoss = "final_test_loss", finalTestAcc = "final_test_acc"
        case bestTrainLoss = "best_train_loss", bestTrainAcc = "best_train_acc", bestTestLoss = "best_test_loss", bestTestAcc = "best_test_acc"
        case bestEpoch = "best_epoch", seconds, secondsPerEpoch = "seconds_per_epoch", imagesPerSecond = "images_per_s", diverged
    }

    /// `parameters` is the model's parameter count when known (see `ModelCatalog`).
    init(_ run: RunRecord, parameters: Int?) {
        let m = run.metrics
        self.run = run.name
        path = run.path
        model = run.config?.model ?? run.model?.spec
        self.parameters = parameters
        epochs = run.epochs
        steps = m.last?.step ?? run.model?.step ?? 0
        finalTrainLoss = m.last?.trainLoss
        finalTrainAcc = m.last?.trainAcc
        finalTestLoss = m.last?.testLoss
        finalTestAcc = m.last?.testAcc
        bestTrainLoss = m.map(\.trainLoss).min()
        bestTrainAcc = m.map(\.trainAcc).max()
        bestTestLoss = m.compactMap(\.testLoss).min()
        bestTestAcc = run.bestTestAcc?.value
        bestEpoch = run.bestTestAcc?.epoch
        seconds = m.reduce(0) { $0 + $1.seconds }
        secondsPerEpoch = run.secondsPerEpoch
        imagesPerSecond = run.imagesPerSecond
        diverged = run.diverged
    }
}

/// A column of a run table: its header, how to print a summary's value, and whether it is text.
struct RunColumn {
    var header: String
    var text: Bool = false
    var value: (RunSummary) -> String

    static let run = RunColumn(header: "run", text: true) { $0.run }
    static let model = RunColumn(header: "model", text: true) { $0.model ?? "" }
    static let parameters = RunColumn(header: "parameters") { $0.parameters.map(grouped) ?? "" }
    static let epochs = RunColumn(header: "epochs") { String($0.epochs) }
    static let bestTestAcc = RunColumn(header: "best test acc") { percentText($0.bestTestAcc) }
    static let finalTestAcc = RunColumn(header: "final test acc") { percentText($0.finalTestAcc) }
    static let finalTrainAcc = RunColumn(header: "final train acc") { percentText($0.finalTrainAcc) }
    static let finalTrainLoss = RunColumn(header: "final train loss") { lossText($0.finalTrainLoss) }
    static let finalTestLoss = RunColumn(header: "final test loss") { lossText($0.finalTestLoss) }
    static let secondsPerEpoch = RunColumn(header: "s/epoch") { $0.secondsPerEpoch.map { String(format: "%.2f", $0) } ?? "" }
    static let imagesPerSecond = RunColumn(header: "images/s") { $0.imagesPerSecond.map { grouped(Int($0.rounded())) } ?? "" }
    static let diverged = RunColumn(header: "diverged", text: true) { $0.diverged ? "yes" : "no" }

    /// The side-by-side columns of `compare` and of the report's run table.
    static let comparison: [RunColumn] = [.run, .model, .parameters, .bestTestAcc, .finalTestAcc, .finalTrainAcc, .finalTrainLoss,
                                          .finalTestLoss, .epochs, .secondsPerEpoch, .imagesPerSecond, .diverged]

    /// A column of a training setting (`lr`, `activation`, …) read from each run's stored configuration.
    static func setting(_ key: String, values: [String: String]) -> RunColumn {
        RunColumn(header: key, text: true) { values[$0.path] ?? "" }
    }
}

/// A table of `summaries` with `columns`.
func runTable(_ summaries: [RunSummary], columns: [RunColumn]) -> TextTable {
    TextTable(header: columns.map(\.header), rows: summaries.map { s in columns.map { $0.value(s) } },
              leftAligned: Set(columns.indices.filter { columns[$0].text }))
}

/// Builds each distinct architecture once, for parameter counts and layer tables.
final class ModelCatalog {
    private var models: [String: Sequential?] = [:]

    /// The model a run was trained with, or nil when its checkpoint is missing or describes no model we can build.
    func model(of run: RunRecord) -> Sequential? {
        guard let info = run.model else { return nil }
        if let cached = models[info.key] { return cached }
        let built = info.build()
        models[info.key] = built
        return built
    }

    func summary(_ run: RunRecord) -> RunSummary { RunSummary(run, parameters: model(of: run)?.parameterCount) }
}

/// Training settings shown in reports, by the names `TrainConfig` stores them under.
let settingNames: [(name: String, text: (TrainConfig) -> String)] = [
    ("model", { $0.model }), ("activation", { $0.activation.rawValue }), ("optimizer", { $0.optimizer.rawValue }),
    ("lr", { String(format: "%g", $0.lr) }), ("schedule", { $0.schedule.description }), ("initialization", { $0.initialization.rawValue }),
    ("loss", { $0.loss.rawValue }), ("batch_size", { String($0.batchSize) }), ("weight_decay", { String(format: "%g", $0.weightDecay) }),
    ("augment", { $0.augment.isEmpty ? "none" : $0.augment.map(\.rawValue).joined(separator: "+") }), ("clip_norm", { $0.clipNorm.map { String(format: "%g", $0) } ?? "none" }),
    ("seed", { String($0.seed) }), ("grayscale", { $0.grayscale ? "yes" : "no" }), ("size", { $0.size.map(String.init) ?? "as stored" }),
]

/// Each run's training settings as text (by setting name, then run path), and the names of the settings
/// whose values differ between the runs that have a stored configuration (`model`, which has its own
/// column, left out).
func varyingSettings(_ runs: [RunRecord]) -> (keys: [String], values: [String: [String: String]]) {
    var values: [String: [String: String]] = [:]
    for run in runs {
        guard let config = run.config else { continue }
        for (name, text) in settingNames { values[name, default: [:]][run.path] = text(config) }
    }
    let configured = runs.filter { $0.config != nil }
    let keys = settingNames.dropFirst().map(\.name).filter { key in Set(configured.map { values[key]?[$0.path] ?? "" }).count > 1 }
    return (keys, values)
}
