import Foundation
import XCTest
@testable import Net
@testable import NetKernels
import Synchronization

/// The worker pool at every worker count it accepts: each part of a region runs exactly once, and a
/// region that would deadlock fails the test by its deadline instead of hanging the suite (each case
/// uses its own pool, so a stuck one holds up nothing else).
final class ParallelTests: XCTestCase {
    /// Runs `body` on a thread of its own; whether it returned within `seconds`.
    private func finishes(within seconds: Double, _ body: @escaping () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            body()
            done.signal()
        }
        return done.wait(timeout: .now() + seconds) == .success
    }

    /// Regions of 1, the core count, 255, 256 (the count that deadlocked when the part fields were a
    /// byte wide), 1024 (`Workers.maximum`) parts, then smaller ones again on the same threads.
    func testEveryPartRunsOnceAtEveryCount() {
        let pool = WorkerPool()
        for parts in [1, ProcessInfo.processInfo.activeProcessorCount, 255, 256, Workers.maximum, 3, 256] {
            let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: parts)
            defer { runs.deallocate() }
            runs.initialize(repeating: 0)
            XCTAssertTrue(finishes(within: 60) { pool.run(parts) { runs[$0] += 1 } }, "a region of \(parts) parts did not finish")
            XCTAssertEqual(runs.filter { $0 != 1 }.count, 0, "\(parts) parts")
        }
    }

    /// However many parts a region has, at most `blasCallerLimit` threads run them at once (each claims
    /// the next part when it is done): OpenBLAS has work buffers for that many matrix products in flight,
    /// and 1024 workers, each in `sgemm`, corrupted its heap. The parts sleep, so without the limit every
    /// part would be in flight together.
    func testARegionRunsOnNoMoreThreadsThanOpenBLASServes() {
        let pool = WorkerPool()
        let inFlight = Atomic<Int>(0), most = Atomic<Int>(0)
        let runs = Atomic<Int>(0)
        XCTAssertTrue(finishes(within: 60) {
            pool.run(Workers.maximum) { _ in
                let now = inFlight.add(1, ordering: .relaxed).newValue
                _ = most.max(now, ordering: .relaxed)
                usleep(2000)
                inFlight.subtract(1, ordering: .relaxed)
                runs.add(1, ordering: .relaxed)
            }
        })
        XCTAssertEqual(runs.load(ordering: .relaxed), Workers.maximum)
        XCTAssertLessThanOrEqual(most.load(ordering: .relaxed), blasCallerLimit)
        XCTAssertGreaterThanOrEqual(blasCallerLimit, 25, "OpenBLAS keeps at least 50 buffers")
    }

    /// The region count wraps around without losing a region.
    func testRegionCountWraps() {
        let pool = WorkerPool(firstRegion: Int(Int32.max) - 2)
        var total = 0
        XCTAssertTrue(finishes(within: 60) {
            for _ in 0..<6 {
                let runs = Atomic<Int>(0)
                pool.run(4) { _ in runs.add(1, ordering: .relaxed) }
                total += runs.load(ordering: .relaxed)
            }
        })
        XCTAssertEqual(total, 24)
    }

    /// `parallelRanges` with more than 255 workers covers its range exactly once.
    func testParallelRangesOverManyWorkers() {
        let saved = Workers.count
        defer { Workers.set(saved) }
        for workers in [256, Workers.maximum] {
            Workers.set(workers)
            let total = 3000
            let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: total)
            defer { hits.deallocate() }
            hits.initialize(repeating: 0)
            XCTAssertTrue(finishes(within: 60) { parallelRanges(total) { range, _ in for i in range { hits[i] += 1 } } }, "\(workers) workers")
            XCTAssertEqual(hits.filter { $0 != 1 }.count, 0, "\(workers) workers")
        }
    }

    /// Inside `Workers.serially` a region is one part on the calling thread, whatever `Workers.count`;
    /// outside it is split again.
    func testSeriallyRunsARegionOnTheCallingThreadAlone() {
        let saved = Workers.count
        defer { Workers.set(saved) }
        Workers.set(4)
        let lock = NSLock()
        var parts: [(range: Range<Int>, worker: Int, caller: Bool)] = []
        let caller = Thread.current
        Workers.serially {
            XCTAssertEqual(workerCount(100), 1)
            parallelRanges(100) { range, worker in lock.withLock { parts.append((range, worker, Thread.current == caller)) } }
        }
        XCTAssertEqual(parts.map(\.range), [0..<100])
        XCTAssertEqual(parts.map(\.worker), [0])
        XCTAssertEqual(parts.map(\.caller), [true])
        XCTAssertEqual(workerCount(100), 4, "only inside serially")
    }
}
