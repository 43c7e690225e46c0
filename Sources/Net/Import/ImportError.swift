import Foundation

/// Why a model could not be imported. Each description is one line; nothing is written when one is thrown.
public enum ImportError: LocalizedError, Equatable {
    /// The file is not an ONNX model (or is truncated).
    case notONNX(path: String, reason: String)
    /// A node whose operator (or the way it is used) has no deconvnet stage.
    case unsupported(node: String, op: String, reason: String)
    /// The graph is not a chain: a value feeds two nodes, or a node reads two activations.
    case branching(node: String, op: String)
    /// The input's size is not fixed in the file and `--input` was not given, or disagrees with it.
    case inputShape(String)
    /// A weight is NaN or infinite.
    case nonFinite(tensor: String, index: Int, value: Float)
    /// A tensor's data cannot be read (external data outside the model's folder, sizes that do not agree).
    case badTensor(name: String, reason: String)
    /// A state dict does not fit the spec; names both sides.
    case mismatch(ours: String, theirs: String)
    /// A class-name file whose count differs from the model's outputs.
    case classCount(path: String, found: Int, expected: Int)
    case overBudget(MemoryBudgetError)

    /// The operators `ONNXImporter` maps, for refusals.
    public static let supportedOperators = "Conv, Relu, LeakyRelu, Tanh, Sigmoid, MaxPool, AveragePool, GlobalAveragePool, "
        + "ReduceMean over H and W, Flatten, Reshape to [N, -1], Gemm, MatMul + Add, BatchNormalization, LRN "
        + "(or PyTorch's LocalResponseNorm subgraph), Dropout, Identity, a final Softmax, and constant shape arithmetic"

    public var errorDescription: String? {
        switch self {
        case let .notONNX(path, reason): return "\(path) is not an ONNX model: \(reason)"
        case let .unsupported(node, op, reason):
            return "node '\(node)' (\(op)): \(reason); supported: \(ImportError.supportedOperators)"
        case let .branching(node, op):
            return "node '\(node)' (\(op)) branches the graph (a value used twice, or two activations joined); only chains of layers import; supported: \(ImportError.supportedOperators)"
        case .inputShape(let why): return why
        case let .nonFinite(tensor, index, value): return "tensor \(tensor) holds \(value) at index \(index): the weights are broken"
        case let .badTensor(name, reason): return "tensor \(name): \(reason)"
        case let .mismatch(ours, theirs): return "\(ours) does not match \(theirs)"
        case let .classCount(path, found, expected): return "\(path) names \(found) classes but the model has \(expected) outputs"
        case .overBudget(let error): return error.errorDescription
        }
    }
}
