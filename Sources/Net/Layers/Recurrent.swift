/// Builds the recurrent stack for `rnn|lstm|gru:H[:L]` stages.
func makeRecurrentLayer(_ kind: CellKind, hidden: Int, layers: Int, inputShape: [Int]) throws -> any Layer {
    try Recurrent(kind: kind, hidden: hidden, layers: layers, inputShape: inputShape)
}

/// A stack of recurrent layers over the rows of a grayscale image, as PyTorch's `nn.RNN` (tanh),
/// `nn.LSTM` or `nn.GRU` with `batch_first=True` on `x[:, 0]`: an image `(1, T, F)` is read as `T`
/// time steps of `F` features, top to bottom, and the output is the top layer's hidden state after
/// the last step, `(hidden)`. Initial hidden and cell states are zero.
///
/// Parameters per layer `l`, in PyTorch's names and layouts, with `G` gates of `hidden` units each:
/// `weight_ih_l{l}` `(G·hidden, in)` (`in` = F for layer 0, else `hidden`), `weight_hh_l{l}`
/// `(G·hidden, hidden)`, `bias_ih_l{l}` and `bias_hh_l{l}` `(G·hidden)`. Gate order in the fused
/// matrices: rnn one gate, `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`; lstm `i, f, g, o`,
/// `c' = σ(f)⊙c + σ(i)⊙tanh(g)`, `h' = σ(o)⊙tanh(c')`; gru `r, z, n`,
/// `n = tanh(W_in x + b_in + σ(r)⊙(W_hn h + b_hn))`, `h' = (1 − σ(z))⊙n + σ(z)⊙h`.
///
/// The input projection of every time step of the whole batch is one matrix product before the time
/// loop; each step then multiplies the batch's hidden states by `W_hhᵀ`, with the batch split over
/// the workers (each runs its samples through all steps with single-threaded products). Backward
/// keeps the gate gradients of all steps and forms the weight gradients with large products at the
/// end (rnn and lstm: one product for both weights). The states of a forward pass, about
/// `T·n·(G + 3)·hidden` floats per layer, stay in the caller's memory (`Pass`) for the backward pass.
public final class Recurrent: Layer {
    public let name: String
    public let kind: CellKind
    public let inputShape: [Int]
    /// Units per layer.
    public let hidden: Int
    /// Stacked layers.
    public let depth: Int

    private var weightIH: [UnsafeMutablePointer<Float>] = []
    private var weightHH: [UnsafeMutablePointer<Float>] = []
    private var biasIH: [UnsafeMutablePointer<Float>] = []
    private var biasHH: [UnsafeMutablePointer<Float>] = []
    private var weightIHGradient: [UnsafeMutablePointer<Float>] = []
    private var weightHHGradient: [UnsafeMutablePointer<Float>] = []
    private var biasIHGradient: [UnsafeMutablePointer<Float>] = []
    private var biasHHGradient: [UnsafeMutablePointer<Float>] = []

    /// Forward state of one layer, time-major, for a batch of up to `capacity`.
    private struct State {
        var gates: UnsafeMutablePointer<Float>  // (T, N, G·H) after their nonlinearities (rnn: before)
        var hidden: UnsafeMutablePointer<Float>  // (T, N, H)
        var cell: UnsafeMutablePointer<Float>  // lstm: c (T, N, H)
        var extra: UnsafeMutablePointer<Float>  // lstm: tanh(c); gru: W_hn h + b_hn (T, N, H)
    }

    /// What one forward pass keeps for its backward pass, and the backward pass's buffers: in the
    /// caller's `LayerMemory`, grown to the largest batch seen.
    private final class Pass {
        var states: [State] = []
        var sequence: UnsafeMutablePointer<Float>?  // layer 0's input, time-major (T, N, F)
        var gateGradient: UnsafeMutablePointer<Float>?  // d(pre-activations) (T, N, G·H)
        var recurrentGateGradient: UnsafeMutablePointer<Float>?  // gru: the same with r⊙dn in the n slice
        var sequenceGradient: UnsafeMutablePointer<Float>?  // from the layer above (T, N, max(H, F))
        var rowState: UnsafeMutablePointer<Float>?  // per sample: dh, dc (N, 2H), gru's h W_hhᵀ (N, 3H)
        var fusedBias: UnsafeMutablePointer<Float>  // per layer (G·H): added to the input projection
        var ones: UnsafeMutablePointer<Float>?  // (T·N) ones, for bias gradients
        var joinedInputs: UnsafeMutablePointer<Float>?  // (T, N, in + H) for the weight gradients
        var capacity = 0
        var lastBatch = 0

        init(fusedBiasCount: Int) { fusedBias = .allocate(capacity: fusedBiasCount) }

        deinit {
            release()
            fusedBias.deallocate()
        }

        func release() {
            for s in states { [s.gates, s.hidden, s.cell, s.extra].forEach { $0.deallocate() } }
            states = []
            for p in [sequence, gateGradient, recurrentGateGradient, sequenceGradient, rowState, ones, joinedInputs] { p?.deallocate() }
            capacity = 0
        }
    }

    private var zeroRow: UnsafeMutablePointer<Float>?  // (G·H) zeros: the state before step 0

    /// Throws `ModelError.shape` unless `inputShape` is a grayscale image `[1, T, F]`.
    public init(name: String = "rnn", kind: CellKind, hidden: Int, layers: Int, inputShape: [Int]) throws(ModelError) {
        precondition(hidden > 0 && layers > 0)
        guard inputShape.count == 3 else { throw .shape("a recurrent layer reads images; it cannot follow a dense layer") }
        guard inputShape[0] == 1 else {
            throw .shape("recurrent models read grayscale rows; convert with --grayscale")
        }
        self.name = name
        self.kind = kind
        self.hidden = hidden
        self.depth = layers
        self.inputShape = inputShape
        zeroRow = .allocate(capacity: gateCount * hidden)
        zeroRow!.initialize(repeating: 0, count: gateCount * hidden)
    }

    deinit { zeroRow?.deallocate() }

    /// Time steps: the image's rows.
    public var timeSteps: Int { inputShape[1] }
    /// Features per step: the image's columns.
    public var features: Int { inputShape[2] }
    /// Gates per cell: 1 (rnn), 4 (lstm), 3 (gru).
    public var gateCount: Int {
        switch kind {
        case .rnn: return 1
        case .lstm: return 4
        case .gru: return 3
        }
    }

    public var outputShape: [Int] { [hidden] }
    public var initializationBound: Float? { 1 / Float(hidden).squareRoot() }

    private func inFeatures(_ l: Int) -> Int { l == 0 ? features : hidden }

    public var parameterShapes: [(suffix: String, shape: [Int])] {
        let g = gateCount * hidden
        return (0..<depth).flatMap { l -> [(suffix: String, shape: [Int])] in
            [("weight_ih_l\(l)", [g, inFeatures(l)]), ("weight_hh_l\(l)", [g, hidden]), ("bias_ih_l\(l)", [g]), ("bias_hh_l\(l)", [g])]
        }
    }

    /// Per sequence: the input and recurrent products of every step and layer.
    public var multiplyAdds: Int {
        (0..<depth).reduce(0) { $0 + timeSteps * gateCount * hidden * (inFeatures($1) + hidden) }
    }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        func every(_ p: [UnsafeMutablePointer<Float>], _ k: Int) -> [UnsafeMutablePointer<Float>] {
            stride(from: k, to: p.count, by: 4).map { p[$0] }
        }
        (weightIH, weightHH, biasIH, biasHH) = (every(parameters, 0), every(parameters, 1), every(parameters, 2), every(parameters, 3))
        (weightIHGradient, weightHHGradient, biasIHGradient, biasHHGradient) =
            (every(gradients, 0), every(gradients, 1), every(gradients, 2), every(gradients, 3))
    }

    /// The hidden states of layer `l` at every step of the last forward pass into `memory`, `(T, n, hidden)`, time-major.
    public func hiddenStates(layer l: Int, in memory: LayerMemory) -> UnsafePointer<Float> {
        let pass = self.pass(memory)
        precondition(l < depth && pass.capacity > 0, "run forward first")
        return UnsafePointer(pass.states[l].hidden)
    }

    private func pass(_ memory: LayerMemory) -> Pass { memory.state { Pass(fusedBiasCount: depth * gateCount * hidden) } }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        let pass = self.pass(memory)
        reserve(pass, batch: n)
        pass.lastBatch = n
        let (t, f, h, g) = (timeSteps, features, hidden, gateCount * hidden)
        let x0 = pass.sequence!
        for b in 0..<n {  // (N, T, F) → (T, N, F)
            for s in 0..<t { (x0 + (s * n + b) * f).update(from: input + (b * t + s) * f, count: f) }
        }
        for l in 0..<depth {
            let state = pass.states[l]
            let x = l == 0 ? UnsafePointer(x0) : UnsafePointer(pass.states[l - 1].hidden)
            let k = inFeatures(l)
            let bias = pass.fusedBias + l * g
            for j in 0..<g { bias[j] = biasIH[l][j] + (kind == .gru && j >= 2 * h ? 0 : biasHH[l][j]) }
            let wih = UnsafePointer(weightIH[l])
            parallelRanges(t * n) { rows, _ in
                // (rows, G·H) = x (rows, in) × W_ihᵀ (in, G·H) + b
                let a = state.gates + rows.lowerBound * g
                for r in 0..<rows.count { (a + r * g).update(from: bias, count: g) }
                sgemm(transposeA: false, transposeB: true, m: rows.count, n: g, k: k, x + rows.lowerBound * k, lda: k, wih, ldb: k,
                      beta: 1, a, ldc: g)
            }
            parallelRanges(n) { rows, _ in
                for s in 0..<t { step(layer: l, time: s, rows: rows, batch: n, pass) }
            }
        }
        output.update(from: pass.states[depth - 1].hidden + (t - 1) * n * h, count: n * h)
    }

    /// One time step of layer `l` for samples `rows`: adds `h W_hhᵀ` to the step's input projection
    /// and applies the cell (`RecurrentCells.swift`).
    private func step(layer l: Int, time s: Int, rows: Range<Int>, batch n: Int, _ pass: Pass) {
        let (h, g) = (hidden, gateCount * hidden)
        let m = rows.count
        let state = pass.states[l]
        let whh = UnsafePointer(weightHH[l])
        let here = s * n + rows.lowerBound  // first row of this step and range in (T, N, ·)
        let before = here - n
        let a = state.gates + here * g  // (m, G·H)
        let hNew = state.hidden + here * h  // (m, H)
        let hOld = UnsafePointer(state.hidden + before * h)  // (m, H), only when s > 0
        switch kind {
        case .rnn:
            if s > 0 { sgemm(transposeA: false, transposeB: true, m: m, n: g, k: h, hOld, lda: h, whh, ldb: h, beta: 1, a, ldc: g) }
            fastTanh(a, hNew, count: m * h)
        case .lstm:
            if s > 0 { sgemm(transposeA: false, transposeB: true, m: m, n: g, k: h, hOld, lda: h, whh, ldb: h, beta: 1, a, ldc: g) }
            lstmCellForward(gates: a, previousCell: s > 0 ? UnsafePointer(state.cell + before * h) : nil, cell: state.cell + here * h,
                            cellTanh: state.extra + here * h, hidden: hNew, rows: m, units: h)
        case .gru:
            let hh = pass.rowState! + rows.lowerBound * g  // h W_hhᵀ (m, 3H)
            if s > 0 { sgemm(transposeA: false, transposeB: true, m: m, n: g, k: h, hOld, lda: h, whh, ldb: h, hh, ldc: g) }
            gruCellForward(gates: a, recurrent: s > 0 ? UnsafePointer(hh) : nil, newGateBias: biasHH[l] + 2 * h, previousHidden: s > 0 ? hOld : nil,
                           newGateRecurrent: state.extra + here * h, hidden: hNew, rows: m, units: h)
        }
    }

    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        backPropagate(outputGradient, inputGradient, batch: n, parameterGradients: true, pass(memory), workspace: workspace)
    }

    /// The input gradient of the whole stack (a recurrent layer has no fused activation), without
    /// parameter gradients. `channels` must be nil.
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        precondition(channels == nil, "a recurrent layer takes every output unit")
        backPropagate(signal, inputGradient, batch: n, parameterGradients: false, pass(memory), workspace: workspace)
    }

    /// Back-propagation through the stack from `outputGradient` `(n, hidden)`: the input gradient when
    /// asked for, and the parameter gradients when `parameterGradients`.
    private func backPropagate(
        _ outputGradient: UnsafePointer<Float>, _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, parameterGradients: Bool,
        _ pass: Pass, workspace: Workspace
    ) {
        precondition(n == pass.lastBatch, "backward needs the forward pass of the same batch")
        let (t, f, h, g) = (timeSteps, features, hidden, gateCount * hidden)
        let dGates = pass.gateGradient!
        let dRecurrent = kind == .gru ? pass.recurrentGateGradient! : dGates
        let dSequence = pass.sequenceGradient!
        for l in stride(from: depth - 1, through: 0, by: -1) {
            let above = l == depth - 1 ? nil : UnsafePointer(dSequence)
            let k = inFeatures(l)
            let x = l == 0 ? UnsafePointer(pass.sequence!) : UnsafePointer(pass.states[l - 1].hidden)
            let hs = UnsafePointer(pass.states[l].hidden)
            let joined = pass.joinedInputs!  // (T, N, in + H): x_t and h_{t−1} side by side (rnn, lstm)
            let zeros = UnsafePointer(zeroRow!)
            parallelRanges(n) { rows, _ in
                backThroughTime(layer: l, rows: rows, batch: n, fromAbove: above, outputGradient: outputGradient, pass)
                guard kind != .gru && parameterGradients else { return }
                for s in 0..<t {
                    for b in rows {
                        let row = joined + (s * n + b) * (k + h)
                        row.update(from: x + (s * n + b) * k, count: k)
                        (row + k).update(from: s > 0 ? hs + ((s - 1) * n + b) * h : zeros, count: h)
                    }
                }
            }
            let wih = UnsafePointer(weightIH[l])
            if l > 0 || inputGradient != nil {
                parallelRanges(t * n) { rows, _ in
                    // dx (rows, in) = dG (rows, G·H) × W_ih (G·H, in), time-major
                    sgemm(transposeA: false, transposeB: false, m: rows.count, n: k, k: g, dGates + rows.lowerBound * g, lda: g,
                          wih, ldb: k, dSequence + rows.lowerBound * k, ldc: k)
                }
            }
            guard parameterGradients else { continue }
            let ones = UnsafePointer(pass.ones!)
            let (dwih, dwhh, dbih, dbhh) = (weightIHGradient[l], weightHHGradient[l], biasIHGradient[l], biasHHGradient[l])
            workspace.reserve(weightGradientScratch(inFeatures: k), workers: workerCount(g))
            parallelRanges(g) { units, worker in
                let u = units.lowerBound
                guard kind != .gru else {
                    // dW_ih (units, in) += dG[:, units]ᵀ (units, T·N) × x (T·N, in)
                    sgemm(transposeA: true, transposeB: false, m: units.count, n: k, k: t * n, dGates + u, lda: g, x, ldb: k,
                          beta: 1, dwih + u * k, ldc: k)
                    // dW_hh (units, H) += dGh[1..., units]ᵀ (units, (T−1)·N) × h[..<T−1] ((T−1)·N, H); h before step 0 is 0
                    if t > 1 {
                        sgemm(transposeA: true, transposeB: false, m: units.count, n: h, k: (t - 1) * n, dRecurrent + n * g + u, lda: g,
                              hs, ldb: h, beta: 1, dwhh + u * h, ldc: h)
                    }
                    // db (units) += dG[:, units]ᵀ (units, T·N) × 1 (T·N)
                    sgemv(transpose: true, m: t * n, n: units.count, dGates + u, lda: g, ones, beta: 1, dbih + u)
                    sgemv(transpose: true, m: t * n, n: units.count, dRecurrent + u, lda: g, ones, beta: 1, dbhh + u)
                    return
                }
                // [dW_ih dW_hh] (units, in + H) = dG[:, units]ᵀ (units, T·N) × [x h_{t−1}] (T·N, in + H): one product
                // packs the gate gradients once for both weights
                let both = workspace.floats(weightGradientScratch(inFeatures: k), worker: worker)
                sgemm(transposeA: true, transposeB: false, m: units.count, n: k + h, k: t * n, dGates + u, lda: g,
                      joined, ldb: k + h, both, ldc: k + h)
                for r in 0..<units.count {
                    let src = both + r * (k + h), wi = dwih + (u + r) * k, wh = dwhh + (u + r) * h
                    for j in 0..<k { wi[j] += src[j] }
                    for j in 0..<h { wh[j] += src[k + j] }
                }
                // db (units) += dG[:, units]ᵀ (units, T·N) × 1 (T·N), the same for both biases
                let db = both  // reuse: the weight sums are added already
                sgemv(transpose: true, m: t * n, n: units.count, dGates + u, lda: g, ones, db)
                for j in 0..<units.count {
                    dbih[u + j] += db[j]
                    dbhh[u + j] += db[j]
                }
            }
        }
        guard let inputGradient else { return }
        for b in 0..<n {  // (T, N, F) → (N, T, F)
            for s in 0..<t { (inputGradient + (b * t + s) * f).update(from: dSequence + (s * n + b) * f, count: f) }
        }
    }

    /// Back-propagation through time of layer `l` for samples `rows`: fills the gate gradients of
    /// every step. The hidden-state gradient comes from the layer above at every step (`fromAbove`,
    /// `(T, N, H)`), or for the top layer from `outputGradient` `(N, H)` at the last step.
    private func backThroughTime(
        layer l: Int, rows: Range<Int>, batch n: Int, fromAbove above: UnsafePointer<Float>?, outputGradient: UnsafePointer<Float>, _ pass: Pass
    ) {
        let (t, h, g) = (timeSteps, hidden, gateCount * hidden)
        let m = rows.count
        let state = pass.states[l]
        let whh = UnsafePointer(weightHH[l])
        let dGates = pass.gateGradient!
        let dRecurrent = kind == .gru ? pass.recurrentGateGradient! : dGates
        let dh = pass.rowState! + rows.lowerBound * 2 * h  // (m, H) gradient of this step's h
        let dc = dh + m * h  // (m, H) lstm: gradient of this step's c
        dh.update(repeating: 0, count: 2 * m * h)
        for s in stride(from: t - 1, through: 0, by: -1) {
            let here = s * n + rows.lowerBound
            let before = here - n
            if let above {
                let src = above + here * h
                for j in 0..<(m * h) { dh[j] += src[j] }
            } else if s == t - 1 {
                let src = outputGradient + rows.lowerBound * h
                for j in 0..<(m * h) { dh[j] += src[j] }
            }
            let d = dGates + here * g  // (m, G·H)
            switch kind {
            case .rnn:
                rnnCellBackward(hidden: state.hidden + here * h, hiddenGradient: dh, gateGradient: d, rows: m, units: h)
            case .lstm:
                lstmCellBackward(gates: state.gates + here * g, cellTanh: state.extra + here * h,
                                 previousCell: s > 0 ? UnsafePointer(state.cell + before * h) : nil,
                                 hiddenGradient: dh, cellGradient: dc, gateGradient: d, rows: m, units: h)
            case .gru:
                gruCellBackward(gates: state.gates + here * g, newGateRecurrent: state.extra + here * h,
                                previousHidden: s > 0 ? UnsafePointer(state.hidden + before * h) : nil,
                                hiddenGradient: dh, gateGradient: d, recurrentGateGradient: dRecurrent + here * g, rows: m, units: h)
            }
            if s > 0 {
                // dh (m, H) = dG (m, G·H) × W_hh (G·H, H) (+ the direct path z⊙dh for gru)
                sgemm(transposeA: false, transposeB: false, m: m, n: h, k: g, dRecurrent + here * g, lda: g, whh, ldb: h,
                      beta: kind == .gru ? 1 : 0, dh, ldc: h)
            }
        }
    }

    /// Floats per worker of the weight gradients' product in `backThroughTime`, for a layer reading `k`
    /// features: `(units, in + H)` of one worker's share of the G·H gate units.
    private func weightGradientScratch(inFeatures k: Int) -> Int {
        let g = gateCount * hidden
        return (g / workerCount(g) + 1) * (k + hidden)
    }

    /// The weight gradients' product, for the stacked layer that reads the most features.
    public func workspace(batch n: Int) -> (floatsPerWorker: Int, workers: Int) {
        (weightGradientScratch(inFeatures: max(features, hidden)), workerCount(gateCount * hidden))
    }

    private func reserve(_ pass: Pass, batch n: Int) {
        guard n > pass.capacity else { return }
        pass.release()
        let (t, h, g) = (timeSteps, hidden, gateCount * hidden)
        func block(_ count: Int) -> UnsafeMutablePointer<Float> { .allocate(capacity: max(1, count)) }
        pass.states = (0..<depth).map { _ in
            State(gates: block(t * n * g), hidden: block(t * n * h), cell: block(kind == .lstm ? t * n * h : 0),
                  extra: block(kind == .rnn ? 0 : t * n * h))
        }
        pass.sequence = block(t * n * features)
        pass.gateGradient = block(t * n * g)
        pass.recurrentGateGradient = block(kind == .gru ? t * n * g : 0)
        pass.sequenceGradient = block(t * n * max(h, features))
        pass.rowState = block(n * max(2 * h, g))
        pass.ones = block(t * n)
        pass.joinedInputs = block(kind == .gru ? 0 : t * n * (max(features, h) + h))
        pass.ones!.initialize(repeating: 1, count: t * n)
        pass.capacity = n
    }
}
