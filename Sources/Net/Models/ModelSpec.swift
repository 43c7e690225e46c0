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

/// A network as a list of stages, written as a compact comma-separated string (the full grammar is
/// the README's "Model specs"): `conv:OUT:K[:same|valid|P]` with options `stride=S`, `pad=P` or
/// `pad=T/L/B/R` (ONNX's top, left, bottom, right), `groups=G`, `act=A` (`K` may be `KHxKW`);
/// `maxpool:K[:S]` and `avgpool:K[:S]` (stride defaults to K) with options `pad=…`, `ceil` and, for
/// average pooling, `exclude-pad`; `fc:N` (the last `fc` may omit N: one output per class) with
/// `act=A`; `dropout:P`; `rnn|lstm|gru:H[:LAYERS]` (reads an image's rows as time steps);
/// `bn[:eps=E][:momentum=M]`, `lrn:SIZE[:alpha=A][:beta=B][:k=K]`, `adaptiveavgpool:OH[xOW]`,
/// `globalavgpool` and `flatten`. Options follow the positional fields, in any order, each at most
/// once. Convolutions and all but the last dense layer use the model's activation unless `act=` says
/// otherwise; the last dense layer has none. When `bn` directly follows a convolution or dense layer,
/// that layer's activation moves to the `bn` (conv → BN → ReLU).
public struct ModelSpec: Equatable, Sendable, CustomStringConvertible {
    /// A convolution's padding: `same` (k/2 on every side, odd kernels), `valid` (none), the same
    /// number of pixels on every side, or one number per side.
    public enum Padding: Equatable, Sendable {
        case same, valid, pixels(Int), sides(Sides)
    }

    /// Padding per side, ONNX's order: top, left, bottom, right.
    public struct Sides: Equatable, Sendable {
        public var top: Int, left: Int, bottom: Int, right: Int
        public init(top: Int, left: Int, bottom: Int, right: Int) { (self.top, self.left, self.bottom, self.right) = (top, left, bottom, right) }
        public init(_ all: Int) { self.init(top: all, left: all, bottom: all, right: all) }
        public static let zero = Sides(0)
        public var isUniform: Bool { top == left && top == bottom && top == right }
        /// `(top, left, bottom, right)`, as `ConvGeometry` takes it.
        public var tuple: (top: Int, left: Int, bottom: Int, right: Int) { (top, left, bottom, right) }
    }

    /// A `conv` stage: `out` filters of `kernelHeight × kernelWidth` over `groups` blocks of channels.
    /// `activation` nil is the model's.
    public struct Convolution: Equatable, Sendable {
        public var out: Int
        public var kernelHeight: Int, kernelWidth: Int
        public var padding: Padding
        public var stride: Int
        public var groups: Int
        public var activation: Activation?

        public init(out: Int, kernel: Int, kernelWidth: Int? = nil, padding: Padding = .valid, stride: Int = 1, groups: Int = 1,
                    activation: Activation? = nil) {
            self.out = out
            self.kernelHeight = kernel
            self.kernelWidth = kernelWidth ?? kernel
            self.padding = padding
            self.stride = stride
            self.groups = groups
            self.activation = activation
        }

        /// The padding on each side; nil for `same` with an even kernel.
        public var sides: Sides? {
            switch padding {
            case .same:
                guard kernelHeight % 2 == 1, kernelWidth % 2 == 1 else { return nil }
                return Sides(top: kernelHeight / 2, left: kernelWidth / 2, bottom: kernelHeight / 2, right: kernelWidth / 2)
            case .valid: return .zero
            case .pixels(let p): return Sides(p)
            case .sides(let sides): return sides
            }
        }
    }

    /// A `maxpool` or `avgpool` stage: a `size × size` window moved by `stride`; `includePadding` is
    /// PyTorch's `count_include_pad` (average pooling only; `exclude-pad` clears it).
    public struct Pooling: Equatable, Sendable {
        public var size: Int, stride: Int
        public var padding: Sides
        public var ceilMode: Bool
        public var includePadding: Bool

        public init(size: Int, stride: Int? = nil, padding: Sides = .zero, ceilMode: Bool = false, includePadding: Bool = true) {
            self.size = size
            self.stride = stride ?? size
            self.padding = padding
            self.ceilMode = ceilMode
            self.includePadding = includePadding
        }
    }

    public enum Stage: Equatable, Sendable {
        case conv(Convolution)
        case maxPool(Pooling)
        case avgPool(Pooling)
        /// Outputs (nil: one per class, last stage only) and the activation (nil: the model's, or none last).
        case dense(Int?, activation: Activation? = nil)
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

    /// The bare options (flags) a stage may carry.
    private static let flags: Set<String> = ["ceil", "exclude-pad"]

    private static func parseStage(_ token: String) throws -> Stage {
        let fields = token.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        // positional fields, then options (`name=value` or a bare flag)
        let firstOption = fields.indices.dropFirst().first { fields[$0].contains("=") || flags.contains(fields[$0]) } ?? fields.count
        let parts = Array(fields[..<firstOption])
        var options: [String: String] = [:]
        for field in fields[firstOption...] {
            let pair = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard pair.count == 2 || flags.contains(field) else {
                throw ModelError.badSpec("'\(field)' in '\(token)' is not an option (options follow the positional fields)")
            }
            if pair.count == 2 && flags.contains(pair[0]) { throw ModelError.badSpec("'\(pair[0])' in '\(token)' takes no value") }
            if options[pair[0]] != nil { throw ModelError.badSpec("option '\(pair[0])' appears twice in '\(token)'") }
            options[pair[0]] = pair.count == 2 ? pair[1] : ""
        }
        func allow(_ names: Set<String>) throws {
            if let unknown = options.keys.sorted().first(where: { !names.contains($0) }) {
                let known = names.isEmpty ? "none" : names.sorted().joined(separator: ", ")
                throw ModelError.badSpec("unknown option '\(unknown)' in '\(token)' (options here: \(known))")
            }
        }
        func number(_ text: String, from minimum: Int = 1) throws -> Int {
            guard let v = Int(text), v >= minimum, v <= maximumNumber else {
                throw ModelError.badSpec("'\(text)' in '\(token)' is not a whole number from \(minimum) to \(maximumNumber)")
            }
            return v
        }
        func int(_ i: Int, default value: Int? = nil) throws -> Int {
            guard i < parts.count else {
                if let value { return value }
                throw ModelError.badSpec("'\(token)' needs more fields")
            }
            return try number(parts[i])
        }
        func arity(_ range: ClosedRange<Int>) throws {
            if !range.contains(parts.count) { throw ModelError.badSpec("'\(token)' has \(parts.count - 1) fields") }
        }
        func activationOption() throws -> Activation? {
            try options["act"].map { name in
                guard let a = Activation(rawValue: name) else {
                    throw ModelError.badSpec("act '\(name)' in '\(token)' is not one of \(Activation.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return a
            }
        }
        /// The value of option `name` as a finite float, nil when absent.
        func real(_ name: String) throws -> Float? {
            try options[name].map { text in
                guard let v = Float(text), v.isFinite else { throw ModelError.badSpec("'\(text)' in '\(token)' is not a number") }
                return v
            }
        }
        func sidesOption() throws -> Sides? {
            try options["pad"].map { text in
                let values = try text.split(separator: "/", omittingEmptySubsequences: false).map { try number(String($0), from: 0) }
                switch values.count {
                case 1: return Sides(values[0])
                case 4: return Sides(top: values[0], left: values[1], bottom: values[2], right: values[3])
                default: throw ModelError.badSpec("pad '\(text)' in '\(token)' is not P or T/L/B/R")
                }
            }
        }
        switch fields[0] {
        case "conv":
            try arity(3...4)
            try allow(["stride", "pad", "groups", "act"])
            let kernel = parts[2].split(separator: "x", omittingEmptySubsequences: false).map(String.init)
            guard kernel.count <= 2 else { throw ModelError.badSpec("kernel '\(parts[2])' in '\(token)' is not K or KHxKW") }
            var conv = Convolution(out: try int(1), kernel: try number(kernel[0]), kernelWidth: kernel.count == 2 ? try number(kernel[1]) : nil)
            if let sides = try sidesOption() {
                if parts.count == 4 { throw ModelError.badSpec("'\(token)' gives its padding twice (positional and pad=)") }
                conv.padding = sides.isUniform ? .pixels(sides.top) : .sides(sides)
            } else {
                switch parts.count == 4 ? parts[3] : "valid" {
                case "same": conv.padding = .same
                case "valid": conv.padding = .valid
                case let p:
                    guard let v = Int(p), v >= 0, v <= maximumNumber else {
                        throw ModelError.badSpec("padding '\(p)' in '\(token)' is not same, valid or a number from 0 to \(maximumNumber)")
                    }
                    conv.padding = .pixels(v)
                }
            }
            if let sides = conv.sides, sides.top > conv.kernelHeight || sides.bottom > conv.kernelHeight
                || sides.left > conv.kernelWidth || sides.right > conv.kernelWidth {
                throw ModelError.badSpec("padding in '\(token)' is larger than the kernel")
            }
            conv.stride = try options["stride"].map { try number($0) } ?? 1
            conv.groups = try options["groups"].map { try number($0) } ?? 1
            if conv.out % conv.groups != 0 { throw ModelError.badSpec("groups=\(conv.groups) in '\(token)' does not divide its \(conv.out) outputs") }
            conv.activation = try activationOption()
            return .conv(conv)
        case "maxpool", "avgpool":
            try arity(2...3)
            let isMax = fields[0] == "maxpool"
            try allow(isMax ? ["pad", "ceil"] : ["pad", "ceil", "exclude-pad"])
            let size = try int(1)
            let pool = Pooling(size: size, stride: try int(2, default: size), padding: try sidesOption() ?? .zero,
                               ceilMode: options["ceil"] != nil, includePadding: options["exclude-pad"] == nil)
            if [pool.padding.top, pool.padding.left, pool.padding.bottom, pool.padding.right].contains(where: { $0 > size / 2 }) {
                throw ModelError.badSpec("padding in '\(token)' is larger than half the window (\(size / 2))")
            }
            return isMax ? .maxPool(pool) : .avgPool(pool)
        case "fc":
            try arity(1...2)
            try allow(["act"])
            return .dense(parts.count == 2 ? try int(1) : nil, activation: try activationOption())
        case "dropout":
            try arity(2...2)
            try allow([])
            guard let p = Float(parts[1]), p >= 0, p < 1 else { throw ModelError.badSpec("dropout probability '\(parts[1])' is not in [0, 1)") }
            return .dropout(p)
        case let kind where CellKind(rawValue: kind) != nil:
            try arity(2...3)
            try allow([])
            return .recurrent(CellKind(rawValue: kind)!, hidden: try int(1), layers: try int(2, default: 1))
        case "bn":
            try arity(1...1)
            try allow(["eps", "momentum"])
            let (eps, momentum) = (try real("eps") ?? batchNormDefaults.eps, try real("momentum") ?? batchNormDefaults.momentum)
            guard eps > 0, (0...1).contains(momentum) else { throw ModelError.badSpec("'\(token)' needs eps > 0 and momentum from 0 to 1") }
            return .batchNorm(eps: eps, momentum: momentum)
        case "lrn":
            try arity(2...2)
            try allow(["alpha", "beta", "k"])
            let lrn = LRNParameters(size: try int(1), alpha: try real("alpha") ?? 1e-4, beta: try real("beta") ?? 0.75, k: try real("k") ?? 1)
            guard lrn.alpha >= 0, lrn.beta >= 0, lrn.k > 0 else { throw ModelError.badSpec("'\(token)' needs alpha >= 0, beta >= 0 and k > 0") }
            return .localResponseNorm(lrn)
        case "adaptiveavgpool":
            try arity(2...2)
            try allow([])
            let sides = parts[1].split(separator: "x", omittingEmptySubsequences: false)
            guard (1...2).contains(sides.count), let h = Int(sides[0]), let w = Int(sides.last!), (1...maximumNumber).contains(h), (1...maximumNumber).contains(w) else {
                throw ModelError.badSpec("'\(parts[1])' in '\(token)' is not OH or OHxOW with sizes from 1 to \(maximumNumber)")
            }
            return .adaptiveAvgPool(height: h, width: w)
        case "globalavgpool":
            try arity(1...1)
            try allow([])
            return .adaptiveAvgPool(height: 1, width: 1)
        case "flatten":
            try arity(1...1)
            try allow([])
            return .flatten
        default:
            throw ModelError.badSpec("unknown stage '\(token)' (conv, maxpool, avgpool, fc, dropout, rnn, lstm, gru, bn, lrn, adaptiveavgpool, globalavgpool, flatten)")
        }
    }

    /// The canonical compact form; parsing it gives back the same spec. Positional fields as written
    /// (a square kernel as one number, symmetric padding positional), then the options that differ
    /// from their defaults: conv stride, pad, groups, act; pooling pad, ceil, exclude-pad; fc act.
    public var description: String {
        func sidesText(_ s: Sides) -> String { s.isUniform ? "\(s.top)" : "\(s.top)/\(s.left)/\(s.bottom)/\(s.right)" }
        func join(_ fields: [String?]) -> String { fields.compactMap { $0 }.joined(separator: ":") }
        return stages.map { stage -> String in
            switch stage {
            case let .conv(c):
                let kernel = c.kernelHeight == c.kernelWidth ? "\(c.kernelHeight)" : "\(c.kernelHeight)x\(c.kernelWidth)"
                var positional: String?, pad: String?
                switch c.padding {
                case .same: positional = "same"
                case .valid: positional = "valid"
                case .pixels(let v): positional = String(v)
                case .sides(let s): if s.isUniform { positional = String(s.top) } else { pad = "pad=" + sidesText(s) }
                }
                return join(["conv", "\(c.out)", kernel, positional, c.stride == 1 ? nil : "stride=\(c.stride)", pad,
                             c.groups == 1 ? nil : "groups=\(c.groups)", c.activation.map { "act=\($0.rawValue)" }])
            case let .maxPool(p), let .avgPool(p):
                let kind: String
                if case .maxPool = stage { kind = "maxpool" } else { kind = "avgpool" }
                return join([kind, "\(p.size)", "\(p.stride)", p.padding == .zero ? nil : "pad=" + sidesText(p.padding),
                             p.ceilMode ? "ceil" : nil, p.includePadding ? nil : "exclude-pad"])
            case let .dense(n, activation): return join(["fc", n.map(String.init), activation.map { "act=\($0.rawValue)" }])
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

    public static let presetNames = ["lenet5", "lenet5-classic", "conv5", "zfnet", "rnn", "lstm", "gru"]

    /// A named preset. `kernel` is the convolution size (5, or 3 for the small-kernel variants);
    /// `hidden` and `layers` size the recurrent presets.
    ///
    /// - `lenet5`: conv 32 same → maxpool 2 → conv 64 same → maxpool 2 → fc 1024 → dropout 0.5 → fc classes
    /// - `lenet5-classic`: conv 6 valid → maxpool 2 → conv 16 valid → maxpool 2 → fc 120 → fc 84 → fc classes
    /// - `conv5`: five 3×3 same convolutions (16, 32, 32, 64, 64 channels), each followed by 2×2 average
    ///   pooling with stride 1, then fc 256 → fc classes
    /// - `zfnet`: Zeiler and Fergus's network scaled to 3×32×32 colour images (CIFAR-10): conv 64 7×7
    ///   stride 2 → LRN → maxpool 3/2 → conv 192 5×5 → LRN → maxpool 3/2 → conv 256, 256, 192 3×3 →
    ///   maxpool 3/2 → fc 512 → dropout 0.5 → fc 512 → dropout 0.5 → fc classes (16×16 after conv1, 8×8
    ///   after pool1, 4×4 after pool2, 2×2 after pool3)
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
        case "zfnet":
            let lrn = "lrn:5:alpha=0.0001:beta=0.75:k=2"
            return try ModelSpec(parsing: "conv:64:7:stride=2:pad=3,\(lrn),maxpool:3:2:pad=1,conv:192:5:2,\(lrn),maxpool:3:2:pad=1,"
                                 + "conv:256:3:1,conv:256:3:1,conv:192:3:1,maxpool:3:2:pad=1,fc:512,dropout:0.5,fc:512,dropout:0.5,fc")
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
    var isConvolutionOrDense: Bool { activation(model: .identity, isLast: false) != nil }

    /// The activation a convolution or dense stage applies (its `act=`, else the model's; none for the
    /// last dense layer), before a following `bn` takes it; nil for the other stages.
    func activation(model: Activation, isLast: Bool) -> Activation? {
        switch self {
        case .conv(let c): c.activation ?? model
        case .dense(_, let a): a ?? (isLast ? .identity : model)
        default: nil
        }
    }
}
