import Deconv
import Dispatch
import Net
import Occlusion
import XCTest

/// Analyses keep their state in their own records: run at the same time from two threads on one
/// loaded model, they give bit for bit what they give one after the other.
final class ConcurrencyTests: XCTestCase {
    override func setUp() {
        Workers.set(2)
    }

    /// conv1 takes the direct path (packed weights in the caller's memory), conv2 Winograd; max-pool
    /// switches, dropout and average pooling in between.
    private func model() throws -> Sequential {
        let spec = try ModelSpec(parsing: "conv:8:5:same,maxpool:2,conv:16:5:same,dropout:0.5,avgpool:2,fc:12,fc")
        let model = try Sequential(spec: spec, inputShape: ImageShape(channels: 1, height: 16, width: 16), classes: 4, seed: 3)
        for i in model.parameters.indices where model.views.contains(where: { $0.name.hasSuffix("bias") && ($0.offset..<$0.offset + $0.count).contains(i) }) {
            model.parameters[i] += 0.05  // more units active, so that the projections are not mostly zero
        }
        return model
    }

    /// The three projections of image `image`'s strongest conv2 and pool1 activations, each from a batch
    /// of 1 and from a batch of 3 copies, and its saliency for class 1.
    private func projections(_ model: Sequential, _ image: [Float]) throws -> [Float] {
        let projector = try Projector(model: model)
        var result: [Float] = []
        for (layer, copies) in [(2, 1), (1, 3), (2, 3)] {
            let batch = Array([[Float]](repeating: image, count: copies).joined())
            var out = [Float](repeating: 0, count: batch.count)
            for method in ProjectionMethod.allCases {
                batch.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: copies, through: layer) }
                let seed = projector.strongest(in: layer, image: 0).unit
                out.withUnsafeMutableBufferPointer { projector.project(Array(repeating: seed, count: copies), from: layer, method: method, into: $0.baseAddress!) }
                result += out
            }
        }
        return result + inputGradient(model, image, logit: 1)
    }

    /// The occlusion maps of `image` (class score and conv2's feature activity).
    private func occlusion(_ model: Sequential, _ image: [Float]) throws -> [Float] {
        var options = OcclusionOptions()
        options.window = 4
        options.featureLayer = "conv2"
        let maps = try OcclusionSweep(model: model).run(image, options: options)
        return maps.classScore + maps.featureActivity + maps.probabilities
    }

    func testTwoAnalysesOnOneModelFromTwoThreadsMatchOneAfterTheOther() throws {
        let model = try model()
        var random = SeededRandom(seed: 8)
        let images = (0..<2).map { _ in (0..<model.inputShape.count).map { _ in random.uniform() } }
        let analyses: [() throws -> [Float]] = [
            { try self.projections(model, images[0]) },
            { try self.occlusion(model, images[1]) },
            { try self.projections(model, images[1]) },
        ]
        let alone = try analyses.map { try $0() }
        XCTAssertGreaterThan(alone[0].map(abs).max()!, 0, "the projections are not all zero")
        XCTAssertNotEqual(alone[0], alone[2], "the two images project differently")
        for pair in [[0, 1], [0, 2]] {
            // Each thread runs its analysis `repeats` times while the other runs its own.
            let repeats = 20
            let results = Results()
            let done = DispatchGroup()
            for (k, analysis) in pair.enumerated() {
                done.enter()
                Thread {
                    for _ in 0..<repeats { results.add(k, Result { try analyses[analysis]() }) }
                    done.leave()
                }.start()
            }
            done.wait()
            for (k, analysis) in pair.enumerated() {
                let runs = results.values(k)
                XCTAssertEqual(runs.count, repeats)
                for (run, value) in runs.enumerated() {
                    let bits = try value.get().map(\.bitPattern)
                    XCTAssertTrue(bits == alone[analysis].map(\.bitPattern), "analysis \(analysis) beside \(pair[1 - k]), run \(run): not bit for bit the same")
                }
            }
        }
    }
}

/// The results of two threads' runs, behind a lock.
private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var runs: [[Result<[Float], Error>]] = [[], []]

    func add(_ thread: Int, _ result: Result<[Float], Error>) { lock.withLock { runs[thread].append(result) } }
    func values(_ thread: Int) -> [Result<[Float], Error>] { lock.withLock { runs[thread] } }
}
