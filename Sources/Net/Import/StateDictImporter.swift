import Foundation

/// Reads a PyTorch `state_dict` saved with safetensors (names such as `features.0.weight`) for a model
/// given by its spec. safetensors keeps no module order, so the tensors are grouped by module
/// (`features.0`), the modules put in order by their names with numbers compared as numbers
/// (`features.2` before `features.10`), each module's tensors in PyTorch's order (weight, bias,
/// running_mean, running_var; `num_batches_tracked`, which inference never reads, is dropped); then
/// each layer of the spec takes the first remaining module whose shapes are its parameters' and
/// running statistics'. Anything left over, or a layer that finds none, is an
/// `ImportError.mismatch` naming both sides.
public enum StateDictImporter {
    public static func read(_ path: String, spec: ModelSpec, inputShape: ImageShape, classes: Int, activation: Activation) throws -> ImportedNetwork {
        let checkpoint = try Checkpoint.read(from: path)
        var modules: [(name: String, tensors: [NamedTensor])] = []
        for entry in checkpoint.tensors where !entry.name.hasSuffix(".num_batches_tracked") {
            let prefix = entry.name.split(separator: ".").dropLast().joined(separator: ".")
            if let i = modules.firstIndex(where: { $0.name == prefix }) { modules[i].tensors.append(entry) } else { modules.append((prefix, [entry])) }
        }
        modules.sort { naturalOrder($0.name, $1.name) }
        for i in modules.indices { modules[i].tensors.sort { suffixRank($0.name) < suffixRank($1.name) } }

        let layers = try Sequential.buildLayers(spec, inputShape: inputShape, classes: classes, activation: activation, seed: 0)
        var parameters: [(source: String, tensor: Tensor)] = []
        for layer in layers where !layer.parameterShapes.isEmpty {
            let tensors = layer.parameterShapes + layer.bufferShapes.filter { !$0.shape.isEmpty }.map { (suffix: $0.suffix, shape: $0.shape) }
            let shapes = tensors.map(\.shape)
            let ours = "\(layer.name) (" + tensors.map { "\($0.suffix) \($0.shape)" }.joined(separator: ", ") + ")"
            guard let i = modules.firstIndex(where: { $0.tensors.map(\.tensor.shape) == shapes }) else {
                let next = modules.first.map { describe($0) } ?? "nothing (every tensor of \(path) is used)"
                throw ImportError.mismatch(ours: "the spec's \(ours)", theirs: "\(path)'s next module, \(next)")
            }
            parameters += modules.remove(at: i).tensors.map { ($0.name, $0.tensor) }
        }
        if let left = modules.first {
            throw ImportError.mismatch(ours: "the spec's layers (all matched)", theirs: "\(path)'s \(describe(left)), left over")
        }
        return ImportedNetwork(spec: spec, activation: activation, inputShape: inputShape, classes: classes, parameters: parameters,
                               metadata: [CheckpointKey.source: "state-dict:\((path as NSString).lastPathComponent)"])
    }

    private static func describe(_ module: (name: String, tensors: [NamedTensor])) -> String {
        "\(module.name) (" + module.tensors.map { "\($0.name.split(separator: ".").last ?? "") \($0.tensor.shape)" }.joined(separator: ", ") + ")"
    }

    private static func suffixRank(_ name: String) -> Int {
        let order = ["weight", "bias", "running_mean", "running_var"]
        return order.firstIndex(of: String(name.split(separator: ".").last ?? "")) ?? order.count
    }

    /// `a` before `b` comparing dot-separated parts, numbers as numbers.
    static func naturalOrder(_ a: String, _ b: String) -> Bool {
        let (x, y) = (a.split(separator: "."), b.split(separator: "."))
        for (p, q) in zip(x, y) where p != q {
            if let m = Int(p), let n = Int(q) { return m < n }
            return p < q
        }
        return x.count < y.count
    }
}
