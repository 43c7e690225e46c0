/// What the forward passes of a `Sequential` leave behind, owned by their caller rather than by the
/// model: every layer's output, each layer's memory (max-pool switches, dropout masks, recurrent
/// states), the pre-activations of the layers asked for, and the scratch workspace; and the buffers
/// of the backward pass. One record serves one thread at a time; several records may run one model
/// at once. It grows to the largest batch it has seen, so reuse one for many passes (training keeps
/// one for all its steps).
public final class ForwardRecord {
    /// Layers whose output before the fused activation is kept (`preActivation(of:)`).
    public let preActivationLayers: Set<Int>
    /// Scratch memory of the layers, one region per worker.
    public let workspace = Workspace()
    /// One per layer of the model, in layer order.
    public let memories: [LayerMemory]
    /// Images in the last forward pass (0 before the first).
    public private(set) var batch = 0
    /// The first and the last layer the last forward pass ran (-1 before the first pass).
    public private(set) var start = 0, depth = -1
    /// The last forward pass's input `(batch, layers[start].inputShape)`; the caller keeps it valid until `backward` has run.
    public internal(set) var input: UnsafePointer<Float>?

    let model: ObjectIdentifier
    private let outputCounts: [Int]
    private var capacity = 0
    private var outputs: [UnsafeMutablePointer<Float>] = []
    private var preActivations: [UnsafeMutablePointer<Float>] = []
    private var gradientCapacity = 0
    private var outputGradients: [UnsafeMutablePointer<Float>] = []

    /// Whether new output buffers start at zero (`init`).
    private let clearsNewOutputs: Bool

    /// A record for passes of `model`, keeping the pre-activations of the layers `preActivationLayers`.
    /// With `clearingNewOutputs`, the output buffers start at zero whenever the record grows, for passes
    /// that write only part of each plane (a projector's forward pass over one receptive field), so that
    /// the rest holds values of earlier passes or zero, never uninitialised memory. (Left off, a buffer's
    /// pages that no pass writes are never touched: the occlusion sweep's record of a batch of 169 VGG-11
    /// images holds 6 GB of them.)
    public init(_ model: Sequential, keepingPreActivationsOf preActivationLayers: Set<Int> = [], clearingNewOutputs: Bool = false) {
        clearsNewOutputs = clearingNewOutputs
        precondition(preActivationLayers.allSatisfy { model.layers.indices.contains($0) && model.layers[$0].fusedActivation != nil },
                     "pre-activations are kept for layers with a fused activation")
        self.model = ObjectIdentifier(model)
        self.preActivationLayers = preActivationLayers
        outputCounts = model.layers.map(\.outputCount)
        memories = model.layers.map { _ in LayerMemory() }
    }

    deinit {
        for p in outputs + preActivations + outputGradients { p.deallocate() }
    }

    /// Layer `index`'s output `(batch, outputShape)` from the last forward pass.
    public func output(of index: Int) -> UnsafeMutablePointer<Float> {
        precondition(index <= depth, "run forward through layer \(index) first")
        return outputs[index]
    }

    /// Layer `index`'s output before its fused activation `(batch, outputShape)` from the last forward
    /// pass; the record must keep it (`preActivationLayers`).
    public func preActivation(of index: Int) -> UnsafePointer<Float> {
        precondition(index <= depth, "run forward through layer \(index) first")
        guard let pre = memories[index].preActivation else { preconditionFailure("the record does not keep layer \(index)'s pre-activations") }
        return UnsafePointer(pre)
    }

    /// Makes room for a pass of `n` images through layers `first...last`, for `Sequential.forward` and
    /// for callers that run the layers themselves (a projection's forward pass over one unit's receptive
    /// field). The outputs of other layers stay as they were unless the record grows (`n` larger than
    /// any batch before).
    public func begin(batch n: Int, from first: Int, through last: Int, input: UnsafePointer<Float>) {
        if n > capacity {
            for p in outputs + preActivations { p.deallocate() }
            outputs = outputCounts.map { count in
                let output = UnsafeMutablePointer<Float>.allocate(capacity: n * count)
                if clearsNewOutputs { output.initialize(repeating: 0, count: n * count) }
                return output
            }
            preActivations = preActivationLayers.sorted().map { .allocate(capacity: n * outputCounts[$0]) }
            for (i, layer) in preActivationLayers.sorted().enumerated() { memories[layer].preActivation = preActivations[i] }
            capacity = n
        }
        (batch, start, depth, self.input) = (n, first, last, input)
    }

    /// The gradient buffers of the backward pass, `(batch, outputShape)` per layer.
    func gradients() -> [UnsafeMutablePointer<Float>] {
        if batch > gradientCapacity {
            for p in outputGradients { p.deallocate() }
            outputGradients = outputCounts.map { .allocate(capacity: capacity * $0) }
            gradientCapacity = capacity
        }
        return outputGradients
    }
}
