import Foundation

/// Errors in a model description or in matching a model to data or a checkpoint.
public enum ModelError: LocalizedError, Equatable {
    case badSpec(String)
    case unknownPreset(String)
    case shape(String)
    /// Building or running the model would allocate more than `MemoryBudget.current`.
    case overBudget(MemoryBudgetError)

    public var errorDescription: String? {
        switch self {
        case .overBudget(let error): return error.errorDescription
        case .badSpec(let why): return "bad model spec: \(why)"
        case .unknownPreset(let name): return "unknown model '\(name)' (presets: \(ModelSpec.presetNames.joined(separator: ", ")), or a spec such as 'conv:32:5:same,maxpool:2,fc:128,fc')"
        case .shape(let why): return why
        }
    }
}

/// Recurrent cell kinds; gate orders follow PyTorch (LSTM i, f, g, o; GRU r, z, n).
public enum CellKind: String, CaseIterable, Sendable, Codable {
    case rnn, lstm, gru
}

/// A network as a list of stages, written as a compact comma-separated string:
/// `conv:OUT:K[:same|valid|P]` (stride 1), `maxpool:K[:S]`, `avgpool:K[:S]` (stride defaults to K),
/// `fc:N` (the last `fc` may omit N: one output per class), `dropout:P`, and `rnn|lstm|gru:H[:LAYERS]`
/// (reads an image's rows as time steps); `bn[:eps=E][:momentum=M]`, `lrn:SIZE[:alpha=A][:beta=B][:k=K]`,
/// `adaptiveavgpool:OH[xOW]`, `globalavgpool` and `flatten` (the spec language of SPEC.md in the
/// README). Convolutions and all but the last dense layer use the model's activation; when `bn`
/// directly follows a convolution or dense layer, that activation moves to the `bn` (conv → BN → ReLU).
public struct ModelSpec: Equatable, Sendable, CustomStringConvertible {
    public enum Padding: Equatable, Sendable {
        case same, valid, pixels(Int)
    }

    public enum Stage: Equatable, Sendable {
        case conv(out: Int, kernel: Int, padding: Padding)
        case maxPool(size: Int, stride: Int)
        case avgPool(size: Int, stride: Int)
        case dense(Int?)
        case dropout(Float)
        case recurrent(CellKind, hidden: Int, layers: Int)
        /// `bn[:eps=E][:momentum=M]`: BatchNorm2d after an image stage, BatchNorm1d after `fc`.
        case batchNorm(eps: Float, momentum: Float)
        /// `lrn:SIZE[:alpha=A][:beta=B][:k=K]`: PyTorch's `LocalResponseNorm`.
        case localResponseNorm(LRNParameters)
        /// `adaptiveavgpool:OH[xOW]`, and `globalavgpool` for 1×1.
        case adaptiveAvgPool(height: Int, width: Int)
        /// `flatten`: `(C, H, W)` → `(C·H·W)`.
        case flatten
    }

    /// PyTorch's `BatchNorm` defaults.
    public static let batchNormDefaults = (eps: Float(1e-5), momentum: Float(0.1))

    public var stages: [Stage]

    /// The largest number a spec may hold (sizes, kernels, padding, layers): 2^24. Keeps every shape
    /// computed from a spec inside `Int`; whether the model fits in memory is `MemoryBudget`'s to say.
    public static let maximumNumber = 1 << 24

    public init(stages: [Stage]) { self.stages = stages }

    /// Parses the compact form; throws `ModelError.badSpec` naming the offending token.
    public init(parsing text: String) throws {
        stages = try text.split(separator: ",").map { try ModelSpec.parseStage(String($0).trimmingCharacters(in: .whitespaces)) }
        if stages.isEmpty { throw ModelError.badSpec("empty") }
    }

    private static func parseStage(_ token: String) throws -> Stage {
        let parts = token.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func int(_ i: Int, default value: Int? = nil) throws -> Int {
            guard i < parts.count else {
                if let value { return value }
                throw ModelError.badSpec("'\(token)' needs more fields")
            }
            guard let v = Int(parts[i]), v > 0, v <= maximumNumber else {
                throw ModelError.badSpec("'\(parts[i])' in '\(token)' is not a whole number from 1 to \(maximumNumber)")
            }
            return v
        }
        func arity(_ range: ClosedRange<Int>) throws {
            if !range.contains(parts.count) { throw ModelError.badSpec("'\(token)' has \(parts.count - 1) fields") }
        }
        switch parts[0] {
        case "conv":
            try arity(3...4)
            let padding: Padding
            switch parts.count == 4 ? parts[3] : "valid" {
            case "same": padding = .same
            case "valid": padding = .valid
            case let p:
                guard let v = Int(p), v >= 0, v <= maximumNumber else {
                    throw ModelError.badSpec("padding '\(p)' in '\(token)' is not same, valid or a number from 0 to \(maximumNumber)")
                }
                padding = .pixels(v)
            }
            return .conv(out: try int(1), kernel: try int(2), padding: padding)
        case "maxpool", "avgpool":
            try arity(2...3)
            let size = try int(1)
            let stride = try int(2, default: size)
            return parts[0] == "maxpool" ? .maxPool(size: size, stride: stride) : .avgPool(size: size, stride: stride)
        case "fc":
            try arity(1...2)
            return .dense(parts.count == 2 ? try int(1) : nil)
        case "dropout":
            try arity(2...2)
            guard let p = Float(parts[1]), p >= 0, p < 1 else { throw ModelError.badSpec("dropout probability '\(parts[1])' is not in [0, 1)") }
            return .dropout(p)
        case let kind where CellKind(rawValue: kind) != nil:
            try arity(2...3)
            return .recurrent(CellKind(rawValue: kind)!, hidden: try int(1), layers: try int(2, default: 1))
        case "bn":
            let options = try floatOptions(parts.dropFirst(), allowed: ["eps", "momentum"], token: token)
            let (eps, momentum) = (options["eps"] ?? batchNormDefaults.eps, options["momentum"] ?? batchNormDefaults.momentum)
            guard eps > 0, (0...1).contains(momentum) else { throw ModelError.badSpec("'\(token)' needs eps > 0 and momentum from 0 to 1") }
            return .batchNorm(eps: eps, momentum: momentum)
        case "lrn":
            guard parts.count >= 2 else { throw ModelError.badSpec("'\(token)' needs more fields") }
            let options = try floatOptions(parts.dropFirst(2), allowed: ["alpha", "beta", "k"], token: token)
            let lrn = LRNParameters(size: try int(1), alpha: options["alpha"] ?? 1e-4, beta: options["beta"] ?? 0.75, k: options["k"] ?? 1)
            guard lrn.alpha >= 0, lrn.beta >= 0, lrn.k > 0 else { throw ModelError.badSpec("'\(token)' needs alpha >= 0, beta >= 0 and k > 0") }
            return .localResponseNorm(lrn)
        case "adaptiveavgpool":
            try arity(2...2)
            let sides = parts[1].split(separator: "x", omittingEmptySubsequences: false)
            guard (1...2).contains(sides.count), let h = Int(sides[0]), let w = Int(sides.last!), (1...maximumNumber).contains(h), (1...maximumNumber).contains(w) else {
                throw ModelError.badSpec("'\(parts[1])' in '\(token)' is not OH or OHxOW with sizes from 1 to \(maximumNumber)")
            }
            return .adaptiveAvgPool(height: h, width: w)
        case "globalavgpool":
            try arity(1...1)
            return .adaptiveAvgPool(height: 1, width: 1)
        case "flatten":
            try arity(1...1)
            return .flatten
        default:
            throw ModelError.badSpec("unknown stage '\(token)' (conv, maxpool, avgpool, fc, dropout, rnn, lstm, gru, bn, lrn, adaptiveavgpool, globalavgpool, flatten)")
        }
    }

    /// The `name=value` fields of `token` (each at most once, each one of `allowed`) as finite floats.
    private static func floatOptions(_ fields: ArraySlice<String>, allowed: [String], token: String) throws -> [String: Float] {
        var options: [String: Float] = [:]
        for field in fields {
            let pair = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard pair.count == 2, allowed.contains(pair[0]) else {
                throw ModelError.badSpec("unknown option '\(field)' in '\(token)' (options: \(allowed.map { "\($0)=" }.joined(separator: ", ")))")
            }
            guard options[pair[0]] == nil else { throw ModelError.badSpec("option '\(pair[0])' repeated in '\(token)'") }
            guard let value = Float(pair[1]), value.isFinite else { throw ModelError.badSpec("'\(pair[1])' in '\(token)' is not a number") }
            options[pair[0]] = value
        }
        return options
    }

    /// The canonical compact form; parsing it gives back the same spec.
    public var description: String {
        stages.map { stage -> String in
            switch stage {
            case let .conv(out, kernel, padding):
                let p: String
                switch padding {
                case .same: p = "same"
                case .valid: p = "valid"
                case .pixels(let v): p = String(v)
                }
                return "conv:\(out):\(kernel):\(p)"
            case let .maxPool(size, stride): return "maxpool:\(size):\(stride)"
            case let .avgPool(size, stride): return "avgpool:\(size):\(stride)"
            case .dense(let n): return n.map { "fc:\($0)" } ?? "fc"
            case .dropout(let p): return "dropout:\(p)"
            case let .recurrent(kind, hidden, layers): return "\(kind.rawValue):\(hidden):\(layers)"
            case let .batchNorm(eps, momentum):
                return "bn" + (eps == ModelSpec.batchNormDefaults.eps ? "" : ":eps=\(eps)")
                    + (momentum == ModelSpec.batchNormDefaults.momentum ? "" : ":momentum=\(momentum)")
            case .localResponseNorm(let lrn): return "lrn:\(lrn.size):alpha=\(lrn.alpha):beta=\(lrn.beta):k=\(lrn.k)"
            case let .adaptiveAvgPool(h, w): return h == 1 && w == 1 ? "globalavgpool" : h == w ? "adaptiveavgpool:\(h)" : "adaptiveavgpool:\(h)x\(w)"
            case .flatten: return "flatten"
            }
        }.joined(separator: ",")
    }

    public static let presetNames = ["lenet5", "lenet5-classic", "conv5", "rnn", "lstm", "gru"]

    /// A named preset. `kernel` is the convolution size (5, or 3 for the small-kernel variants);
    /// `hidden` and `layers` size the recurrent presets.
    ///
    /// - `lenet5`: conv 32 same → maxpool 2 → conv 64 same → maxpool 2 → fc 1024 → dropout 0.5 → fc classes
    /// - `lenet5-classic`: conv 6 valid → maxpool 2 → conv 16 valid → maxpool 2 → fc 120 → fc 84 → fc classes
    /// - `conv5`: five 3×3 same convolutions (16, 32, 32, 64, 64 channels), each followed by 2×2 average
    ///   pooling with stride 1, then fc 256 → fc classes
    /// - `rnn`, `lstm`, `gru`: the recurrent stack over image rows, then fc classes
    public static func preset(_ name: String, kernel: Int = 5, hidden: Int = 128, layers: Int = 1) throws -> ModelSpec {
        let k = kernel
        switch name {
        case "lenet5":
            return try ModelSpec(parsing: "conv:32:\(k):same,maxpool:2,conv:64:\(k):same,maxpool:2,fc:1024,dropout:0.5,fc")
        case "lenet5-classic":
            return try ModelSpec(parsing: "conv:6:\(k):valid,maxpool:2,conv:16:\(k):valid,maxpool:2,fc:120,fc:84,fc")
        case "conv5":
            return try ModelSpec(parsing: [16, 32, 32, 64, 64].map { "conv:\($0):3:same,avgpool:2:1" }.joined(separator: ",") + ",fc:256,fc")
        case "rnn", "lstm", "gru":
            return try ModelSpec(parsing: "\(name):\(hidden):\(layers),fc")
        default:
            if name.contains(":") { return try ModelSpec(parsing: name) }
            throw ModelError.unknownPreset(name)
        }
    }
}

extension ModelSpec.Stage {
    var isBatchNorm: Bool { if case .batchNorm = self { true } else { false } }
    var isRecurrent: Bool { if case .recurrent = self { true } else { false } }
    var isConvolutionOrDense: Bool {
        switch self {
        case .conv, .dense: true
        default: false
        }
    }
}
