import Foundation
import XCTest
import TestSupport
@testable import Net
@testable import NetKernels

/// The recurrent stack against straightforward Double implementations of the cell equations, against
/// central differences, and for PyTorch's parameter names.
final class RecurrentTests: XCTestCase {
    private let shape = ImageShape(channels: 1, height: 4, width: 5)  // T = 4 steps of F = 5 features

    private func model(_ spec: String, classes: Int = 4, shape: ImageShape? = nil) throws -> Sequential {
        try Sequential(spec: ModelSpec(parsing: spec), inputShape: shape ?? self.shape, classes: classes, seed: 3)
    }

    private func tensor(_ model: Sequential, _ name: String) -> [Double] {
        let v = model.views.first { $0.name == name }!
        return (0..<v.count).map { Double(model.parameters[v.offset + $0]) }
    }

    /// Sets every parameter of the recurrent stack to hand-made values in [-0.8, 0.8], different per tensor.
    private func setLiteralWeights(_ model: Sequential) {
        for (k, v) in model.views.enumerated() where v.name.hasPrefix("rnn.") {
            let pattern: [Float] = [0.5, -0.3, 0.8, -0.7, 0.1, 0.4, -0.6, 0.2, -0.1, 0.7, -0.4, 0.3, -0.8, 0.6, -0.2]
            for i in 0..<v.count { model.parameters[v.offset + i] = pattern[(i * 7 + k * 3) % pattern.count] * (i % 2 == 0 ? 1 : 0.5) }
        }
    }

    private static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    /// The textbook equations, one unit at a time: the top layer's last hidden state `(n, H)` of
    /// `x` `(n, T, F)` for a stack of `layers` cells of `kind`, weights read by PyTorch name.
    private func reference(_ kind: CellKind, _ model: Sequential, x: [Double], n: Int, t: Int, f: Int, hidden h: Int, layers: Int) -> [Double] {
        var result: [Double] = []
        for b in 0..<n {
            var sequence = (0..<t).map { s in Array(x[(b * t + s) * f ..< (b * t + s + 1) * f]) }
            for l in 0..<layers {
                let wih = tensor(model, "rnn.weight_ih_l\(l)"), whh = tensor(model, "rnn.weight_hh_l\(l)")
                let bih = tensor(model, "rnn.bias_ih_l\(l)"), bhh = tensor(model, "rnn.bias_hh_l\(l)")
                let k = sequence[0].count
                // Row `row` of W_ih·x + b_ih and of W_hh·h + b_hh.
                func inputPart(_ row: Int, _ x: [Double]) -> Double { bih[row] + (0..<k).reduce(0) { $0 + wih[row * k + $1] * x[$1] } }
                func hiddenPart(_ row: Int, _ hPrev: [Double]) -> Double { bhh[row] + (0..<h).reduce(0) { $0 + whh[row * h + $1] * hPrev[$1] } }
                var hState = [Double](repeating: 0, count: h), cState = [Double](repeating: 0, count: h)
                var outputs: [[Double]] = []
                for xs in sequence {
                    var hNext = [Double](repeating: 0, count: h)
                    for j in 0..<h {
                        switch kind {
                        case .rnn:
                            hNext[j] = tanh(inputPart(j, xs) + hiddenPart(j, hState))
                        case .lstm:
                            let i = Self.sigmoid(inputPart(j, xs) + hiddenPart(j, hState))
                            let fg = Self.sigmoid(inputPart(h + j, xs) + hiddenPart(h + j, hState))
                            let g = tanh(inputPart(2 * h + j, xs) + hiddenPart(2 * h + j, hState))
                            let o = Self.sigmoid(inputPart(3 * h + j, xs) + hiddenPart(3 * h + j, hState))
                            cState[j] = fg * cState[j] + i * g
                            hNext[j] = o * tanh(cState[j])
                        case .gru:
                            let r = Self.sigmoid(inputPart(j, xs) + hiddenPart(j, hState))
                            let z = Self.sigmoid(inputPart(h + j, xs) + hiddenPart(h + j, hState))
                            let nn = tanh(inputPart(2 * h + j, xs) + r * hiddenPart(2 * h + j, hState))
                            hNext[j] = (1 - z) * nn + z * hState[j]
                        }
                    }
                    hState = hNext
                    outputs.append(hState)
                }
                sequence = outputs
            }
            result += sequence[t - 1]
        }
        return result
    }

    private func randomInput(_ count: Int, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in random.uniform(-1, 1) }
    }

    func testForwardMatchesTextbookEquations() throws {
        let n = 3
        for kind in CellKind.allCases {
            for (h, layers) in [(3, 1), (3, 2), (10, 2)] {  // 10: one full vector of 8 units and a tail
                let m = try model("\(kind.rawValue):\(h):\(layers),fc")
                setLiteralWeights(m)
                let x = randomInput(n * shape.count, seed: 11)
                let record = ForwardRecord(m)
                m.forward(x, batch: n, training: false, into: record)
                let expected = reference(kind, m, x: x.map(Double.init), n: n, t: 4, f: 5, hidden: h, layers: layers)
                let got = record.output(of: 0)
                for i in 0..<(n * h) {
                    XCTAssertEqual(Double(got[i]), expected[i], accuracy: 2e-6, "\(kind) \(h) × \(layers), value \(i)")
                }
                XCTAssertGreaterThan(expected.map(abs).max()!, 0.1, "the test values are not degenerate")
            }
        }
    }

    func testForwardAfterBatchGrowsAndShrinks() throws {
        let m = try model("gru:3:2,fc")
        let x = randomInput(5 * shape.count, seed: 4)
        let record = ForwardRecord(m)
        let single = Array(UnsafeBufferPointer(start: m.forward(x, batch: 1, training: false, into: record), count: 4))
        _ = m.forward(x, batch: 5, training: false, into: record)
        let again = Array(UnsafeBufferPointer(start: m.forward(x, batch: 1, training: false, into: record), count: 4))
        let firstOfFive = try model("gru:3:2,fc")
        let fiveRecord = ForwardRecord(firstOfFive)
        let five = Array(UnsafeBufferPointer(start: firstOfFive.forward(x, batch: 5, training: false, into: fiveRecord), count: 4))
        for i in 0..<4 {
            XCTAssertEqual(single[i], again[i])
            XCTAssertEqual(single[i], five[i], accuracy: 1e-6)
        }
    }

    /// Gradients of loss = Σ logits·w from `backward` against central differences of the loss, for
    /// every parameter and every input value.
    private func checkGradients(_ spec: String, batch n: Int = 2, file: StaticString = #filePath, line: UInt = #line) throws {
        let m = try model(spec)
        let classes = 4
        var x = randomInput(n * shape.count, seed: 5)
        let w = randomInput(n * classes, seed: 6)
        let record = ForwardRecord(m)
        func loss() -> Double {
            let logits = m.forward(x, batch: n, training: true, into: record)
            return (0..<(n * classes)).reduce(0) { $0 + Double(logits[$1]) * Double(w[$1]) }
        }
        _ = loss()
        m.zeroGradients()
        var dx = [Float](repeating: .nan, count: x.count)  // overwritten by backward
        m.backward(w, record: record, inputGradient: &dx)
        let analytic = Array(m.gradients)

        func compare(_ a: Float, _ numeric: Double, _ what: String) {
            let tolerance = 1e-3 + 1e-2 * max(abs(Double(a)), abs(numeric))
            XCTAssertEqual(Double(a), numeric, accuracy: tolerance, "\(spec): \(what)", file: file, line: line)
        }
        let eps: Float = 1e-2
        var largest = 0.0
        for view in m.views {
            for i in 0..<view.count {
                let p = view.offset + i
                let saved = m.parameters[p]
                m.parameters[p] = saved + eps
                let plus = loss()
                m.parameters[p] = saved - eps
                let minus = loss()
                m.parameters[p] = saved
                let numeric = (plus - minus) / Double(2 * eps)
                largest = max(largest, abs(numeric))
                compare(analytic[p], numeric, "\(view.name)[\(i)]")
            }
        }
        for i in x.indices {
            let saved = x[i]
            x[i] = saved + eps
            let plus = loss()
            x[i] = saved - eps
            let minus = loss()
            x[i] = saved
            compare(dx[i], (plus - minus) / Double(2 * eps), "input[\(i)]")
        }
        XCTAssertGreaterThan(largest, 0.05, "\(spec): gradients are not degenerate", file: file, line: line)

        // Parameter gradients accumulate.
        _ = loss()
        m.backward(w, record: record)
        for p in 0..<analytic.count {
            XCTAssertEqual(m.gradients[p], 2 * analytic[p], accuracy: 1e-5 + 1e-5 * abs(analytic[p]), "\(spec): accumulation", file: file, line: line)
        }
    }

    func testGradientsRNN() throws { try checkGradients("rnn:3,fc") }
    func testGradientsLSTM() throws { try checkGradients("lstm:3,fc") }
    func testGradientsGRU() throws { try checkGradients("gru:3,fc") }
    func testGradientsStackedRNN() throws { try checkGradients("rnn:3:2,fc") }
    func testGradientsStackedLSTM() throws { try checkGradients("lstm:3:2,fc") }
    func testGradientsStackedGRU() throws { try checkGradients("gru:3:2,fc", batch: 3) }
    func testGradientsWideCells() throws {  // a full vector of 8 units and a tail
        try checkGradients("lstm:9,fc")
        try checkGradients("gru:9,fc")
    }

    func testPyTorchNamesAndShapes() throws {
        let (h, f) = (8, 5)
        for (kind, g) in [(CellKind.rnn, 1), (.lstm, 4), (.gru, 3)] {
            let m = try model("\(kind.rawValue):\(h):2,fc", classes: 10)
            let expected: [(String, [Int])] = [
                ("rnn.weight_ih_l0", [g * h, f]), ("rnn.weight_hh_l0", [g * h, h]), ("rnn.bias_ih_l0", [g * h]), ("rnn.bias_hh_l0", [g * h]),
                ("rnn.weight_ih_l1", [g * h, h]), ("rnn.weight_hh_l1", [g * h, h]), ("rnn.bias_ih_l1", [g * h]), ("rnn.bias_hh_l1", [g * h]),
                ("fc.weight", [10, h]), ("fc.bias", [10]),
            ]
            XCTAssertEqual(m.views.map(\.name), expected.map(\.0), "\(kind)")
            XCTAssertEqual(m.views.map(\.shape), expected.map(\.1), "\(kind)")
            XCTAssertEqual(m.layers[0].outputShape, [h])
            let macs = g * h * 4 * ((f + h) + (h + h))
            XCTAssertEqual(m.layers[0].multiplyAdds, macs, "\(kind): per sequence")

            // PyTorch's default initialisation: every recurrent tensor U(±1/√H).
            let bound = 1 / Float(h).squareRoot()
            let values = m.views.filter { $0.name.hasPrefix("rnn.") }.flatMap { v in (0..<v.count).map { m.parameters[v.offset + $0] } }
            XCTAssertLessThanOrEqual(values.map(abs).max()!, bound)
            XCTAssertGreaterThan(values.map(abs).max()!, 0.9 * bound)
        }
    }

    /// The same parameters in PyTorch's `nn.RNN`/`nn.LSTM`/`nn.GRU` (loaded with `strict=True`) give
    /// the same outputs; skipped when python3 with torch is not installed.
    func testMatchesPyTorchWhenAvailable() throws {
        let script = """
        import json, sys, torch
        failed = False
        for spec in json.load(open(sys.argv[1])):
            cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[spec["kind"]]
            net = cls(spec["features"], spec["hidden"], num_layers=spec["layers"], batch_first=True)
            state = {k: torch.tensor(v["values"]).reshape(v["shape"]) for k, v in spec["parameters"].items()}
            net.load_state_dict(state, strict=True)
            x = torch.tensor(spec["input"]).reshape(spec["batch"], 1, spec["steps"], spec["features"])
            out = net(x[:, 0])[0][:, -1].detach().reshape(-1)
            error = (out - torch.tensor(spec["output"])).abs().max().item()
            print(spec["kind"], "max error", error)
            failed = failed or not error < 1e-5
        sys.exit(1 if failed else 0)
        """
        try Python.require("torch")
        let n = 3
        var specs: [[String: Any]] = []
        for kind in CellKind.allCases {
            let m = try model("\(kind.rawValue):6:2,fc")
            let x = randomInput(n * shape.count, seed: 9)
            let record = ForwardRecord(m)
            m.forward(x, batch: n, training: false, into: record)
            var parameters: [String: Any] = [:]
            for v in m.views where v.name.hasPrefix("rnn.") {
                parameters[String(v.name.dropFirst(4))] = ["shape": v.shape, "values": (0..<v.count).map { Double(m.parameters[v.offset + $0]) }]
            }
            specs.append([
                "kind": kind.rawValue, "features": 5, "steps": 4, "hidden": 6, "layers": 2, "batch": n,
                "parameters": parameters, "input": x.map(Double.init), "output": (0..<(n * 6)).map { Double(record.output(of: 0)[$0]) },
            ])
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("recurrent-\(getpid()).json").path
        try JSONSerialization.data(withJSONObject: specs).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = Python.run(["-c", script, path])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("gru max error"), result.output)
    }

    func testColorInputIsRejected() {
        XCTAssertThrowsError(try model("lstm:8,fc", shape: ImageShape(channels: 3, height: 4, width: 5))) { error in
            XCTAssertEqual(error as? ModelError, .shape("recurrent models read grayscale rows; convert with --grayscale"))
            XCTAssertTrue(error.localizedDescription.contains("--grayscale"))
        }
    }

    func testFastActivationsMatchFoundation() {
        let x = (0..<2001).map { Float($0 - 1000) / 50 } + [-200, 200, 0]
        var sigmoid = [Float](repeating: 0, count: x.count), tanhValues = sigmoid
        fastSigmoid(x, &sigmoid, count: x.count)
        fastTanh(x, &tanhValues, count: x.count)
        for (i, v) in x.enumerated() {
            XCTAssertEqual(sigmoid[i], 1 / (1 + Foundation.exp(-v)), accuracy: 3e-7, "sigmoid(\(v))")
            XCTAssertEqual(tanhValues[i], Foundation.tanh(v), accuracy: 3e-7, "tanh(\(v))")
        }
        let width = Lanes.scalarCount
        for start in stride(from: 0, to: x.count - width, by: width) {  // the vector versions the cells use
            let v = Lanes(x[start ..< start + width])
            let (s8, t8) = (sigmoidApproximation(v), tanhApproximation(v))
            for lane in 0..<width {
                XCTAssertEqual(s8[lane], sigmoid[start + lane], accuracy: 1e-7)
                XCTAssertEqual(t8[lane], tanhValues[start + lane], accuracy: 1e-7)
            }
        }
        XCTAssertEqual(expApproximation(1), Float(M_E), accuracy: 1e-6)
        XCTAssertEqual(expApproximation(-10), Foundation.exp(-10), accuracy: 1e-10)
    }
}
