/// Growable scratch memory shared by the layers of one caller's passes (a `ForwardRecord` has one),
/// one region per worker thread (im2col columns, per-worker gradient partial sums and the like).
public final class Workspace {
    private var buffers: [UnsafeMutablePointer<Float>] = []
    private var capacities: [Int] = []

    public init() {}

    deinit { for b in buffers { b.deallocate() } }

    /// At least `count` floats for `worker`; the contents are undefined. Call from one thread per worker.
    public func floats(_ count: Int, worker: Int = 0) -> UnsafeMutablePointer<Float> {
        precondition(worker < buffers.count && capacities[worker] >= count, "reserve the workspace before use")
        return buffers[worker]
    }

    /// Floats held for all workers together.
    public var reservedFloats: Int { capacities.reduce(0, +) }

    /// Makes sure each of the first `workers` workers has at least `count` floats. Call before a parallel
    /// region, for the workers it uses (`workerCount`); a training step's share is in its memory budget
    /// (`Layer.workspace(batch:)`, `Sequential.checkBatch`).
    public func reserve(_ count: Int, workers: Int = Workers.count) {
        while buffers.count < workers {
            buffers.append(.allocate(capacity: 1))
            capacities.append(1)
        }
        for w in 0..<workers where capacities[w] < count {
            buffers[w].deallocate()
            buffers[w] = .allocate(capacity: count)
            capacities[w] = count
        }
    }
}
