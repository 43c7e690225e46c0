import Foundation

/// A network read from another framework's file, before it becomes a checkpoint: a spec, the model's
/// activation and input, and the tensors in the order of the spec's layers (each layer's in PyTorch's
/// state-dict order: weight, bias, then batch norm's running_mean and running_var), each with the name
/// it had in the source.
public struct ImportedNetwork {
    public var spec: ModelSpec
    public var activation: Activation
    public var inputShape: ImageShape
    /// Outputs of the last dense layer.
    public var classes: Int
    /// Every layer's parameters and running statistics; `num_batches_tracked`, a count of training
    /// steps that inference never reads, is not among them.
    public var parameters: [(source: String, tensor: Tensor)]
    /// Metadata to record in the checkpoint (where it came from, a final softmax).
    public var metadata: [String: String]

    public init(spec: ModelSpec, activation: Activation, inputShape: ImageShape, classes: Int,
                parameters: [(source: String, tensor: Tensor)], metadata: [String: String]) {
        self.spec = spec
        self.activation = activation
        self.inputShape = inputShape
        self.classes = classes
        self.parameters = parameters
        self.metadata = metadata
    }

    /// The model with these parameters, matched to its tensors by order and shape. Throws
    /// `ImportError.mismatch` naming both sides, `ImportError.nonFinite` for a NaN or infinite weight,
    /// and `ModelError` when the spec does not fit the input.
    public func model() throws -> Sequential {
        let model = try Sequential(spec: spec, inputShape: inputShape, classes: classes, activation: activation)
        let targets = Self.targets(of: model)
        for (i, (view, storage)) in targets.enumerated() {
            guard i < parameters.count else {
                throw ImportError.mismatch(ours: "\(view.name) \(view.shape)", theirs: "nothing (the source has \(parameters.count) tensors)")
            }
            let (source, tensor) = parameters[i]
            guard tensor.shape == view.shape || (tensor.count == view.count && tensor.shape.filter { $0 != 1 } == view.shape.filter { $0 != 1 }) else {
                throw ImportError.mismatch(ours: "\(view.name) \(view.shape)", theirs: "\(source) \(tensor.shape)")
            }
            if let index = tensor.data.firstIndex(where: { !$0.isFinite }) {
                throw ImportError.nonFinite(tensor: source, index: index, value: tensor.data[index])
            }
            for (j, value) in tensor.data.enumerated() { storage[view.offset + j] = value }
        }
        if parameters.count > targets.count {
            let extra = parameters[targets.count]
            throw ImportError.mismatch(ours: "the spec's \(targets.count) tensors", theirs: "\(extra.source) \(extra.tensor.shape) and the rest of the source's \(parameters.count)")
        }
        return model
    }

    /// Where the source's tensors go, in order: each layer's parameters, then its running statistics
    /// (its buffers but the scalar `num_batches_tracked`), each with the block that holds it.
    static func targets(of model: Sequential) -> [(view: ParameterView, storage: UnsafeMutableBufferPointer<Float>)] {
        var targets: [(view: ParameterView, storage: UnsafeMutableBufferPointer<Float>)] = []
        var (parameter, buffer) = (0, 0)
        for layer in model.layers {
            let (p, b) = (layer.parameterShapes.count, layer.bufferShapes.count)
            targets += model.views[parameter..<parameter + p].map { ($0, model.parameters) }
            targets += model.bufferViews[buffer..<buffer + b].filter { !$0.shape.isEmpty }.map { ($0, model.buffers) }
            (parameter, buffer) = (parameter + p, buffer + b)
        }
        return targets
    }
}
