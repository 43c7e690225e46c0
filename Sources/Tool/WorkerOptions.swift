import ArgumentParser
import Net

/// `--workers N`: the threads the engine splits its batches over (`Workers.count`).
struct WorkerOptions: ParsableArguments {
    @Option(help: "Worker threads the engine splits its batches over, 1 to \(Workers.maximum) (default: one per core).")
    var workers: Int?

    func validate() throws {
        if let workers, !(1...Workers.maximum).contains(workers) {
            throw ValidationError("--workers must be between 1 and \(Workers.maximum)")
        }
    }

    /// Sets `Workers.count` when `--workers` was given.
    func apply() {
        if let workers { Workers.set(workers) }
    }
}
