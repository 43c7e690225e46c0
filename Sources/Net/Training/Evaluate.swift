/// Loss and accuracy of a model on a data set, in evaluation mode (dropout off).
public struct Evaluation: Codable, Sendable {
    public var loss: Float
    public var accuracy: Float
    public var count: Int
    /// Accuracy of each class, in class order.
    public var perClassAccuracy: [Float]

    enum CodingKeys: String, CodingKey {
        case loss, accuracy, count, perClassAccuracy = "per_class_accuracy"
    }
}

extension Sequential {
    /// The batch `evaluate` runs its data set in by default (the test split after each training epoch).
    public static let evaluationBatchSize = 500

    /// Runs `data` through the model in batches of `batchSize` and measures `loss` and accuracy.
    public func evaluate(_ data: Dataset, loss: Loss = .ce, batchSize: Int = Sequential.evaluationBatchSize) -> Evaluation {
        let n = min(batchSize, max(1, data.count))
        var input = [Float](repeating: 0, count: n * inputShape.count)
        var total: Double = 0
        var hits = [Int](repeating: 0, count: classes), seen = [Int](repeating: 0, count: classes)
        let record = ForwardRecord(self)
        for start in stride(from: 0, to: data.count, by: n) {
            let indices = Array(start..<min(start + n, data.count))
            input.withUnsafeMutableBufferPointer { data.fill($0.baseAddress!, indices: indices[...]) }
            let logits = input.withUnsafeBufferPointer { forward($0.baseAddress!, batch: indices.count, training: false, into: record) }
            let value = data.labels.withUnsafeBufferPointer {
                loss.evaluate(logits, labels: $0.baseAddress! + start, batch: indices.count, classes: classes, gradient: nil).loss
            }
            total += Double(value) * Double(indices.count)
            for (row, index) in indices.enumerated() {
                let label = Int(data.labels[index])
                let best = argmax(UnsafeBufferPointer(start: logits + row * classes, count: classes))
                seen[label] += 1
                if best == label { hits[label] += 1 }
            }
        }
        let count = max(1, data.count)
        return Evaluation(loss: Float(total / Double(count)), accuracy: Float(hits.reduce(0, +)) / Float(count), count: data.count,
                          perClassAccuracy: zip(hits, seen).map { $1 == 0 ? 0 : Float($0) / Float($1) })
    }
}
