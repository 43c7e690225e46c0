import Foundation

/// Training losses on one-hot targets, with PyTorch's reductions (mean over the batch).
public enum Loss: String, CaseIterable, Sendable, Codable {
    /// Softmax cross-entropy on the logits, as `F.cross_entropy(logits, labels)`.
    case ce
    /// Squared error between the logits and the one-hot target, mean over all n·classes values, as
    /// `F.mse_loss(logits, F.one_hot(labels).float())`.
    case mse

    /// The mean loss over the batch and the number of correct argmax predictions; writes
    /// d(loss)/d(logits) `(n, k)` into `gradient` when given. `logits` is `(n, k)`.
    public func evaluate(
        _ logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch n: Int, classes k: Int,
        gradient: UnsafeMutablePointer<Float>?
    ) -> (loss: Float, correct: Int) {
        var total: Double = 0
        var correct = 0
        for r in 0..<n {
            let row = logits + r * k
            let label = Int(labels[r])
            let best = argmax(UnsafeBufferPointer(start: row, count: k))
            if best == label { correct += 1 }
            switch self {
            case .ce:
                let m = row[best]
                var sum: Float = 0
                for c in 0..<k { sum += exp(row[c] - m) }
                total += Double(log(sum) + m - row[label])
                if let g = gradient?.advanced(by: r * k) {
                    for c in 0..<k { g[c] = (exp(row[c] - m) / sum - (c == label ? 1 : 0)) / Float(n) }
                }
            case .mse:
                for c in 0..<k {
                    let d = row[c] - (c == label ? 1 : 0)
                    total += Double(d * d) / Double(k)
                    gradient?[r * k + c] = 2 * d / Float(n * k)
                }
            }
        }
        return (Float(total / Double(n)), correct)
    }
}

/// Softmax of each row of `logits` `(n, k)` into `probabilities`.
public func softmax(_ logits: UnsafePointer<Float>, batch n: Int, classes k: Int, _ probabilities: UnsafeMutablePointer<Float>) {
    for r in 0..<n {
        let row = logits + r * k, out = probabilities + r * k
        var m = row[0]
        for c in 1..<k { m = max(m, row[c]) }
        var sum: Float = 0
        for c in 0..<k { out[c] = exp(row[c] - m); sum += out[c] }
        for c in 0..<k { out[c] /= sum }
    }
}

/// The softmax of one row of logits.
public func softmax(_ logits: [Float]) -> [Float] {
    var probabilities = [Float](repeating: 0, count: logits.count)
    logits.withUnsafeBufferPointer { l in
        probabilities.withUnsafeMutableBufferPointer { softmax(l.baseAddress!, batch: 1, classes: l.count, $0.baseAddress!) }
    }
    return probabilities
}

/// The position of the largest value, counted from the collection's start (the first one on ties, as
/// PyTorch's `argmax`).
public func argmax<C: Collection>(_ values: C) -> Int where C.Element == Float {
    var best = 0, bestValue = -Float.infinity
    for (i, v) in values.enumerated() where i == 0 || v > bestValue {
        (best, bestValue) = (i, v)
    }
    return best
}
