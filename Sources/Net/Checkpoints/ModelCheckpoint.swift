import Foundation

/// A model read back from a checkpoint, with what the checkpoint says about it.
public struct LoadedModel {
    public var model: Sequential
    public var classNames: [String]
    /// Epoch and step at which the checkpoint was written (0 for an untrained model).
    public var epoch: Int
    public var step: Int
    /// The checkpoint's metadata and its optimizer state (`optimizer.*` tensors); the model's own tensors
    /// are in `model`.
    public var checkpoint: Checkpoint
}

/// Metadata keys written into every checkpoint's `__metadata__`.
public enum CheckpointKey {
    public static let format = "format", spec = "model_spec", activation = "activation", inputShape = "input_shape"
    public static let classNames = "class_names", cell = "cell", epoch = "epoch", step = "step"
    public static let config = "config", metrics = "metrics", optimizer = "optimizer", optimizerSteps = "optimizer_steps"
    /// The loss of the run's first step, which its divergence bound is a multiple of.
    public static let firstLoss = "first_loss"
    public static let formatValue = "deconvnet-1"
    /// `Preprocessing` as JSON; absent for the standard rule (stretch, pixels / 255).
    public static let preprocessing = "preprocessing"
    /// Where an imported model came from (`onnx:FILE`, `state-dict:FILE`).
    public static let source = "source"
}

extension Sequential {
    /// The recurrent cell kind, if the model has a recurrent stack.
    public var cell: CellKind? {
        for case let .recurrent(kind, _, _) in spec.stages { return kind }
        return nil
    }

    /// The model's parameters and buffers as PyTorch-named tensors (`num_batches_tracked` as I64, as
    /// PyTorch keeps it), plus the optimizer's state as `optimizer.*` tensors and everything needed to
    /// rebuild the model as metadata. `extra` adds metadata entries.
    public func checkpoint(classNames: [String], epoch: Int, step: Int, optimizer: Optimizer? = nil, extra: [String: String] = [:]) -> Checkpoint {
        var tensors = views.map { view in
            NamedTensor(name: view.name, tensor: Tensor(shape: view.shape, data: Array(parameters[view.offset..<view.offset + view.count])))
        }
        tensors += bufferViews.map { view in
            NamedTensor(name: view.name, tensor: Tensor(shape: view.shape, data: Array(buffers[view.offset..<view.offset + view.count])),
                        isInteger: view.name.hasSuffix(".num_batches_tracked"))
        }
        var metadata = extra
        metadata[CheckpointKey.format] = CheckpointKey.formatValue
        metadata[CheckpointKey.spec] = spec.description
        metadata[CheckpointKey.activation] = activation.rawValue
        metadata[CheckpointKey.inputShape] = "[\(inputShape.channels), \(inputShape.height), \(inputShape.width)]"
        metadata[CheckpointKey.classNames] = jsonString(classNames)
        metadata[CheckpointKey.cell] = cell?.rawValue ?? "none"
        metadata[CheckpointKey.epoch] = String(epoch)
        metadata[CheckpointKey.step] = String(step)
        if preprocessing != .standard { metadata[CheckpointKey.preprocessing] = jsonString(preprocessing) }
        if let optimizer {
            metadata[CheckpointKey.optimizer] = optimizer.kind.rawValue
            metadata[CheckpointKey.optimizerSteps] = String(optimizer.steps)
            if !optimizer.state1.isEmpty { tensors.append(NamedTensor(name: "optimizer.state1", tensor: Tensor(shape: [optimizer.state1.count], data: optimizer.state1))) }
            if !optimizer.state2.isEmpty { tensors.append(NamedTensor(name: "optimizer.state2", tensor: Tensor(shape: [optimizer.state2.count], data: optimizer.state2))) }
        }
        return Checkpoint(tensors: tensors, metadata: metadata)
    }

    /// Copies the parameters and buffers out of `checkpoint`; throws when names or shapes differ from
    /// the model's, or when a value is NaN or infinite (`CheckpointError.nonFinite` naming the tensor).
    public func load(parameters checkpoint: Checkpoint) throws {
        let own = checkpoint.tensors.filter { !$0.name.hasPrefix("optimizer.") }
        try load(own.map { ($0.name, $0.tensor.shape) }) { name, destination in
            _ = destination.update(from: own.first { $0.name == name }!.tensor.data)
        }
    }

    /// `load(parameters:)` from an open file, each tensor read straight into the parameter or buffer block.
    public func load(parameters file: CheckpointFile) throws {
        try load(file.tensors.filter { !$0.name.hasPrefix("optimizer.") }) { name, destination in try file.read(name, into: destination) }
    }

    /// Checks that `tensors` (name, shape) are exactly this model's, then fills each view of the parameter
    /// and buffer blocks with `read` and checks that its values are finite.
    private func load(_ tensors: [(name: String, shape: [Int])], read: (String, UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        try Checkpoint.validate(tensors, expected: (views + bufferViews).map { ($0.name, $0.shape) })
        for (block, blockViews) in [(parameters, views), (buffers, bufferViews)] {
            for view in blockViews {
                let values = UnsafeMutableBufferPointer(rebasing: block[view.offset..<view.offset + view.count])
                try read(view.name, values)
                if let index = values.firstIndex(where: { !$0.isFinite }) {
                    throw CheckpointError.nonFinite(tensor: view.name, index: index, value: values[index])
                }
            }
        }
    }

    /// Rebuilds a model from a checkpoint file written by `checkpoint(…)`: reads the spec, activation,
    /// input shape and classes from the metadata, builds the model and loads its parameters. Throws
    /// `CheckpointError`, naming the file, for an unreadable file or metadata that describes no model.
    /// The parameters are read from the file straight into the model (`CheckpointFile`); the returned
    /// `checkpoint` holds the metadata and the optimizer's tensors only.
    public static func load(contentsOf path: String) throws -> LoadedModel {
        let file = try CheckpointFile(path: path)
        let meta = file.metadata
        func field(_ key: String) throws -> String {
            guard let value = meta[key] else { throw CheckpointError.badModel(path: path, reason: "not a deconvnet checkpoint (no '\(key)' in its metadata)") }
            return value
        }
        let spec: ModelSpec
        do { spec = try ModelSpec(parsing: try field(CheckpointKey.spec)) } catch let error as ModelError {
            throw CheckpointError.badModel(path: path, reason: error.localizedDescription)
        }
        guard let activation = Activation(rawValue: try field(CheckpointKey.activation)) else {
            throw CheckpointError.badModel(path: path, reason: "unknown activation '\(meta[CheckpointKey.activation]!)'")
        }
        guard let dims = try? JSONDecoder().decode([Int].self, from: Data(try field(CheckpointKey.inputShape).utf8)), dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
            throw CheckpointError.badModel(path: path, reason: "bad input_shape in its metadata")
        }
        guard let classNames = try? JSONDecoder().decode([String].self, from: Data(try field(CheckpointKey.classNames).utf8)), !classNames.isEmpty else {
            throw CheckpointError.badModel(path: path, reason: "bad class_names in its metadata")
        }
        let inputShape = ImageShape(channels: dims[0], height: dims[1], width: dims[2])
        var preprocessing = Preprocessing.standard
        if let text = meta[CheckpointKey.preprocessing] {
            guard let rule = try? JSONDecoder().decode(Preprocessing.self, from: Data(text.utf8)),
                  rule.mean.isEmpty || rule.mean.count == dims[0] else {
                throw CheckpointError.badModel(path: path, reason: "bad preprocessing in its metadata")
            }
            preprocessing = rule
        }
        do {
            // the tensors' names and shapes are compared before the model's parameters are allocated
            let layers: [any Layer]
            do {
                layers = try Sequential.buildLayers(spec, inputShape: inputShape, classes: classNames.count, activation: activation, seed: 0)
            } catch ModelError.overBudget(let error) {
                // the tensors are in memory already, so a model that does not fit cannot be theirs
                throw ModelError.shape("its metadata (input_shape \(dims)) describes a bigger model than its tensors: \(error.localizedDescription)")
            }
            let expected = layers.flatMap { layer in
                layer.parameterShapes.map { ("\(layer.name).\($0.suffix)", $0.shape) } + layer.bufferShapes.map { ("\(layer.name).\($0.suffix)", $0.shape) }
            }
            try Checkpoint.validate(file.tensors.filter { !$0.name.hasPrefix("optimizer.") }, expected: expected)
            let model = try Sequential(spec: spec, inputShape: inputShape, classes: classNames.count, activation: activation)
            try model.load(parameters: file)
            var optimizerState: [NamedTensor] = []
            for (name, _) in file.tensors where name.hasPrefix("optimizer.") { optimizerState.append(try file.tensor(name)) }
            let checkpoint = Checkpoint(tensors: optimizerState, metadata: meta)
            model.preprocessing = preprocessing
            return LoadedModel(model: model, classNames: classNames, epoch: Int(meta[CheckpointKey.epoch] ?? "") ?? 0,
                               step: Int(meta[CheckpointKey.step] ?? "") ?? 0, checkpoint: checkpoint)
        } catch {
            throw CheckpointError.badModel(path: path, reason: error.localizedDescription)
        }
    }
}

extension Optimizer {
    /// Restores the state saved by `Sequential.checkpoint(…, optimizer:)`; throws if it belongs to another
    /// optimizer kind or model size.
    public func restore(from checkpoint: Checkpoint) throws {
        guard let saved = checkpoint.metadata[CheckpointKey.optimizer] else {
            throw CheckpointError.notResumable("the checkpoint holds no optimizer state (weights only), so it cannot be resumed")
        }
        guard saved == kind.rawValue else { throw CheckpointError.notResumable("the checkpoint's optimizer is \(saved), not \(kind.rawValue)") }
        for (name, expected) in [("optimizer.state1", state1.count), ("optimizer.state2", state2.count)] where expected > 0 {
            guard let t = checkpoint.tensor(name), t.count == expected else {
                throw CheckpointError.notResumable("the checkpoint's \(name) does not match this model")
            }
            if name.hasSuffix("1") { state1 = t.data } else { state2 = t.data }
        }
        steps = Int(checkpoint.metadata[CheckpointKey.optimizerSteps] ?? "") ?? 0
    }
}

/// Compact JSON for a `Codable` value (sorted keys), for metadata and JSON lines.
public func jsonString<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
}
