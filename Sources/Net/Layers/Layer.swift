/// A named tensor inside a model's flat parameter block: `values[offset ..< offset + count]`.
public struct ParameterView: Sendable {
    /// PyTorch's state-dict name, e.g. `conv1.weight`.
    public var name: String
    /// PyTorch's layout, e.g. `[out, in, kh, kw]` for a convolution weight.
    public var shape: [Int]
    public var offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// What one layer's forward pass leaves for its backward pass and for the analyses: the layer's
/// own per-call state (max-pool switches, a dropout mask, recurrent time steps) and, when asked for,
/// its pre-activations. Owned by a `ForwardRecord`, one per layer, never by the layer, so that one
/// model can serve several callers (threads) at once.
public final class LayerMemory {
    /// `(n, outputShape)`: the layer's output before its fused activation, written by its forward pass
    /// when the record keeps pre-activations for this layer (`ForwardRecord(_:keepingPreActivationsOf:)`);
    /// nil otherwise.
    public internal(set) var preActivation: UnsafeMutablePointer<Float>?
    private var state: AnyObject?

    public init() {}

    /// The layer's own state, made by `make` on first use. A memory serves one layer, so `State` is
    /// always the same type for it.
    public func state<State: AnyObject>(_ make: () -> State) -> State {
        if let state { return state as! State }
        let made = make()
        state = made
        return made
    }
}

/// One stage of a network. Shapes are per sample: `[C, H, W]` for images, `[F]` for vectors; the
/// batch size comes with each call. Parameters live in the model's flat block (`bind`). A layer keeps
/// nothing from one call to the next: what a pass leaves behind goes into the caller's `LayerMemory`,
/// and scratch into the caller's `Workspace`, so one layer may run on several threads at once.
///
/// Backward contract: `outputGradient` may be modified in place; `inputGradient`, when not nil, is
/// overwritten; parameter gradients are accumulated (zeroed once per step by the model).
public protocol Layer: AnyObject {
    /// Stable name used everywhere: `conv1`, `pool2`, `fc1`, `dropout1`, `rnn`.
    var name: String { get }
    var inputShape: [Int] { get }
    var outputShape: [Int] { get }
    /// Parameter tensors as `(suffix, shape)` in PyTorch's names and layouts, e.g. `("weight", [O, C, k, k])`.
    var parameterShapes: [(suffix: String, shape: [Int])] { get }
    /// Multiply-adds of one forward pass of one sample.
    var multiplyAdds: Int { get }
    /// The window of input positions each output position reads (kernel, stride, padding, on the
    /// `(C, H, W)` input), for layers that map images to images position by position: convolution and
    /// pooling, and 1×1 for dropout. Receptive fields and occlusion footprints follow it. nil for dense
    /// and recurrent layers (every output reads the whole input).
    var window: ConvGeometry? { get }
    /// The activation applied at the end of `forward` (where projections rectify), nil for none.
    var fusedActivation: Activation? { get }
    /// Whether the layer is the identity in evaluation mode (dropout).
    var isIdentityInEvaluation: Bool { get }
    /// Whether the layer is a contrast normalisation (local response normalisation), which the
    /// paper's deconvnet leaves out of the reconstruction path when asked to.
    var isContrastNormalization: Bool { get }
    /// Whether each output channel reads only the same input channel (pooling, dropout, batch norm),
    /// so that a signal in one channel stays in that channel on the way down.
    var isChannelwise: Bool { get }
    /// PyTorch's default initialisation bound U(±bound) for every tensor, when it is not 1/√fan_in
    /// (recurrent layers: 1/√hidden).
    var initializationBound: Float? { get }
    /// Points the layer at its slices of the flat parameter and gradient blocks, in `parameterShapes` order.
    func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>])
    /// Constant initial values of the tensors in `parameterShapes`, one per tensor, when they are not
    /// drawn at random whatever the scheme (batch norm: weight 1, bias 0, as PyTorch).
    var constantInitialization: [Float]? { get }
    /// State that is saved with the parameters but is not one (the optimizer and weight decay never
    /// touch it): `(suffix, shape, initial value)` in PyTorch's names, e.g. batch norm's
    /// `("running_mean", [C], 0)`. Lives in the model's flat buffer block.
    var bufferShapes: [(suffix: String, shape: [Int], initialValue: Float)] { get }
    /// Points the layer at its slices of the model's buffer block, in `bufferShapes` order.
    func bind(buffers: [UnsafeMutablePointer<Float>])
    /// input `(n, inputShape)` → output `(n, outputShape)`; leaves in `memory` what `backward` and
    /// `backwardData` need.
    func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                 memory: LayerMemory, workspace: Workspace)
    /// Gradients of the loss with respect to the input and the parameters, given the forward pass's
    /// input, output and memory.
    func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, memory: LayerMemory, workspace: Workspace)
    /// The backward-data pass of the layer's map up to its fused activation, for the analyses: the
    /// input gradient `(n, inputShape)` (overwritten) of a gradient `signal` at the pre-activation,
    /// with no activation derivative and no parameter gradients. For the linear layers it is the
    /// transpose: a convolution filters with its transposed filters, max pooling places each value at
    /// its switch, average pooling spreads it evenly, dropout copies (or masks, after a training pass).
    /// When `channels` is given, `signal` is `(n, channels.count, outH, outW)` (or `(n, channels.count)`)
    /// and holds only those output channels, the others being zero. What it needs of the forward pass
    /// (switches, a mask, recurrent states) is in `memory`.
    func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace)
    /// How an image-to-image layer computes the changed outputs of copies of one input that differ from
    /// it only inside a box (the occlusion sweep), or nil when it cannot. `byChange` asks for the update
    /// through the input's change where the layer has one. Parameters may be copied: make a new update
    /// after changing them.
    func boxUpdate(byChange: Bool) -> (any BoxUpdate)?
    /// How a layer with a vector output computes such copies from the change of its input, or nil.
    func changeUpdate() -> (any ChangeUpdate)?
    /// Floats of the forms of its parameters that the layer computes once they are fixed
    /// (`fixParameters()`): a Winograd convolution's transformed filters; 0 for most layers.
    var derivedParameterCount: Int { get }
    /// The model's parameters no longer change (`Sequential.fixParameters()`): the layer computes, once,
    /// the forms of them that its passes would otherwise derive on every call (`derivedParameterCount`
    /// floats), and uses them in every pass from now on.
    func fixParameters()
    /// The caller's workspace a training pass (forward or backward) over `n` samples reserves: floats for
    /// each worker, and how many workers. Counted in the memory budget of a step (`Sequential.batchBytes`).
    func workspace(batch n: Int) -> (floatsPerWorker: Int, workers: Int)
}

extension Layer {
    public var parameterShapes: [(suffix: String, shape: [Int])] { [] }
    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {}
    public var constantInitialization: [Float]? { nil }
    public var bufferShapes: [(suffix: String, shape: [Int], initialValue: Float)] { [] }
    public func bind(buffers: [UnsafeMutablePointer<Float>]) {}
    public var multiplyAdds: Int { 0 }
    public var window: ConvGeometry? { nil }
    public var fusedActivation: Activation? { nil }
    public var isIdentityInEvaluation: Bool { false }
    public var isContrastNormalization: Bool { false }
    public var isChannelwise: Bool { false }
    public var initializationBound: Float? { nil }
    public func boxUpdate(byChange: Bool) -> (any BoxUpdate)? { nil }
    public func changeUpdate() -> (any ChangeUpdate)? { nil }
    public func workspace(batch n: Int) -> (floatsPerWorker: Int, workers: Int) { (0, 1) }
    public var derivedParameterCount: Int { 0 }
    public func fixParameters() {}

    /// For a layer without parameters or fused activation: the input gradient is `backwardData` of
    /// the output gradient.
    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        guard let inputGradient else { return }
        backwardData(outputGradient, channels: nil, inputGradient, batch: n, memory: memory, workspace: workspace)
    }
    /// Values per sample of the output.
    public var outputCount: Int { outputShape.reduce(1, *) }
    /// Values per sample of the input.
    public var inputCount: Int { inputShape.reduce(1, *) }
    /// Whether the layer is a convolution in the analyses' sense: a window with learned filters (a
    /// 4-d weight; batch norm's per-channel vectors are not filters) and a fused activation (where
    /// projections rectify, whose filters `filters` draws).
    public var isConvolution: Bool { window != nil && fusedActivation != nil && parameterShapes.contains { $0.shape.count == 4 } }

    /// Applies the fused activation to `count` values at `y` inside `output` (the layer's output of
    /// the batch), keeping the values before it at the same place in `memory.preActivation` when the
    /// record asks for them.
    func activate(_ y: UnsafeMutablePointer<Float>, count: Int, in output: UnsafeMutablePointer<Float>, memory: LayerMemory) {
        if let pre = memory.preActivation { (pre + (y - output)).update(from: y, count: count) }
        fusedActivation?.apply(y, count: count)
    }
}

/// Runs `body(planes)` on the workers over the `(n, channels)` planes a channel-wise layer (pooling,
/// dropout) reads from a `signal` of `channels.count` of its `count` channels: `planes` are indices
/// into `signal`'s planes; plane `q` is channel `channels.lowerBound + q % channels.count` of image
/// `q / channels.count`, which `plane(q)` gives as an index into the full `(n, count)` planes. Each
/// call covers planes that are contiguous in both. Clears `result` `(n, count, plane)` first when
/// `channels` is a subset.
func channelwise(
    batch n: Int, channels: Range<Int>?, of count: Int, clearing result: UnsafeMutablePointer<Float>, planeSize: Int,
    _ body: (_ signalPlanes: Range<Int>, _ fullPlane: Int) -> Void
) {
    let cs = channels ?? 0..<count
    if cs.count < count { result.update(repeating: 0, count: n * count * planeSize) }
    parallelRanges(n * cs.count) { planes, _ in
        var q = planes.lowerBound
        while q < planes.upperBound {
            let (b, j) = (q / cs.count, q % cs.count)
            let end = cs.count == count ? planes.upperBound : min(planes.upperBound, (b + 1) * cs.count)
            body(q..<end, b * count + cs.lowerBound + j)
            q = end
        }
    }
}

/// How a layer that maps images to images computes, for copies of one input sample `(C, H, W)` that
/// differ from it only inside a box of each plane (occluded copies), their changed outputs from the
/// unchanged sample's pass and the changes alone (`BoxKernels.swift`). The changed outputs of an input
/// box are `changedOutputs(box, window)`, by the layer's window.
public protocol BoxUpdate {
    /// Whether `update` reads the unchanged sample's pre-activation, channels last `(outH, outW, O)`.
    var readsPreActivation: Bool { get }
    /// Whether `update` reads the unchanged sample's input channels last, `(H, W, C)`, as well.
    var readsInputChannelsLast: Bool { get }
    /// Floats of scratch `update` needs for a group of copies with these input and output boxes.
    func scratchSize(inputs: [PlaneBox], outputs: [PlaneBox]) -> Int
    /// Writes the outputs `to.boxes[b]` (per copy `(O, box.h, box.w)`) of the copies changed as `from`
    /// says, given the unchanged sample's input `(C, H, W)` and, when `readsInputChannelsLast` and
    /// `readsPreActivation`, that input channels last and its pre-activation. Runs on one thread;
    /// several may run at once.
    func update(
        _ input: UnsafePointer<Float>, inputChannelsLast: UnsafePointer<Float>?, preActivation: UnsafePointer<Float>?,
        from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>)
}

/// How a layer with a vector output over an image input computes, for copies of one input sample, its
/// output `y = f(W·x₀ + b + W·Δx)` from the unchanged sample's pre-activation `W·x₀ + b` and each copy's
/// change Δx inside its box.
public protocol ChangeUpdate {
    /// `output` `(n, outputShape)` for the `n` copies of `changes` (changed − unchanged input, per copy
    /// `(C, box.h, box.w)`), given the unchanged sample's `preActivation` `(outputShape)`. Splits the
    /// work over the workers, with scratch from `workspace`.
    func update(preActivation: UnsafePointer<Float>, changes: BoxedValues, _ output: UnsafeMutablePointer<Float>, workspace: Workspace)
}
