/// Max pooling, k×k window, stride s, padding (never the maximum) and ceil mode as `geometry` says,
/// PyTorch's `MaxPool2d`. The forward pass leaves its switches (the argmax
/// of each window) in the caller's memory, as data, because the deconvnet's unpooling needs them.
public final class MaxPool2D: Layer {
    public let name: String
    public let geometry: ConvGeometry

    /// The switches of one forward pass: `(n, C, outH, outW)`, index `y·W + x` of each output's winner
    /// inside its unpadded input plane.
    public final class Switches {
        public internal(set) var indices: [Int32] = []
    }

    /// Pools `(C, H, W)` = `(geometry.inChannels, geometry.height, geometry.width)` images.
    public init(name: String, geometry: ConvGeometry) {
        self.name = name
        self.geometry = geometry
    }

    public var inputShape: [Int] { [geometry.inChannels, geometry.height, geometry.width] }
    public var outputShape: [Int] { [geometry.inChannels, geometry.outHeight, geometry.outWidth] }
    public var window: ConvGeometry? { geometry }

    /// The switches the last forward pass into `memory` left.
    public func switches(in memory: LayerMemory) -> Switches { memory.state(Switches.init) }

    /// `switches(in:)`, holding at least the switches of `n` images.
    private func switches(in memory: LayerMemory, batch n: Int) -> Switches {
        let switches = switches(in: memory)
        if switches.indices.count < n * outputCount { switches.indices = [Int32](repeating: 0, count: n * outputCount) }
        return switches
    }

    /// `forward` (inference) of the outputs inside `box` of each plane alone (`box` may be widened inside the
    /// plane): `output` `(n, C, outH, outW)` and the switches are written there and left as they are
    /// elsewhere, which is what a projection from units that read only `box` needs (`Projector.forward` at
    /// one position). A layer with padded windows, and a box that is the whole plane, run `forward`.
    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, outputs box: PlaneBox,
                        memory: LayerMemory, workspace: Workspace) {
        guard geometry.windowsInsidePlane, box.area < geometry.outHeight * geometry.outWidth else {
            forward(input, output, batch: n, training: false, memory: memory, workspace: workspace)
            return
        }
        let switches = switches(in: memory, batch: n)
        let (inPlane, outPlane, planes) = (geometry.height * geometry.width, geometry.outHeight * geometry.outWidth, n * geometry.inChannels)
        let workers = workerCount(planes)
        let perWorker = maxPoolBoxScratchSize(geometry, box, planes: (planes + workers - 1) / workers)  // the largest range's
        workspace.reserve(perWorker, workers: workers)
        switches.indices.withUnsafeMutableBufferPointer { sw in
            parallelRanges(planes) { range, worker in
                let first = range.lowerBound
                maxPoolForward(input + first * inPlane, planes: range.count, geometry, outputs: box, output + first * outPlane,
                               switches: sw.baseAddress! + first * outPlane, scratch: workspace.floats(perWorker, worker: worker))
            }
        }
    }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        let switches = switches(in: memory, batch: n)
        let (inPlane, outPlane) = (geometry.height * geometry.width, geometry.outHeight * geometry.outWidth)
        switches.indices.withUnsafeMutableBufferPointer { sw in
            parallelRanges(n * geometry.inChannels) { planes, _ in
                let first = planes.lowerBound
                maxPoolForward(input + first * inPlane, planes: planes.count, geometry, output + first * outPlane, switches: sw.baseAddress! + first * outPlane)
            }
        }
    }

    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        guard let inputGradient else { return }
        backwardData(outputGradient, channels: nil, inputGradient, batch: n, memory: memory, workspace: workspace)
    }

    /// Places each value of `signal` at its switch in `inputGradient` `(n, C, H, W)`, zero elsewhere:
    /// the deconvnet's unpooling, and the max-pool gradient.
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        let (inPlane, outPlane) = (geometry.height * geometry.width, geometry.outHeight * geometry.outWidth)
        let switches = switches(in: memory)
        precondition(switches.indices.count >= n * outputCount, "run forward with this memory first")
        switches.indices.withUnsafeBufferPointer { sw in
            channelwise(batch: n, channels: channels, of: geometry.inChannels, clearing: inputGradient, planeSize: inPlane) { planes, full in
                maxPoolBackward(signal + planes.lowerBound * outPlane, planes: planes.count, geometry, switches: sw.baseAddress! + full * outPlane,
                                inputGradient + full * inPlane)
            }
        }
    }
}

/// Average pooling, k×k window, any stride (including 1), padding and ceil mode as `geometry` says,
/// PyTorch's `AvgPool2d`; `includePadding` is its `count_include_pad` (the divisor counts the padding
/// inside the window, but never the part of a ceil-mode window beyond it).
public final class AvgPool2D: Layer {
    public let name: String
    public let geometry: ConvGeometry
    public let includePadding: Bool

    /// Pools `(C, H, W)` = `(geometry.inChannels, geometry.height, geometry.width)` images.
    public init(name: String, geometry: ConvGeometry, includePadding: Bool = true) {
        self.name = name
        self.geometry = geometry
        self.includePadding = includePadding
    }

    public var inputShape: [Int] { [geometry.inChannels, geometry.height, geometry.width] }
    public var outputShape: [Int] { [geometry.inChannels, geometry.outHeight, geometry.outWidth] }
    public var multiplyAdds: Int { outputCount * geometry.kernelHeight * geometry.kernelWidth }
    public var window: ConvGeometry? { geometry }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        avgPoolForward(input, planes: n * geometry.inChannels, geometry, includePadding: includePadding, output)
    }

    public func backward(
        _ input: UnsafePointer<Float>, _ output: UnsafePointer<Float>, _ outputGradient: UnsafeMutablePointer<Float>,
        _ inputGradient: UnsafeMutablePointer<Float>?, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        guard let inputGradient else { return }
        backwardData(outputGradient, channels: nil, inputGradient, batch: n, memory: memory, workspace: workspace)
    }

    /// Spreads each value of `signal` over its window (the adjoint of averaging).
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        let (inPlane, outPlane) = (geometry.height * geometry.width, geometry.outHeight * geometry.outWidth)
        channelwise(batch: n, channels: channels, of: geometry.inChannels, clearing: inputGradient, planeSize: inPlane) { planes, full in
            avgPoolBackward(signal + planes.lowerBound * outPlane, planes: planes.count, geometry, includePadding: includePadding, inputGradient + full * inPlane)
        }
    }
}

extension MaxPool2D {
    public func boxUpdate(byChange: Bool) -> (any BoxUpdate)? { PoolingBoxes(geometry: geometry, maximum: true, includePadding: false) }
}

extension AvgPool2D {
    public func boxUpdate(byChange: Bool) -> (any BoxUpdate)? { PoolingBoxes(geometry: geometry, maximum: false, includePadding: includePadding) }
}

/// A pooling layer's changed outputs: the layer's kernel on the patch of input under them (`poolBoxes`).
/// Also even-binned adaptive average pooling's, which is average pooling of kernel and stride H/OH.
struct PoolingBoxes: BoxUpdate {
    let geometry: ConvGeometry
    let maximum: Bool
    let includePadding: Bool
    var readsPreActivation: Bool { false }
    var readsInputChannelsLast: Bool { false }

    func scratchSize(inputs: [PlaneBox], outputs: [PlaneBox]) -> Int { poolBoxesScratchSize(geometry, outputs: outputs) }

    func update(
        _ input: UnsafePointer<Float>, inputChannelsLast: UnsafePointer<Float>?, preActivation: UnsafePointer<Float>?,
        from: BoxedValues, to: BoxedValues, scratch: UnsafeMutablePointer<Float>
    ) {
        poolBoxes(input, geometry, maximum: maximum, includePadding: includePadding, from: from, to: to, scratch: scratch)
    }
}

extension MaxPool2D {
    public var isChannelwise: Bool { true }
}

extension AvgPool2D {
    public var isChannelwise: Bool { true }
}
