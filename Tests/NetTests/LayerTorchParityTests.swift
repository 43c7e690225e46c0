import XCTest
import TestSupport
@testable import Net

/// Each normalisation and pooling layer's forward pass, input gradient (and batch norm's parameter
/// gradients and running statistics) equal PyTorch's module on the same inputs and weights, within 1e-5
/// of torch's largest magnitude (`Tests/python/check_normalization_torch.py`). Skipped without torch; under
/// CI=true a missing torch fails.
final class LayerTorchParityTests: XCTestCase {
    private var random = SeededRandom(seed: 21)

    private func values(_ count: Int, _ low: Float = -2, _ high: Float = 2) -> [Float] { (0..<count).map { _ in random.uniform(low, high) } }

    /// Runs `layer` on a random batch `(n, inputShape)` and a random output gradient, and writes the case.
    private func writeCase(_ layer: any Layer, batch n: Int, training: Bool = false, metadata: [String: String],
                           extra: [NamedTensor] = [], after: () -> [NamedTensor] = { [] }) throws -> String {
        let x = values(n * layer.inputCount)
        let dy = values(n * layer.outputCount, -1, 1)
        var (y, dx) = ([Float](repeating: .nan, count: dy.count), [Float](repeating: .nan, count: x.count))
        let (memory, workspace) = (LayerMemory(), Workspace())
        layer.forward(x, &y, batch: n, training: training, memory: memory, workspace: workspace)
        var gradient = dy
        layer.backward(x, y, &gradient, &dx, batch: n, memory: memory, workspace: workspace)
        func tensor(_ name: String, _ data: [Float], _ shape: [Int]) -> NamedTensor { NamedTensor(name: name, tensor: Tensor(shape: [n] + shape, data: data)) }
        let tensors = [tensor("input", x, layer.inputShape), tensor("output_gradient", dy, layer.outputShape),
                       tensor("output", y, layer.outputShape), tensor("input_gradient", dx, layer.inputShape)] + extra + after()
        let path = NSTemporaryDirectory() + "layer-\(UUID().uuidString).safetensors"
        try Checkpoint(tensors: tensors, metadata: metadata).write(to: path)
        return path
    }

    private func batchNormCase(_ shape: [Int], batch n: Int, training: Bool) throws -> String {
        let c = shape[0]
        let layer = BatchNorm(name: "bn1", inputShape: shape, eps: 1e-3, momentum: 0.3, activation: nil)
        var (weight, bias) = (values(c, 0.5, 1.5), values(c, -0.5, 0.5))
        var (dw, db) = ([Float](repeating: 0, count: c), [Float](repeating: 0, count: c))
        var (mean, variance, tracked) = (values(c, -0.5, 0.5), values(c, 0.5, 2), [Float(0)])
        let before = [NamedTensor(name: "weight", tensor: Tensor(shape: [c], data: weight)), NamedTensor(name: "bias", tensor: Tensor(shape: [c], data: bias)),
                      NamedTensor(name: "running_mean", tensor: Tensor(shape: [c], data: mean)),
                      NamedTensor(name: "running_var", tensor: Tensor(shape: [c], data: variance))]
        return try weight.withUnsafeMutableBufferPointer { w in
            try bias.withUnsafeMutableBufferPointer { b in
                try dw.withUnsafeMutableBufferPointer { gw in
                    try db.withUnsafeMutableBufferPointer { gb in
                        try mean.withUnsafeMutableBufferPointer { m in
                            try variance.withUnsafeMutableBufferPointer { v in
                                try tracked.withUnsafeMutableBufferPointer { t in
                                    layer.bind(parameters: [w.baseAddress!, b.baseAddress!], gradients: [gw.baseAddress!, gb.baseAddress!])
                                    layer.bind(buffers: [m.baseAddress!, v.baseAddress!, t.baseAddress!])
                                    return try writeCase(layer, batch: n, training: training,
                                                         metadata: ["layer": "bn", "eps": "\(layer.eps)", "momentum": "\(layer.momentum)", "training": "\(training)"],
                                                         extra: before) {
                                        [NamedTensor(name: "weight_gradient", tensor: Tensor(shape: [c], data: Array(gw))),
                                         NamedTensor(name: "bias_gradient", tensor: Tensor(shape: [c], data: Array(gb))),
                                         NamedTensor(name: "running_mean_after", tensor: Tensor(shape: [c], data: Array(m))),
                                         NamedTensor(name: "running_var_after", tensor: Tensor(shape: [c], data: Array(v))),
                                         NamedTensor(name: "num_batches_tracked_after", tensor: Tensor(shape: [], data: [t[0]]), isInteger: true)]
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func testLayersAgreeWithTorch() throws {
        try Python.require("torch, safetensors")
        var paths: [String] = []
        for (size, alpha, beta, k) in [(5, Float(1e-4), Float(0.75), Float(2)), (5, 0.5, 0.75, 2), (4, 2, 0.6, 1), (1, 1, 1.2, 0.5), (9, 0.8, 0.75, 1)] {
            let layer = LocalResponseNorm(name: "lrn1", inputShape: [7, 4, 5], parameters: LRNParameters(size: size, alpha: alpha, beta: beta, k: k))
            paths.append(try writeCase(layer, batch: 3, metadata: ["layer": "lrn", "size": "\(size)", "alpha": "\(alpha)", "beta": "\(beta)", "k": "\(k)"]))
        }
        for training in [true, false] {
            paths.append(try batchNormCase([6, 4, 5], batch: 3, training: training))
            paths.append(try batchNormCase([6], batch: 5, training: training))
        }
        for (shape, h, w) in [([3, 7, 5], 3, 2), ([2, 6, 6], 2, 2), ([2, 5, 7], 1, 1), ([2, 3, 4], 5, 6)] {
            let layer = AdaptiveAvgPool2D(name: "pool1", inputShape: shape, outputHeight: h, outputWidth: w)
            paths.append(try writeCase(layer, batch: 2, metadata: ["layer": "adaptiveavgpool", "height": "\(h)", "width": "\(w)"]))
        }
        paths.append(try writeCase(Flatten(name: "flatten1", inputShape: [3, 2, 4]), batch: 2, metadata: ["layer": "flatten"]))
        defer { for path in paths { try? FileManager.default.removeItem(atPath: path) } }
        let result = Python.run([Python.script("check_normalization_torch.py")] + paths)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("running_var_after"), result.output)
    }
}
