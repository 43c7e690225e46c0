/// Adaptive average pooling of `(C, H, W)` to `(C, OH, OW)`, PyTorch's `AdaptiveAvgPool2d`: output row
/// `i` averages input rows `⌊i·H/OH⌋ ..< ⌈(i+1)·H/OH⌉`, and columns alike (bins may overlap or differ
/// in size when OH does not divide H). `globalavgpool` is the 1×1 case.
public final class AdaptiveAvgPool2D: Layer {
    public let name: String
    public let inputShape: [Int]
    public let outputHeight: Int, outputWidth: Int

    public init(name: String, inputShape: [Int], outputHeight: Int, outputWidth: Int) {
        precondition(inputShape.count == 3, "adaptive pooling needs (C, H, W) inputs")
        self.name = name
        self.inputShape = inputShape
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
    }

    public var outputShape: [Int] { [inputShape[0], outputHeight, outputWidth] }
    public var isChannelwise: Bool { true }
    private var bins: AdaptiveBins { AdaptiveBins(height: inputShape[1], width: inputShape[2], outHeight: outputHeight, outWidth: outputWidth) }
    /// One multiply-add per input value of each bin.
    public var multiplyAdds: Int { inputShape[0] * bins.rows.map(\.count).reduce(0, +) * bins.columns.map(\.count).reduce(0, +) }

    /// The window of an ordinary average pooling when the bins are one (kernel = stride = H/OH, W/OW,
    /// with one stride for both axes, or an axis of one output), which receptive fields and the occlusion
    /// sweep's box updates follow; nil for uneven bins (every output then counts as reading the whole
    /// input, and the sweep recomputes from here on).
    public var window: ConvGeometry? {
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        guard h % outputHeight == 0, w % outputWidth == 0 else { return nil }
        let (kh, kw) = (h / outputHeight, w / outputWidth)
        guard kh == kw || outputHeight == 1 || outputWidth == 1 else { return nil }
        var g = ConvGeometry(inChannels: c, height: h, width: w, kernel: kh, stride: outputHeight == 1 ? kw : kh)
        g.kernelWidth = kw
        return g
    }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        let (bins, inPlane, outPlane) = (bins, inputShape[1] * inputShape[2], outputHeight * outputWidth)
        parallelRanges(n * inputShape[0]) { planes, _ in
            adaptiveAvgPoolForward(input + planes.lowerBound * inPlane, planes: planes.count, bins, output + planes.lowerBound * outPlane)
        }
    }

    /// Spreads each value of `signal` evenly over its bin (the adjoint of averaging).
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        let (bins, inPlane, outPlane) = (bins, inputShape[1] * inputShape[2], outputHeight * outputWidth)
        channelwise(batch: n, channels: channels, of: inputShape[0], clearing: inputGradient, planeSize: inPlane) { planes, full in
            adaptiveAvgPoolBackward(signal + planes.lowerBound * outPlane, planes: planes.count, bins, inputGradient + full * inPlane)
        }
    }

    /// With even bins, the pooling of each copy's patch under its changed outputs (`poolBoxes`).
    public func boxUpdate(byChange: Bool) -> (any BoxUpdate)? {
        // with even bins it is average pooling of kernel and stride H/OH (no padding)
        window.map { PoolingBoxes(geometry: $0, maximum: false, includePadding: true) }
    }
}

/// `(C, H, W)` → `(C·H·W)`, PyTorch's `Flatten`: the values unchanged in NCHW order (a dense layer
/// flattens its image input the same way, so this only names the step).
public final class Flatten: Layer {
    public let name: String
    public let inputShape: [Int]

    public init(name: String, inputShape: [Int]) {
        self.name = name
        self.inputShape = inputShape
    }

    public var outputShape: [Int] { [inputShape.reduce(1, *)] }

    public func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch n: Int, training: Bool,
                        memory: LayerMemory, workspace: Workspace) {
        output.update(from: input, count: n * inputCount)
    }

    /// Copies `signal`; a subset of the output features is placed among zeros.
    public func backwardData(
        _ signal: UnsafePointer<Float>, channels: Range<Int>?,
        _ inputGradient: UnsafeMutablePointer<Float>, batch n: Int, memory: LayerMemory, workspace: Workspace
    ) {
        channelwise(batch: n, channels: channels, of: outputCount, clearing: inputGradient, planeSize: 1) { features, full in
            (inputGradient + full).update(from: signal + features.lowerBound, count: features.count)
        }
    }
}
