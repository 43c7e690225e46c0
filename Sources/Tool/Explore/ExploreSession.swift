import Deconv
import Foundation
import Net
import Occlusion
import Synchronization

/// A few reusable objects of one kind, each lent to one request at a time: a request takes one (or
/// makes a new one when all are out), uses it alone and gives it back. This is how concurrent requests
/// run one model without sharing mutable state: every projector, forward record and occlusion sweep
/// belongs to one request while it runs.
final class Pool<Item>: @unchecked Sendable {
    private let make: () -> Item
    private let lock = NSLock()
    private var idle: [Item] = []

    init(_ make: @escaping () -> Item) { self.make = make }

    /// Runs `body` with an item nobody else holds.
    func borrow<T>(_ body: (Item) throws -> T) rethrows -> T {
        let item = lock.withLock { idle.popLast() } ?? make()
        defer { lock.withLock { idle.append(item) } }
        return try body(item)
    }
}

/// The explorer's computations in the background (classifying the test split, top-9 searches). Each is
/// split into parts that one thread per core claims in order, each thread below the priority of every
/// other thread (nice 10 on Linux) and with its regions run serially (`Workers.serially`, not on the
/// engine's shared worker threads). So they take the cores the page's requests, the browser and the
/// server leave idle, and a request never waits for one of their parts: a part only ever runs at the
/// priority of its own thread. `stop` ends them all, after their current parts, before the process
/// exits, which it must not do while one of them is inside OpenBLAS.
final class BackgroundWork: @unchecked Sendable {
    private let group = DispatchGroup()
    private let stopping = Atomic<Bool>(false)
    /// The nice value of the background threads on Linux (0 is every other thread's, 19 the lowest).
    static let niceness: Int32 = 10

    /// Runs `body(part)` for every part in `0..<parts`, the parts claimed in order by `threads` background
    /// threads; then `then(finished)` once, on one of them, `finished` false when `stop` cut the work short.
    func split(_ parts: Int, threads: Int = Workers.count, _ body: @escaping @Sendable (Int) -> Void,
               then: @escaping @Sendable (_ finished: Bool) -> Void = { _ in }) {
        let claims = Claims(threads: threads)
        for _ in 0..<threads {
            group.enter()
            let thread = Thread { [self] in
                Self.lowerPriority()
                Workers.serially {
                    while !isStopping {
                        let part = claims.next.add(1, ordering: .relaxed).oldValue
                        guard part < parts else { break }
                        body(part)
                    }
                }
                if claims.running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { then(!isStopping) }
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// The counters of one `split`: the next part to claim, and the threads still claiming.
    private final class Claims: Sendable {
        let next = Atomic<Int>(0)
        let running: Atomic<Int>
        init(threads: Int) { running = Atomic(threads) }
    }

    /// Lowers the calling thread's priority to `niceness`: on Linux a nice value belongs to one thread,
    /// and `PRIO_PROCESS` with id 0 names the calling one.
    private static func lowerPriority() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
        #else
        Thread.current.qualityOfService = .background
        #endif
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Waits until every piece of work has finished.
    func waitUntilDone() { group.wait() }

    /// Asks every piece of work to stop after its current part, and waits for them.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        group.wait()
    }
}

/// One checkpoint the explorer serves: the model (read-only once loaded) and pools of the per-request
/// state that runs it.
final class ExploreCheckpoint: @unchecked Sendable {
    let path: String
    let loaded: LoadedModel
    var model: Sequential { loaded.model }
    /// A projector and a forward record of the whole model, for one request.
    let workers: Pool<(projector: Projector, record: ForwardRecord)>
    let sweeps: Pool<OcclusionSweep>
    /// Indices of the layers with feature maps (`Projector.featureLayers`).
    let featureLayers: [Int]
    /// Forward records for classifying test images, a batch at a time.
    private let batchRecords: Pool<ForwardRecord>
    /// The model's verdict on each test image, nil until it is classified (empty without a data set).
    private var verdictSlots: [Verdict?] = []
    private var classifiedCount = 0
    private let verdictLock = NSLock()
    /// Test images classified in one forward pass in the background.
    static let classifyBatch = 256

    /// What the model makes of one test image.
    struct Verdict: Codable, Equatable {
        var image: Int, label: Int, predicted: Int
        /// The predicted class's probability, and the cross-entropy `−ln p(label)`.
        var confidence: Float, loss: Float
    }

    init(path: String) throws {
        self.path = path
        let loaded = try loadForAnalysis(path)
        self.loaded = loaded
        let model = loaded.model
        featureLayers = try Projector(model: model).featureLayers  // throws for a model without convolutions
        workers = Pool { (try! Projector(model: model), ForwardRecord(model)) }
        sweeps = Pool { OcclusionSweep(model: model) }
        batchRecords = Pool { ForwardRecord(model) }
    }

    /// How many test images are classified, of how many.
    var progress: (done: Int, total: Int) { verdictLock.withLock { (classifiedCount, verdictSlots.count) } }

    /// Every test image's verdict in index order, once all are classified; nil before.
    var allVerdicts: [Verdict]? {
        verdictLock.withLock { classifiedCount == verdictSlots.count ? verdictSlots.map { $0! } : nil }
    }

    /// The verdicts of test images `range`, classifying now (on the calling thread) those the
    /// background has not reached yet: a page in index order never waits for the whole split.
    func verdicts(_ range: Range<Int>, of dataset: Dataset) -> [Verdict] {
        classify(range, of: dataset)
        return verdictLock.withLock { verdictSlots[range].map { $0! } }
    }

    /// Makes room for the verdicts of `count` test images, none classified yet: before any request.
    func expectVerdicts(_ count: Int) {
        verdictLock.withLock { verdictSlots = Array(repeating: nil, count: count) }
    }

    /// Classifies every image of `dataset` (the test split, `expectVerdicts` told) in the background,
    /// in batches claimed in index order, for the image list; then `then(finished)`.
    func startClassifying(_ dataset: Dataset, on background: BackgroundWork, then: @escaping @Sendable (Bool) -> Void) {
        let batches = (dataset.count + Self.classifyBatch - 1) / Self.classifyBatch
        background.split(batches, { [self] b in
            classify(b * Self.classifyBatch..<min((b + 1) * Self.classifyBatch, dataset.count), of: dataset)
        }, then: then)
    }

    /// Classifies the images of `range` that have no verdict yet, in one forward pass; a verdict that
    /// another thread stored meanwhile is kept (each image's verdict is stored once).
    private func classify(_ range: Range<Int>, of dataset: Dataset) {
        let missing = verdictLock.withLock { range.filter { verdictSlots[$0] == nil } }
        guard !missing.isEmpty else { return }
        let classes = model.classes, n = missing.count
        var input = [Float](repeating: 0, count: n * dataset.shape.count)
        var result: [Verdict] = []
        batchRecords.borrow { record in
            input.withUnsafeMutableBufferPointer { x in
                dataset.fill(x.baseAddress!, indices: missing[...])
                let logits = model.forward(x.baseAddress!, batch: n, training: false, into: record)  // (n, classes)
                for (b, image) in missing.enumerated() {
                    let p = softmax(Array(UnsafeBufferPointer(start: logits + b * classes, count: classes)))
                    let predicted = argmax(p), label = Int(dataset.labels[image])
                    result.append(Verdict(image: image, label: label, predicted: predicted, confidence: p[predicted],
                                          loss: -log(max(p[label], Float.leastNormalMagnitude))))
                }
            }
        }
        verdictLock.withLock {
            for v in result where verdictSlots[v.image] == nil {
                verdictSlots[v.image] = v
                classifiedCount += 1
            }
        }
    }

    /// The file name of this checkpoint, for labels.
    var name: String { (path as NSString).lastPathComponent }
}

/// An image a request asks about: a test image by index or an uploaded one, as the model's input.
struct ExploreImage {
    /// `(C, H, W)` in [0, 1].
    var pixels: [Float]
    /// The true class, for test images.
    var label: Int?
    var name: String
}

/// An uploaded image, converted to the model's input.
struct Upload: Sendable {
    var pixels: [Float]
    var name: String
    var conversion: String
}

/// Everything `deconvnet explore` serves: the checkpoints (snapshots of one architecture), the test
/// split when a data set is given, the uploads and the top-9 searches. Safe to use from many requests
/// at once: the models are only read, per-request state comes from the checkpoints' pools, and the
/// uploads and searches are guarded by locks.
final class ExploreSession: @unchecked Sendable {
    let checkpoints: [ExploreCheckpoint]
    /// The checkpoint a request without `checkpoint=` gets: the one given as `--checkpoint`.
    let defaultCheckpoint: Int
    let test: Dataset?
    let dataPath: String?
    let top: TopSearches
    /// Classifying the test split and the top-9 searches; `stop` them before exiting.
    let background: BackgroundWork

    /// Uploads kept in memory, newest last; the oldest is dropped past `maximumUploads`.
    private var uploads: [(id: String, upload: Upload)] = []
    private var uploadCount = 0
    private let uploadLock = NSLock()
    static let maximumUploads = 64
    /// Largest upload body, in bytes, and largest image, in pixels (width x height), before decoding.
    static let maximumUploadBytes = 8 << 20
    static let maximumUploadPixels = 4096 * 4096

    /// Loads `checkpoint` and the `others` (sorted by epoch, all of one architecture) and the test
    /// split of `data` converted to their input, and starts classifying it with each, in the background
    /// (`--checkpoint` first), so that the server can answer at once.
    init(checkpoint: String, others: [String], data: String?) throws {
        var paths = [checkpoint]
        for p in others where !paths.contains(p) { paths.append(p) }
        var loaded = try paths.map { try ExploreCheckpoint(path: $0) }
        let first = loaded[0].model
        for c in loaded.dropFirst() where c.model.spec != first.spec || c.model.inputShape != first.inputShape || c.model.classes != first.classes {
            throw InspectionError.architecturesDiffer(checkpoint, c.path)
        }
        let main = loaded[0]
        loaded.sort { ($0.loaded.epoch, $0.loaded.step) < ($1.loaded.epoch, $1.loaded.step) }
        checkpoints = loaded
        defaultCheckpoint = loaded.firstIndex { $0 === main }!
        dataPath = data
        test = try data.map { try loadSplit($0, .test, for: first) }
        let background = BackgroundWork()
        self.background = background
        top = TopSearches(checkpoints: loaded, test: test, background: background)
        if let set = test {
            for c in loaded { c.expectVerdicts(set.count) }
            // one checkpoint after another, so that --checkpoint's filters and sorts are ready first
            @Sendable func classify(_ order: ArraySlice<ExploreCheckpoint>) {
                guard let first = order.first else { return }
                first.startClassifying(set, on: background) { finished in if finished { classify(order.dropFirst()) } }
            }
            classify(([main] + loaded.filter { $0 !== main })[...])
        }
    }

    var model: Sequential { checkpoints[0].model }

    /// A test image's pixels and label.
    func testImage(_ index: Int) -> ExploreImage {
        let set = test!
        let label = Int(set.labels[index])
        return ExploreImage(pixels: set.image(index).data, label: label, name: "test #\(index) (\(set.classNames[label]))")
    }

    /// Keeps `upload` and returns its id (`u1`, `u2`, …).
    func store(_ upload: Upload) -> String {
        uploadLock.withLock {
            uploadCount += 1
            let id = "u\(uploadCount)"
            uploads.append((id, upload))
            if uploads.count > Self.maximumUploads { uploads.removeFirst() }
            return id
        }
    }

    func upload(_ id: String) -> Upload? {
        uploadLock.withLock { uploads.last { $0.id == id }?.upload }
    }
}
