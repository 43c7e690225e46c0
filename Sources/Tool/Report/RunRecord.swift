import Foundation
import Net

/// Why a run directory could not be read. Each description is one line naming the file.
enum RunError: LocalizedError, Equatable {
    case notARun(String)
    case badLine(path: String, line: Int, reason: String)

    var errorDescription: String? {
        switch self {
        case .notARun(let path): return "\(path) is not a run directory (no metrics.jsonl or checkpoint.safetensors)"
        case let .badLine(path, line, reason): return "\(path):\(line): \(reason)"
        }
    }
}

/// What a checkpoint's metadata says about the model: enough to rebuild it for the summary table.
struct ModelInfo: Equatable {
    var spec: String
    var activation: String
    var inputShape: [Int]
    var classNames: [String]
    var epoch: Int
    var step: Int

    /// The architecture without weights; runs with equal keys share one summary table (the
    /// activation changes no shape or count).
    var key: String { "\(spec) \(inputShape) \(classNames.count)" }

    /// The model built from the metadata (weights freshly initialised; only shapes and counts matter).
    func build() throws -> Sequential {
        guard inputShape.count == 3, !classNames.isEmpty, let act = Activation(rawValue: activation) else {
            throw ModelError.shape("bad model metadata")
        }
        return try Sequential(spec: try ModelSpec(parsing: spec), inputShape: ImageShape(channels: inputShape[0], height: inputShape[1], width: inputShape[2]),
                              classes: classNames.count, activation: act)
    }
}

/// A training run read back from its directory (see `deconvnet train --run`).
///
/// Reads `metrics.jsonl`, `activations.jsonl`, the metadata of `checkpoint.safetensors`, `diverged.txt`
/// and the filter images; every file but one of metrics and checkpoint may be missing. A resumed run
/// appends to the same files, so it stays one run: lines are ordered by epoch, and where an epoch
/// appears twice (a run resumed from an earlier checkpoint) the later line wins. The checkpoint's own
/// metrics count as its epoch's line when `metrics.jsonl` stops short of it (a run killed between
/// the two writes). A torn last line (one without its newline: a write that was cut short) is
/// skipped with a warning in `warnings`; any other malformed line is an error.
struct RunRecord {
    /// Display name: the directory's name, unless the caller chose another.
    var name: String
    var path: String
    var metrics: [EpochMetrics] = []
    var activations: [ActivationRecord] = []
    var config: TrainConfig?
    var model: ModelInfo?
    /// `true` when `train` stopped the run as diverged (it leaves `diverged.txt`).
    var diverged = false
    /// One line for each torn line that was skipped.
    var warnings: [String] = []
    /// `filters/strip.png` if present, else the latest `filters/epoch-N.png`.
    var filterImage: String?

    init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// Reads the run in directory `path`; throws `RunError` when it is no run or a file is malformed.
    static func load(_ path: String, name: String? = nil) throws -> RunRecord {
        let fm = FileManager.default
        let metricsPath = path + "/metrics.jsonl", checkpointPath = path + "/checkpoint.safetensors"
        guard fm.fileExists(atPath: metricsPath) || fm.fileExists(atPath: checkpointPath) else { throw RunError.notARun(path) }
        var run = RunRecord(name: name ?? URL(fileURLWithPath: path).standardized.lastPathComponent, path: path)
        var metrics = try readLines(metricsPath, as: EpochMetrics.self, warnings: &run.warnings)
        run.activations = lastPerEpoch(try readLines(path + "/activations.jsonl", as: ActivationRecord.self, warnings: &run.warnings), epoch: \.epoch)
        if fm.fileExists(atPath: checkpointPath) {
            let meta = try Checkpoint.readMetadata(from: checkpointPath)
            run.config = meta[CheckpointKey.config].flatMap { try? JSONDecoder().decode(TrainConfig.self, from: Data($0.utf8)) }
            run.model = modelInfo(meta)
            if let committed = meta[CheckpointKey.metrics].flatMap({ try? JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }),
               !metrics.contains(where: { $0.epoch >= committed.epoch }) {
                metrics.append(committed)
            }
        }
        run.metrics = lastPerEpoch(metrics, epoch: \.epoch)
        run.diverged = fm.fileExists(atPath: path + "/diverged.txt")
        run.filterImage = filterImage(in: path + "/filters")
        return run
    }

    /// Decodes every non-empty line of a JSON-lines file; a missing file is empty. A torn last line
    /// is skipped, with a line in `warnings`.
    private static func readLines<T: Decodable>(_ path: String, as type: T.Type, warnings: inout [String]) throws -> [T] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if let torn = lines.popLast(), !torn.trimmingCharacters(in: .whitespaces).isEmpty {
            warnings.append("warning: \(path):\(lines.count + 1): skipped a torn last line (a write cut short)")
        }
        var values: [T] = []
        for (index, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            do {
                values.append(try JSONDecoder().decode(T.self, from: Data(line.utf8)))
            } catch {
                throw RunError.badLine(path: path, line: index + 1, reason: "not a valid \(T.self) line (\(decodingReason(error)))")
            }
        }
        return values
    }

    private static func lastPerEpoch<T>(_ values: [T], epoch: KeyPath<T, Int>) -> [T] {
        var byEpoch: [Int: T] = [:]
        for value in values { byEpoch[value[keyPath: epoch]] = value }
        return byEpoch.keys.sorted().map { byEpoch[$0]! }
    }

    private static func modelInfo(_ meta: [String: String]) -> ModelInfo? {
        guard let spec = meta[CheckpointKey.spec], let activation = meta[CheckpointKey.activation],
              let shape = meta[CheckpointKey.inputShape].flatMap({ try? JSONDecoder().decode([Int].self, from: Data($0.utf8)) }),
              let classes = meta[CheckpointKey.classNames].flatMap({ try? JSONDecoder().decode([String].self, from: Data($0.utf8)) })
        else { return nil }
        return ModelInfo(spec: spec, activation: activation, inputShape: shape, classNames: classes,
                         epoch: Int(meta[CheckpointKey.epoch] ?? "") ?? 0, step: Int(meta[CheckpointKey.step] ?? "") ?? 0)
    }

    private static func filterImage(in directory: String) -> String? {
        let fm = FileManager.default
        if fm.fileExists(atPath: directory + "/strip.png") { return directory + "/strip.png" }
        let epochs = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).compactMap { name -> Int? in
            guard name.hasPrefix("epoch-"), name.hasSuffix(".png") else { return nil }
            return Int(name.dropFirst(6).dropLast(4))
        }
        return epochs.max().map { "\(directory)/epoch-\($0).png" }
    }

    // MARK: Derived values

    var final: EpochMetrics? { metrics.last }
    var epochs: Int { metrics.last?.epoch ?? model?.epoch ?? 0 }
    var bestTestAcc: (value: Float, epoch: Int)? {
        metrics.compactMap { m in m.testAcc.map { ($0, m.epoch) } }.max { $0.0 < $1.0 }
    }
    /// The value that picks the best of several runs: best test accuracy, else best training accuracy.
    var rankingAccuracy: Float? { bestTestAcc?.value ?? metrics.map(\.trainAcc).max() }
    /// Mean training seconds per epoch and images per second over all epochs.
    var secondsPerEpoch: Double? { metrics.isEmpty ? nil : metrics.reduce(0) { $0 + $1.seconds } / Double(metrics.count) }
    var imagesPerSecond: Double? { metrics.isEmpty ? nil : metrics.reduce(0) { $0 + $1.imagesPerSecond } / Double(metrics.count) }
    /// Layer names of the activation statistics: those in `order` (the model's layers) first, in that
    /// order, then any others in natural order (conv2 before conv10).
    func activationLayers(order: [String] = []) -> [String] {
        let names = Set(activations.flatMap(\.layers.keys))
        let rest = names.subtracting(order).sorted { $0.localizedStandardCompare($1) == .orderedAscending }
        return order.filter(names.contains) + rest
    }
}

/// A short reason from a `DecodingError`: the missing key or the bad field.
private func decodingReason(_ error: Error) -> String {
    switch error as? DecodingError {
    case .keyNotFound(let key, _): return "missing \"\(key.stringValue)\""
    case .typeMismatch(_, let context), .valueNotFound(_, let context):
        return "bad \"\(context.codingPath.map(\.stringValue).joined(separator: "."))\""
    case .dataCorrupted: return "not JSON"
    default: return error.localizedDescription
    }
}

/// Display names for run directories: the last path component, or the last two when those repeat.
func runNames(_ paths: [String]) -> [String] {
    let urls = paths.map { URL(fileURLWithPath: $0).standardized }
    let short = urls.map(\.lastPathComponent)
    return urls.indices.map { i in
        short.filter { $0 == short[i] }.count > 1 ? urls[i].deletingLastPathComponent().lastPathComponent + "/" + short[i] : short[i]
    }
}
