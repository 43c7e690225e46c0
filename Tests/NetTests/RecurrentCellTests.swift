import XCTest
@testable import Net

/// The lstm and gru cell kernels against their loop oracles: unit counts that fill no whole lane and
/// more than one (5, 8, 19), with and without a previous state, outputs pre-filled with NaN so that a
/// value left unset fails.
final class RecurrentCellTests: XCTestCase {
    let rows = 3

    func randomArray(_ count: Int, _ random: inout SeededRandom, scale: Float = 3) -> [Float] {
        (0..<count).map { _ in random.uniform(-1, 1) * scale }
    }

    func assertClose(_ a: [Float], _ b: [Float], _ label: String) {
        XCTAssertEqual(a.count, b.count)
        for i in a.indices { XCTAssertEqual(a[i], b[i], accuracy: 2e-6 * max(1, abs(b[i])), "\(label) [\(i)]") }
    }

    func testLSTMCellMatchesLoops() {
        var random = SeededRandom(seed: 31)
        for h in [5, 8, 19] {
            for hasPrevious in [false, true] {
                let pre = randomArray(rows * 4 * h, &random)
                let previous = hasPrevious ? randomArray(rows * h, &random, scale: 1.5) : nil
                func forward(_ cell: (UnsafeMutablePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void)
                    -> (gates: [Float], c: [Float], tc: [Float], h: [Float]) {
                    var gates = pre
                    var (c, tc, hidden) = ([Float](repeating: .nan, count: rows * h), [Float](repeating: .nan, count: rows * h), [Float](repeating: .nan, count: rows * h))
                    withOptionalPointer(previous) { p in cell(&gates, p, &c, &tc, &hidden) }
                    return (gates, c, tc, hidden)
                }
                let fast = forward { lstmCellForward(gates: $0, previousCell: $1, cell: $2, cellTanh: $3, hidden: $4, rows: rows, units: h) }
                let slow = forward { lstmCellForwardNaive(gates: $0, previousCell: $1, cell: $2, cellTanh: $3, hidden: $4, rows: rows, units: h) }
                let label = "lstm h\(h) previous \(hasPrevious)"
                assertClose(fast.gates, slow.gates, "gates " + label)
                assertClose(fast.c, slow.c, "c " + label)
                assertClose(fast.tc, slow.tc, "tanh c " + label)
                assertClose(fast.h, slow.h, "h " + label)

                let dh = randomArray(rows * h, &random, scale: 1), dcLater = randomArray(rows * h, &random, scale: 1)
                func backward(_ cell: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>?) -> Void) -> (dc: [Float], dg: [Float]) {
                    var dc = dcLater, dg = [Float](repeating: .nan, count: rows * 4 * h)
                    withOptionalPointer(previous) { p in cell(&dc, &dg, p) }
                    return (dc, dg)
                }
                let fastBack = backward {
                    lstmCellBackward(gates: slow.gates, cellTanh: slow.tc, previousCell: $2, hiddenGradient: dh, cellGradient: $0, gateGradient: $1, rows: rows, units: h)
                }
                let slowBack = backward {
                    lstmCellBackwardNaive(gates: slow.gates, cellTanh: slow.tc, previousCell: $2, hiddenGradient: dh, cellGradient: $0, gateGradient: $1, rows: rows, units: h)
                }
                assertClose(fastBack.dg, slowBack.dg, "gate gradient " + label)
                assertClose(fastBack.dc, slowBack.dc, "cell gradient " + label)
            }
        }
    }

    func testGRUCellMatchesLoops() {
        var random = SeededRandom(seed: 32)
        for h in [5, 8, 19] {
            for hasPrevious in [false, true] {
                let pre = randomArray(rows * 3 * h, &random), bias = randomArray(h, &random, scale: 1)
                let recurrent = hasPrevious ? randomArray(rows * 3 * h, &random) : nil
                let previous = hasPrevious ? randomArray(rows * h, &random, scale: 1) : nil
                func forward(_ cell: (UnsafeMutablePointer<Float>, UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void)
                    -> (gates: [Float], hn: [Float], h: [Float]) {
                    var gates = pre
                    var (hn, hidden) = ([Float](repeating: .nan, count: rows * h), [Float](repeating: .nan, count: rows * h))
                    withOptionalPointer(recurrent) { r in withOptionalPointer(previous) { p in cell(&gates, r, p, &hn, &hidden) } }
                    return (gates, hn, hidden)
                }
                let fast = forward {
                    gruCellForward(gates: $0, recurrent: $1, newGateBias: bias, previousHidden: $2, newGateRecurrent: $3, hidden: $4, rows: rows, units: h)
                }
                let slow = forward {
                    gruCellForwardNaive(gates: $0, recurrent: $1, newGateBias: bias, previousHidden: $2, newGateRecurrent: $3, hidden: $4, rows: rows, units: h)
                }
                let label = "gru h\(h) previous \(hasPrevious)"
                assertClose(fast.gates, slow.gates, "gates " + label)
                assertClose(fast.hn, slow.hn, "W_hn h + b_hn " + label)
                assertClose(fast.h, slow.h, "h " + label)

                let dhLater = randomArray(rows * h, &random, scale: 1)
                func backward(_ cell: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>?) -> Void)
                    -> (dh: [Float], dg: [Float], dr: [Float]) {
                    var dh = dhLater, dg = [Float](repeating: .nan, count: rows * 3 * h), dr = dg
                    withOptionalPointer(previous) { p in cell(&dh, &dg, &dr, p) }
                    return (dh, dg, dr)
                }
                let fastBack = backward {
                    gruCellBackward(gates: slow.gates, newGateRecurrent: slow.hn, previousHidden: $3, hiddenGradient: $0, gateGradient: $1,
                                    recurrentGateGradient: $2, rows: rows, units: h)
                }
                let slowBack = backward {
                    gruCellBackwardNaive(gates: slow.gates, newGateRecurrent: slow.hn, previousHidden: $3, hiddenGradient: $0, gateGradient: $1,
                                         recurrentGateGradient: $2, rows: rows, units: h)
                }
                assertClose(fastBack.dg, slowBack.dg, "gate gradient " + label)
                assertClose(fastBack.dr, slowBack.dr, "recurrent gate gradient " + label)
                assertClose(fastBack.dh, slowBack.dh, "hidden gradient " + label)
            }
        }
    }

    /// The rnn cell's backward, dh ⊙ (1 − h²).
    func testRNNCellBackward() {
        let hidden: [Float] = [0.5, -0.25, 0, 0.9], dh: [Float] = [1, 2, -3, 4]
        var d = [Float](repeating: .nan, count: 4)
        rnnCellBackward(hidden: hidden, hiddenGradient: dh, gateGradient: &d, rows: 2, units: 2)
        XCTAssertEqual(d, [0.75, 1.875, -3, 4 * (1 - 0.9 * 0.9)])
    }

    /// `body` with a pointer to `values`, or nil.
    func withOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
        guard let values else { return body(nil) }
        return values.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
