import Dispatch
import Foundation

/// Threads the engine splits each batch over. The engine parallelises across images itself and runs
/// every OpenBLAS call single-threaded inside one worker, which keeps all cores busy with im2col,
/// pooling and the matrix products alike and avoids BLAS's thread hand-offs on small matrices.
public enum Workers {
    nonisolated(unsafe) public private(set) static var count = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Sets the worker count (e.g. 1 for a reproducibility check on another machine).
    public static func set(_ n: Int) {
        precondition(n > 0)
        count = n
    }
}

private let blasSingleThreaded: Void = setBLASThreads(1)

/// Splits `0..<total` into at most `Workers.count` contiguous ranges, in order, and runs `body(range,
/// worker)` for each concurrently. The split depends only on `total` and the worker count, so results
/// are reproducible for a given thread count.
public func parallelRanges(_ total: Int, minimumPerWorker: Int = 1, _ body: (Range<Int>, Int) -> Void) {
    _ = blasSingleThreaded
    let workers = workerCount(total, minimumPerWorker: minimumPerWorker)
    if workers == 1 {
        body(0..<total, 0)
        return
    }
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        let lower = total * w / workers, upper = total * (w + 1) / workers
        body(lower..<upper, w)
    }
}

/// How many workers `parallelRanges` uses for `total` items.
public func workerCount(_ total: Int, minimumPerWorker: Int = 1) -> Int {
    max(1, min(Workers.count, total / max(1, minimumPerWorker)))
}
