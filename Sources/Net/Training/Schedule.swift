import Foundation

/// Learning-rate schedules as functions of training progress in epochs (fractional, so the rate
/// changes every step). Written on the command line, and stored in a checkpoint's configuration, as
/// `constant`, `step:EVERY:GAMMA`, `cosine`, or `warmup:PEAK:LOW`.
public enum Schedule: Equatable, Sendable, CustomStringConvertible, Codable {
    /// The base rate throughout.
    case constant
    /// The base rate times `gamma` after every `every` epochs (PyTorch's StepLR).
    case step(every: Int, gamma: Float)
    /// Cosine annealing from the base rate to 0 over the whole run (PyTorch's CosineAnnealingLR, eta_min 0).
    case cosine
    /// Linear rise from `low` to the base rate at epoch `peak`, then linear fall back to `low` at the end.
    case warmup(peak: Double, low: Float)

    /// Parses the text form; throws `ConfigurationError.badSchedule`.
    public init(parsing text: String) throws(ConfigurationError) {
        let parts = text.split(separator: ":").map(String.init)
        let bad = ConfigurationError.badSchedule(text)
        switch (parts.first ?? "", parts.count) {
        case ("constant", 1): self = .constant
        case ("cosine", 1): self = .cosine
        case ("step", 3):
            guard let every = Int(parts[1]), every > 0, let gamma = Float(parts[2]), gamma > 0 else { throw bad }
            self = .step(every: every, gamma: gamma)
        case ("warmup", 3):
            guard let peak = Double(parts[1]), peak >= 0, let low = Float(parts[2]), low >= 0 else { throw bad }
            self = .warmup(peak: peak, low: low)
        default:
            throw bad
        }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try Schedule(parsing: text) } catch {
            throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.localizedDescription))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String {
        switch self {
        case .constant: return "constant"
        case .cosine: return "cosine"
        case let .step(every, gamma): return "step:\(every):\(gamma)"
        case let .warmup(peak, low): return "warmup:\(peak):\(low)"
        }
    }

    /// The rate at `epoch` (0 at the start of training, `total` at its end).
    public func rate(base: Float, epoch: Double, total: Double) -> Float {
        switch self {
        case .constant:
            return base
        case let .step(every, gamma):
            return base * pow(gamma, Float(Int(epoch) / every))
        case .cosine:
            return base * Float(0.5 * (1 + cos(Double.pi * min(epoch, total) / max(total, 1e-9))))
        case let .warmup(peak, low):
            if epoch <= peak { return low + (base - low) * Float(peak > 0 ? epoch / peak : 1) }
            let fall = max(total - peak, 1e-9)
            return base + (low - base) * Float(min(1, (epoch - peak) / fall))
        }
    }
}
