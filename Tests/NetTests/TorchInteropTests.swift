import XCTest
import TestSupport
@testable import Net

/// Checkpoints load into the PyTorch module of the same architecture with `load_state_dict(strict=True)`
/// and give the same logits. Skipped when torch is not installed (`make test` installs it; under CI=true
/// a missing torch fails).
final class TorchInteropTests: XCTestCase {
    func assertTorchAgrees(_ spec: String, _ shape: ImageShape, activation: Activation = .relu, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try Sequential(spec: try ModelSpec(parsing: spec), inputShape: shape, classes: 10, activation: activation, seed: 11)
        let input = [Float](repeating: 0.5, count: shape.count)
        let record = ForwardRecord(model)
        let logits = Array(UnsafeBufferPointer(start: model.forward(input, batch: 1, training: false, into: record), count: 10))
        let path = NSTemporaryDirectory() + "torch-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try model.checkpoint(classNames: (0..<10).map(String.init), epoch: 0, step: 0,
                             optimizer: Optimizer(.adam, parameterCount: model.parameterCount)).write(to: path)
        let result = Python.run([Python.script("check_torch_load.py"), path])
        XCTAssertEqual(result.status, 0, result.output, file: file, line: line)
        struct Output: Decodable { var loaded: Int; var logits: [Float] }
        let output = try JSONDecoder().decode(Output.self, from: Data(result.output.split(separator: "\n").last!.utf8))
        XCTAssertEqual(output.loaded, model.views.count, file: file, line: line)
        for (ours, theirs) in zip(logits, output.logits) { XCTAssertEqual(ours, theirs, accuracy: 1e-4, file: file, line: line) }
    }

    func testConvolutionalPresetsLoadStrictly() throws {
        try Python.require("torch, safetensors")
        try assertTorchAgrees(ModelSpec.preset("lenet5").description, ImageShape(channels: 1, height: 28, width: 28))
        try assertTorchAgrees(ModelSpec.preset("lenet5-classic").description, ImageShape(channels: 3, height: 32, width: 32), activation: .tanh)
        try assertTorchAgrees(ModelSpec.preset("conv5").description, ImageShape(channels: 1, height: 28, width: 28), activation: .leakyRelu)
    }

    func testStridedGroupedPaddedStagesLoadStrictly() throws {
        try Python.require("torch, safetensors")
        try assertTorchAgrees("conv:8:5:2:stride=2,maxpool:3:2:pad=1:ceil,conv:8:3x2:pad=0/1/1/0:groups=2:act=tanh,avgpool:2:1:pad=1:exclude-pad,"
                              + "conv:6:3:1:groups=2,avgpool:3:2:pad=1:ceil,fc:16:act=sigmoid,fc:act=tanh", ImageShape(channels: 3, height: 17, width: 16))
    }
}
