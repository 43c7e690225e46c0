import Net

/// The gradient `(C, H, W)` of `model`'s logit `c` with respect to the input image `pixels` `(C, H, W)`,
/// in evaluation mode: Simonyan et al.'s saliency. The logit's unit gradient is carried down through
/// every layer's fused activation (its derivative) and `backwardData`, dense and recurrent layers
/// included. Writes no parameter gradients and changes nothing in the model, so it may run beside
/// other analyses of the same model.
public func inputGradient(_ model: Sequential, _ pixels: [Float], logit c: Int) -> [Float] {
    precondition(pixels.count == model.inputShape.count && (0..<model.classes).contains(c), "an image of the model's shape and one of its classes")
    let record = ForwardRecord(model)
    let (g, spare) = signalBuffers(model.layers[...], batch: 1)
    defer {
        g.deallocate()
        spare.deallocate()
    }
    var gradient = [Float](repeating: 0, count: pixels.count)
    pixels.withUnsafeBufferPointer { x in
        model.forward(x.baseAddress!, batch: 1, training: false, into: record)
        g.update(repeating: 0, count: model.classes)
        g[c] = 1
        gradient.withUnsafeMutableBufferPointer {
            carryDown(model, record, from: model.layers.count - 1, signal: g, spare: spare, support: .anywhere, scratch: Workspace(), method: .gradient, into: $0.baseAddress!)
        }
    }
    return gradient
}
