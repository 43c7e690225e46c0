import Foundation
import Net

/// How a signal is carried down through the activation of each convolution on the way to the input.
/// Every method unpools through the max-pool switches of the forward pass, spreads evenly through
/// average pooling, and filters with the transposed convolution filters (each layer's `backwardData`);
/// they differ only at a layer's fused activation other than the identity (a convolution whose batch
/// norm took its activation, for one), where the signal `g` at its output becomes:
///
/// - `deconvnet` (Zeiler & Fergus 2013): `max(g, 0)`. The deconvnet always rectifies with a ReLU of the
///   signal itself, whatever the forward activation was (tanh, sigmoid, leaky ReLU alike) and without
///   looking at which units were active in the forward pass.
/// - `guided` (guided backpropagation, Springenberg et al. 2015): `max(g, 0) · f'(z)`; for a ReLU that is
///   the deconvnet's rule masked by the units that were active in the forward pass.
/// - `gradient` (plain saliency, Simonyan et al. 2014): `g · f'(z)`, the true derivative, so the result is
///   the exact gradient of the chosen activation with respect to the input.
public enum ProjectionMethod: String, CaseIterable, Sendable, Codable {
    case deconvnet, guided, gradient
}

/// How a projection goes down through a local response normalisation (`Layer.isContrastNormalization`).
///
/// - `gradient` (the default): the normalisation's gradient at the forward pass's input, as for any
///   other layer. This is Captum's definition (its NeuronDeconvolution and GuidedBackprop override only
///   the ReLUs' backward), so the projections equal Captum's.
/// - `skip`: the identity, Zeiler & Fergus's choice ("contrast normalization is not used in the
///   reconstruction path").
public enum ContrastNormalizationProjection: String, CaseIterable, Sendable, Codable {
    case gradient, skip
}

/// Why a projection cannot be made. Each description is one readable line.
public enum ProjectionError: LocalizedError, Equatable, Sendable {
    /// The model has no convolution below its first dense or recurrent layer (e.g. a recurrent model).
    case noConvolution(spec: String)
    /// No layer has that name; `available` lists the projectable ones.
    case unknownLayer(String, available: [String])
    /// The layer exists but is not a feature map below the first dense or recurrent layer.
    case notProjectable(String, available: [String])
    /// The channel is not in `0..<channels` of the layer.
    case channelOutOfRange(Int, layer: String, channels: Int)
    /// The position is outside the layer's `height x width` feature map.
    case positionOutOfRange(y: Int, x: Int, layer: String, height: Int, width: Int)

    public var errorDescription: String? {
        switch self {
        case .noConvolution(let spec):
            return "the model '\(spec)' has no convolution to project through (projections need convolutional feature maps; a recurrent model has none)"
        case let .unknownLayer(name, available):
            return "no layer named '\(name)' (layers with feature maps: \(available.joined(separator: ", ")))"
        case let .notProjectable(name, available):
            return "layer '\(name)' has no feature maps to project from (choose one of \(available.joined(separator: ", ")))"
        case let .channelOutOfRange(channel, layer, channels):
            return "channel \(channel) is out of range: layer '\(layer)' has channels 0-\(channels - 1)"
        case let .positionOutOfRange(y, x, layer, height, width):
            return "position \(y),\(x) is outside layer '\(layer)', whose feature maps are \(height)x\(width) (rows 0-\(height - 1), columns 0-\(width - 1))"
        }
    }
}

/// One activation of a feature layer: channel and position `(y, x)` in its `(C, H, W)` output.
public struct FeatureUnit: Equatable, Hashable, Sendable, Codable {
    public var channel: Int
    public var y: Int
    public var x: Int

    public init(channel: Int, y: Int, x: Int) {
        self.channel = channel
        self.y = y
        self.x = x
    }
}

/// Projects single activations of a convolutional network down to pixel space (Zeiler & Fergus 2013).
///
/// The forward pass runs the model's own layers up to the chosen layer into the projector's record,
/// which keeps every output and every max-pool's switches; the projection then walks back down: at the
/// chosen layer all activations but the seed are zero, and for each layer going down it rectifies as
/// `ProjectionMethod` says where the layer has a fused activation, then takes the layer's
/// `backwardData` (unpooling through the switches, filtering with the transposed filters) down to the
/// input. Many seeds run at once as a batch, one per image.
///
/// Scale: every step is positively homogeneous, so the projection of a seed of value `a ≥ 0` is `a`
/// times that of a unit seed. The outputs are for the seed values passed in (1 by default); the
/// `deconvnet` commands use the unit seed and print the activation's value beside it, so the paper's
/// reconstruction of an activation `a` is `a` times what they write.
///
/// The deconvnet projection equals the input gradient of the chosen activation with every ReLU's
/// backward replaced by a ReLU of the incoming signal (max-pool gradients through the switches,
/// convolution gradients through the transposed filters); the tests check this against loops.
/// When all seeds of a batch lie in one channel, the signal stays in that channel through the
/// channelwise layers (pooling, dropout, batch norm), and the first layer going down that mixes
/// channels (a convolution, a local response normalisation) takes only that channel of the signal
/// (its `backwardData` over one output channel, a 1/O share of the work). And the signal stays inside
/// the seeds' receptive field: each convolution below filters only the crop of its planes that the
/// field covers (the box holding every seed's field, for a batch), so that one unit's projection
/// touches only its receptive field (`carryDown`).
///
/// A projector is one caller's: it owns its record and buffers and changes nothing in the model, so
/// projectors on different threads may share one model. `project` uses the record of this
/// projector's last `forward`.
public final class Projector {
    public let model: Sequential
    /// Indices of the layers one can project from: every layer with a window (`Layer.window`: image in,
    /// image out) below the first dense or recurrent layer (convolutions, poolings, dropouts).
    public let featureLayers: [Int]
    /// The record of the last `forward`: the feature layers' outputs and the max-pool switches.
    public let record: ForwardRecord
    /// How `project` goes down through local response normalisations (the gradient by default).
    public var contrastNormalization = ContrastNormalizationProjection.gradient

    private var capacity = 0
    private var signals: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)?
    /// The crops and channel slices of `carryDown`.
    private let scratch = Workspace()

    /// Throws `ProjectionError.noConvolution` when the model has no convolution below its first dense
    /// or recurrent layer.
    public init(model: Sequential) throws {
        self.model = model
        featureLayers = Array(model.layers.indices.prefix { model.layers[$0].window != nil })
        guard featureLayers.contains(where: { model.layers[$0].isConvolution }) else { throw ProjectionError.noConvolution(spec: model.spec.description) }
        record = ForwardRecord(model, clearingNewOutputs: true)  // what `forward(_:batch:through:at:)` leaves alone is never uninitialised
    }

    deinit { release() }

    private func release() {
        guard let (a, b) = signals else { return }
        a.deallocate()
        b.deallocate()
    }

    /// Names of the layers one can project from, bottom up, e.g. `conv1, pool1, conv2, pool2`.
    public var featureLayerNames: [String] { featureLayers.map { model.layers[$0].name } }

    /// The index of the feature layer called `name`; throws `ProjectionError` when there is none.
    public func layerIndex(named name: String) throws -> Int {
        guard let (index, _) = model.layer(named: name) else { throw ProjectionError.unknownLayer(name, available: featureLayerNames) }
        guard featureLayers.contains(index) else { throw ProjectionError.notProjectable(name, available: featureLayerNames) }
        return index
    }

    /// The `(C, H, W)` output shape of layer `index`.
    public func shape(of index: Int) -> [Int] { model.layers[index].outputShape }

    /// Throws `ProjectionError` unless `unit` lies inside layer `index`'s output; `channel` alone may be checked by passing y = x = 0.
    public func validate(_ unit: FeatureUnit, in index: Int) throws {
        let s = shape(of: index), name = model.layers[index].name
        guard (0..<s[0]).contains(unit.channel) else { throw ProjectionError.channelOutOfRange(unit.channel, layer: name, channels: s[0]) }
        guard (0..<s[1]).contains(unit.y), (0..<s[2]).contains(unit.x) else {
            throw ProjectionError.positionOutOfRange(y: unit.y, x: unit.x, layer: name, height: s[1], width: s[2])
        }
    }

    private func reserve(batch n: Int) {
        guard n > capacity else { return }
        release()
        let layers = model.layers[0...featureLayers.last!]
        signals = signalBuffers(layers, batch: n)
        capacity = n
    }

    /// Runs the model's layers `0...layer` on `input` `(n, C, H, W)` in evaluation mode into `record`
    /// (their outputs, see `activations(of:)`, and the max-pool switches), for `project`.
    ///
    /// Given a `position` of the layer's output, it runs only what the units there (all channels) read:
    /// their receptive field. Each convolution below them computes only the crop of its planes that the
    /// field covers (`croppedConvolution`), and each max pooling without padding only the outputs in it
    /// (`MaxPool2D.forward(_:_:batch:outputs:memory:workspace:)`); the other layers between (padded
    /// pooling, normalisations, dropout) take the whole plane, as `carryDown` does. Afterwards the record
    /// holds what a whole pass would have left wherever a projection of a unit at `position` reads (`value(of:in:image:)` and `project` of seeds at
    /// `position` are as after a whole pass), and values of no use to it elsewhere (`activations(of:)` and
    /// `strongest` are not to be read then).
    public func forward(_ input: UnsafePointer<Float>, batch n: Int, through layer: Int, at position: (y: Int, x: Int)? = nil) {
        precondition(featureLayers.contains(layer), "layer \(layer) is not a feature layer")
        reserve(batch: n)
        guard let position else {
            model.forward(input, batch: n, training: false, through: layer, into: record)
            return
        }
        let s = shape(of: layer)
        precondition((0..<s[1]).contains(position.y) && (0..<s[2]).contains(position.x), "position \(position) outside \(s)")
        record.begin(batch: n, from: 0, through: layer, input: input)
        // boxes[i]: the outputs of layer i that the units read
        var boxes = [PlaneBox](repeating: .empty, count: layer + 1)
        boxes[layer] = PlaneBox(y: position.y, x: position.x, height: 1, width: 1)
        for i in stride(from: layer, to: 0, by: -1) { boxes[i - 1] = footprint(model.layers[i], boxes[i]) }
        var x = input
        for i in 0...layer {
            let y = record.output(of: i)
            if let crop = croppedConvolution(model.layers[i], reading: boxes[i]) {
                forwardCropped(crop, of: model.layers[i], x, y, batch: n)
            } else if let pool = model.layers[i] as? MaxPool2D {
                pool.forward(x, y, batch: n, outputs: boxes[i], memory: record.memories[i], workspace: record.workspace)
            } else {
                model.layers[i].forward(x, y, batch: n, training: false, memory: record.memories[i], workspace: record.workspace)
            }
            x = UnsafePointer(y)
        }
    }

    /// The outputs of `full` inside `crop.outputBox`, written into `output` `(n, O, outH, outW)`, from the
    /// crop `crop.inputBox` of `input` `(n, C, H, W)` (`crop` is of `full`).
    private func forwardCropped(_ crop: CroppedConvolution, of full: any Layer, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int) {
        let layer = crop.layer
        let (inCount, outCount) = (n * layer.inputCount, n * layer.outputCount)
        scratch.reserve(inCount + outCount, workers: 1)
        let croppedInput = scratch.floats(inCount + outCount), croppedOutput = croppedInput + inCount
        let (c, h, w) = (full.inputShape[0], full.inputShape[1], full.inputShape[2])
        Planes(channels: 0..<c, box: crop.inputBox).forEachRow(batch: n, channels: c, height: h, width: w) { at, packed, count in
            (croppedInput + packed).update(from: input + at, count: count)
        }
        layer.forward(croppedInput, croppedOutput, batch: n, training: false, memory: LayerMemory(), workspace: record.workspace)
        let (o, outH, outW) = (full.outputShape[0], full.outputShape[1], full.outputShape[2])
        Planes(channels: 0..<o, box: crop.outputBox).forEachRow(batch: n, channels: o, height: outH, width: outW) { at, packed, count in
            (output + at).update(from: croppedOutput + packed, count: count)
        }
    }

    /// Layer `index`'s output from the last `forward`, `(n, C, H, W)`.
    public func activations(of index: Int) -> UnsafePointer<Float> {
        UnsafePointer(record.output(of: index))
    }

    /// The strongest activation of image `image` (a row of the last forward batch) in layer `index`:
    /// the largest value of `channel` over all positions, or over all channels and positions when
    /// `channel` is nil. Ties go to the first in `(C, H, W)` order.
    public func strongest(in index: Int, image: Int, channel: Int? = nil) -> (unit: FeatureUnit, value: Float) {
        let s = shape(of: index)
        let plane = s[1] * s[2]
        let base = activations(of: index) + image * s[0] * plane
        let channels = channel.map { $0..<($0 + 1) } ?? 0..<s[0]
        var best = (at: channels.lowerBound * plane, value: -Float.infinity)
        for i in (channels.lowerBound * plane)..<(channels.upperBound * plane) where base[i] > best.value {
            best = (i, base[i])
        }
        return (FeatureUnit(channel: best.at / plane, y: best.at % plane / s[2], x: best.at % s[2]), best.value)
    }

    /// The value of `unit` of image `image` in layer `index` from the last forward pass.
    public func value(of unit: FeatureUnit, in index: Int, image: Int) -> Float {
        let s = shape(of: index)
        return activations(of: index)[((image * s[0] + unit.channel) * s[1] + unit.y) * s[2] + unit.x]
    }

    /// Projects one seed per image of the last forward batch down to the input. `seeds[b]` is the unit
    /// of image b in layer `index` and `values[b]` its seed value (1 when nil: the unit seed); all other
    /// activations of that layer are zero. Writes `(n, C, H, W)` input-shaped projections to `result`.
    /// Run `forward` through `index` or higher first, with the same batch.
    public func project(_ seeds: [FeatureUnit], values: [Float]? = nil, from index: Int, method: ProjectionMethod, into result: UnsafeMutablePointer<Float>) {
        let n = seeds.count
        precondition(n == record.batch && index <= record.depth && featureLayers.contains(index), "run forward with these images first")
        precondition(values.map { $0.count == n } ?? true, "one value per seed")
        let (g, spare) = signals!
        let top = model.layers[index]
        let s = top.outputShape
        g.update(repeating: 0, count: n * top.outputCount)
        for (image, unit) in seeds.enumerated() {
            precondition((0..<s[0]).contains(unit.channel) && (0..<s[1]).contains(unit.y) && (0..<s[2]).contains(unit.x), "seed \(unit) outside \(s)")
            g[image * top.outputCount + (unit.channel * s[1] + unit.y) * s[2] + unit.x] = values?[image] ?? 1
        }
        // The signal is non-zero only in the seeds' channel when they share one, and only inside the box
        // that holds their positions.
        let support = SignalSupport(
            channel: Set(seeds.map(\.channel)).count == 1 ? seeds[0].channel : nil,
            box: seeds.isEmpty ? nil : PlaneBox(y0: seeds.map(\.y).min()!, y1: seeds.map(\.y).max()! + 1, x0: seeds.map(\.x).min()!, x1: seeds.map(\.x).max()! + 1))
        carryDown(model, record, from: index, signal: g, spare: spare, support: support, scratch: scratch, method: method,
                  skippingContrastNormalization: contrastNormalization == .skip, into: result)
    }
}

/// Two buffers for a signal carried down through `layers`, each as large as the widest input or
/// output of a batch of `n`.
func signalBuffers(_ layers: ArraySlice<any Layer>, batch n: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
    let widest = layers.map { max($0.inputCount, $0.outputCount) }.max()!
    return (.allocate(capacity: n * widest), .allocate(capacity: n * widest))
}

/// Where a signal carried down by `carryDown` can be non-zero at the top layer's output: in one
/// channel (`channel`), inside one box of the plane (`box`, the same for every image), or anywhere (nil).
struct SignalSupport {
    var channel: Int?
    var box: PlaneBox?

    static let anywhere = SignalSupport(channel: nil, box: nil)
}

/// Carries `signal` `(n, outputShape)` at layer `top`'s output down through layers `top...0` of
/// `record`'s last pass to `result` `(n, C, H, W)`: at each layer with a fused activation other than
/// the identity it is rectified as `method` says, then it goes through the layer's `backwardData`
/// (or is copied through a contrast normalisation when `skippingContrastNormalization`). `signal` and
/// `spare` (each as large as the widest layer, `signalBuffers`) are overwritten.
///
/// `support` says where the signal is non-zero at the top, and the work follows it down:
/// - one channel: the first layer going down that mixes channels (`Layer.isChannelwise` false) takes
///   just that channel (its `backwardData` over one output channel, a 1/O share of the work);
/// - one box: the box grows layer by layer through each window (`ConvGeometry.inputPatch`, clipped to
///   the plane), and a convolution whose box does not cover its input plane filters only that crop
///   (`croppedConvolution`): the projection of a single unit touches only its receptive field. The
///   layers that are not convolutions (pooling, normalisations, dropout) take the whole plane, zero
///   outside the box, which costs little beside the filtering.
/// Crops and channel slices are gathered into `scratch`.
func carryDown(
    _ model: Sequential, _ record: ForwardRecord, from top: Int, signal: UnsafeMutablePointer<Float>, spare: UnsafeMutablePointer<Float>,
    support: SignalSupport, scratch: Workspace, method: ProjectionMethod, skippingContrastNormalization: Bool = false,
    into result: UnsafeMutablePointer<Float>
) {
    let n = record.batch
    var (g, below) = (signal, spare)
    var (channel, box) = (support.channel, support.box)
    for i in stride(from: top, through: 0, by: -1) {
        let layer = model.layers[i]
        let (memory, workspace) = (record.memories[i], record.workspace)
        let dx = i == 0 ? result : below  // (n, layer.inputShape)
        let activation = layer.fusedActivation.flatMap { $0 == .identity ? nil : $0 }
        let crop = box.flatMap { croppedConvolution(layer, reading: $0) }
        let channels = layer.isChannelwise ? nil : channel.map { $0..<($0 + 1) }
        if skippingContrastNormalization && layer.isContrastNormalization {
            dx.update(from: g, count: n * layer.inputCount)
        } else if crop == nil && channels == nil {
            if let activation {
                rectify(g, count: n * layer.outputCount, output: record.output(of: i), activation: activation, method: method)
            }
            layer.backwardData(g, channels: nil, dx, batch: n, memory: memory, workspace: workspace)
        } else {
            // only `taken` of the signal goes down: its channels `channels` (all when nil) inside the crop's output box
            let (o, h, w) = (layer.outputShape[0], layer.outputShape[1], layer.outputShape[2])
            let taken = Planes(channels: channels ?? 0..<o, box: crop?.outputBox ?? PlaneBox(y0: 0, y1: h, x0: 0, x1: w))
            let inputCount = crop.map { $0.layer.inputCount } ?? 0
            scratch.reserve(n * (taken.count + inputCount), workers: 1)
            let slice = scratch.floats(n * (taken.count + inputCount))  // (n, channels, box), then the crop's input gradient
            let croppedGradient = slice + n * taken.count
            if let activation {
                taken.forEachRow(batch: n, channels: o, height: h, width: w) { at, _, count in
                    rectify(g + at, count: count, output: record.output(of: i) + at, activation: activation, method: method)
                }
            }
            taken.forEachRow(batch: n, channels: o, height: h, width: w) { at, packed, count in (slice + packed).update(from: g + at, count: count) }
            if let crop {
                crop.layer.backwardData(slice, channels: channels, croppedGradient, batch: n, memory: memory, workspace: workspace)
                dx.update(repeating: 0, count: n * layer.inputCount)
                let (c, inH, inW) = (layer.inputShape[0], layer.inputShape[1], layer.inputShape[2])
                Planes(channels: 0..<c, box: crop.inputBox).forEachRow(batch: n, channels: c, height: inH, width: inW) { at, packed, count in
                    (dx + at).update(from: croppedGradient + packed, count: count)
                }
            } else {
                layer.backwardData(slice, channels: channels, dx, batch: n, memory: memory, workspace: workspace)
            }
        }
        if channels != nil { channel = nil }
        box = box.map { footprint(layer, $0) }
        (g, below) = (below, g)
    }
}

/// Some channels of `(n, C, H, W)` planes, inside one box of each plane, and the `(n, channels.count,
/// box.h, box.w)` array they pack into.
private struct Planes {
    var channels: Range<Int>
    var box: PlaneBox

    /// Floats per image, packed.
    var count: Int { channels.count * box.area }

    /// Calls `body(at, packed, count)` for every row of the box in every chosen plane of `n` images of
    /// `channels x height x width`: `count` floats from index `at` of the planes, `packed` of the packed array.
    func forEachRow(batch n: Int, channels all: Int, height: Int, width: Int, _ body: (_ at: Int, _ packed: Int, _ count: Int) -> Void) {
        var packed = 0
        for b in 0..<n {
            for c in channels {
                for y in box.y0..<box.y1 {
                    body(((b * all + c) * height + y) * width + box.x0, packed, box.width)
                    packed += box.width
                }
            }
        }
    }
}

/// The box of `layer`'s input plane that its outputs inside `box` read (`ConvGeometry.inputPatch`, clipped
/// to the plane). The layer has a window (a feature layer).
func footprint(_ layer: any Layer, _ box: PlaneBox) -> PlaneBox {
    let g = layer.window!
    return g.inputPatch(box).intersection(PlaneBox(y0: 0, y1: g.height, x0: 0, x1: g.width))
}

/// A convolution over a crop of its planes: `layer` computes on the `inputBox` crop of the input plane,
/// and its outputs are those of the full layer at `outputBox`.
struct CroppedConvolution {
    var layer: Conv2D
    var inputBox: PlaneBox
    var outputBox: PlaneBox
}

/// A copy of `layer`, when it is a convolution, over the crop of its input plane that holds what its
/// outputs inside `box` read, when that crop is smaller than the plane (else nil). The copy shares the
/// layer's weights (`Conv2D.resized`); its passes write no gradients. Its windows are the layer's:
/// - When the layer's transformed filters are fixed and a crop large enough for Winograd takes it on
///   them (`Conv2D.resizedTakesWinograd`), the crop keeps the layer's kernel, stride and padding on every
///   side. Its top-left corner is on the stride (crop output (i, j) is full output (y0/s + i, x0/s + j)),
///   its outputs cover `box` and lie inside the full output, and its own zero padding stands only where
///   the full layer's outputs inside `box` read nothing (going up) and its signal inside `box` writes
///   nothing (going down).
/// - Otherwise it computes with im2col exactly the outputs inside `box`, from the part of the plane they
///   read, with zero padding on a side only where their windows reach past the plane. (Without fixed
///   filters Winograd would transform every filter on every call: on the crops of one VGG-11 or
///   AlexNet unit at 224×224 im2col took half the time of Winograd's F(2×2, 3×3), measured before
///   F(4×4, 3×3).)
func croppedConvolution(_ layer: any Layer, reading box: PlaneBox) -> CroppedConvolution? {
    guard let conv = layer as? Conv2D else { return nil }
    let g = conv.geometry, s = conv.geometry.stride
    let read = footprint(conv, box)
    let aligned = PlaneBox(y0: read.y0 / s * s, y1: read.y1, x0: read.x0 / s * s, x1: read.x1)
    guard aligned.area < g.height * g.width, !aligned.isEmpty else { return nil }
    if conv.resizedTakesWinograd(height: aligned.height, width: aligned.width) {
        let copy = conv.resized(height: aligned.height, width: aligned.width)
        let output = PlaneBox(y: aligned.y0 / s, x: aligned.x0 / s, height: copy.geometry.outHeight, width: copy.geometry.outWidth)
        precondition(output.intersection(box) == box && output.y1 <= g.outHeight && output.x1 <= g.outWidth, "crop \(output) of \(box)")
        return CroppedConvolution(layer: copy, inputBox: aligned, outputBox: output)
    }
    let windows = g.inputPatch(box)  // what the outputs in `box` read, padding included
    let copy = conv.resized(height: read.height, width: read.width,
                            padding: (read.y0 - windows.y0, read.x0 - windows.x0, windows.y1 - read.y1, windows.x1 - read.x1))
    precondition(copy.geometry.outHeight == box.height && copy.geometry.outWidth == box.width, "crop of \(box)")
    return CroppedConvolution(layer: copy, inputBox: read, outputBox: box)
}

/// The signal at a layer's output, carried through its fused activation as `method` says (in place).
private func rectify(_ g: UnsafeMutablePointer<Float>, count: Int, output: UnsafePointer<Float>, activation: Activation, method: ProjectionMethod) {
    switch method {
    case .deconvnet:
        for i in 0..<count { g[i] = max(g[i], 0) }
    case .guided:
        for i in 0..<count { g[i] = max(g[i], 0) }
        activation.backward(output: output, gradient: g, count: count)
    case .gradient:
        activation.backward(output: output, gradient: g, count: count)
    }
}
