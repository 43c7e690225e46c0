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

/// The explorer's computations in the background (classifying the test split, top-9 searches). Each runs
/// in chunks and checks `isStopping` between them, so that `stop` ends them all before the process exits,
/// which it must not do while one of them is inside OpenBLAS.
final class BackgroundWork: @unchecked Sendable {
    private let group = DispatchGroup()
    private let stopping = Atomic<Bool>(false)

    func run(_ work: @escaping @Sendable () -> Void) {
        DispatchQueue.global(qos: .userInitiated).async(group: group, execute: work)
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Waits until every piece of work has finished.
    func waitUntilDone() { group.wait() }

    /// Asks every piece of work to stop after its current chunk, and waits for them.
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
    /// The model's verdicts on the test images classified so far: a prefix of the test split, all of it
    /// once `classify` is done (empty without a data set).
    var verdicts: [Verdict] { verdictLock.withLock { classified } }
    private var classified: [Verdict] = []
    private let verdictLock = NSLock()

    /// What the model makes of one test image.
    struct Verdict: Codable, Equatable {
        var image: Int, label: Int, predicted: Int
        /// The predicted class's probability, and the cross-entropy `−ln p(label)`.
        var confidence: Float, loss: Float
    }

    init(path: String) throws {
        self.path = path
        let loaded = try Sequential.load(contentsOf: path)
        self.loaded = loaded
        let model = loaded.model
        featureLayers = try Projector(model: model).featureLayers  // throws for a model without convolutions
        workers = Pool { (try! Projector(model: model), ForwardRecord(model)) }
        sweeps = Pool { OcclusionSweep(model: model) }
    }

    /// Classifies every image of `dataset` (the test split) in order, for the image list, in batches
    /// whose verdicts join `verdicts` as each is done; gives up before a batch when `stopping` says so.
    func classify(_ dataset: Dataset, stopping: () -> Bool) {
        let classes = model.classes, batch = 256
        let record = ForwardRecord(model)
        var input = [Float](repeating: 0, count: batch * dataset.shape.count)
        for start in stride(from: 0, to: dataset.count, by: batch) where !stopping() {
            let n = min(batch, dataset.count - start)
            var result: [Verdict] = []
            input.withUnsafeMutableBufferPointer { x in
                dataset.fill(x.baseAddress!, indices: Array(start..<start + n)[...])
                let logits = model.forward(x.baseAddress!, batch: n, training: false, into: record)  // (n, classes)
                for b in 0..<n {
                    let p = softmax(Array(UnsafeBufferPointer(start: logits + b * classes, count: classes)))
                    let predicted = argmax(p), label = Int(dataset.labels[start + b])
                    result.append(Verdict(image: start + b, label: label, predicted: predicted, confidence: p[predicted],
                                          loss: -log(max(p[label], Float.leastNormalMagnitude))))
                }
            }
            verdictLock.withLock { classified += result }
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
            let order = [main] + loaded.filter { $0 !== main }
            background.run {
                for c in order { c.classify(set) { background.isStopping } }
            }
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
