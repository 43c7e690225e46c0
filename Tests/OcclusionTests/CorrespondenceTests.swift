import Net
import XCTest
@testable import Occlusion

final class CorrespondenceTests: XCTestCase {
    func testDeltaOnConstructedChanges() {
        XCTAssertEqual(signHammingDelta([[1, -2, 0, 3], [1, -2, 0, 3], [5, -1, 0, 0.5]]), 0)
        XCTAssertEqual(signHammingDelta([[1, -1, 2, 0], [-1, 1, -2, 1]]), 1)
        // Pairs: (a,b) differ in 1 of 4, (a,c) in 2, (b,c) in 1 → mean 4/3 of 4 entries.
        XCTAssertEqual(signHammingDelta([[1, 1, 1, 1], [1, 1, 1, -1], [1, 1, -1, -1]]), 1.0 / 3, accuracy: 1e-6)
    }

    func testIdenticalImagesGiveZeroDelta() throws {
        let shape = ImageShape(channels: 1, height: 10, width: 10)
        let model = try randomModel("conv:3:3:same,maxpool:2,fc:6,fc", shape)
        let image = randomImage(shape)
        let rows = try correspondence(model: model, images: [image, image, image], region: PlaneBox(y: 2, x: 3, height: 4, width: 4),
                                      randomRegions: 3, seed: 1)
        XCTAssertEqual(rows.map(\.layer), ["conv1", "pool1", "fc1"])
        for row in rows {
            XCTAssertEqual(row.delta, 0)
            XCTAssertEqual(row.randomDelta, 0)
        }
    }

    func testDifferentImagesGivePositiveDeltaAndRandomBaseline() throws {
        let shape = ImageShape(channels: 1, height: 10, width: 10)
        let model = try randomModel("conv:3:3:same,fc:6,fc", shape)
        let images = (0..<4).map { randomImage(shape, seed: UInt64($0 + 20)) }
        let rows = try correspondence(model: model, images: images, region: PlaneBox(y: 0, x: 0, height: 3, width: 3), layers: [0], randomRegions: 5)
        XCTAssertEqual(rows.count, 1)
        XCTAssertGreaterThan(rows[0].delta, 0)
        XCTAssertLessThanOrEqual(rows[0].delta, 1)
        XCTAssertNotNil(rows[0].randomDelta)
    }

    func testBadRegionAndTooFewImages() throws {
        let shape = ImageShape(channels: 1, height: 10, width: 10)
        let model = try randomModel("conv:3:3:same,fc", shape)
        let image = randomImage(shape)
        let outside = PlaneBox(y: 8, x: 0, height: 4, width: 4)
        XCTAssertThrowsError(try correspondence(model: model, images: [image, image], region: outside)) {
            XCTAssertEqual($0 as? OcclusionError, .regionOutsideImage(outside, height: 10, width: 10))
        }
        XCTAssertThrowsError(try correspondence(model: model, images: [image], region: PlaneBox(y: 0, x: 0, height: 2, width: 2))) {
            XCTAssertEqual($0 as? OcclusionError, .tooFewImages(1))
        }
    }
}

final class InvarianceTests: XCTestCase {
    let shape = ImageShape(channels: 1, height: 5, width: 5)
    let image: [Float] = (0..<25).map { Float($0) }

    func testTranslate() {
        let right = ImageTransform.translate.apply(image, shape, amount: 2)
        XCTAssertEqual(Array(right[0..<5]), [0, 0, 0, 1, 2])
        let up = ImageTransform.translateY.apply(image, shape, amount: -1)
        XCTAssertEqual(Array(up[0..<5]), [5, 6, 7, 8, 9])
        XCTAssertEqual(Array(up[20..<25]), [0, 0, 0, 0, 0])
    }

    func testIdentityAmountsAndQuarterTurn() {
        for t in ImageTransform.allCases {
            XCTAssertEqual(t.apply(image, shape, amount: t.identity), image, accuracy: 1e-4)
        }
        // 90° counter-clockwise: the top row (0…4, left to right) becomes the left column, bottom to top.
        let turned = ImageTransform.rotate.apply(image, shape, amount: 90)
        XCTAssertEqual([turned[20], turned[15], turned[10], turned[5], turned[0]], [0, 1, 2, 3, 4], accuracy: 1e-4)
    }

    func testScaleAboutTheCentre() {
        let zoomed = ImageTransform.scale.apply(image, shape, amount: 2)
        XCTAssertEqual(zoomed[12], 12, accuracy: 1e-5)  // the centre stays
        XCTAssertEqual(zoomed[13], 12.5, accuracy: 1e-5)  // half a pixel to the right
        let shrunk = ImageTransform.scale.apply(image, shape, amount: 0.5)
        XCTAssertEqual(shrunk[0], 0, accuracy: 1e-5)  // from outside the image
    }

    func testCurveAtIdentityIsZeroDistance() throws {
        let s = ImageShape(channels: 1, height: 10, width: 10)
        let model = try randomModel("conv:3:3:same,maxpool:2,fc:6,dropout:0.5,fc", s)
        let (first, last) = invarianceLayers(model)
        XCTAssertEqual(model.layers[first].name, "conv1")
        XCTAssertEqual(model.layers[last].name, "fc1")
        let points = try invarianceCurve(model: model, image: randomImage(s), transform: .rotate, amounts: [0, 30], firstLayer: first, lastLayer: last, target: 1)
        XCTAssertEqual(points[0].firstDistance, 0, accuracy: 1e-4)
        XCTAssertEqual(points[0].lastDistance, 0, accuracy: 1e-4)
        XCTAssertGreaterThan(points[1].firstDistance, 0)
        XCTAssertThrowsError(try invarianceCurve(model: model, image: randomImage(s), transform: .rotate, amounts: [0], firstLayer: first, lastLayer: last, target: 9))
    }
}
