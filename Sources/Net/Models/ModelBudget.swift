/// Memory checks for building and running a `Sequential`, made before anything is allocated, with sizes
/// multiplied out in overflow-checked arithmetic (see `MemoryBudget`).
extension Sequential {
    /// A bound on the floats the layer for `stage` needs on an input of `shape`: its parameters and their
    /// gradients, whatever its constructor keeps beside them (at most as many again), and one image's output.
    /// Nil when the count does not fit in `Int`. Checked before the layer is built, since building a layer
    /// already sizes its parameters and may allocate.
    static func stageFloats(_ stage: ModelSpec.Stage, input shape: [Int], classes: Int) -> Int? {
        let inputCount = MemoryBudget.size(of: shape)
        let parameters: Int?, output: Int?
        switch stage {
        case let .conv(c):
            let pad = c.sides ?? .zero
            parameters = MemoryBudget.sum([MemoryBudget.size(of: [c.out, shape.first ?? 1, c.kernelHeight, c.kernelWidth]), c.out])
            let padded = shape.dropFirst().enumerated().map { $1 + ($0 == 0 ? pad.top + pad.bottom : pad.left + pad.right) }
            output = MemoryBudget.size(of: [c.out] + padded)
        case .dense(let n, _):
            let out = n ?? classes
            parameters = inputCount.flatMap { MemoryBudget.size(of: [out, $0 + 1]) }
            output = out
        case let .recurrent(_, hidden, layers):
            let features = shape.last ?? 1
            // at most 4 gates; each layer reads at most max(features, hidden) inputs
            parameters = MemoryBudget.size(of: [layers, 4, hidden, max(features, hidden) + hidden + 2])
            output = MemoryBudget.size(of: [shape.dropLast().last ?? 1, layers, 4, hidden])
        case .maxPool, .avgPool, .dropout, .flatten:
            parameters = 0
            output = inputCount
        case .batchNorm:
            parameters = MemoryBudget.size(of: [shape.first ?? 1, 4])  // weight, bias and the two running statistics
            output = inputCount
        case .localResponseNorm:
            parameters = 0
            output = inputCount.flatMap { MemoryBudget.size(of: [$0, 4]) }  // the output, and the input, sums and divisors kept
        case let .adaptiveAvgPool(h, w):
            parameters = 0
            output = MemoryBudget.size(of: [shape.first ?? 1, h, w])
        }
        return MemoryBudget.sum([parameters.flatMap { MemoryBudget.size(of: [$0, 3]) }, output])
    }

    /// Throws `ModelError.overBudget` unless the layer for `stage` (see `stageFloats`) fits `MemoryBudget.current`.
    static func checkStage(_ stage: ModelSpec.Stage, input shape: [Int], classes: Int) throws(ModelError) {
        let bytes = stageFloats(stage, input: shape, classes: classes).flatMap { MemoryBudget.size(of: [$0], elementSize: 4) }
        let stageText = ModelSpec(stages: [stage]).description
        do {
            try MemoryBudget.current.check(bytes, for: "the model's stage '\(stageText)' on \(shape.map(String.init).joined(separator: "x")) inputs")
        } catch {
            throw .overBudget(error)
        }
    }

    /// Throws `ModelError.overBudget` unless `parameterCount` parameters and as many gradients fit.
    static func checkParameters(_ counts: [Int?]) throws(ModelError) {
        try checkFloats(MemoryBudget.sum(counts).flatMap { MemoryBudget.size(of: [$0, 2]) }, for: "the model's parameters and gradients")
    }

    /// Throws `ModelError.overBudget` unless `count` floats (nil: more than `Int` holds) fit the budget.
    static func checkFloats(_ count: Int?, for what: String) throws(ModelError) {
        do {
            try MemoryBudget.current.check(count.flatMap { MemoryBudget.size(of: [$0], elementSize: 4) }, for: what)
        } catch {
            throw .overBudget(error)
        }
    }

    /// Bytes the buffers of a training step on `batch` images take: every layer's output and output
    /// gradient, the input batch and the logit gradient, and the workspace (`workspaceBytes`) for the
    /// workers of the step or of the evaluation of `testImages` images after each epoch (batches of up to
    /// `evaluationBatchSize`), whichever splits over more. Nil when that does not fit in `Int`.
    public func batchBytes(_ batch: Int, evaluating testImages: Int = 0) -> Int? {
        let perImage = MemoryBudget.sum(layers.map { MemoryBudget.size(of: [$0.outputCount, 2]) }
                                        + [inputShape.count, classes])
        let buffers = perImage.flatMap { MemoryBudget.size(of: [$0, batch], elementSize: 4) }
        return MemoryBudget.sum([buffers, workspaceBytes(scratchBatch(batch, evaluating: testImages))])
    }

    /// The batch whose workers the scratch of a step on `batch` images and an evaluation of `testImages` is sized for.
    private func scratchBatch(_ batch: Int, evaluating testImages: Int) -> Int {
        max(batch, min(Sequential.evaluationBatchSize, testImages))
    }

    /// Bytes of the workspace a training step on `batch` images reserves (`Layer.workspace(batch:)`): one
    /// workspace serves every layer in turn and each worker's region grows to the most any layer asks,
    /// so at most the largest region for the most workers. Nil when that does not fit in `Int`.
    public func workspaceBytes(_ batch: Int) -> Int? {
        let reservations = layers.map { $0.workspace(batch: batch) }
        return MemoryBudget.size(of: [reservations.map(\.floatsPerWorker).max() ?? 0, reservations.map(\.workers).max() ?? 1],
                                 elementSize: 4)
    }

    /// Throws `MemoryBudgetError` unless a training step on `batch` images fits `MemoryBudget.current`;
    /// `what` names where the batch size came from (a flag, a run's configuration); `testImages` are
    /// evaluated after each epoch (see `batchBytes`). The line names the
    /// worker count and the workspace it takes, which grows with `--workers`.
    public func checkBatch(_ batch: Int, evaluating testImages: Int = 0, for what: String) throws(MemoryBudgetError) {
        let workspace = workspaceBytes(scratchBatch(batch, evaluating: testImages)).map(MemoryBudget.format) ?? "too much"
        try MemoryBudget.current.check(batchBytes(batch, evaluating: testImages), for: "\(what) (\(batch) images of \(inputShape) a step, "
                                       + "with \(workspace) of scratch for --workers \(Workers.count))")
    }
}
