/// A named tensor inside a model's flat parameter block: `values[offset ..< offset + count]`.
public struct ParameterView: Sendable {
    /// PyTorch's state-dict name, e.g. `conv1.weight`.
    public var name: String
    /// PyTorch's layout, e.g. `[out, in, kh, kw]` for a convolution weight.
    public var shape: [Int]
    public var offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// Growable scratch memory shared by all layers of a model, one region per worker thread
/// (im2col columns, per-worker gradient partial sums and the like).
public final class Workspace {
    private var buffers: [UnsafeMutablePointer<Float>] = []
    private var capacities: [Int] = []

    public init() {}

    deinit { for b in buffers { b.deallocate() } }

    /// At least `count` floats for `worker`; the contents are undefined. Call from one thread per worker.
    public func floats(_ count: Int, worker: Int = 0) -> UnsafeMutablePointer<Float> {
        precondition(worker < buffers.count && capacities[worker] >= count, "reserve the workspace before use")
        return buffers[worker]
    }

    /// Makes sure every worker has at least `count` floats. Call before a parallel region.
    public func reserve(_ count: Int, workers: Int = Workers.count) {
        while buffers.count < workers {
            buffers.append(.allocate(capacity: 1))
            capacities.append(1)
        }
        for w in 0..<workers where capacities[w] < count {
            buffers[w].deallocate()
            buffers[w] = .allocate(capacity: count)
            capacities[w] = count
        }
    }
}

/// One stage of a network. Shapes are per sample: `[C, H, W]` for images, `[F]` for vectors; the
/// batch size comes with each call. Parameters live in the model's flat block (`bind`).
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
    /// Points the layer at its slices of the flat parameter and gradient blocks, in `parameterShapes` order.
    func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>])
    /// input `(n, inputShape)` → output `(n, outputShape)`.
    func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool, workspace: Workspace)
    /// Gradients of the loss with respect to the input and the parameters, given the forward pass's input and output.
    func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, workspace: Workspace)
    /// How an image-to-image layer computes the changed outputs of copies of one input that differ from
    /// it only inside a box (the occlusion sweep), or nil when it cannot. `byChange` asks for the update
    /// through the input's change where the layer has one. Parameters may be copied: make a new update
    /// after changing them.
    func boxUpdate(byChange: Bool) -> (any BoxUpdate)?
    /// How a layer with a vector output computes such copies from the change of its input, or nil.
    func changeUpdate() -> (any ChangeUpdate)?
}

extension Layer {
    public var parameterShapes: [(suffix: String, shape: [Int])] { [] }
    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {}
    public var multiplyAdds: Int { 0 }
    public func boxUpdate(byChange: Bool) -> (any BoxUpdate)? { nil }
    public func changeUpdate() -> (any ChangeUpdate)? { nil }
    /// Values per sample of the output.
    public var outputCount: Int { outputShape.reduce(1, *) }
    /// Values per sample of the input.
    public var inputCount: Int { inputShape.reduce(1, *) }
}

/// How a layer that maps images to images computes, for copies of one input sample `(C, H, W)` that
/// differ from it only inside a box of each plane (occluded copies), their changed outputs from the
/// unchanged sample's pass and the changes alone (`BoxKernels.swift`). The changed outputs of an input
/// box are `changedOutputs(box, window)`, by the layer's window.
public protocol BoxUpdate {
    /// Whether `update` reads the unchanged sample's pre-activation, channels last `(outH, outW, O)`.
    var readsPreActivation: Bool { get }
    /// Floats of scratch `update` needs for a group of copies with these input and output boxes.
    func scratchSize(inputs: [PlaneBox], outputs: [PlaneBox]) -> Int
    /// Writes the outputs `to.boxes[b]` (per copy `(O, box.h, box.w)`) of the copies changed as `from`
    /// says, given the unchanged sample's input `(C, H, W)` and, when `readsPreActivation`, its
    /// pre-activation. Runs on one thread; several may run at once.
    func update(
        _ input: UnsafePointer<Float>, preActivation: UnsafePointer<Float>?, from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>)
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
