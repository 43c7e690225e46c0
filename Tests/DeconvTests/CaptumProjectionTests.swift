import Deconv
import Foundation
import Net
import TestSupport
import XCTest

/// Projections through batch norm, local response normalisation, adaptive and global average pooling
/// and flatten equal Captum's NeuronDeconvolution and NeuronGuidedBackprop (cosine ≥ 0.9999) on the
/// PyTorch twin of the model (`Tests/python/check_projection_captum.py`). Skipped without torch and
/// captum; under CI=true a missing package fails.
final class CaptumProjectionTests: XCTestCase {
    /// Models that use every new layer kind: batch norm (2-d and 1-d), LRN, adaptive (even bins) and
    /// global average pooling, flatten; the second also strided, grouped and padded convolutions and
    /// padded, ceil-mode and exclude-pad pooling.
    static let models = [
        ("conv:6:3:same,bn,lrn:3:alpha=0.5:beta=0.75:k=1,maxpool:2,conv:8:3:same,bn,adaptiveavgpool:3,conv:8:1:valid,"
            + "lrn:4:alpha=2:beta=0.6:k=1,globalavgpool,flatten,fc:6,bn,fc", ImageShape(channels: 3, height: 12, width: 12)),
        ("conv:6:5:2:stride=2,bn,lrn:3:alpha=0.5:beta=0.75:k=1,maxpool:3:2:pad=1,conv:8:3:1:groups=2,bn,avgpool:3:1:pad=1:exclude-pad,"
            + "adaptiveavgpool:2,conv:8:2x1:pad=0/0/1/0:groups=4:act=identity,lrn:5:alpha=1,avgpool:2:2:pad=1:ceil,globalavgpool,flatten,fc:6,bn,fc",
         ImageShape(channels: 3, height: 16, width: 16)),
    ]

    /// Model `index` of `models` with random batch-norm affine parameters and running statistics (not the initial 1, 0, 0, 1).
    static func model(_ index: Int = 0) throws -> Sequential {
        let (spec, shape) = models[index]
        let model = try Sequential(spec: try ModelSpec(parsing: spec), inputShape: shape, classes: 3, seed: 5)
        randomizeBatchNorm(model)
        return model
    }

    /// Every feature layer's strongest unit, both methods, on each model.
    func testProjectionsEqualCaptums() throws {
        try Python.require("torch, safetensors, captum, numpy")
        for index in Self.models.indices {
            try assertProjectionsEqualCaptums(try Self.model(index), classNames: ["a", "b", "c"], label: Self.models[index].0)
        }
    }

    /// The committed zfnet trained on CIFAR-10 (`checkpoints/zfnet-cifar10.safetensors`): every feature
    /// layer from conv1 to pool3, both methods, on a random image.
    func testTheCommittedZFNetEqualsCaptum() throws {
        try Python.require("torch, safetensors, captum, numpy")
        let path = Python.packageRoot.appendingPathComponent("checkpoints/zfnet-cifar10.safetensors").path
        let loaded = try Sequential.load(contentsOf: path)
        try assertProjectionsEqualCaptums(loaded.model, classNames: loaded.classNames, label: "zfnet")
    }

    /// Writes `model`, a random image and the projections of every feature layer's strongest unit
    /// (deconvnet and guided) to a folder, and has `check_projection_captum.py` compare them with
    /// Captum's on the PyTorch twin.
    func assertProjectionsEqualCaptums(_ model: Sequential, classNames: [String], label: String) throws {
        let shape = model.inputShape
        let directory = NSTemporaryDirectory() + "captum-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try model.checkpoint(classNames: classNames, epoch: 0, step: 0).write(to: directory + "/model.safetensors")
        let image = randomImages(1, shape, seed: 3)[0]
        try writeNpy(Tensor(shape: [1, shape.channels, shape.height, shape.width], data: image), to: directory + "/input.npy")
        let projector = try Projector(model: model)
        XCTAssertEqual(projector.featureLayers.count, model.layers.firstIndex { $0 is Flatten || $0 is Dense }!, label)
        struct Case: Encodable { var layer: String; var method: String; var unit: [Int]; var file: String }
        var cases: [Case] = []
        for layer in projector.featureLayers {
            let name = model.layers[layer].name
            image.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: layer) }
            let unit = projector.strongest(in: layer, image: 0).unit
            for method in [ProjectionMethod.deconvnet, .guided] {
                let projection = engineProjections(projector, [image], layer: layer, seeds: [unit], method: method)[0]
                let file = "\(name)-\(method.rawValue).npy"
                try writeNpy(Tensor(shape: [shape.channels, shape.height, shape.width], data: projection), to: directory + "/" + file)
                cases.append(Case(layer: name, method: method.rawValue, unit: [unit.channel, unit.y, unit.x], file: file))
            }
        }
        try JSONEncoder().encode(cases).write(to: URL(fileURLWithPath: directory + "/cases.json"))
        let result = Python.run([Python.script("check_projection_captum.py"), directory])
        XCTAssertEqual(result.status, 0, label + "\n" + result.output)
        XCTAssertTrue(result.output.contains("pool3") && result.output.contains("lrn2"), label + "\n" + result.output)
    }

    /// `--lrn skip`: the normalisation is the identity on the way down, so a projection from it is the
    /// projection of the same unit from the layer below.
    func testSkippingTheNormalisation() throws {
        let model = try Self.model()
        let projector = try Projector(model: model)
        projector.contrastNormalization = .skip
        let image = randomImages(1, model.inputShape, seed: 4)[0]
        let (lrn, below) = (try projector.layerIndex(named: "lrn1"), try projector.layerIndex(named: "bn1"))
        // the strongest unit: where every activation in its window is 0, the normalisation is the identity anyway
        image.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: lrn) }
        let unit = projector.strongest(in: lrn, image: 0).unit
        for method in ProjectionMethod.allCases {
            let skipped = engineProjections(projector, [image], layer: lrn, seeds: [unit], method: method)[0]
            XCTAssertEqual(maxDifference(skipped, engineProjections(projector, [image], layer: below, seeds: [unit], method: method)[0]), 0, "\(method)")
            projector.contrastNormalization = .gradient
            let throughGradient = engineProjections(projector, [image], layer: lrn, seeds: [unit], method: method)[0]
            XCTAssertGreaterThan(maxDifference(skipped, throughGradient), 1e-3 * (skipped.map(abs).max() ?? 0), "\(method)")
            projector.contrastNormalization = .skip
        }
    }
}
