import Foundation
import XCTest
@testable import Net
import TestSupport

/// A small ONNX model written field by field with `ProtobufWriter`, for imports that need no Python.
struct ONNXBuilder {
    enum Attribute {
        case int(Int64), ints([Int64]), float(Float), string(String)
    }
    struct Node {
        var op: String
        var inputs: [String]
        var outputs: [String]
        var attributes: [(String, Attribute)] = []
    }
    var nodes: [Node] = []
    var initializers: [(name: String, dims: [Int64], values: [Float], external: [String: String]?)] = []
    var input = (name: "x", dims: [Int64?]([1, 1, 4, 4]))
    var output = "y"

    mutating func node(_ op: String, _ inputs: [String], _ output: String, _ attributes: [(String, Attribute)] = []) {
        nodes.append(Node(op: op, inputs: inputs, outputs: [output], attributes: attributes))
    }

    mutating func weight(_ name: String, _ dims: [Int64], _ values: [Float]) {
        initializers.append((name, dims, values, nil))
    }

    var bytes: [UInt8] {
        var model = ProtobufWriter()
        model.int64(1, 8)
        model.string(2, "ONNXBuilder")
        model.message(8) { $0.string(1, ""); $0.int64(2, 17) }
        model.message(7) { graph in
            for node in nodes {
                graph.message(1) { n in
                    for i in node.inputs { n.string(1, i) }
                    for o in node.outputs { n.string(2, o) }
                    n.string(3, node.outputs[0] + "_node")
                    n.string(4, node.op)
                    for (name, value) in node.attributes {
                        n.message(5) { a in
                            a.string(1, name)
                            switch value {
                            case .int(let v): a.int64(20, 2); a.int64(3, v)
                            case .ints(let vs): a.int64(20, 7); for v in vs { a.int64(8, v) }
                            case .float(let v): a.int64(20, 1); a.float(2, v)
                            case .string(let s): a.int64(20, 3); a.string(4, s)
                            }
                        }
                    }
                }
            }
            graph.string(2, "test")
            for t in initializers {
                graph.message(5) { m in
                    for d in t.dims { m.int64(1, d) }
                    m.int64(2, 1)
                    m.string(8, t.name)
                    if let external = t.external {
                        for (k, v) in external.sorted(by: { $0.key < $1.key }) { m.message(13) { $0.string(1, k); $0.string(2, v) } }
                        m.int64(14, 1)
                    } else {
                        var raw: [UInt8] = []
                        for v in t.values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw += $0 } }
                        m.bytes(9, raw)
                    }
                }
            }
            func valueInfo(_ field: Int, _ name: String, _ dims: [Int64?]) {
                graph.message(field) { v in
                    v.string(1, name)
                    v.message(2) { type in
                        type.message(1) { tensor in
                            tensor.int64(1, 1)
                            tensor.message(2) { shape in
                                for d in dims { shape.message(1) { if let d { $0.int64(1, d) } else { $0.string(2, "dynamic") } } }
                            }
                        }
                    }
                }
            }
            valueInfo(11, input.name, input.dims)
            valueInfo(12, output, [])
        }
        return model.data
    }

    /// Conv 1→2 (3x3, pad 1) → Relu → MaxPool 2 → Flatten → Gemm (transB 0) → 3 logits, on 1x4x4.
    static func chain() -> (ONNXBuilder, convWeight: [Float], convBias: [Float], denseWeight: [Float], denseBias: [Float]) {
        var b = ONNXBuilder()
        let convWeight = (0..<18).map { Float($0 % 7) * 0.1 - 0.3 }, convBias: [Float] = [0.05, -0.02]
        let denseWeight = (0..<24).map { Float($0 % 5) * 0.2 - 0.4 }, denseBias: [Float] = [0.1, 0.2, 0.3]  // (3, 8) as deconvnet stores it
        var transposed = [Float](repeating: 0, count: 24)
        for r in 0..<3 { for c in 0..<8 { transposed[c * 3 + r] = denseWeight[r * 8 + c] } }
        b.weight("conv.weight", [2, 1, 3, 3], convWeight)
        b.weight("conv.bias", [2], convBias)
        b.weight("fc.weight", [8, 3], transposed)
        b.weight("fc.bias", [3], denseBias)
        b.node("Conv", ["x", "conv.weight", "conv.bias"], "c", [("kernel_shape", .ints([3, 3])), ("pads", .ints([1, 1, 1, 1]))])
        b.node("Relu", ["c"], "r")
        b.node("MaxPool", ["r"], "p", [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))])
        b.node("Flatten", ["p"], "f", [("axis", .int(1))])
        b.node("Gemm", ["f", "fc.weight", "fc.bias"], "y", [("transB", .int(0))])
        return (b, convWeight, convBias, denseWeight, denseBias)
    }
}

final class ImportCommandTests: XCTestCase {
    private func write(_ bytes: [UInt8], _ path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private func logits(_ model: Sequential, _ input: [Float]) -> [Float] {
        let record = ForwardRecord(model)
        return input.withUnsafeBufferPointer { x in
            Array(UnsafeBufferPointer(start: model.forward(x.baseAddress!, batch: 1, training: false, into: record), count: model.classes))
        }
    }

    /// A hand-built chain imports to the spec it describes, with Gemm's untransposed weight turned into
    /// PyTorch's layout: the logits equal those of the same spec given the weights directly.
    func testHandBuiltChainImports() throws {
        let dir = try temporaryDirectory()
        let (builder, cw, cb, dw, db) = ONNXBuilder.chain()
        try write(builder.bytes, dir + "/chain.onnx")
        try Data("cat\ndog\nbird\n".utf8).write(to: URL(fileURLWithPath: dir + "/names.txt"))
        let result = try CLI.run(["import", dir + "/chain.onnx", "--out", dir + "/m.safetensors", "--classes", dir + "/names.txt"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let loaded = try Sequential.load(contentsOf: dir + "/m.safetensors")
        XCTAssertEqual(loaded.model.spec.description, "conv:2:3:1,maxpool:2:2,fc")
        XCTAssertEqual(loaded.classNames, ["cat", "dog", "bird"])
        XCTAssertEqual(loaded.checkpoint.metadata["source"], "onnx:chain.onnx")
        let reference = try Sequential(spec: ModelSpec(parsing: "conv:2:3:1,maxpool:2,fc"), inputShape: ImageShape(channels: 1, height: 4, width: 4), classes: 3)
        for (name, values) in [("conv1.weight", cw), ("conv1.bias", cb), ("fc1.weight", dw), ("fc1.bias", db)] {
            let p = reference.parameter(named: name)!
            for i in values.indices { p.values[i] = values[i] }
        }
        let input = (0..<16).map { Float($0) / 16 - 0.3 }
        let (ours, theirs) = (logits(loaded.model, input), logits(reference, input))
        for i in 0..<3 { XCTAssertEqual(ours[i], theirs[i], accuracy: 1e-6) }
        XCTAssertNotEqual(ours, logits(reference, input.map { -$0 }))
    }

    /// The bad inputs of issue 19: one line on stderr, a non-zero exit, and no checkpoint.
    func testBadInputIsOneLineAndWritesNothing() throws {
        let dir = try temporaryDirectory()
        let out = dir + "/never.safetensors"
        let good = ONNXBuilder.chain().0
        func refuse(_ builder: ONNXBuilder? = nil, bytes: [UInt8]? = nil, extra: [String] = [], mentions: String, line: UInt = #line) throws {
            let path = dir + "/case\(line).onnx"
            try write(bytes ?? builder!.bytes, path)
            try assertCleanFailure(["import", path, "--out", out] + extra, mentions: mentions, status: 1, line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "line \(line) wrote a checkpoint")
        }
        try refuse(bytes: Array(good.bytes.prefix(good.bytes.count / 2)), mentions: "is not an ONNX model")
        try refuse(bytes: Array("hello, not a model\n".utf8), mentions: "is not an ONNX model")
        var unsupported = good
        unsupported.nodes[1] = .init(op: "Sin", inputs: ["c"], outputs: ["r"])
        try refuse(unsupported, mentions: "(Sin)")
        var branching = good
        branching.nodes.insert(.init(op: "Add", inputs: ["r", "c"], outputs: ["r2"]), at: 2)
        branching.nodes[3].inputs = ["r2"]
        try refuse(branching, mentions: "branches")
        var dynamic = good
        dynamic.input.dims = [nil, 1, nil, nil]
        try refuse(dynamic, mentions: "--input")
        var nan = good
        nan.initializers[0].values[4] = .nan
        try refuse(nan, mentions: "conv.weight holds nan")
        try Data("a\nb\n".utf8).write(to: URL(fileURLWithPath: dir + "/two.txt"))
        try refuse(good, extra: ["--classes", dir + "/two.txt"], mentions: "names 2 classes but the model has 3")
        var escaping = good
        escaping.initializers[0].external = ["location": "../outside.bin", "offset": "0", "length": "72"]
        try refuse(escaping, mentions: "leaves the model's folder")
        var absolute = good
        absolute.initializers[0].external = ["location": "/etc/passwd", "offset": "0", "length": "72"]
        try refuse(absolute, mentions: "leaves the model's folder")
        var short = good
        try write(Array(repeating: 0, count: 40), dir + "/weights.bin")
        short.initializers[0].external = ["location": "weights.bin", "offset": "0", "length": "72"]
        try refuse(short, mentions: "past the end")
        // with --input the dynamic model imports
        try write(dynamic.bytes, dir + "/dynamic.onnx")
        let ok = try CLI.run(["import", dir + "/dynamic.onnx", "--input", "1x4x4", "--out", dir + "/dynamic.safetensors"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
    }

    /// External data beside the model is read, and gives the same checkpoint as inline data.
    func testExternalDataInsideTheFolder() throws {
        let dir = try temporaryDirectory()
        var (builder, cw, _, _, _) = ONNXBuilder.chain()
        try write(builder.bytes, dir + "/inline.onnx")
        var raw: [UInt8] = Array(repeating: 7, count: 12)
        for v in cw { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw += $0 } }
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try write(raw, dir + "/sub/weights.bin")
        builder.initializers[0].external = ["location": "sub/weights.bin", "offset": "12", "length": "72"]
        try write(builder.bytes, dir + "/external.onnx")
        for name in ["inline", "external"] {
            let result = try CLI.run(["import", dir + "/\(name).onnx", "--out", dir + "/\(name).safetensors"])
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        let (a, b) = (try Checkpoint.read(from: dir + "/inline.safetensors"), try Checkpoint.read(from: dir + "/external.safetensors"))
        XCTAssertEqual(a.tensors, b.tensors)
    }

    /// A state dict with PyTorch's module names, written in name order, is matched to the spec by
    /// order and shape; one that does not fit names both sides.
    func testStateDictImport() throws {
        let dir = try temporaryDirectory()
        let spec = "conv:4:3:1,maxpool:2,conv:6:3:1,maxpool:2,fc:10,fc"
        let source = try Sequential(spec: ModelSpec(parsing: spec), inputShape: ImageShape(channels: 1, height: 12, width: 12), classes: 3, seed: 9)
        let torchNames = ["conv1": "features.0", "conv2": "features.3", "fc1": "classifier.1", "fc2": "classifier.4"]
        var stateDict = source.checkpoint(classNames: ["a", "b", "c"], epoch: 0, step: 0)
        stateDict.metadata = [:]
        stateDict.tensors = stateDict.tensors.map { t in
            let parts = t.name.split(separator: ".")
            return NamedTensor(name: torchNames[String(parts[0])]! + "." + parts[1], tensor: t.tensor)
        }.sorted { $0.name < $1.name }
        try stateDict.write(to: dir + "/sd.safetensors")
        try Data("a\nb\nc\n".utf8).write(to: URL(fileURLWithPath: dir + "/names.txt"))
        let base = ["import", "--state-dict", dir + "/sd.safetensors", "--input", "1x12x12", "--classes", dir + "/names.txt"]
        let result = try CLI.run(base + ["--model", spec, "--out", dir + "/m.safetensors"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let loaded = try Sequential.load(contentsOf: dir + "/m.safetensors")
        XCTAssertEqual(Array(loaded.model.parameters), Array(source.parameters))
        XCTAssertEqual(loaded.checkpoint.metadata["source"], "state-dict:sd.safetensors")
        try assertCleanFailure(base + ["--model", "conv:4:3:1,maxpool:2,conv:8:3:1,maxpool:2,fc:10,fc", "--out", dir + "/bad.safetensors"],
                               mentions: "the spec's conv2 (weight [8, 4, 3, 3], bias [8]) does not match", status: 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/bad.safetensors"))
    }

    /// Mean and std and the shorter-side rule are recorded in the checkpoint and applied to images:
    /// `eval --image` on the imported model gives the probabilities of the normalised, cropped input.
    func testPreprocessingIsRecordedAndApplied() throws {
        let dir = try temporaryDirectory()
        try write(ONNXBuilder.chain().0.bytes, dir + "/chain.onnx")
        let result = try CLI.run(["import", dir + "/chain.onnx", "--out", dir + "/m.safetensors", "--mean", "0.5", "--std", "0.25", "--resize", "6"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let loaded = try Sequential.load(contentsOf: dir + "/m.safetensors")
        XCTAssertEqual(loaded.model.preprocessing, Preprocessing(resize: .shorterSide(6), mean: [0.5], std: [0.25]))
        // a 12x8 gray image: shorter side 8 → 6, so 9x6, then the centre 4x4 (rows 2..<6 of 9, columns 1..<5)
        let pixels = (0..<96).map { UInt8(($0 * 37) % 256) }
        let image = Image(width: 8, height: 12, channels: 1, pixels: pixels)
        let crop = Preprocessing(resize: .shorterSide(6)).image(image, to: ImageShape(channels: 1, height: 4, width: 4))
        let resized = image.resized(width: 6, height: 9)
        XCTAssertEqual(crop.pixels, (0..<4).flatMap { y in (0..<4).map { x in resized.pixels[(y + 3) * 6 + x + 1] } })
        XCTAssertEqual(Preprocessing(mean: [0.5], std: [0.25]).valueSummary, "pixels / 255, (x - mean [0.5]) / std [0.25]")
        var floats = [Float](repeating: 0, count: 2)
        Preprocessing(mean: [0.5], std: [0.25]).floats([0, 255], count: 1, shape: ImageShape(channels: 1, height: 1, width: 2), into: &floats)
        XCTAssertEqual(floats[0], -2, accuracy: 1e-6)
        XCTAssertEqual(floats[1], 2, accuracy: 1e-6)
        // an old checkpoint (no preprocessing key) keeps today's rule
        let plain = try CLI.run(["import", dir + "/chain.onnx", "--out", dir + "/plain.safetensors"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertNil(try Checkpoint.readMetadata(from: dir + "/plain.safetensors")["preprocessing"])
        XCTAssertEqual(try Sequential.load(contentsOf: dir + "/plain.safetensors").model.preprocessing, .standard)
    }

    // MARK: cross-checks against PyTorch, onnxruntime and Captum (Tests/python/onnx_reference.py)

    /// A CNN with batch norm (folded by the exporter, and by the importer in the legacy export, where
    /// it follows Linear) and strided convolutions, trained a few steps in PyTorch.
    func testSmallCNNMatchesTorchOnnxruntimeAndCaptum() throws {
        let dir = try crossCheck("small")
        // the TorchScript exporter's file: BatchNormalization after Gemm, a dynamic batch, Flatten
        let legacy = try CLI.run(["import", dir + "/legacy.onnx", "--out", dir + "/legacy.safetensors"])
        XCTAssertEqual(legacy.status, 0, legacy.stderr)
        let input = try readNpy(from: dir + "/occ/input.npy").data
        let (a, b) = (logits(try Sequential.load(contentsOf: dir + "/m.safetensors").model, input),
                      logits(try Sequential.load(contentsOf: dir + "/legacy.safetensors").model, input))
        let scale = a.map(abs).max()!
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 1e-4 * scale) }
        // nn.LocalResponseNorm as both exporters write it (neither as ONNX's LRN): one lrn stage each,
        // whose logits are PyTorch's
        let (lrnInput, lrnLogits) = (try readNpy(from: dir + "/lrn-input.npy").data, try readNpy(from: dir + "/lrn-logits.npy").data)
        for file in ["lrn", "lrn-legacy"] {
            let imported = try CLI.run(["import", "\(dir)/\(file).onnx", "--out", "\(dir)/\(file).safetensors"])
            XCTAssertEqual(imported.status, 0, imported.stderr)
            let model = try Sequential.load(contentsOf: "\(dir)/\(file).safetensors").model
            XCTAssertEqual(model.spec.description.components(separatedBy: "lrn:5:").count, 2, "\(file): \(model.spec.description)")
            let ours = logits(model, lrnInput), scale = lrnLogits.map(abs).max()!
            for i in ours.indices { XCTAssertEqual(ours[i], lrnLogits[i], accuracy: 1e-4 * scale, file) }
        }
    }

    /// torchvision's AlexNet, random weights, at 224x224 with ImageNet's mean and std.
    func testAlexNetMatchesTorchOnnxruntimeAndCaptum() throws {
        _ = try crossCheck("alexnet")
    }

    /// torchvision's VGG-11 (0.5 GB of weights in external data): one image, one conv5 unit.
    func testVGG11MatchesTorchOnnxruntimeAndCaptum() throws {
        _ = try crossCheck("vgg11")
    }

    /// `y,x` of the unit `project` printed ("conv5 channel 3 at y=5, x=7: …").
    private func unitPosition(_ output: String) -> String? {
        guard let at = output.range(of: " at y=") else { return nil }
        let numbers = output[at.upperBound...].prefix { $0 != ":" }.split(separator: ",").map { $0.replacingOccurrences(of: " x=", with: "") }
        return numbers.count == 2 && numbers.allSatisfy { Int($0) != nil } ? numbers.joined(separator: ",") : nil
    }

    /// Exports `kind`, imports it, runs `occlude` and `project` (of the strongest unit of each channel,
    /// then of the same unit by its position) on its image and the logits on the same input, then has
    /// the script compare them with PyTorch, onnxruntime and Captum. Returns the folder.
    private func crossCheck(_ kind: String) throws -> String {
        // torchvision is imported by the script, which works around a CUDA-built wheel's operators
        try Python.require("torch, onnx, onnxruntime, captum, safetensors, PIL")
        let dir = try temporaryDirectory()
        let script = Python.script("onnx_reference.py")
        let export = Python.run([script, "export", kind, dir])
        XCTAssertEqual(export.status, 0, export.output)
        struct Meta: Decodable { var mean: [Float]; var std: [Float]; var channels: [Int]; var window: Int; var stride: Int; var layer: String }
        let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/meta.json")))
        let list = { (values: [Float]) in values.map { "\($0)" }.joined(separator: ",") }
        let checkpoint = dir + "/m.safetensors"
        let imported = try CLI.run(["import", dir + "/model.onnx", "--out", checkpoint, "--classes", dir + "/classes.txt",
                                    "--mean", list(meta.mean), "--std", list(meta.std)])
        XCTAssertEqual(imported.status, 0, imported.stderr)
        let image = ["--checkpoint", checkpoint, "--image", dir + "/image.png"]
        let occlude = try CLI.run(["occlude"] + image + ["--window", "\(meta.window)", "--stride", "\(meta.stride)", "--fill", "zero",
                                                       "--score", "logit", "--npy", "--out", dir + "/occ"])
        XCTAssertEqual(occlude.status, 0, occlude.stderr)
        let model = try Sequential.load(contentsOf: checkpoint).model
        try writeNpy(Tensor(shape: [model.classes], data: logits(model, try readNpy(from: dir + "/occ/input.npy").data)), to: dir + "/logits.npy")
        for channel in meta.channels {
            for method in ["deconvnet", "guided"] {
                let project = try CLI.run(["project"] + image + ["--layer", meta.layer, "--channel", "\(channel)", "--method", method,
                                                               "--out", dir + "/p.png", "--npy", dir + "/project-\(method)-\(channel).npy"])
                XCTAssertEqual(project.status, 0, project.stderr)
                // the same unit named by its position: the forward pass over its receptive field alone
                let position = try XCTUnwrap(unitPosition(project.stdout), project.stdout)
                let at = try CLI.run(["project"] + image + ["--layer", meta.layer, "--channel", "\(channel)", "--position", position,
                                                          "--method", method, "--out", dir + "/p.png", "--npy", dir + "/project-\(method)-\(channel)-at.npy"])
                XCTAssertEqual(at.status, 0, at.stderr)
            }
        }
        let check = Python.run([script, "check", kind, dir])
        XCTAssertEqual(check.status, 0, check.output)
        print("\(kind): \(imported.stdout)\(check.output)")
        return dir
    }
}
