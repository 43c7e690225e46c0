import ArgumentParser
import Deconv
import Occlusion

/// How `deconvnet` ends, for scripts and for `sweep`, which reads its runs' statuses.
enum ExitStatus: Int32 {
    case success = 0
    /// A run-time error: a bad file, bad data, I/O.
    case failure = 1
    /// `train` stopped because the run diverged.
    case diverged = 3
    /// `sweep` finished but some of its runs failed (diverged runs are reported, not failures).
    case runsFailed = 4
    /// A bad flag or value (ArgumentParser's validation).
    case badUsage = 64

    var exitCode: ExitCode { ExitCode(rawValue) }
}

/// An error that ends the command with its own status instead of `ExitStatus.failure`.
protocol StatusError: Error {
    var exitStatus: ExitStatus { get }
}

/// A layer, channel or position that the model does not have is a bad flag value (64), like any
/// other, though it shows only once the checkpoint is read; a model with nothing to project is a
/// run-time failure.
extension ProjectionError: StatusError {
    var exitStatus: ExitStatus {
        switch self {
        case .noConvolution: return .failure
        case .unknownLayer, .notProjectable, .channelOutOfRange, .positionOutOfRange: return .badUsage
        }
    }
}

/// `--layer` and `--channel` as for projections; the other occlusion errors stay run-time failures.
extension OcclusionError: StatusError {
    var exitStatus: ExitStatus {
        switch self {
        case .layerNotFound, .channelOutOfRange: return .badUsage
        case .windowTooLarge, .badStride, .badWindow, .targetOutOfRange, .regionOutsideImage, .imageShape, .tooFewImages: return .failure
        }
    }
}
