import Foundation

/// Why a `--grid` could not be read. Each description is one line.
enum GridError: LocalizedError, Equatable {
    case empty
    case notKeyValues(String)
    case unknownKey(String)
    case repeatedKey(String)
    case emptyValue(key: String)
    case repeatedValue(key: String, value: String)
    case badCharacter(key: String, value: String)

    var errorDescription: String? {
        switch self {
        case .empty: return "--grid is empty; write e.g. \"lr=0.1,0.01 activation=relu,tanh\""
        case .notKeyValues(let token): return "--grid: '\(token)' is not KEY=VALUE,VALUE,… (e.g. lr=0.1,0.01)"
        case .unknownKey(let key): return "--grid: unknown key '\(key)' (keys: \(SweepGrid.options.keys.sorted().joined(separator: ", ")))"
        case .repeatedKey(let key): return "--grid: key '\(key)' appears twice"
        case .emptyValue(let key): return "--grid: '\(key)' has an empty value"
        case let .repeatedValue(key, value): return "--grid: '\(key)' lists '\(value)' twice"
        case let .badCharacter(key, value): return "--grid: value '\(value)' of '\(key)' contains '/', which a run directory's name cannot hold"
        }
    }
}

/// The settings a sweep varies: space-separated `KEY=V1,V2,…` terms, e.g.
/// `lr=0.1,0.01 activation=sigmoid,tanh loss=mse,ce`. Keys are `train` options without their dashes
/// (`batch_size` may be written for `batch-size`). For `augment`, `+` joins augmentations and `none`
/// means none: `augment=none,flip,flip+shift`.
struct SweepGrid: Equatable {
    struct Axis: Equatable {
        var key: String
        var values: [String]
    }

    /// Grid keys and the `train` options they set.
    static let options: [String: String] = [
        "lr": "--lr", "activation": "--activation", "loss": "--loss", "optimizer": "--optimizer", "batch-size": "--batch-size",
        "init": "--init", "weight-decay": "--weight-decay", "model": "--model", "kernel": "--kernel", "schedule": "--schedule",
        "hidden": "--hidden", "layers": "--layers", "seed": "--seed", "augment": "--augment",
    ]

    var axes: [Axis]

    init(parsing text: String) throws(GridError) {
        axes = []
        for token in text.split(whereSeparator: \.isWhitespace).map(String.init) {
            guard let equals = token.firstIndex(of: "="), equals != token.startIndex else { throw .notKeyValues(token) }
            let key = token[..<equals].lowercased().replacingOccurrences(of: "_", with: "-")
            guard Self.options[key] != nil else { throw .unknownKey(String(token[..<equals])) }
            guard !axes.contains(where: { $0.key == key }) else { throw .repeatedKey(key) }
            let values = token[token.index(after: equals)...].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            var seen: Set<String> = []
            for value in values {
                guard !value.isEmpty else { throw .emptyValue(key: key) }
                guard !value.contains("/") else { throw .badCharacter(key: key, value: value) }
                guard seen.insert(value).inserted else { throw .repeatedValue(key: key, value: value) }
            }
            axes.append(Axis(key: key, values: values))
        }
        guard !axes.isEmpty else { throw .empty }
    }

    /// One setting of every key: `(key, value)` in the grid's key order.
    typealias Combination = [(key: String, value: String)]

    /// Every combination, the last key varying fastest.
    var combinations: [Combination] {
        axes.reduce([[]]) { partial, axis in partial.flatMap { prefix in axis.values.map { prefix + [(axis.key, $0)] } } }
    }

    /// The run directory's name: `lr=0.1_activation=sigmoid_loss=mse`.
    static func name(_ combination: Combination) -> String {
        combination.map { "\($0.key)=\($0.value)" }.joined(separator: "_")
    }

    /// The `train` arguments that set `combination`.
    static func arguments(_ combination: Combination) -> [String] {
        combination.flatMap { key, value -> [String] in
            guard key == "augment" else { return [options[key]!, value] }
            return value == "none" ? [] : ["--augment", value.replacingOccurrences(of: "+", with: ",")]
        }
    }
}
