import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A network run in order forward and in reverse backward, with one flat block of parameters and
/// one of gradients (named views in PyTorch's state-dict order), so an optimizer is one loop and a
/// checkpoint is a header plus tensors. The model holds no state of its passes: each caller passes
/// its own `ForwardRecord`, so several threads may run one model at once (training excepted: it
/// writes the parameters and gradients).
public final class Sequential {
    public let spec: ModelSpec
    public let inputShape: ImageShape
    public let classes: Int
    public let activation: Activation
    /// How images become this model's input; saved in its checkpoint.
    public var preprocessing = Preprocessing.standard
    /// Whether the parameters are final (`fixParameters()`).
    public private(set) var parametersAreFixed = false
    public let layers: [any Layer]
    /// Named tensors inside `parameters`/`gradients`, in PyTorch's state-dict order.
    public let views: [ParameterView]
    /// All parameters, flat.
    public let parameters: UnsafeMutableBufferPointer<Float>
    /// Gradients, same layout as `parameters`; accumulated by `backward`, cleared by `zeroGradients`.
    /// Zeroed pages from `calloc`, so that a model that is only looked at (an imported AlexNet's 244 MB)
    /// never makes them resident.
    public let gradients: UnsafeMutableBufferPointer<Float>
    /// Named tensors inside `buffers` (`Layer.bufferShapes`: batch norm's running statistics), in layer order.
    public let bufferViews: [ParameterView]
    /// State saved with the parameters that is not one: the optimizer and weight decay never see it.
    /// Training passes write it (batch norm's running statistics).
    public let buffers: UnsafeMutableBufferPointer<Float>

    /// Builds the layers for `spec` on images of `inputShape`; throws `ModelError` when a stage does
    /// not fit (a window larger than its input, an image model on the wrong input, …) and
    /// `ModelError.overBudget` before allocating more than `MemoryBudget.current`.
    public init(spec: ModelSpec, inputShape: ImageShape, classes: Int, activation: Activation = .relu, seed: UInt64 = 0) throws {
        self.spec = spec
        self.inputShape = inputShape
        self.classes = classes
        self.activation = activation
        layers = try Sequential.buildLayers(spec, inputShape: inputShape, classes: classes, activation: activation, seed: seed)
        try Sequential.checkParameters(layers.flatMap { $0.parameterShapes.map { MemoryBudget.size(of: $0.shape) } })
        var views: [ParameterView] = []
        var offset = 0
        for layer in layers {
            for (suffix, shape) in layer.parameterShapes {
                views.append(ParameterView(name: "\(layer.name).\(suffix)", shape: shape, offset: offset))
                offset += shape.reduce(1, *)
            }
        }
        self.views = views
        var bufferViews: [ParameterView] = []
        var bufferCount = 0
        for layer in layers {
            for (suffix, shape, _) in layer.bufferShapes {
                bufferViews.append(ParameterView(name: "\(layer.name).\(suffix)", shape: shape, offset: bufferCount))
                bufferCount += shape.reduce(1, *)
            }
        }
        self.bufferViews = bufferViews
        buffers = .allocate(capacity: bufferCount)
        buffers.initialize(repeating: 0)
        parameters = .allocate(capacity: offset)
        parameters.initialize(repeating: 0)
        gradients = zeroedFloats(offset)
        var index = 0
        for layer in layers {
            let n = layer.parameterShapes.count
            let mine = views[index..<index + n]
            layer.bind(parameters: mine.map { parameters.baseAddress! + $0.offset },
                       gradients: mine.map { gradients.baseAddress! + $0.offset })
            index += n
        }
        var bufferIndex = 0
        for layer in layers {
            let n = layer.bufferShapes.count
            layer.bind(buffers: bufferViews[bufferIndex..<bufferIndex + n].map { buffers.baseAddress! + $0.offset })
            bufferIndex += n
        }
        initialize(.pytorch, seed: seed)
    }

    deinit {
        parameters.deallocate()
        free(gradients.baseAddress)
        buffers.deallocate()
    }

    /// The layers for `spec`, their parameters not yet bound; checks each against `MemoryBudget.current` first.
    static func buildLayers(_ spec: ModelSpec, inputShape: ImageShape, classes: Int, activation: Activation, seed: UInt64) throws -> [any Layer] {
        let sizes = [inputShape.channels, inputShape.height, inputShape.width, classes]
        guard sizes.allSatisfy({ 1...ModelSpec.maximumNumber ~= $0 }) else {
            throw ModelError.shape("input \(sizes.dropLast().map(String.init).joined(separator: "x")) with \(classes) classes:"
                                   + " every size must be from 1 to \(ModelSpec.maximumNumber)")
        }
        var layers: [any Layer] = []
        var shape = [inputShape.channels, inputShape.height, inputShape.width]
        var counts: [String: Int] = [:]
        func nextName(_ kind: String) -> String {
            counts[kind, default: 0] += 1
            return "\(kind)\(counts[kind]!)"
        }
        let denseCount = spec.stages.filter { if case .dense = $0 { return true } else { return false } }.count
        let isRecurrent = spec.stages.contains { if case .recurrent = $0 { return true } else { return false } }
        for (i, stage) in spec.stages.enumerated() {
            let isLast = i == spec.stages.count - 1
            // conv → BN → ReLU: a `bn` right after a convolution or dense layer takes its activation
            let stageActivation = !isLast && spec.stages[i + 1].isBatchNorm ? Activation.identity : stage.activation(model: activation, isLast: isLast)
            try checkStage(stage, input: shape, classes: classes)
            switch stage {
            case let .conv(c):
                guard shape.count == 3 else { throw ModelError.shape("a convolution cannot follow a dense or recurrent layer") }
                let stageText = ModelSpec(stages: [stage]).description
                guard let pad = c.sides else { throw ModelError.badSpec("'same' padding needs an odd kernel, not \(c.kernelHeight)x\(c.kernelWidth)") }
                guard shape[0] % c.groups == 0 else {
                    throw ModelError.badSpec("groups=\(c.groups) in '\(stageText)' does not divide its \(shape[0]) input channels")
                }
                let g = ConvGeometry(inChannels: shape[0], height: shape[1], width: shape[2], kernelHeight: c.kernelHeight, kernelWidth: c.kernelWidth,
                                     stride: c.stride, padding: pad.tuple, groups: c.groups)
                try fits(g, shape, "convolution \(c.kernelHeight)x\(c.kernelWidth)")
                layers.append(Conv2D(name: nextName("conv"), geometry: g, outChannels: c.out, activation: stageActivation!))
            case let .maxPool(p), let .avgPool(p):
                guard shape.count == 3 else { throw ModelError.shape("pooling cannot follow a dense or recurrent layer") }
                let g = ConvGeometry(inChannels: shape[0], height: shape[1], width: shape[2], kernelHeight: p.size, kernelWidth: p.size,
                                     stride: p.stride, padding: p.padding.tuple, ceilMode: p.ceilMode)
                try fits(g, shape, "pooling window \(p.size)x\(p.size)")
                if case .maxPool = stage {
                    layers.append(MaxPool2D(name: nextName("pool"), geometry: g))
                } else {
                    layers.append(AvgPool2D(name: nextName("pool"), geometry: g, includePadding: p.includePadding))
                }
            case .dense(let n, _):
                guard let out = n ?? (isLast ? classes : nil) else { throw ModelError.badSpec("only the last 'fc' may omit its size") }
                if isLast && out != classes { throw ModelError.shape("the last layer has \(out) outputs but the data has \(classes) classes") }
                let name = isRecurrent && denseCount == 1 ? "fc" : nextName("fc")
                layers.append(Dense(name: name, inputShape: shape, outFeatures: out, activation: stageActivation!))
            case .dropout(let p):
                layers.append(Dropout(name: nextName("dropout"), inputShape: shape, probability: p, seed: seed &+ UInt64(i) &* 0x9E37))
            case let .recurrent(kind, hidden, stack):
                guard shape.count == 3 else { throw ModelError.shape("a recurrent layer reads images; it cannot follow a dense layer") }
                layers.append(try makeRecurrentLayer(kind, hidden: hidden, layers: stack, inputShape: shape))
            case .localResponseNorm(let lrn):
                guard shape.count == 3 else { throw ModelError.badSpec("'\(ModelSpec(stages: [stage]))' needs an image input, not a dense or recurrent output") }
                layers.append(LocalResponseNorm(name: nextName("lrn"), inputShape: shape, parameters: lrn))
            case let .batchNorm(eps, momentum):
                if spec.stages[..<i].last(where: { if case .dropout = $0 { return false } else { return true } })?.isRecurrent ?? false {
                    throw ModelError.badSpec("'\(ModelSpec(stages: [stage]))' cannot follow a recurrent layer")
                }
                let moved = i > 0 ? spec.stages[i - 1].activation(model: activation, isLast: false) : nil
                layers.append(BatchNorm(name: nextName("bn"), inputShape: shape, eps: eps, momentum: momentum, activation: moved))
            case let .adaptiveAvgPool(h, w):
                guard shape.count == 3 else { throw ModelError.shape("pooling cannot follow a dense or recurrent layer") }
                layers.append(AdaptiveAvgPool2D(name: nextName("pool"), inputShape: shape, outputHeight: h, outputWidth: w))
            case .flatten:
                layers.append(Flatten(name: nextName("flatten"), inputShape: shape))
            }
            shape = layers.last!.outputShape
        }
        guard case .dense = spec.stages.last else { throw ModelError.badSpec("the last stage must be 'fc' (the classifier)") }
        return layers
    }

    private static func fits(_ g: ConvGeometry, _ shape: [Int], _ what: String) throws {
        if g.outHeight < 1 || g.outWidth < 1 || g.height + g.padTop + g.padBottom < g.kernelHeight || g.width + g.padLeft + g.padRight < g.kernelWidth {
            throw ModelError.shape("\(what) does not fit its \(shape[1])x\(shape[2]) input")
        }
    }

    /// Draws every parameter afresh with `scheme` (the same seed gives the same values), except those
    /// a layer starts at constants (`constantInitialization`), and resets the buffers.
    public func initialize(_ scheme: Initialization, seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var lastFanIn = 1
        for (view, (_, _, initial)) in zip(bufferViews, layers.flatMap(\.bufferShapes)) {
            UnsafeMutableBufferPointer(rebasing: buffers[view.offset..<view.offset + view.count]).update(repeating: initial)
        }
        for (layer, view, tensor) in viewsByLayer() {
            let buffer = UnsafeMutableBufferPointer(rebasing: parameters[view.offset..<view.offset + view.count])
            let bound = layer.initializationBound
            if let constants = layer.constantInitialization {
                buffer.update(repeating: constants[tensor])
            } else if view.shape.count >= 2 {
                scheme.fill(weight: buffer, shape: view.shape, recurrentBound: bound, random: &random)
                lastFanIn = view.shape.dropFirst().reduce(1, *)
            } else {
                scheme.fill(bias: buffer, fanIn: lastFanIn, recurrentBound: bound, random: &random)
            }
        }
    }

    /// Each parameter view with its layer and its place among the layer's tensors.
    private func viewsByLayer() -> [(any Layer, ParameterView, Int)] {
        var result: [(any Layer, ParameterView, Int)] = []
        var index = 0
        for layer in layers {
            for tensor in layer.parameterShapes.indices {
                result.append((layer, views[index], tensor))
                index += 1
            }
        }
        return result
    }

    /// The parameter tensor called `name` (PyTorch's state-dict name, e.g. `conv1.weight`) in PyTorch's
    /// layout `view.shape`, or nil when there is none.
    public func parameter(named name: String) -> (view: ParameterView, values: UnsafeMutableBufferPointer<Float>)? {
        views.first { $0.name == name }.map { ($0, UnsafeMutableBufferPointer(rebasing: parameters[$0.offset..<$0.offset + $0.count])) }
    }

    /// Number of parameters.
    public var parameterCount: Int { parameters.count }

    /// Whether `activation` is applied anywhere: after a convolution or a hidden dense layer. The
    /// recurrent presets (cells, then the classifier) have none.
    public var usesActivation: Bool {
        layers.contains { ($0.fusedActivation ?? .identity) != .identity }
    }

    /// The layer whose output is layer `index`'s after its activation: the batch norm right after a
    /// convolution or dense layer, which took that activation (conv → BN → ReLU), else `index` itself.
    public func activatedOutput(of index: Int) -> Int {
        index + 1 < layers.count && spec.stages[index + 1].isBatchNorm && spec.stages[index].isConvolutionOrDense ? index + 1 : index
    }

    /// The layer with that name and its position.
    public func layer(named name: String) -> (index: Int, layer: any Layer)? {
        layers.enumerated().first { $0.element.name == name }.map { ($0.offset, $0.element) }
    }

    /// Runs layers `first...last` (all by default) on `input` `(n, layers[first].inputShape)`, `(n, C, H, W)`
    /// from the first layer, into `record` and returns layer `last`'s output `(n, outputShape)`: the
    /// logits `(n, classes)` of a whole pass. Every output of those layers stays readable through
    /// `record.output(of:)` until the record's next pass; `input` must stay valid until `backward` has
    /// run. Only a pass from the first layer can be back-propagated; later starts serve analyses that
    /// compute the leading layers themselves (the occlusion sweep).
    @discardableResult
    public func forward(
        _ input: UnsafePointer<Float>, batch n: Int, training: Bool, from first: Int = 0, through last: Int? = nil, into record: ForwardRecord
    ) -> UnsafeMutablePointer<Float> {
        forward(input, batch: n, training: training, from: first, through: last ?? layers.count - 1, into: record) { _, step in step() }
    }

    /// Back-propagates `logitGradient` `(n, classes)` (it is modified) through `record`'s last forward
    /// pass (of every layer), accumulating into `gradients`; writes the input gradient `(n, C, H, W)`
    /// when asked.
    public func backward(_ logitGradient: UnsafePointer<Float>, record: ForwardRecord, inputGradient: UnsafeMutablePointer<Float>? = nil) {
        backward(logitGradient, record: record, inputGradient: inputGradient) { _, step in step() }
    }

    /// The forward pass through layer `last` with `each(i, step)` wrapped around layer `i`'s step (for `profile`).
    @discardableResult
    private func forward(
        _ input: UnsafePointer<Float>, batch n: Int, training: Bool, from first: Int = 0, through last: Int, into record: ForwardRecord,
        each: (Int, () -> Void) -> Void
    ) -> UnsafeMutablePointer<Float> {
        precondition(layers.indices.contains(last) && (0...last).contains(first), "no layers \(first)...\(last)")
        precondition(record.model == ObjectIdentifier(self), "the record belongs to another model")
        record.begin(batch: n, from: first, through: last, input: input)
        var x = input
        for i in first...last {
            let y = record.output(of: i)
            each(i) { self.layers[i].forward(x, y, batch: n, training: training, memory: record.memories[i], workspace: record.workspace) }
            x = UnsafePointer(y)
        }
        return record.output(of: last)
    }

    /// The backward pass with `each(i, step)` wrapped around layer `i`'s step.
    private func backward(
        _ logitGradient: UnsafePointer<Float>, record: ForwardRecord, inputGradient: UnsafeMutablePointer<Float>?, each: (Int, () -> Void) -> Void
    ) {
        let (n, last) = (record.batch, layers.count - 1)
        precondition(record.model == ObjectIdentifier(self) && record.start == 0 && record.depth == last, "backward needs a whole forward pass of this model")
        let outputGradients = record.gradients()
        outputGradients[last].update(from: logitGradient, count: n * layers[last].outputCount)
        for i in stride(from: last, through: 0, by: -1) {
            let input = i == 0 ? record.input! : UnsafePointer(record.output(of: i - 1))
            let dx = i == 0 ? inputGradient : outputGradients[i - 1]
            each(i) {
                self.layers[i].backward(input, record.output(of: i), outputGradients[i], dx, batch: n, memory: record.memories[i], workspace: record.workspace)
            }
        }
    }

    /// Clears the gradient block (backward accumulates).
    public func zeroGradients() {
        gradients.update(repeating: 0)
    }

    /// Declares the parameters final: the model is for analysis from now on, not for training. Each layer
    /// then computes, once, what its passes would otherwise derive from its parameters on every call (a
    /// Winograd convolution's transformed filters, `Layer.fixParameters()`). Throws
    /// `ModelError.overBudget` before allocating more than `MemoryBudget.current` for them. Training the
    /// model afterwards (`trainStep`), or writing its parameters, is a programming error.
    public func fixParameters() throws(ModelError) {
        guard !parametersAreFixed else { return }
        try Sequential.checkFloats(MemoryBudget.sum(layers.map(\.derivedParameterCount)), for: "the transformed filters of the model")
        for layer in layers { layer.fixParameters() }
        parametersAreFixed = true
    }
}

extension Sequential {
    /// Mean seconds per call of each layer's forward and backward pass on `input` `(n, C, H, W)`, over
    /// `repeats` runs; for finding where a training step spends its time. With `logitGradient` `(n, classes)`
    /// the passes are a training step's (forward in training mode, then backward from that gradient);
    /// without it they are inference-mode forward passes only, and each backward time is 0.
    public func profile(_ input: UnsafePointer<Float>, batch n: Int, logitGradient: UnsafePointer<Float>?, repeats: Int) -> [(name: String, forward: Double, backward: Double)] {
        var forwardTime = [Double](repeating: 0, count: layers.count)
        var backwardTime = [Double](repeating: 0, count: layers.count)
        let record = ForwardRecord(self)
        func seconds(_ body: () -> Void) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        for _ in 0..<repeats {
            forward(input, batch: n, training: logitGradient != nil, through: layers.count - 1, into: record) { i, step in forwardTime[i] += seconds(step) }
            guard let logitGradient else { continue }
            backward(logitGradient, record: record, inputGradient: nil) { i, step in backwardTime[i] += seconds(step) }
        }
        return layers.indices.map { (layers[$0].name, forwardTime[$0] / Double(repeats), backwardTime[$0] / Double(repeats)) }
    }
}

/// `count` zeroed floats from `calloc` (freed with `free`): the system hands out zero pages that become
/// resident only when first written.
private func zeroedFloats(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
    guard let memory = calloc(max(count, 1), MemoryLayout<Float>.stride) else { fatalError("out of memory: \(count) floats") }
    return UnsafeMutableBufferPointer(start: memory.assumingMemoryBound(to: Float.self), count: count)
}
