import Net

/// An activation found by a search over a data set: which image, which unit, how strong.
public struct TopActivation: Equatable, Sendable, Codable {
    /// Index of the image in the data set.
    public var image: Int
    public var unit: FeatureUnit
    public var value: Float

    public init(image: Int, unit: FeatureUnit, value: Float) {
        self.image = image
        self.unit = unit
        self.value = value
    }

    /// Stronger value first; on equal values the earlier image (the order of every top-k list).
    public func beats(_ other: TopActivation) -> Bool {
        value > other.value || (value == other.value && image < other.image)
    }
}

/// The k strongest activations seen so far: a binary min-heap whose root is the weakest kept.
struct TopK {
    let k: Int
    private(set) var heap: [TopActivation] = []

    init(k: Int) { self.k = k }

    /// Whether `value` would enter (cheap test before building a `TopActivation`).
    func admits(_ value: Float) -> Bool { heap.count < k || value > heap[0].value }

    mutating func insert(_ a: TopActivation) {
        if heap.count < k {
            heap.append(a)
            var i = heap.count - 1
            while i > 0, heap[(i - 1) / 2].beats(heap[i]) {
                heap.swapAt(i, (i - 1) / 2)
                i = (i - 1) / 2
            }
        } else if a.beats(heap[0]) {
            heap[0] = a
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var weakest = i
                if l < heap.count, heap[weakest].beats(heap[l]) { weakest = l }
                if r < heap.count, heap[weakest].beats(heap[r]) { weakest = r }
                if weakest == i { break }
                heap.swapAt(i, weakest)
                i = weakest
            }
        }
    }

    /// Strongest first.
    var sorted: [TopActivation] { heap.sorted { $0.beats($1) } }
}

extension Projector {
    /// For each of `channels` of layer `index`, the `k` images of `dataset` whose activation in that
    /// channel (the maximum over positions) is strongest, strongest first; ties go to the earlier image
    /// and, within an image, to the first position in row order.
    ///
    /// Forwards the data set in batches of `batchSize` through layers `0...index` only, takes the
    /// maxima of all requested channels at once and keeps one top-k heap per channel.
    /// `dataset.shape` must be the model's input shape.
    public func topActivations(in dataset: Dataset, layer index: Int, channels: [Int], k: Int, batchSize: Int = 256) -> [[TopActivation]] {
        precondition(dataset.shape == model.inputShape, "convert the data set to the model's input shape first")
        precondition(k > 0 && batchSize > 0)
        let s = shape(of: index)
        let plane = s[1] * s[2]
        var tops = channels.map { _ in TopK(k: k) }
        var batch = [Float](repeating: 0, count: min(batchSize, dataset.count) * dataset.shape.count)
        for start in stride(from: 0, to: dataset.count, by: batchSize) {
            let n = min(batchSize, dataset.count - start)
            batch.withUnsafeMutableBufferPointer { x in
                dataset.fill(x.baseAddress!, indices: Array(start..<start + n)[...])
                forward(x.baseAddress!, batch: n, through: index)
            }
            let y = activations(of: index)  // (n, C, H, W)
            for b in 0..<n {
                for (slot, c) in channels.enumerated() {
                    let map = y + (b * s[0] + c) * plane
                    var (at, best) = (0, map[0])
                    for i in 1..<plane where map[i] > best { (at, best) = (i, map[i]) }
                    if tops[slot].admits(best) {
                        tops[slot].insert(TopActivation(image: start + b, unit: FeatureUnit(channel: c, y: at / s[2], x: at % s[2]), value: best))
                    }
                }
            }
        }
        return tops.map(\.sorted)
    }

    /// The unit-seed projections of `hits` (activations of layer `index` in images of `dataset`), each
    /// `(C, H, W)` like the input, in the order given. Hits are grouped by channel and run in batches of
    /// up to `batchSize`: one forward pass of the batch's images (an image may appear more than once)
    /// and one batched projection, whose first convolution then needs only that channel's filters.
    public func project(_ hits: [TopActivation], in dataset: Dataset, layer index: Int, method: ProjectionMethod, batchSize: Int = 256) -> [[Float]] {
        precondition(dataset.shape == model.inputShape, "convert the data set to the model's input shape first")
        let size = dataset.shape.count
        var result = [[Float]](repeating: [], count: hits.count)
        let byChannel = Dictionary(grouping: hits.indices, by: { hits[$0].unit.channel }).sorted { $0.key < $1.key }
        var batch = [Float](repeating: 0, count: min(batchSize, max(hits.count, 1)) * size)
        var out = batch
        for (_, members) in byChannel {
            for start in stride(from: 0, to: members.count, by: batchSize) {
                let chunk = members[start..<min(start + batchSize, members.count)]
                batch.withUnsafeMutableBufferPointer { x in
                    out.withUnsafeMutableBufferPointer { o in
                        dataset.fill(x.baseAddress!, indices: chunk.map { hits[$0].image }[...])
                        forward(x.baseAddress!, batch: chunk.count, through: index)
                        project(chunk.map { hits[$0].unit }, from: index, method: method, into: o.baseAddress!)
                    }
                }
                for (b, hit) in chunk.enumerated() { result[hit] = Array(out[b * size..<(b + 1) * size]) }
            }
        }
        return result
    }
}
