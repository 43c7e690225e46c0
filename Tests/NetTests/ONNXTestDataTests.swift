import Foundation
import XCTest
@testable import Net

/// ONNX's per-operator test models (Debian's libonnx-testdata): each graph is imported with its weight
/// inputs as constants and an identity classifier after it, run on `input_0.pb`, and compared with
/// `output_0.pb`. Those of the supported operators must pass; the others must be refused cleanly.
final class ONNXTestDataTests: XCTestCase {
    static let root = "/usr/share/libonnx-testdata/data/node"

    /// The models of supported operators and attributes, which must import and agree.
    static let supported = [
        "test_conv_with_autopad_same", "test_conv_with_strides_and_asymmetric_padding", "test_conv_with_strides_no_padding",
        "test_conv_with_strides_padding", "test_basic_conv_with_padding", "test_basic_conv_without_padding",
        "test_maxpool_2d_default", "test_maxpool_2d_ceil", "test_maxpool_2d_precomputed_pads",
        "test_maxpool_2d_precomputed_same_upper", "test_maxpool_2d_precomputed_strides", "test_maxpool_2d_same_lower",
        "test_maxpool_2d_same_upper", "test_maxpool_2d_strides",
        "test_averagepool_2d_default", "test_averagepool_2d_ceil",
        "test_averagepool_2d_precomputed_pads", "test_averagepool_2d_precomputed_pads_count_include_pad",
        "test_averagepool_2d_precomputed_same_upper", "test_averagepool_2d_precomputed_strides", "test_averagepool_2d_same_lower",
        "test_averagepool_2d_same_upper", "test_averagepool_2d_strides",
        "test_gemm_alpha", "test_gemm_beta", "test_gemm_default_no_bias", "test_gemm_default_single_elem_vector_bias",
        "test_gemm_default_vector_bias", "test_gemm_default_zero_bias", "test_gemm_transposeB",
    ]

    /// The per-operator models of the normalisation and global pooling layers; the BatchNormalization
    /// ones are a batch norm alone (no convolution to fold it into), so they check the `bn` stage and its
    /// running statistics. (The `_pads` pooling models pad by more than half the window, which PyTorch
    /// refuses, and so does the spec.)
    static let normalization = ["test_globalaveragepool", "test_globalaveragepool_precomputed", "test_lrn", "test_lrn_default",
                                 "test_batchnorm_example", "test_batchnorm_epsilon"]

    func testSupportedOperatorModelsPass() throws {
        guard FileManager.default.fileExists(atPath: Self.root) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI=true: \(Self.root) is missing (apt install libonnx-testdata)") }
            throw XCTSkip("\(Self.root) is missing (make test installs libonnx-testdata)")
        }
        var failures: [String] = []
        for name in Self.supported + Self.normalization {
            do { try check(name) } catch { failures.append("\(name): \(error.localizedDescription)") }
        }
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
    }

    /// Every other model of these operator families is imported and agrees, or is refused with an `ImportError`.
    func testOtherOperatorModelsAreRefusedCleanly() throws {
        guard FileManager.default.fileExists(atPath: Self.root) else { throw XCTSkip("\(Self.root) is missing") }
        let families = ["test_conv", "test_maxpool", "test_averagepool", "test_gemm", "test_batchnorm", "test_lrn", "test_flatten",
                        "test_globalmaxpool", "test_convtranspose", "test_matmul", "test_relu", "test_add", "test_concat"]
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.root).filter { n in families.contains { n.hasPrefix($0) } }
        var refused = 0
        for name in names where !Self.supported.contains(name) && !Self.normalization.contains(name) {
            do { try check(name) } catch is ImportError { refused += 1 } catch is ModelError { refused += 1 }
        }
        XCTAssertGreaterThan(refused, 10)
    }

    private func tensor(_ path: String) throws -> ONNXTensor {
        try ONNXTensor(ProtobufReader([UInt8](Data(contentsOf: URL(fileURLWithPath: path)))[...]))
    }

    private func check(_ name: String) throws {
        let dir = "\(Self.root)/\(name)"
        let data = "\(dir)/test_data_set_0"
        let inputs = try (0..<8).map { "\(data)/input_\($0).pb" }.filter { FileManager.default.fileExists(atPath: $0) }.map(tensor)
        let expected = try tensor("\(data)/output_0.pb")
        guard inputs.first?.dataType == 1, expected.dataType == 1 else { throw ImportError.badTensor(name: name, reason: "not float data") }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/model.onnx")))
        let network = try ONNXImporter.read(bytes: bytes, inputShape: nil, constants: Array(inputs.dropFirst()), identityClassifier: true)
        let model = try network.model()
        let x = inputs[0].rawData.map(floats) ?? inputs[0].floatData
        let batch = x.count / network.inputShape.count
        let record = ForwardRecord(model)
        let y = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: model.forward($0.baseAddress!, batch: batch, training: false, into: record),
                                                                        count: batch * model.classes)) }
        let want = expected.rawData.map(floats) ?? expected.floatData
        guard want.count == y.count else { throw ImportError.inputShape("\(y.count) outputs, expected \(want.count)") }
        let scale = want.map(abs).max() ?? 1
        for i in want.indices where abs(want[i] - y[i]) > 1e-4 * max(scale, 1) {
            XCTFail("\(name): output \(i) is \(y[i]), expected \(want[i])")
            return
        }
    }

    private func floats(_ raw: ArraySlice<UInt8>) -> [Float] {
        stride(from: raw.startIndex, to: raw.endIndex, by: 4).map { i in
            Float(bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24)
        }
    }
}
