import ArgumentParser

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
