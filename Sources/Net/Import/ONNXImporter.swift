import Foundation

/// Reads an ONNX model whose graph is a chain of layers deconvnet has (the operators of
/// `ImportError.supportedOperators`) into an `ImportedNetwork`.
///
/// The graph is walked in its (topological) order, holding one activation, `current`, of shape
/// `(C, H, W)` or `(F)` for a batch of one. Nodes whose inputs are all constants (initializers,
/// `Constant`, `Shape` of the activation) are folded; every other node must read `current` and nothing
/// else that is not constant, and `current` must feed one node, so a residual `Add` or a `Concat` of
/// branches is refused. BatchNormalization directly after Conv or Gemm is folded into their weights
/// (W·γ/√(σ²+ε), (b−μ)·γ/√(σ²+ε)+β); elsewhere it is a `bn` stage. PyTorch writes
/// `nn.LocalResponseNorm` as x / (k + α·avgpool₃(pad(x²)))^β (Mul, Reshape, Pad, AveragePool,
/// Squeeze, Reshape, Mul, Add, Pow, Div); that subgraph becomes one `lrn` stage.
///
/// Sizes read from the file are checked against `MemoryBudget.current` before anything is allocated.
/// External data files are resolved only inside the model's folder.
public struct ONNXImporter {
    /// Reads `path`; `inputShape` replaces (and must agree with) the sizes the file gives.
    public static func read(_ path: String, inputShape: ImageShape? = nil) throws -> ImportedNetwork {
        let data: Data
        do { data = try readFile(path) } catch { throw error }
        let bytes = [UInt8](data)
        let model: ONNXModel
        do { model = try ONNXModel(parsing: bytes[...]) } catch { throw ImportError.notONNX(path: path, reason: error.reason) }
        let folder = (path as NSString).deletingLastPathComponent
        var walk = GraphWalk(graph: model.graph, folder: folder.isEmpty ? "." : folder)
        var network = try walk.run(inputShape: inputShape)
        network.metadata["source"] = "onnx:\((path as NSString).lastPathComponent)"
        network.metadata["source_producer"] = model.producer
        network.metadata["source_opset"] = String(model.opset)
        return network
    }

    /// Parses `bytes` as a model and walks its graph (no external data), for the fuzzer and tests.
    /// `constants` give values to graph inputs after the first (ONNX's operator tests pass weights as
    /// inputs); with `identityClassifier`, a graph that does not end in a dense layer gets one that
    /// passes its flattened output through unchanged.
    static func read(bytes: [UInt8], inputShape: ImageShape?, constants: [ONNXTensor] = [], identityClassifier: Bool = false) throws -> ImportedNetwork {
        var model: ONNXModel
        do { model = try ONNXModel(parsing: bytes[...]) } catch { throw ImportError.notONNX(path: "<memory>", reason: error.reason) }
        for (info, var tensor) in zip(model.graph.inputs.dropFirst(), constants) {
            tensor.name = info.name
            model.graph.initializers.append(tensor)
        }
        var walk = GraphWalk(graph: model.graph, folder: nil)
        walk.identityClassifier = identityClassifier
        return try walk.run(inputShape: inputShape)
    }
}

/// A constant of the graph: an initializer, a `Constant`, or a folded result. Decoded on first use.
private struct Constant {
    var dims: [Int]
    var values: [Double]
}

/// One stage being built; its spec text is made once the activation after it is known.
private struct PendingStage {
    enum Kind {
        case conv(out: Int, kernel: (Int, Int), stride: Int, pads: [Int], groups: Int)
        case dense(out: Int)
        case pool(text: String)
        case bn(eps: Float)
        case lrn(size: Int, alpha: Float, beta: Float, k: Float)
        case globalPool
    }
    var kind: Kind
    var node: ONNXNode
    var activation: Activation?
    var tensors: [(source: String, tensor: Tensor)] = []
    /// A dense layer from MatMul whose Add has not come yet.
    var awaitingBias = false

    var isDense: Bool {
        if case .dense = kind { return true }
        return false
    }

    var isConvOrDense: Bool {
        switch kind {
        case .conv, .dense: return true
        default: return false
        }
    }
}

private struct GraphWalk {
    let graph: ONNXGraph
    /// The model's folder for external data; nil: none allowed.
    let folder: String?
    var tensors: [String: ONNXTensor] = [:]
    var constants: [String: Constant] = [:]
    /// Constants that could not be folded (an operator this importer does not fold), with the reason:
    /// refused only when something reads them, so shape arithmetic nobody uses (the pads of PyTorch's
    /// legacy LocalResponseNorm, which the LRN stage does not need) does not stop an import.
    var unfoldable: [String: ImportError] = [:]
    var consumers: [String: [Int]] = [:]
    var stages: [PendingStage] = []
    /// Nodes inside a recognised LocalResponseNorm subgraph, handled when its Div is reached.
    var lrnChain: [Int: Int] = [:]
    var current = ""
    var shape: [Int] = []
    var softmax = false
    var identityClassifier = false

    init(graph: ONNXGraph, folder: String?) {
        self.graph = graph
        self.folder = folder
        for t in graph.initializers { tensors[t.name] = t }
        for (i, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(i) }
        }
    }

    mutating func run(inputShape: ImageShape?) throws -> ImportedNetwork {
        let inputs = graph.inputs.filter { tensors[$0.name] == nil }
        guard inputs.count == 1, let input = inputs.first else {
            throw ImportError.inputShape("the graph has \(inputs.count) inputs; an image model has one")
        }
        guard graph.outputs.count == 1 else { throw ImportError.inputShape("the graph has \(graph.outputs.count) outputs; a classifier has one") }
        current = input.name
        shape = try resolveInput(input, given: inputShape)
        let imageShape = ImageShape(channels: shape[0], height: shape[1], width: shape[2])
        for (i, node) in graph.nodes.enumerated() {
            if let chainEnd = lrnChain[i] {
                if chainEnd == i { try finishLRN(at: i) }
                continue
            }
            try visit(node, index: i)
        }
        guard current == graph.outputs[0].name else {
            throw ImportError.branching(node: graph.outputs[0].name, op: "graph output")
        }
        return try network(input: imageShape)
    }

    private func resolveInput(_ input: ONNXValueInfo, given: ImageShape?) throws -> [Int] {
        // a dense model's (N, F) input is read as F x 1 x 1 images
        let fixed = input.dims.count == 2 ? input.dims.dropFirst() + [1, 1] : input.dims.dropFirst()
        guard input.dims.count == 4 || input.dims.count == 2 else {
            throw ImportError.inputShape("input '\(input.name)' has \(input.dims.count) dimensions; an image model reads (N, C, H, W), a dense one (N, F)")
        }
        if let given {
            let wanted = [given.channels, given.height, given.width]
            for (have, want) in zip(fixed, wanted) where have != nil && Int(exactly: have!) != want {
                throw ImportError.inputShape("--input \(given.channels)x\(given.height)x\(given.width) disagrees with input '\(input.name)' of the file, \(input.dims.map { $0.map(String.init) ?? "?" })")
            }
            return wanted
        }
        guard fixed.allSatisfy({ $0 != nil }) else {
            throw ImportError.inputShape("input '\(input.name)' has a dynamic size \(input.dims.map { $0.map(String.init) ?? "?" }); give it with --input CxHxW")
        }
        let dims = fixed.map { Int(clamping: $0!) }
        guard dims.allSatisfy({ 1...ModelSpec.maximumNumber ~= $0 }) else {
            throw ImportError.inputShape("input '\(input.name)' has sizes \(dims) outside 1...\(ModelSpec.maximumNumber)")
        }
        return dims
    }

    // MARK: constants

    private func isConstant(_ name: String) -> Bool {
        name.isEmpty || constants[name] != nil || tensors[name] != nil || unfoldable[name] != nil
    }

    /// The constant `name`, decoded from its tensor on first use.
    private mutating func constant(_ name: String, for node: ONNXNode) throws -> Constant {
        if let c = constants[name] { return c }
        if let error = unfoldable[name] { throw error }
        guard let t = tensors[name] else {
            throw ImportError.unsupported(node: node.label, op: node.opType, reason: "input '\(name)' is not a constant")
        }
        let c = try decode(t)
        constants[name] = c
        return c
    }

    /// A tensor's values, once its size is checked against the budget; NaN and infinity are refused.
    private func decode(_ t: ONNXTensor) throws -> Constant {
        guard t.dims.allSatisfy({ 0...Int64(ModelSpec.maximumNumber) ~= $0 }), t.dims.count <= 8 else {
            throw ImportError.badTensor(name: t.name, reason: "dimensions \(t.dims) are out of range")
        }
        let dims = t.dims.map { Int($0) }
        guard let count = checkedProduct(dims) else { throw ImportError.badTensor(name: t.name, reason: "dimensions \(dims) overflow") }
        do { try MemoryBudget.current.check(shape: [count], elementSize: 8, for: "tensor \(t.name) \(dims)") } catch { throw ImportError.overBudget(error) }
        guard let type = ONNXTensor.DataType(rawValue: t.dataType) else {
            throw ImportError.badTensor(name: t.name, reason: "data type \(t.dataType) is not float, double, int32 or int64")
        }
        let width = type == .float || type == .int32 ? 4 : 8
        var values: [Double]
        if let raw = try rawBytes(t, count: count, width: width) {
            guard raw.count == count * width else {
                throw ImportError.badTensor(name: t.name, reason: "\(raw.count) bytes of data for \(count) values of \(width) bytes")
            }
            values = [Double](repeating: 0, count: count)
            raw.withUnsafeBytes { buffer in
                for i in 0..<count {
                    let bits = width == 4 ? buffer.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self) : 0
                    switch type {
                    case .float: values[i] = Double(Float(bitPattern: UInt32(littleEndian: bits)))
                    case .int32: values[i] = Double(Int32(bitPattern: UInt32(littleEndian: bits)))
                    case .double: values[i] = Double(bitPattern: UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
                    case .int64: values[i] = Double(Int64(littleEndian: buffer.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)))
                    }
                }
            }
        } else {
            switch type {
            case .float: values = t.floatData.map(Double.init)
            case .int32: values = t.int32Data.map(Double.init)
            case .int64: values = t.int64Data.map(Double.init)
            case .double:
                throw ImportError.badTensor(name: t.name, reason: "double values outside raw_data are not read")
            }
            guard values.count == count else {
                throw ImportError.badTensor(name: t.name, reason: "\(values.count) values for dimensions \(dims)")
            }
        }
        if let index = values.firstIndex(where: { !$0.isFinite }) {
            throw ImportError.nonFinite(tensor: t.name, index: index, value: Float(values[index]))
        }
        return Constant(dims: dims, values: values)
    }

    /// The tensor's raw bytes: `raw_data`, or its slice of an external data file inside the model's
    /// folder; nil when the values are in the typed fields.
    private func rawBytes(_ t: ONNXTensor, count: Int, width: Int) throws -> [UInt8]? {
        guard t.isExternal || !t.externalData.isEmpty else { return t.rawData.map(Array.init) }
        guard let folder else { throw ImportError.badTensor(name: t.name, reason: "external data is not read here") }
        guard let location = t.externalData["location"], !location.isEmpty else {
            throw ImportError.badTensor(name: t.name, reason: "external data without a location")
        }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains(".."), !location.contains("\\"), !location.contains("\0") else {
            throw ImportError.badTensor(name: t.name, reason: "external data location '\(location)' leaves the model's folder")
        }
        let path = joinPath(folder, location)
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let root = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
        guard real.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw ImportError.badTensor(name: t.name, reason: "external data location '\(location)' leaves the model's folder")
        }
        let expected = count * width
        guard let offset = Int(t.externalData["offset"] ?? "0"), offset >= 0,
              let length = Int(t.externalData["length"] ?? String(expected)), length == expected else {
            throw ImportError.badTensor(name: t.name, reason: "external data offset/length \(t.externalData["offset"] ?? "0")/\(t.externalData["length"] ?? "-") do not fit \(expected) bytes")
        }
        guard let handle = FileHandle(forReadingAtPath: real) else {
            throw ImportError.badTensor(name: t.name, reason: "cannot open external data file \(path)")
        }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()).map(Int.init) ?? 0
        guard offset <= size, expected <= size - offset else {
            throw ImportError.badTensor(name: t.name, reason: "bytes \(offset)..<\(offset + expected) are past the end of \(path) (\(size) bytes)")
        }
        try handle.seek(toOffset: UInt64(offset))
        guard let bytes = try handle.read(upToCount: expected), bytes.count == expected else {
            throw ImportError.badTensor(name: t.name, reason: "cannot read \(expected) bytes of \(path)")
        }
        return [UInt8](bytes)
    }

    /// A float tensor for a layer's parameter.
    private mutating func parameter(_ name: String, for node: ONNXNode) throws -> (source: String, tensor: Tensor) {
        let c = try constant(name, for: node)
        return (name, Tensor(shape: c.dims, data: c.values.map { Float($0) }))
    }

    // MARK: the walk

    private func refuse(_ node: ONNXNode, _ reason: String) -> ImportError {
        .unsupported(node: node.label, op: node.opType, reason: reason)
    }

    private func input(_ node: ONNXNode, _ i: Int) throws -> String {
        guard i < node.inputs.count, !node.inputs[i].isEmpty else { throw refuse(node, "input \(i) is missing") }
        return node.inputs[i]
    }

    private mutating func visit(_ node: ONNXNode, index: Int) throws {
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { throw refuse(node, "operators of domain '\(node.domain)' are not supported") }
        let activations = node.inputs.filter { !isConstant($0) }
        if activations.isEmpty {
            do { try fold(node) } catch let error as ImportError {
                for output in node.outputs { unfoldable[output] = error }
            }
            return
        }
        if node.opType == "Shape", activations == [current] {
            guard let out = node.outputs.first else { return }
            constants[out] = Constant(dims: [shape.count + 1], values: ([1] + shape).map(Double.init))
            return
        }
        guard activations.allSatisfy({ $0 == current }) else { throw ImportError.branching(node: node.label, op: node.opType) }
        let readers = (consumers[current] ?? []).filter { graph.nodes[$0].opType != "Shape" }
        if node.opType == "Mul", node.inputs.count == 2, node.inputs[0] == current, node.inputs[1] == current {
            return try startLRN(node, index: index, readers: readers)
        }
        guard readers == [index], activations.count == 1 else { throw ImportError.branching(node: node.label, op: node.opType) }
        guard node.outputs.count >= 1 else { throw refuse(node, "a node without outputs") }
        if softmax { throw refuse(node, "only a final Softmax is supported") }
        try map(node)
        current = node.outputs[0]
    }

    /// Folds a node whose inputs are all constant.
    private mutating func fold(_ node: ONNXNode) throws {
        func input(_ i: Int) throws -> Constant {
            guard i < node.inputs.count else { throw refuse(node, "input \(i) is missing") }
            return try constant(node.inputs[i], for: node)
        }
        let result: Constant
        switch node.opType {
        case "Constant":
            if let t = node.attributes["value"]?.tensor { result = try decode(t) }
            else if let f = node.attributes["value_float"]?.float { result = Constant(dims: [], values: [Double(f)]) }
            else if let i = node.attributes["value_int"]?.int { result = Constant(dims: [], values: [Double(i)]) }
            else if let ints = node.attributes["value_ints"]?.ints, !ints.isEmpty { result = Constant(dims: [ints.count], values: ints.map(Double.init)) }
            else if let floats = node.attributes["value_floats"]?.floats, !floats.isEmpty { result = Constant(dims: [floats.count], values: floats.map(Double.init)) }
            else { throw refuse(node, "a Constant of a kind that is not read") }
        case "Identity", "Cast":
            result = try input(0)
        case "Shape":
            let c = try input(0)
            result = Constant(dims: [c.dims.count], values: c.dims.map(Double.init))
        case "Gather":
            let data = try input(0), indices = try input(1)
            guard node.int("axis", default: 0) == 0, data.dims.count == 1, indices.dims.count <= 1 else { throw refuse(node, "only Gather on axis 0 of a list folds") }
            let picked = try indices.values.map { v -> Double in
                let i = clampedInt(v) < 0 ? clampedInt(v) + data.values.count : clampedInt(v)
                guard data.values.indices.contains(i) else { throw refuse(node, "index \(clampedInt(v)) is out of range") }
                return data.values[i]
            }
            result = Constant(dims: indices.dims, values: picked)
        case "Concat":
            let parts = try node.inputs.indices.map { try input($0) }
            guard parts.allSatisfy({ $0.dims.count == 1 }) else { throw refuse(node, "only Concat of lists folds") }
            let values = parts.flatMap(\.values)
            result = Constant(dims: [values.count], values: values)
        case "Unsqueeze", "Squeeze", "Reshape", "Flatten":
            let c = try input(0)
            // constant lists: only the values matter to the shape arithmetic that follows
            result = Constant(dims: c.values.count == 1 && node.opType == "Squeeze" ? [] : [c.values.count], values: c.values)
        default:
            throw refuse(node, "constant inputs of this operator are not folded")
        }
        for output in node.outputs.prefix(1) { constants[output] = result }
    }

    /// Maps a node that reads the activation.
    private mutating func map(_ node: ONNXNode) throws {
        switch node.opType {
        case "Conv": try conv(node)
        case "Relu": try activation(.relu, node)
        case "LeakyRelu":
            guard node.float("alpha", default: 0.01) == Activation.leakySlope else { throw refuse(node, "only the slope \(Activation.leakySlope) is supported") }
            try activation(.leakyRelu, node)
        case "Tanh": try activation(.tanh, node)
        case "Sigmoid": try activation(.sigmoid, node)
        case "MaxPool", "AveragePool": try pool(node)
        case "GlobalAveragePool": try globalPool(node, keepDims: true)
        case "ReduceMean":
            var axes = node.ints("axes") ?? []
            if node.inputs.count > 1, !node.inputs[1].isEmpty { axes = try constant(node.inputs[1], for: node).values.map(clampedInt) }
            guard shape.count == 3, Set(axes.map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3] else { throw refuse(node, "only ReduceMean over H and W is supported") }
            try globalPool(node, keepDims: node.int("keepdims", default: 1) != 0)
        case "Flatten":
            guard node.int("axis", default: 1) == 1 else { throw refuse(node, "only Flatten with axis 1 is supported") }
            shape = [shape.reduce(1, *)]
        case "Reshape":
            let target = try constant(try input(node, 1), for: node).values.map(clampedInt)
            let count = shape.reduce(1, *)
            guard target.count == 2, [1, -1, 0].contains(target[0]), target[1] == -1 || target[1] == count, target != [-1, -1] else {
                throw refuse(node, "only Reshape to [N, -1] is supported, not \(target)")
            }
            shape = [count]
        case "Gemm": try gemm(node)
        case "MatMul": try matMul(node)
        case "Add": try addBias(node)
        case "BatchNormalization": try batchNorm(node)
        case "LRN":
            let size = node.int("size", default: 0)
            guard size > 0, size % 2 == 1, shape.count == 3 else { throw refuse(node, "only odd LRN sizes on images are supported (ONNX and PyTorch place even windows differently)") }
            stages.append(PendingStage(kind: .lrn(size: size, alpha: node.float("alpha", default: 1e-4), beta: node.float("beta", default: 0.75),
                                                  k: node.float("bias", default: 1)), node: node))
        case "Dropout", "Identity":
            break
        case "Softmax":
            guard graph.outputs.first?.name == node.outputs[0] else { throw refuse(node, "only a final Softmax is supported") }
            softmax = true
        default:
            throw refuse(node, "this operator is not supported")
        }
    }

    private mutating func conv(_ node: ONNXNode) throws {
        guard shape.count == 3 else { throw refuse(node, "a convolution needs an image input") }
        let w = try parameter(try input(node, 1), for: node)
        guard w.tensor.shape.count == 4 else { throw refuse(node, "only 2-d convolutions are supported") }
        let (out, kh, kw) = (w.tensor.shape[0], w.tensor.shape[2], w.tensor.shape[3])
        let groups = node.int("group", default: 1)
        guard groups >= 1, groups <= shape[0], shape[0] % groups == 0, w.tensor.shape[1] * groups == shape[0] else {
            throw refuse(node, "weight \(w.tensor.shape) does not fit \(shape[0]) input channels in \(groups) groups")
        }
        guard (node.ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }) else { throw refuse(node, "dilated convolutions are not supported") }
        let strides = node.ints("strides") ?? [1, 1]
        guard strides.count == 2, strides[0] == strides[1], 1...ModelSpec.maximumNumber ~= strides[0] else { throw refuse(node, "only equal strides are supported, not \(strides)") }
        let pads = try padding(node, kernel: (kh, kw), stride: strides[0])
        var stage = PendingStage(kind: .conv(out: out, kernel: (kh, kw), stride: strides[0], pads: pads, groups: groups), node: node)
        let bias = node.inputs.count > 2 && !node.inputs[2].isEmpty ? try parameter(node.inputs[2], for: node)
            : ("\(node.label).bias (zero)", Tensor(zeros: [out]))
        stage.tensors = [w, bias]
        stages.append(stage)
        let oh = (shape[1] + pads[0] + pads[2] - kh) / strides[0] + 1, ow = (shape[2] + pads[1] + pads[3] - kw) / strides[0] + 1
        guard oh >= 1, ow >= 1, shape[1] + pads[0] + pads[2] >= kh, shape[2] + pads[1] + pads[3] >= kw else {
            throw refuse(node, "the kernel does not fit its \(shape[1])x\(shape[2]) input")
        }
        shape = [out, oh, ow]
    }

    /// ONNX pads `[top, left, bottom, right]` from `pads` or `auto_pad`.
    private func padding(_ node: ONNXNode, kernel: (Int, Int), stride: Int) throws -> [Int] {
        switch node.string("auto_pad", default: "NOTSET") {
        case "NOTSET", "":
            let pads = node.ints("pads") ?? [0, 0, 0, 0]
            guard pads.count == 4, pads.allSatisfy({ 0...ModelSpec.maximumNumber ~= $0 }) else { throw refuse(node, "pads \(pads) are not 4 sizes") }
            return pads
        case "VALID": return [0, 0, 0, 0]
        case let mode:
            // SAME_UPPER / SAME_LOWER: output ceil(in / stride), the odd pixel after (upper) or before (lower)
            var pads = [0, 0, 0, 0]
            for (axis, k) in [(0, kernel.0), (1, kernel.1)] {
                let size = shape[axis + 1]
                let total = max(((size + stride - 1) / stride - 1) * stride + k - size, 0)
                let small = total / 2
                pads[axis] = mode == "SAME_LOWER" ? total - small : small
                pads[axis + 2] = total - pads[axis]
            }
            return pads
        }
    }

    private mutating func activation(_ kind: Activation, _ node: ONNXNode) throws {
        guard var last = stages.last, last.activation == nil, last.isConvOrDense, !last.awaitingBias else {
            throw refuse(node, "an activation is supported right after Conv, Gemm or a folded BatchNormalization")
        }
        last.activation = kind
        stages[stages.count - 1] = last
    }

    private mutating func pool(_ node: ONNXNode) throws {
        guard shape.count == 3 else { throw refuse(node, "pooling needs an image input") }
        let kernel = node.ints("kernel_shape") ?? []
        guard kernel.count == 2, kernel[0] == kernel[1], 1...ModelSpec.maximumNumber ~= kernel[0] else { throw refuse(node, "only square 2-d windows are supported, not \(kernel)") }
        let k = kernel[0]
        let strides = node.ints("strides") ?? [1, 1]
        guard strides.count == 2, strides[0] == strides[1], 1...ModelSpec.maximumNumber ~= strides[0] else { throw refuse(node, "only equal strides are supported, not \(strides)") }
        guard (node.ints("dilations") ?? [1, 1]).allSatisfy({ $0 == 1 }) else { throw refuse(node, "dilated pooling is not supported") }
        let s = strides[0]
        let pads = try padding(node, kernel: (k, k), stride: s)
        let ceil = node.int("ceil_mode", default: 0) != 0
        let isMax = node.opType == "MaxPool"
        if !isMax, k == 1, s == 1, pads.allSatisfy({ $0 == 0 }) { return }  // the identity (AlexNet's adaptive pool on 6x6)
        guard pads.allSatisfy({ $0 <= k / 2 }) else { throw refuse(node, "padding \(pads) is more than half the window \(k)") }
        var text = "\(isMax ? "maxpool" : "avgpool"):\(k):\(s)"
        if pads.contains(where: { $0 != 0 }) {
            text += Set(pads).count == 1 ? ":pad=\(pads[0])" : ":pad=" + pads.map(String.init).joined(separator: "/")
        }
        if ceil { text += ":ceil" }
        if !isMax, node.int("count_include_pad", default: 0) == 0, pads.contains(where: { $0 != 0 }) { text += ":exclude-pad" }
        stages.append(PendingStage(kind: .pool(text: text), node: node))
        func size(_ n: Int, _ before: Int, _ after: Int) -> Int {
            let span = n + before + after - k
            var out = (ceil ? (span + s - 1) / s : span / s) + 1
            if ceil, (out - 1) * s >= n + before { out -= 1 }
            return out
        }
        guard shape[1] + pads[0] + pads[2] >= k, shape[2] + pads[1] + pads[3] >= k else { throw refuse(node, "the window does not fit its \(shape[1])x\(shape[2]) input") }
        shape = [shape[0], size(shape[1], pads[0], pads[2]), size(shape[2], pads[1], pads[3])]
    }

    private mutating func globalPool(_ node: ONNXNode, keepDims: Bool) throws {
        guard shape.count == 3 else { throw refuse(node, "global pooling needs an image input") }
        stages.append(PendingStage(kind: .globalPool, node: node))
        shape = keepDims ? [shape[0], 1, 1] : [shape[0]]
    }

    private mutating func gemm(_ node: ONNXNode) throws {
        guard node.int("transA", default: 0) == 0 else { throw refuse(node, "transA is not supported") }
        var (source, w) = try parameter(try input(node, 1), for: node)
        guard w.shape.count == 2 else { throw refuse(node, "the weight is not a matrix") }
        if node.int("transB", default: 0) == 0 { w = transposed(w) }
        let alpha = node.float("alpha", default: 1), beta = node.float("beta", default: 1)
        if alpha != 1 { w.data = w.data.map { $0 * alpha } }
        let out = w.shape[0]
        var bias = (source: "\(node.label).bias (zero)", tensor: Tensor(zeros: [out]))
        if node.inputs.count > 2, !node.inputs[2].isEmpty {
            bias = try parameter(node.inputs[2], for: node)
            guard bias.tensor.count == out || bias.tensor.count == 1 else { throw refuse(node, "bias \(bias.tensor.shape) does not fit \(out) outputs") }
            // a one-element bias broadcasts
            let values = bias.tensor.count == out ? bias.tensor.data : [Float](repeating: bias.tensor.data[0], count: out)
            bias.tensor = Tensor(shape: [out], data: values.map { $0 * beta })
        }
        try appendDense(node, weight: (source, w), bias: bias)
    }

    private mutating func matMul(_ node: ONNXNode) throws {
        guard node.inputs.count == 2, node.inputs[0] == current else { throw refuse(node, "only activation × weight is supported") }
        let (source, w) = try parameter(node.inputs[1], for: node)
        guard w.shape.count == 2 else { throw refuse(node, "the weight is not a matrix") }
        try appendDense(node, weight: (source, transposed(w)), bias: ("\(node.label).bias (zero)", Tensor(zeros: [w.shape[1]])))
        stages[stages.count - 1].awaitingBias = true
    }

    private mutating func appendDense(_ node: ONNXNode, weight: (source: String, tensor: Tensor), bias: (source: String, tensor: Tensor)) throws {
        let features = shape.reduce(1, *)
        guard weight.tensor.shape[1] == features else { throw refuse(node, "weight \(weight.tensor.shape) does not fit \(features) input features") }
        var stage = PendingStage(kind: .dense(out: weight.tensor.shape[0]), node: node)
        stage.tensors = [weight, bias]
        stages.append(stage)
        shape = [weight.tensor.shape[0]]
    }

    /// The bias `Add` after a `MatMul`.
    private mutating func addBias(_ node: ONNXNode) throws {
        guard var last = stages.last, last.awaitingBias, node.inputs.count == 2 else {
            throw refuse(node, "Add is supported as the bias after MatMul (a residual Add branches the graph)")
        }
        let b = try parameter(node.inputs[0] == current ? node.inputs[1] : node.inputs[0], for: node)
        guard b.tensor.count == shape[0] else { throw refuse(node, "bias \(b.tensor.shape) does not fit \(shape[0]) outputs") }
        last.tensors[1] = (b.source, Tensor(shape: [shape[0]], data: b.tensor.data))
        last.awaitingBias = false
        stages[stages.count - 1] = last
    }

    private mutating func batchNorm(_ node: ONNXNode) throws {
        guard node.inputs.count >= 5, node.int("training_mode", default: 0) == 0 else { throw refuse(node, "only inference-mode BatchNormalization is supported") }
        let channels = shape[0]
        let names = ["scale", "B", "mean", "var"]
        let params = try (1...4).map { try parameter(node.inputs[$0], for: node) }
        for (p, name) in zip(params, names) where p.tensor.count != channels {
            throw refuse(node, "\(name) \(p.tensor.shape) does not fit \(channels) channels")
        }
        let eps = node.float("epsilon", default: 1e-5)
        let (gamma, beta, mean, variance) = (params[0].tensor.data, params[1].tensor.data, params[2].tensor.data, params[3].tensor.data)
        if let c = variance.firstIndex(where: { $0 < 0 }) { throw refuse(node, "var[\(c)] is negative (\(variance[c]))") }
        if var last = stages.last, last.isConvOrDense, last.activation == nil, !last.awaitingBias {
            // fold: y = γ (Wx + b − μ) / √(σ² + ε) + β, in Double
            var w = last.tensors[0].tensor, b = last.tensors[1].tensor
            let perChannel = w.count / channels
            for c in 0..<channels {
                let scale = Double(gamma[c]) / (Double(variance[c]) + Double(eps)).squareRoot()
                for i in c * perChannel..<(c + 1) * perChannel { w.data[i] = Float(Double(w.data[i]) * scale) }
                b.data[c] = Float((Double(b.data[c]) - Double(mean[c])) * scale + Double(beta[c]))
            }
            last.tensors[0].tensor = w
            last.tensors[1] = ("\(last.tensors[1].source)+\(node.label)", b)
            stages[stages.count - 1] = last
            return
        }
        var stage = PendingStage(kind: .bn(eps: eps), node: node)
        stage.tensors = params
        stages.append(stage)
    }

    // MARK: PyTorch's LocalResponseNorm

    /// At `Mul(x, x)`: follows its single consumers to `Div(x, ·)` and marks that chain as one LRN.
    private mutating func startLRN(_ node: ONNXNode, index: Int, readers: [Int]) throws {
        // the legacy exporter squeezes with Shape, Gather, Equal and an If whose branches only reshape
        let allowed: Set<String> = ["Reshape", "Unsqueeze", "Squeeze", "Pad", "AveragePool", "Mul", "Add", "Pow", "Transpose",
                                    "Shape", "Gather", "Equal", "If"]
        var chain = [index]
        var value = node.outputs.first ?? ""
        while true {
            guard let next = consumers[value], next.count == 1 else { throw ImportError.branching(node: node.label, op: node.opType) }
            let n = graph.nodes[next[0]]
            if n.opType == "Div", n.inputs.count == 2, n.inputs[0] == current, n.inputs[1] == value {
                chain.append(next[0])
                break
            }
            guard allowed.contains(n.opType), chain.count < 16, let out = n.outputs.first, try n.opType != "If" || branchesOnlyReshape(n) else {
                throw refuse(n, "inside what looks like PyTorch's LocalResponseNorm, this operator is not expected")
            }
            chain.append(next[0])
            value = out
        }
        guard Set(readers) == [index, chain.last!] else { throw ImportError.branching(node: node.label, op: node.opType) }
        for i in chain { lrnChain[i] = chain.last! }
    }

    /// Whether both branches of `If` node `n` only pass a value on or squeeze it (its values unchanged).
    private func branchesOnlyReshape(_ n: ONNXNode) throws -> Bool {
        let shapeOnly: Set<String> = ["Constant", "Identity", "Squeeze", "Unsqueeze", "Reshape"]
        for name in ["then_branch", "else_branch"] {
            let branch: ONNXGraph?
            do { branch = try n.subgraph(name) } catch { throw refuse(n, "its \(name) is not a readable graph (\(error.reason))") }
            guard let branch, branch.outputs.count == 1, branch.nodes.allSatisfy({ shapeOnly.contains($0.opType) && $0.domain.isEmpty }) else { return false }
        }
        return true
    }

    /// At the chain's Div: reads size, alpha, beta and k from the chain's constants.
    private mutating func finishLRN(at end: Int) throws {
        let chain = lrnChain.filter { $0.value == end }.keys.sorted().map { graph.nodes[$0] }
        let div = graph.nodes[end]
        guard shape.count == 3 else { throw refuse(div, "LocalResponseNorm needs an image input") }
        func scalar(_ n: ONNXNode) throws -> Float {
            guard let name = n.inputs.first(where: { isConstant($0) && !$0.isEmpty }) else { throw refuse(n, "needs a constant") }
            let c = try constant(name, for: n)
            guard c.values.count == 1 else { throw refuse(n, "needs a scalar constant, not \(c.dims)") }
            return Float(c.values[0])
        }
        var size: Int?, alpha: Float = 1, beta: Float?, k: Float = 0
        var mulCount = 0
        for n in chain.dropLast() {
            switch n.opType {
            case "AveragePool":
                let kernel = n.ints("kernel_shape") ?? []
                guard let first = kernel.first, kernel.dropFirst().allSatisfy({ $0 == 1 }), n.int("count_include_pad", default: 0) == 1 || (n.ints("pads") ?? []).allSatisfy({ $0 == 0 }) else {
                    throw refuse(n, "not the window of PyTorch's LocalResponseNorm")
                }
                size = first
            case "Mul":
                mulCount += 1
                if mulCount > 1 { alpha = try scalar(n) }
            case "Add": k = try scalar(n)
            case "Pow": beta = try scalar(n)
            default: break
            }
        }
        guard let size, let beta, size >= 1 else { throw refuse(div, "not PyTorch's LocalResponseNorm (no window or exponent)") }
        guard let out = div.outputs.first else { throw refuse(div, "a node without outputs") }
        stages.append(PendingStage(kind: .lrn(size: size, alpha: alpha, beta: beta, k: k), node: div))
        current = out
    }

    // MARK: the result

    private mutating func network(input: ImageShape) throws -> ImportedNetwork {
        if identityClassifier, let last = stages.last, !last.isDense {
            let features = shape.reduce(1, *)
            var identity = Tensor(zeros: [features, features])
            for i in 0..<features { identity.data[i * features + i] = 1 }
            var stage = PendingStage(kind: .dense(out: features), node: last.node)
            stage.tensors = [("identity", identity), ("zero", Tensor(zeros: [features]))]
            stages.append(stage)
        }
        guard let last = stages.last, case .dense(let classes) = last.kind else {
            throw ImportError.unsupported(node: stages.last?.node.label ?? "graph", op: stages.last?.node.opType ?? "-", reason: "the last layer must be Gemm or MatMul (the classifier)")
        }
        let hidden = stages.dropLast().filter(\.isConvOrDense)
        var votes: [Activation: Int] = [:]
        for s in hidden { votes[s.activation ?? .identity, default: 0] += 1 }
        let model = votes.filter { $0.key != .identity }.max { $0.value < $1.value || $0.value == $1.value && $0.key.rawValue > $1.key.rawValue }?.key ?? .relu
        var texts: [String] = []
        for (i, stage) in stages.enumerated() {
            let isLast = i == stages.count - 1
            let wanted = stage.activation ?? .identity
            let act = (isLast ? wanted != .identity : wanted != model) ? ":act=\(wanted.rawValue)" : ""
            switch stage.kind {
            case let .conv(out, kernel, stride, pads, groups):
                // canonical order: positional padding when symmetric, then stride, pad, groups, act
                var text = "conv:\(out):" + (kernel.0 == kernel.1 ? "\(kernel.0)" : "\(kernel.0)x\(kernel.1)")
                if Set(pads).count == 1 { text += ":\(pads[0])" }
                if stride != 1 { text += ":stride=\(stride)" }
                if Set(pads).count != 1 { text += ":pad=" + pads.map(String.init).joined(separator: "/") }
                if groups != 1 { text += ":groups=\(groups)" }
                texts.append(text + act)
            case .dense(let out): texts.append((isLast ? "fc" : "fc:\(out)") + act)
            case .pool(let text): texts.append(text)
            case .bn(let eps): texts.append(eps == 1e-5 ? "bn" : "bn:eps=\(eps)")
            case let .lrn(size, alpha, beta, k): texts.append("lrn:\(size):alpha=\(alpha):beta=\(beta):k=\(k)")
            case .globalPool: texts.append("globalavgpool")
            }
        }
        let specText = texts.joined(separator: ",")
        let spec: ModelSpec
        do { spec = try ModelSpec(parsing: specText) } catch {
            throw ImportError.unsupported(node: "graph", op: "-", reason: "its layers, \(specText), are not a spec this build can read (\(error.localizedDescription))")
        }
        var metadata: [String: String] = [:]
        if softmax { metadata["source_softmax"] = "true" }
        return ImportedNetwork(spec: spec, activation: model, inputShape: input, classes: classes,
                               parameters: stages.flatMap(\.tensors), metadata: metadata)
    }
}

/// `v` as an `Int`, clamped to ±2^50 (values from the file may be anything).
private func clampedInt(_ v: Double) -> Int {
    v.isNaN ? 0 : Int(min(max(v, -0x1p50), 0x1p50))
}

private func transposed(_ m: Tensor) -> Tensor {
    let (rows, cols) = (m.shape[0], m.shape[1])
    var out = [Float](repeating: 0, count: m.count)
    for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = m.data[r * cols + c] } }
    return Tensor(shape: [cols, rows], data: out)
}
