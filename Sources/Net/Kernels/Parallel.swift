import Dispatch
import Foundation
import Synchronization

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
/// worker)` for each concurrently, worker 0 on the calling thread. The split depends only on `total`
/// and the worker count, so results are reproducible for a given thread count. Regions do not nest.
public func parallelRanges(_ total: Int, minimumPerWorker: Int = 1, _ body: (Range<Int>, Int) -> Void) {
    _ = blasSingleThreaded
    let workers = workerCount(total, minimumPerWorker: minimumPerWorker)
    if workers == 1 {
        body(0..<total, 0)
        return
    }
    WorkerPool.shared.run(workers) { w in
        let lower = total * w / workers, upper = total * (w + 1) / workers
        body(lower..<upper, w)
    }
}

/// How many workers `parallelRanges` uses for `total` items.
public func workerCount(_ total: Int, minimumPerWorker: Int = 1) -> Int {
    max(1, min(Workers.count, total / max(1, minimumPerWorker)))
}

/// Persistent helper threads that spin for a short while after each region before they sleep.
/// A training step of a small model is a chain of ~1 ms regions (one per layer and pass); waking a
/// sleeping thread for each (as `DispatchQueue.concurrentPerform` does) cost lenet5-classic a third
/// of its second core, because the helper started each region ~0.4 ms late.
private final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// How long an idle helper keeps polling for the next region before it sleeps.
    private static let spinNanoseconds: UInt64 = 500_000

    /// Starts a region when it changes: a count of regions times 256 plus the region's worker count,
    /// so a helper reads which region and how many workers in one load.
    private let generation = Atomic<Int>(0)
    /// Helpers of the current region that have not finished.
    private let pending = Atomic<Int>(0)
    private let wake = NSCondition()
    /// Serialises regions started from different threads.
    private let regionLock = NSLock()
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    nonisolated(unsafe) private var helpers = 0

    /// Runs `body(w)` for `w` in `0..<workers`, `body(0)` on the calling thread, and returns when all are done.
    func run(_ workers: Int, _ body: (Int) -> Void) {
        precondition(workers < 256)
        regionLock.lock()
        defer { regionLock.unlock() }
        let current = generation.load(ordering: .relaxed)
        while helpers < workers - 1 {
            helpers += 1
            let thread = Thread { [self, index = helpers] in serve(index, after: current) }
            thread.stackSize = 1 << 20
            thread.start()
        }
        withoutActuallyEscaping(body) { body in
            job = body
            pending.store(workers - 1, ordering: .relaxed)
            wake.lock()
            generation.store((current >> 8 + 1) << 8 | workers, ordering: .releasing)
            wake.broadcast()
            wake.unlock()
            body(0)
            while pending.load(ordering: .acquiring) > 0 {}
            job = nil
        }
    }

    /// Helper `index`'s loop: wait for the next region, run its share if the region has that many workers.
    private func serve(_ index: Int, after start: Int) {
        var seen = start
        while true {
            seen = next(after: seen)
            if index < seen & 255 {
                job!(index)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }

    /// Polls until the generation moves past `seen`, then sleeps on the condition; returns the new one.
    private func next(after seen: Int) -> Int {
        let start = DispatchTime.now().uptimeNanoseconds
        var polls = 0
        while true {
            let now = generation.load(ordering: .acquiring)
            if now != seen { return now }
            polls += 1
            if polls & 255 == 0 && DispatchTime.now().uptimeNanoseconds - start > Self.spinNanoseconds { break }
        }
        wake.lock()
        defer { wake.unlock() }
        while generation.load(ordering: .acquiring) == seen { wake.wait() }
        return generation.load(ordering: .acquiring)
    }
}
