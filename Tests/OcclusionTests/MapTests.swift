import Net
import XCTest
@testable import Occlusion

final class MapTests: XCTestCase {
    /// A model whose class-1 logit is the sum of the pixels in rows 8..<12, columns 4..<8 of a 16x16
    /// image (one 4x4 average pool feeding fc), class 0 a constant: occluding that block with 0 is
    /// the only thing that lowers class 1.
    private func regionModel() throws -> Sequential {
        let shape = ImageShape(channels: 1, height: 16, width: 16)
        let model = try Sequential(spec: try ModelSpec(parsing: "conv:1:1:valid,avgpool:4,fc"), inputShape: shape, classes: 2, activation: .identity)
        model.parameters.update(repeating: 0)
        let conv = model.layers[0] as! Conv2D
        conv.weight[0] = 1
        let fc = model.layers[2] as! Dense
        fc.weight[16 + 2 * 4 + 1] = 16  // class 1 reads pooled cell (2, 1): rows 8..<12, columns 4..<8
        fc.bias[0] = 4
        return model
    }

    func testClassScoreMinimumAndAttributionPeakAtTheEvidence() throws {
        let model = try regionModel()
        let image = [Float](repeating: 1, count: 256)
        for mode in OcclusionSweep.Mode.allCases {
            var options = OcclusionOptions()
            options.window = 4
            options.stride = 2
            options.fill = .constant(0)
            options.target = 1
            let maps = try OcclusionSweep(model: model, mode: mode).run(image, options: options)
            XCTAssertEqual(maps.grid.rows, 7)
            let m = maps.minimumScorePosition
            XCTAssertEqual(m.row * 2, 8, "\(mode)")
            XCTAssertEqual(m.col * 2, 4, "\(mode)")
            let peak = maps.attribution.indices.max { maps.attribution[$0] < maps.attribution[$1] }!
            XCTAssertTrue((8..<12).contains(peak / 16) && (4..<8).contains(peak % 16), "peak at \(peak / 16), \(peak % 16)")
            // Away from the block the occluder changes nothing.
            XCTAssertEqual(maps.classScore[0], maps.baseScore, accuracy: 1e-6)
            XCTAssertEqual(maps.attribution[0], 0, accuracy: 1e-6)
            XCTAssertEqual(maps.mostProbableClass[m.row * 7 + m.col], 0)
            XCTAssertEqual(maps.mostProbableClass[0], 1)
        }
    }

    /// Attribution by hand on a tiny linear model: logit = Σ wᵢ xᵢ over a 1x3x3 image, window 2,
    /// stride 1 (four positions), fill 0. Occluding a window lowers the logit by the sum of w·x inside
    /// it; pixel attribution is the mean of that over the windows covering the pixel.
    func testAttributionConventionByHand() throws {
        let shape = ImageShape(channels: 1, height: 3, width: 3)
        let model = try Sequential(spec: try ModelSpec(parsing: "fc"), inputShape: shape, classes: 2, activation: .identity)
        model.parameters.update(repeating: 0)
        let fc = model.layers[0] as! Dense
        let w: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        for i in 0..<9 { fc.weight[9 + i] = w[i] }
        let x: [Float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
        var options = OcclusionOptions()
        options.window = 2
        options.stride = 1
        options.fill = .constant(0)
        options.target = 1
        options.score = .logit
        let maps = try OcclusionSweep(model: model).run(x, options: options)
        // Drops per window, top-left corner (0,0), (0,1), (1,0), (1,1).
        let wx = zip(w, x).map(*)
        let drops: [Float] = [wx[0] + wx[1] + wx[3] + wx[4], wx[1] + wx[2] + wx[4] + wx[5], wx[3] + wx[4] + wx[6] + wx[7], wx[4] + wx[5] + wx[7] + wx[8]]
        let expected: [Float] = [
            drops[0], (drops[0] + drops[1]) / 2, drops[1],
            (drops[0] + drops[2]) / 2, drops.reduce(0, +) / 4, (drops[1] + drops[3]) / 2,
            drops[2], (drops[2] + drops[3]) / 2, drops[3],
        ]
        for i in 0..<9 { XCTAssertEqual(maps.attribution[i], expected[i], accuracy: 1e-5, "pixel \(i)") }
        XCTAssertEqual(maps.classScore, drops.map { maps.baseScore - $0 }, accuracy: 1e-5)
    }

    func testUncoveredPixelsGetZeroAndChannelsRepeat() throws {
        let grid = try OcclusionGrid(height: 5, width: 5, window: 2, stride: 2)  // row and column 4 uncovered
        XCTAssertEqual(grid.rows, 2)
        let a = occlusionAttribution(grid: grid, channels: 3, baseScore: 1, scores: [0, 0.5, 0.5, 1])
        XCTAssertEqual(a.count, 75)
        XCTAssertEqual(a[0], 1)
        XCTAssertEqual(a[4], 0)
        XCTAssertEqual(a[24], 0)
        XCTAssertEqual(Array(a[0..<25]), Array(a[50..<75]))
    }

    func testFeatureDefaultsToTheStrongestMapOfTheLastConvolution() throws {
        let shape = ImageShape(channels: 1, height: 12, width: 12)
        let model = try randomModel("conv:4:3:same,maxpool:2,conv:5:3:same,fc:8,fc", shape)
        let sweep = OcclusionSweep(model: model)
        let image = randomImage(shape)
        let maps = try sweep.run(image)
        XCTAssertEqual(maps.featureLayerName, "conv2")
        let base = sweep.activations(image)[2]
        let sums = (0..<5).map { c in base[(c * 36)..<((c + 1) * 36)].reduce(0, +) }
        XCTAssertEqual(maps.featureChannel, sums.indices.max { sums[$0] < sums[$1] })
        XCTAssertEqual(maps.baseFeatureActivity, sums.max()!, accuracy: 1e-4)
        XCTAssertEqual(maps.featureActivity.count, maps.grid.count)
    }

    func testBadInput() throws {
        let shape = ImageShape(channels: 1, height: 12, width: 12)
        let model = try randomModel("conv:2:3:same,fc", shape)
        let sweep = OcclusionSweep(model: model)
        let image = randomImage(shape)
        func fails(_ change: (inout OcclusionOptions) -> Void, _ expected: OcclusionError) {
            var options = OcclusionOptions()
            change(&options)
            XCTAssertThrowsError(try sweep.run(image, options: options)) { XCTAssertEqual($0 as? OcclusionError, expected) }
        }
        fails({ $0.window = 13 }, .windowTooLarge(window: 13, height: 12, width: 12))
        fails({ $0.stride = 0 }, .badStride(0))
        fails({ $0.target = 5 }, .targetOutOfRange(target: 5, classes: 5))
        fails({ $0.featureLayer = "conv9" }, .layerNotFound("conv9", available: ["conv1", "fc1"]))
        fails({ $0.featureLayer = "conv1"; $0.featureChannel = 2 }, .channelOutOfRange(channel: 2, channels: 2, layer: "conv1"))
        XCTAssertThrowsError(try sweep.run([1, 2, 3])) { XCTAssertEqual($0 as? OcclusionError, .imageShape(got: 3, expected: shape)) }
        for error in [OcclusionError.windowTooLarge(window: 13, height: 12, width: 12), .badStride(0), .regionOutsideImage(PlaneBox(y: 10, x: 10, height: 4, width: 4), height: 12, width: 12)] {
            let text = error.localizedDescription
            XCTAssertFalse(text.isEmpty)
            XCTAssertFalse(text.contains("\n"))
        }
    }
}

func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
