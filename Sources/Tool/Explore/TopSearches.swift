import Deconv
import Foundation
import Net

/// The explorer's top-9 searches: for a checkpoint and a feature layer, the 9 test images whose
/// activation in each channel (the maximum over positions) is strongest, as `top` finds them
/// (`Projector.topActivations`). A search runs once, in the background (`BackgroundWork`), on the first request for its
/// layer; requests meanwhile see its progress. The result is cached on disk beside the checkpoint, in
/// `NAME.top9-L<layer index>-<key>.json`, written atomically; the key is the CRC-32C and size of the
/// checkpoint file and of the test split's pixels and labels, so a changed checkpoint or data set is
/// searched again. Nothing of a request names a file: the name comes from the checkpoint's own path and
/// the layer's index in the model.
final class TopSearches: @unchecked Sendable {
    static let k = 9
    /// Images in one part of a search (one step of its progress).
    static let chunk = 1000

    enum State {
        case running(done: Int, total: Int)
        case ready([[TopActivation]])
        case failed(String)
    }

    /// What a cache file holds.
    struct CacheFile: Codable {
        var format = "deconvnet-explore-top9"
        var key: String
        var layer: String
        var images: Int
        /// One list per channel, strongest first.
        var channels: [[TopActivation]]
    }

    private let checkpoints: [ExploreCheckpoint]
    private let test: Dataset?
    private let background: BackgroundWork
    private let lock = NSLock()
    private var states: [Key: State] = [:]
    private var dataKey: String?

    private struct Key: Hashable {
        var checkpoint: Int, layer: Int
    }

    init(checkpoints: [ExploreCheckpoint], test: Dataset?, background: BackgroundWork) {
        self.checkpoints = checkpoints
        self.test = test
        self.background = background
    }

    /// The search of `layer` (a feature layer's index) for checkpoint `checkpoint`: started, from the
    /// cache or in the background, when asked for the first time. Needs the test split.
    func state(checkpoint: Int, layer: Int) -> State {
        let key = Key(checkpoint: checkpoint, layer: layer)
        return lock.withLock {
            if let state = states[key] { return state }
            let state = start(key)
            states[key] = state
            return state
        }
    }

    /// Runs with the lock held.
    private func start(_ key: Key) -> State {
        guard let test else { return .failed("no data set to search (start explore with --data)") }
        let checkpoint = checkpoints[key.checkpoint]
        let cacheKey: String
        do {
            cacheKey = try self.cacheKey(checkpoint, test)
        } catch {
            return .failed(Deconvnet.describe(error))
        }
        let path = cachePath(checkpoint, layer: key.layer, key: cacheKey)
        if let cached = readCache(path, key: cacheKey, checkpoint: checkpoint, layer: key.layer, images: test.count) { return .ready(cached) }
        let search = Search(checkpoint, layer: key.layer, in: test)
        background.split(search.parts, { [self] part in
            let done = search.run(part)
            lock.withLock { if case .running = states[key] { states[key] = .running(done: done, total: test.count) } }
        }, then: { [self] finished in
            guard finished else {
                lock.withLock { states[key] = .failed("the server is stopping") }
                return
            }
            let file = CacheFile(key: cacheKey, layer: checkpoint.model.layers[key.layer].name, images: test.count, channels: search.best)
            do {
                try writeAtomically(try JSONEncoder().encode(file), to: path)
            } catch {
                printError("explore: cannot cache the top-9 of \(file.layer): \(Deconvnet.describe(error))")
            }
            lock.withLock { states[key] = .ready(file.channels) }
        })
        return .running(done: 0, total: test.count)
    }

    /// One search, in parts of `chunk` images that the background threads take in any order. Each
    /// part's top-k lists merge into the running ones in the order `top` keeps (stronger first, then the
    /// earlier image), a total order, so the result is that of one search over the whole split whatever
    /// the order the parts finish in.
    private final class Search: @unchecked Sendable {
        let checkpoint: ExploreCheckpoint, layer: Int, test: Dataset
        private let channels: [Int]
        var parts: Int { (test.count + TopSearches.chunk - 1) / TopSearches.chunk }
        private let lock = NSLock()
        private var lists: [[TopActivation]]
        private var done = 0

        init(_ checkpoint: ExploreCheckpoint, layer: Int, in test: Dataset) {
            (self.checkpoint, self.layer, self.test) = (checkpoint, layer, test)
            channels = Array(0..<checkpoint.model.layers[layer].outputShape[0])
            lists = channels.map { _ in [] }
        }

        /// Searches part `part` and returns how many images are searched so far.
        func run(_ part: Int) -> Int {
            let start = part * TopSearches.chunk
            let images = slice(test, start..<min(start + TopSearches.chunk, test.count))
            let found = checkpoint.workers.borrow { worker in
                worker.projector.topActivations(in: images, layer: layer, channels: channels, k: TopSearches.k)
            }
            return lock.withLock {
                for c in channels {
                    let shifted = found[c].map { TopActivation(image: $0.image + start, unit: $0.unit, value: $0.value) }
                    lists[c] = Array((lists[c] + shifted).sorted { $0.beats($1) }.prefix(TopSearches.k))
                }
                done += images.count
                return done
            }
        }

        /// Each channel's top k, strongest first, once every part has run.
        var best: [[TopActivation]] { lock.withLock { lists } }
    }

    private func cacheKey(_ checkpoint: ExploreCheckpoint, _ test: Dataset) throws -> String {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: checkpoint.path))
        if dataKey == nil {
            let labels = test.labels.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
            dataKey = String(format: "%08x%08x-%d", CRC32C.checksum(test.pixels), CRC32C.checksum(labels), test.count)
        }
        return String(format: "%08x-%d-", CRC32C.checksum(bytes), bytes.count) + dataKey!
    }

    private func cachePath(_ checkpoint: ExploreCheckpoint, layer: Int, key: String) -> String {
        "\(checkpoint.path).top9-L\(layer)-\(key).json"
    }

    /// The cached lists, when the file exists, has this key and holds units inside the layer and images
    /// inside the split; nil otherwise (then the layer is searched again).
    private func readCache(_ path: String, key: String, checkpoint: ExploreCheckpoint, layer: Int, images: Int) -> [[TopActivation]]? {
        guard let data = FileManager.default.contents(atPath: path), let file = try? JSONDecoder().decode(CacheFile.self, from: data) else { return nil }
        let shape = checkpoint.model.layers[layer].outputShape
        guard file.key == key, file.images == images, file.channels.count == shape[0] else { return nil }
        for (c, hits) in file.channels.enumerated() {
            guard hits.count == min(Self.k, images), hits.allSatisfy({
                $0.unit.channel == c && (0..<images).contains($0.image) && (0..<shape[1]).contains($0.unit.y) && (0..<shape[2]).contains($0.unit.x)
            }) else { return nil }
        }
        return file.channels
    }
}
