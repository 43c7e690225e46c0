/// One optimisation step on a batch: forward in training mode, loss, backward, optional clipping,
/// update. Returns the batch's mean loss and correct count.
public struct StepResult {
    public var loss: Float
    public var correct: Int
}

extension Sequential {
    /// Trains on `input` `(n, C, H, W)` with `labels` `(n)`; `logitGradient` is scratch of `n·classes`
    /// floats, and `record` the passes' (keep one for all steps).
    public func trainStep(
        _ input: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch n: Int, loss: Loss,
        optimizer: Optimizer, lr: Float, clipNorm: Float?, logitGradient: UnsafeMutablePointer<Float>, record: ForwardRecord
    ) -> StepResult {
        precondition(!parametersAreFixed, "the model's parameters are fixed for analysis; it cannot be trained")
        let logits = forward(input, batch: n, training: true, into: record)
        let (value, correct) = loss.evaluate(logits, labels: labels, batch: n, classes: classes, gradient: logitGradient)
        guard value.isFinite else { return StepResult(loss: value, correct: correct) }
        zeroGradients()
        backward(logitGradient, record: record)
        if let clipNorm { clipGradientNorm(gradients, maxNorm: clipNorm) }
        optimizer.step(parameters: parameters, gradients: gradients, lr: lr)
        return StepResult(loss: value, correct: correct)
    }
}
