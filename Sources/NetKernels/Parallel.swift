import Dispatch
import Foundation
import Synchronization

/// Threads the engine splits each batch over. The engine parallelises across images itself and runs
/// every OpenBLAS call single-threaded inside one worker, which keeps all cores busy with im2col,
/// pooling and the matrix products alike and avoids BLAS's thread hand-offs on small matrices.
public enum Workers {
    /// The most workers a region can be split over (`--workers` is bounded by it).
    public static let maximum = 1024
    /// One per core, at most `maximum`.
    nonisolated(unsafe) public private(set) static var count = min(maximum, max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// Sets the worker count (e.g. 1 for a reproducibility check on another machine), 1 to `maximum`.
    public static func set(_ n: Int) {
        precondition((1...maximum).contains(n), "worker count \(n) is outside 1...\(maximum)")
        count = n
    }

    /// Whether the calling thread runs its regions alone (inside `serially`).
    @TaskLocal static var serial = false

    /// Runs `body` with every region it starts on the calling thread alone, as with one worker. For
    /// callers that are concurrent already, such as a server's requests: the shared helpers run one
    /// region at a time, so many small requests that each split their layers over them queue behind
    /// one another's regions (and their polling) instead of running side by side on the cores.
    public static func serially<T>(_ body: () throws -> T) rethrows -> T {
        try $serial.withValue(true, operation: body)
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
    Workers.serial ? 1 : max(1, min(Workers.count, total / max(1, minimumPerWorker)))
}

/// Persistent helper threads that poll for a short while after each region before they sleep.
/// A region of more parts than `threadLimit` runs on `threadLimit` threads, each claiming the next part
/// when it is done, so the split (and every result) stays that of its part count while no more threads
/// than OpenBLAS has work buffers for call it at once.
/// A training step of a small model is a chain of ~1 ms regions (one per layer and pass), and a
/// sleeping thread woken for each (as `DispatchQueue.concurrentPerform` does) starts ~0.4 ms late,
/// a large share of every region. The region's parts are claimed from a counter by whoever comes
/// first, the calling thread included, so a helper that is not running (the machine is busy) never
/// holds a region up.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// The most parts a region can have: the width of a field of `state`.
    static let maximumParts = partMask
    /// The most threads, the caller's included, that run one region's parts.
    let threadLimit: Int
    private static let partBits = 16, partMask = (1 << partBits) - 1, regionShift = 2 * partBits

    /// How long a helper polls for the next region, and the caller for the helpers to finish, before sleeping.
    private static let spinNanoseconds: UInt64 = 50_000

    /// The current region in one word, so that a claim is always of the region it read: the count
    /// of regions started (bits 32–63, wrapping; only compared for equality), its number of parts
    /// (bits 16–31) and the next unclaimed part (bits 0–15).
    private let state: Atomic<Int>
    /// Parts of the current region not yet finished.
    private let remaining = Atomic<Int>(0)
    private let wake = NSCondition()
    /// Signalled by whoever finishes a region's last part, for a caller that stopped polling.
    private let finished = NSCondition()
    /// Serialises regions started from different threads.
    private let regionLock = NSLock()
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    nonisolated(unsafe) private var helpers = 0

    /// A pool whose region count starts at `firstRegion` (a test starts it just before the count wraps)
    /// and whose regions run on at most `threadLimit` threads.
    init(firstRegion: Int = 0, threadLimit: Int = blasCallerLimit) {
        precondition(threadLimit >= 1, "a pool of \(threadLimit) threads")
        state = Atomic(firstRegion << Self.regionShift)
        self.threadLimit = threadLimit
    }

    /// Runs `body(w)` for `w` in `0..<parts` on the calling thread and the helpers, and returns when all are done.
    func run(_ parts: Int, _ body: (Int) -> Void) {
        precondition((1...Self.maximumParts).contains(parts), "a region of \(parts) parts")
        regionLock.lock()
        defer { regionLock.unlock() }
        let region = Self.region(state.load(ordering: .relaxed))
        while helpers < min(parts, threadLimit) - 1 {
            helpers += 1
            let thread = Thread { [self] in serve(after: region) }
            thread.stackSize = 1 << 20
            thread.start()
        }
        withoutActuallyEscaping(body) { body in
            job = body
            remaining.store(parts, ordering: .relaxed)
            wake.lock()
            state.store((region &+ 1) << Self.regionShift | parts << Self.partBits, ordering: .releasing)
            wake.broadcast()
            wake.unlock()
            work()
            if !poll(until: { remaining.load(ordering: .acquiring) == 0 }) {
                finished.lock()
                while remaining.load(ordering: .acquiring) > 0 { finished.wait() }
                finished.unlock()
            }
            job = nil
        }
    }

    /// Claims and runs parts of the current region until none are left.
    private func work() {
        var current = state.load(ordering: .acquiring)
        while true {
            let (part, parts) = (current & Self.partMask, current >> Self.partBits & Self.partMask)
            guard part < parts else { return }
            let (exchanged, original) = state.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            guard exchanged else {
                current = original
                continue
            }
            job!(part)
            if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                finished.lock()
                finished.signal()
                finished.unlock()
            }
            current = state.load(ordering: .acquiring)
        }
    }

    /// A helper's loop: wait for a region after `seen`, help with it.
    private func serve(after start: Int) {
        var seen = start
        while true {
            seen = next(after: seen)
            work()
        }
    }

    /// Polls until a region after `seen` has started, then sleeps on the condition; returns its count.
    private func next(after seen: Int) -> Int {
        func region() -> Int { Self.region(state.load(ordering: .acquiring)) }
        if poll(until: { region() != seen }) { return region() }
        wake.lock()
        defer { wake.unlock() }
        while region() == seen { wake.wait() }
        return region()
    }

    /// The region count of a `state` word.
    private static func region(_ state: Int) -> Int { state >> regionShift }

    /// Polls `condition` for up to `spinNanoseconds`; whether it became true.
    private func poll(until condition: () -> Bool) -> Bool {
        let start = DispatchTime.now().uptimeNanoseconds
        var polls = 0
        while !condition() {
            polls += 1
            if polls & 255 == 0 && DispatchTime.now().uptimeNanoseconds - start > Self.spinNanoseconds { return false }
        }
        return true
    }
}

/// CPU seconds (user and system) used so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`) or by all
/// threads of the process (`CLOCK_PROCESS_CPUTIME_ID`): the one CPU clock of `bench` and the profiles.
public func cpuSeconds(_ clock: clockid_t) -> Double {
    var t = timespec()
    clock_gettime(clock, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}
