import Foundation

/// A network read from another framework's file, before it becomes a checkpoint: a spec, the model's
/// activation and input, and the parameters in the order of the spec's layers (each layer's in
/// PyTorch's order: weight, bias), each with the name it had in the source.
public struct ImportedNetwork {
    public var spec: ModelSpec
    public var activation: Activation
    public var inputShape: ImageShape
    /// Outputs of the last dense layer.
    public var classes: Int
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
        for (i, view) in model.views.enumerated() {
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
            for (j, value) in tensor.data.enumerated() { model.parameters[view.offset + j] = value }
        }
        if parameters.count > model.views.count {
            let extra = parameters[model.views.count]
            throw ImportError.mismatch(ours: "the spec's \(model.views.count) tensors", theirs: "\(extra.source) \(extra.tensor.shape) and the rest of the source's \(parameters.count)")
        }
        return model
    }
}
