import XCTest
@testable import Net

/// The normalisation layers' kernels against their oracles, and their spec tokens.
final class NormalizationTests: XCTestCase {
    func testLocalResponseNormMatchesItsOracle() {
        var random = SeededRandom(seed: 4)
        let (n, c, p) = (2, 6, 5)
        let x = (0..<n * c * p).map { _ in random.uniform(-2, 2) }
        let dy = (0..<n * c * p).map { _ in random.uniform(-1, 1) }
        for size in [1, 2, 3, 4, 5, 8] {
            for (beta, k) in [(Float(0.75), Float(2)), (0.5, 1), (1.3, 0.7)] {
                let lrn = LRNParameters(size: size, alpha: 0.9, beta: beta, k: k)
                var (y, s, d, dx) = ([Float](repeating: .nan, count: x.count), [Float](repeating: .nan, count: x.count),
                                     [Float](repeating: .nan, count: x.count), [Float](repeating: .nan, count: x.count))
                var t = [Float](repeating: .nan, count: c * p)
                lrnForward(x, images: n, channels: c, plane: p, lrn, &y, scale: &s, divisor: &d)
                lrnBackward(dy, input: x, scale: s, divisor: d, images: n, channels: c, plane: p, lrn, &dx, scratch: &t)
                let (yRef, dxRef) = (lrnForwardNaive(x, images: n, channels: c, plane: p, lrn),
                                     lrnBackwardNaive(dy, input: x, images: n, channels: c, plane: p, lrn))
                for i in 0..<x.count {
                    XCTAssertEqual(y[i], yRef[i], accuracy: 2e-6 * max(1, abs(yRef[i])), "forward \(i), size \(size), beta \(beta)")
                    XCTAssertEqual(dx[i], dxRef[i], accuracy: 1e-5 * max(1, abs(dxRef[i])), "backward \(i), size \(size), beta \(beta)")
                }
            }
        }
    }

    /// A projection's channel subset gives what the whole signal with the other channels zero gives.
    func testLocalResponseNormBackwardDataOfAChannelSubset() throws {
        let layer = LocalResponseNorm(name: "lrn1", inputShape: [4, 2, 3], parameters: LRNParameters(size: 3, alpha: 1, beta: 0.75, k: 1))
        var random = SeededRandom(seed: 2)
        let n = 2
        let x = (0..<n * 24).map { _ in random.uniform(-1, 1) }
        var y = [Float](repeating: 0, count: x.count)
        let (memory, workspace) = (LayerMemory(), Workspace())
        layer.forward(x, &y, batch: n, training: false, memory: memory, workspace: workspace)
        let slice = (0..<n * 6).map { _ in random.uniform(-1, 1) }
        var full = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for i in 0..<6 { full[(b * 4 + 2) * 6 + i] = slice[b * 6 + i] } }
        var (fromSlice, fromFull) = ([Float](repeating: .nan, count: x.count), [Float](repeating: .nan, count: x.count))
        layer.backwardData(slice, channels: 2..<3, &fromSlice, batch: n, memory: memory, workspace: workspace)
        layer.backwardData(full, channels: nil, &fromFull, batch: n, memory: memory, workspace: workspace)
        XCTAssertEqual(fromSlice, fromFull)
    }

    func testSpecTokens() throws {
        let spec = try ModelSpec(parsing: "conv:4:3:same,lrn:5:alpha=0.0001:beta=0.75:k=2,lrn:3,fc")
        XCTAssertEqual(spec.stages[1], .localResponseNorm(LRNParameters(size: 5, alpha: 1e-4, beta: 0.75, k: 2)))
        XCTAssertEqual(spec.stages[2], .localResponseNorm(LRNParameters(size: 3)))
        XCTAssertEqual(spec.description, "conv:4:3:same,lrn:5:alpha=0.0001:beta=0.75:k=2.0,lrn:3:alpha=0.0001:beta=0.75:k=1.0,fc")
        XCTAssertEqual(try ModelSpec(parsing: spec.description), spec)
        func badSpec(_ text: String, _ message: String, line: UInt = #line) {
            XCTAssertThrowsError(try ModelSpec(parsing: text), line: line) { error in
                XCTAssertEqual(error as? ModelError, .badSpec(message), line: line)
            }
        }
        badSpec("lrn", "'lrn' needs more fields")
        badSpec("lrn:5:gamma=1", "unknown option 'gamma=1' in 'lrn:5:gamma=1' (options: alpha=, beta=, k=)")
        badSpec("lrn:5:k=1:k=2", "option 'k' repeated in 'lrn:5:k=1:k=2'")
        badSpec("lrn:5:k=0", "'lrn:5:k=0' needs alpha >= 0, beta >= 0 and k > 0")
        badSpec("lrn:5:alpha=x", "'x' in 'lrn:5:alpha=x' is not a number")
        XCTAssertThrowsError(try Sequential(spec: try ModelSpec(parsing: "fc:4,lrn:3,fc"), inputShape: ImageShape(channels: 1, height: 3, width: 3), classes: 2)) { error in
            XCTAssertEqual(error as? ModelError, .badSpec("'lrn:3:alpha=0.0001:beta=0.75:k=1.0' needs an image input, not a dense or recurrent output"))
        }
        XCTAssertThrowsError(try Sequential(spec: try ModelSpec(parsing: "gru:4,lrn:3,fc"), inputShape: ImageShape(channels: 1, height: 3, width: 3), classes: 2))
    }
}
