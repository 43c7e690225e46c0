import Deconv
import Foundation
import Net
import XCTest

final class SearchTests: XCTestCase {
    /// Worked out by hand from the kernel sizes, strides and paddings:
    /// lenet5 ('same', pad 2): conv1 1+4 = 5, pool1 5+1 = 6 (jump 2), conv2 6+4·2 = 14, pool2 14+1·2 = 16
    /// (jump 4); offsets −2, −2, −2−2·2 = −6, −6. lenet5-classic (valid) has the same sizes, offset 0.
    func testReceptiveFieldsOfLeNet5() throws {
        let lenet = try Sequential(spec: try ModelSpec.preset("lenet5"), inputShape: ImageShape(channels: 1, height: 28, width: 28), classes: 10)
        let projector = try Projector(model: lenet)
        let fields = try ["conv1", "pool1", "conv2", "pool2"].map { projector.receptiveField(of: try projector.layerIndex(named: $0)) }
        XCTAssertEqual(fields.map(\.size), [5, 6, 14, 16])
        XCTAssertEqual(fields.map(\.jump), [1, 2, 2, 4])
        XCTAssertEqual(fields.map(\.offset), [-2, -2, -6, -6])

        let classic = try Sequential(spec: try ModelSpec.preset("lenet5-classic"), inputShape: ImageShape(channels: 3, height: 32, width: 32), classes: 10)
        let fields2 = ReceptiveField.fields(of: classic.layers)
        XCTAssertEqual(fields2.prefix(4).map { $0!.size }, [5, 6, 14, 16])
        XCTAssertEqual(fields2.prefix(4).map { $0!.offset }, [0, 0, 0, 0])
        XCTAssertNil(fields2[4], "a dense layer has no receptive field window")
    }

    /// Every pixel a projection touches lies inside the receptive field of its unit.
    func testReceptiveFieldsThroughStridesAndUnevenWindows() throws {
        let model = try Sequential(spec: ModelSpec(parsing: "conv:4:7:stride=2:pad=3,maxpool:3:2:pad=1,conv:4:3x5:pad=0/2/1/1,fc"),
                                   inputShape: ImageShape(channels: 1, height: 32, width: 32), classes: 2)
        let fields = ReceptiveField.fields(of: model.layers)
        XCTAssertEqual(fields[0], ReceptiveField(size: 7, jump: 2, offset: -3))
        XCTAssertEqual(fields[1], ReceptiveField(size: 11, jump: 4, offset: -5))
        // rows: 11 + 2·4 = 19 from −5; columns: 11 + 4·4 = 27 from −5 − 2·4 = −13; the square holding both
        XCTAssertEqual(fields[2], ReceptiveField(size: 27, jump: 4, offset: -13))
    }

    func testProjectionStaysInsideReceptiveField() throws {
        let shape = ImageShape(channels: 1, height: 16, width: 16)
        let model = try makeModel("conv:4:5:same,maxpool:2,conv:4:5:same,maxpool:2,fc", shape)
        let projector = try Projector(model: model)
        let images = randomImages(2, shape, seed: 8)
        for layer in projector.featureLayers {
            let field = projector.receptiveField(of: layer)
            let units = [FeatureUnit(channel: 1, y: 1, x: 2), FeatureUnit(channel: 2, y: 0, x: 0)]
            let p = engineProjections(projector, images, layer: layer, seeds: units, method: .gradient)
            let dp = engineProjections(projector, images, layer: layer, seeds: units, method: .deconvnet)
            for (b, unit) in units.enumerated() {
                let (row, column) = field.origin(y: unit.y, x: unit.x)
                for y in 0..<shape.height {
                    for x in 0..<shape.width where !(row..<row + field.size).contains(y) || !(column..<column + field.size).contains(x) {
                        XCTAssertEqual(p[b][y * shape.width + x], 0, "layer \(layer) pixel \(y),\(x)")
                        XCTAssertEqual(dp[b][y * shape.width + x], 0, "layer \(layer) pixel \(y),\(x)")
                    }
                }
            }
        }
    }

    /// Images of constant brightness i/30 through a positive filter: the top 3 of each channel are the
    /// three brightest images, strongest first.
    func testTopKPicksTheBrightestImages() throws {
        let shape = ImageShape(channels: 1, height: 6, width: 6)
        let model = try makeModel("conv:2:3:valid,fc", shape)
        let conv = model.layers[0] as! Conv2D
        for i in 0..<18 { conv.weight[i] = 1.0 / 9 }
        (conv.bias[0], conv.bias[1]) = (0, 0.5)
        let count = 30
        let order = (0..<count).map { ($0 * 7) % count }  // brightness order shuffled over the indices
        let pixels = order.flatMap { [UInt8](repeating: UInt8($0 * 8), count: shape.count) }
        let data = Dataset(shape: shape, pixels: pixels, labels: [Int32](repeating: 0, count: count), classNames: ["x"])
        let projector = try Projector(model: model)
        let top = projector.topActivations(in: data, layer: 0, channels: [0, 1], k: 3, batchSize: 4)
        let brightest = (0..<count).sorted { order[$0] > order[$1] }.prefix(3)
        XCTAssertEqual(top[0].map(\.image), Array(brightest))
        XCTAssertEqual(top[1].map(\.image), Array(brightest))
        XCTAssertEqual(top[0][0].value, Float(29 * 8) / 255, accuracy: 1e-5)
        XCTAssertEqual(top[1][0].value, Float(29 * 8) / 255 + 0.5, accuracy: 1e-5)
        XCTAssertEqual(top[0][0].unit, FeatureUnit(channel: 0, y: 0, x: 0), "ties over positions go to the first")
    }

    /// Batched search equals a one-image-at-a-time brute force; batched projections of the winners
    /// equal single projections.
    func testTopKMatchesBruteForce() throws {
        let shape = ImageShape(channels: 1, height: 8, width: 8)
        let model = try makeModel("conv:3:3:same,maxpool:2,conv:5:3:same,fc", shape)
        let projector = try Projector(model: model)
        var random = SeededRandom(seed: 12)
        let count = 23
        let data = Dataset(shape: shape, pixels: (0..<count * shape.count).map { _ in UInt8(random.int(below: 256)) },
                           labels: [Int32](repeating: 0, count: count), classNames: ["x"])
        let layer = try projector.layerIndex(named: "conv2")
        let channels = [4, 0, 2]
        let top = projector.topActivations(in: data, layer: layer, channels: channels, k: 4, batchSize: 5)
        var all: [[TopActivation]] = channels.map { _ in [] }
        for i in 0..<count {
            let image = data.image(i).data
            image.withUnsafeBufferPointer { projector.forward($0.baseAddress!, batch: 1, through: layer) }
            for (slot, c) in channels.enumerated() {
                let best = projector.strongest(in: layer, image: 0, channel: c)
                all[slot].append(TopActivation(image: i, unit: best.unit, value: best.value))
            }
        }
        for slot in channels.indices {
            let expected = all[slot].sorted { $0.value > $1.value || ($0.value == $1.value && $0.image < $1.image) }.prefix(4)
            XCTAssertEqual(top[slot], Array(expected), "channel \(channels[slot])")
        }
        let hits = top.flatMap { $0 }
        let batched = projector.project(hits, in: data, layer: layer, method: .deconvnet, batchSize: 5)
        for (hit, projection) in zip(hits, batched) {
            let single = engineProjections(projector, [data.image(hit.image).data], layer: layer, seeds: [hit.unit], method: .deconvnet)[0]
            XCTAssertLessThanOrEqual(maxDifference(projection, single), 1e-6)
        }
    }

    func testBadLayerChannelAndModelErrors() throws {
        let shape = ImageShape(channels: 1, height: 8, width: 8)
        let model = try makeModel("conv:3:3:same,maxpool:2,conv:4:3:same,fc:6,fc", shape)
        let projector = try Projector(model: model)
        func assertThrows(_ expected: ProjectionError, _ body: () throws -> Void, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { error in
                XCTAssertEqual(error as? ProjectionError, expected, line: line)
                let message = (error as? LocalizedError)?.errorDescription ?? ""
                XCTAssertFalse(message.isEmpty || message.contains("\n"), message, line: line)
            }
        }
        let names = ["conv1", "pool1", "conv2"]
        assertThrows(.unknownLayer("conv9", available: names)) { _ = try projector.layerIndex(named: "conv9") }
        assertThrows(.notProjectable("fc1", available: names)) { _ = try projector.layerIndex(named: "fc1") }
        assertThrows(.channelOutOfRange(4, layer: "conv2", channels: 4)) { try projector.validate(FeatureUnit(channel: 4, y: 0, x: 0), in: 2) }
        assertThrows(.channelOutOfRange(-1, layer: "conv2", channels: 4)) { try projector.validate(FeatureUnit(channel: -1, y: 0, x: 0), in: 2) }
        assertThrows(.positionOutOfRange(y: 4, x: 0, layer: "pool1", height: 4, width: 4)) { try projector.validate(FeatureUnit(channel: 0, y: 4, x: 0), in: 1) }
        XCTAssertNoThrow(try projector.validate(FeatureUnit(channel: 3, y: 3, x: 3), in: 2))

        let dense = try makeModel("fc:6,fc", shape)
        assertThrows(.noConvolution(spec: "fc:6,fc")) { _ = try Projector(model: dense) }
        if let recurrent = try? Sequential(spec: try ModelSpec.preset("gru", hidden: 8), inputShape: shape, classes: 3) {
            assertThrows(.noConvolution(spec: recurrent.spec.description)) { _ = try Projector(model: recurrent) }
        }
    }
}
