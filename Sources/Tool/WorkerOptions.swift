import ArgumentParser
import Net

/// `--workers N`: the threads the engine splits its batches over (`Workers.count`).
struct WorkerOptions: ParsableArguments {
    @Option(help: "Worker threads the engine splits its batches over (default: one per core).")
    var workers: Int?

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be positive") }
    }

    /// Sets `Workers.count` when `--workers` was given.
    func apply() {
        if let workers { Workers.set(workers) }
    }
}
