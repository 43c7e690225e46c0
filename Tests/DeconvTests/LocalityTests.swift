@testable import Deconv
import Foundation
import Net
import XCTest

/// A single unit's projection carried only over its receptive field (each convolution filtering the
/// crop of its planes the field covers) equals the projection carried over whole planes.
final class LocalityTests: XCTestCase {
    /// Strided, padded (per side), grouped and Winograd-sized convolutions, padded ceil-mode max pooling
    /// and padded average pooling; and a model with batch norm (taking the activation), local response
    /// normalisation and dropout. The inputs are large enough that the fields of the upper layers'
    /// units cover only part of the lower planes.
    static let models: [(String, ImageShape)] = [
        ("conv:4:5:stride=2:pad=2,maxpool:3:2:pad=1:ceil,conv:8:3:same,conv:12:3x2:pad=1/0/0/1:groups=2,conv:12:3:same,"
            + "avgpool:3:2:pad=1,conv:6:3:valid,fc", ImageShape(channels: 3, height: 37, width: 35)),
        ("conv:8:3:same,bn,lrn:3:alpha=0.5:beta=0.75:k=1,maxpool:2,conv:16:3:same,bn,dropout:0.3,conv:16:3:stride=2:pad=1,"
            + "lrn:5:alpha=1,conv:8:3:same,bn,fc", ImageShape(channels: 2, height: 24, width: 24)),
        // enough output channels for one image's crops to be split among the workers
        ("conv:32:3:same,maxpool:2,conv:48:3:pad=1,conv:40:5:valid,fc", ImageShape(channels: 3, height: 22, width: 22)),
    ]

    func testLocalProjectionsEqualWholePlaneProjections() throws {
        for (index, (spec, shape)) in Self.models.enumerated() {
            let model = try makeModel(spec, shape, seed: 21)
            randomizeBatchNorm(model)
            let projector = try Projector(model: model)
            let images = randomImages(3, shape, seed: 5)
            var cropped = 0
            for layer in projector.featureLayers {
                let s = projector.shape(of: layer)
                let corners = [FeatureUnit(channel: s[0] - 1, y: 0, x: 0), FeatureUnit(channel: s[0] - 1, y: s[1] / 2, x: s[2] / 2),
                               FeatureUnit(channel: s[0] - 1, y: s[1] - 1, x: s[2] - 1)]
                let mixed = [FeatureUnit(channel: 0, y: s[1] - 1, x: 0), FeatureUnit(channel: s[0] / 2, y: s[1] / 2, x: s[2] - 1),
                             FeatureUnit(channel: s[0] - 1, y: 0, x: s[2] / 2)]
                // one image per seed; one channel (the channel slice and the crop together) or several; the
                // seeds of a batch share one box (the union of their fields)
                let batches = corners.map { [$0] } + [corners, mixed]
                for seeds in batches {
                    cropped += model.layers[0...layer].indices.filter { isCropped(model, below: layer, seeds: seeds, at: $0) }.count
                    let batch = Array(images[0..<seeds.count])
                    for method in ProjectionMethod.allCases {
                        let local = engineProjections(projector, batch, layer: layer, seeds: seeds, method: method)
                        let whole = wholePlaneProjections(projector, layer: layer, seeds: seeds, method: method)
                        for b in seeds.indices {
                            assertClose(local[b], whole[b].map(Double.init), tolerance: 1e-5, "\(spec) \(model.layers[layer].name) \(method) seed \(seeds[b])")
                            if method == .deconvnet { XCTAssertGreaterThan(whole[b].map(abs).max()!, 0, "the deconvnet's seed reaches the input") }
                        }
                    }
                }
            }
            XCTAssertGreaterThan(cropped, 10, "model \(index) takes the cropped path")
        }
    }

    /// A forward pass over one position's receptive field leaves what a whole pass leaves wherever the
    /// units at that position and their projections read: their values in every channel, and their
    /// projections by every method, equal those after a whole pass (which a pass over another image
    /// before it does not change). With the parameters fixed, the crops of at least
    /// `Conv2D.winogradMinimumCropTiles` tiles (the deep stack's lower layers) take Winograd on the fixed
    /// filters, going up and going down; tanh checks the guided and gradient rules where f' of a stale
    /// value would not be 0.
    func testForwardOverOneReceptiveFieldEqualsTheWholePass() throws {
        let deep = ("conv:8:3:same," + String(repeating: "conv:16:3:same,", count: 8) + "conv:8:3:same,fc", ImageShape(channels: 2, height: 36, width: 36))
        let cases = (Self.models + [deep]).map { ($0.0, $0.1, Activation.relu) } + [(Self.models[2].0, Self.models[2].1, Activation.tanh)]
        for (spec, shape, activation) in cases {
            for fixed in [false, true] {
                let model = try makeModel(spec, shape, activation: activation, seed: 21)
                randomizeBatchNorm(model)
                if fixed { try model.fixParameters() }
                let (local, whole) = (try Projector(model: model), try Projector(model: model))
                let images = randomImages(2, shape, seed: 6)
                var winogradCrops = 0
                for layer in local.featureLayers {
                    let s = local.shape(of: layer)
                    for (y, x) in [(0, 0), (s[1] / 2, s[2] / 2), (s[1] - 1, 0)] {
                        images[1].withUnsafeBufferPointer { local.forward($0.baseAddress!, batch: 1, through: layer) }
                        images[0].withUnsafeBufferPointer {
                            local.forward($0.baseAddress!, batch: 1, through: layer, at: (y, x))
                            whole.forward($0.baseAddress!, batch: 1, through: layer)
                        }
                        winogradCrops += winogradCropsOfForward(model, below: layer, at: (y, x))
                        let label = "\(spec) \(activation) fixed \(fixed) \(model.layers[layer].name) at \(y),\(x)"
                        for channel in 0..<s[0] {
                            let unit = FeatureUnit(channel: channel, y: y, x: x)
                            let expected = whole.value(of: unit, in: layer, image: 0)
                            XCTAssertEqual(local.value(of: unit, in: layer, image: 0), expected, accuracy: 1e-5 * max(1, abs(expected)), "\(label) channel \(channel)")
                        }
                        for method in ProjectionMethod.allCases {
                            let unit = FeatureUnit(channel: s[0] - 1, y: y, x: x)
                            var (a, b) = ([Float](repeating: .nan, count: shape.count), [Float](repeating: .nan, count: shape.count))
                            a.withUnsafeMutableBufferPointer { local.project([unit], from: layer, method: method, into: $0.baseAddress!) }
                            b.withUnsafeMutableBufferPointer { whole.project([unit], from: layer, method: method, into: $0.baseAddress!) }
                            assertClose(a, b.map(Double.init), tolerance: 1e-5, "\(label) \(method)")
                        }
                    }
                }
                if fixed && spec == deep.0 { XCTAssertGreaterThanOrEqual(winogradCrops, 5, "\(spec): crops take Winograd") }
                if !fixed { XCTAssertEqual(winogradCrops, 0, "\(spec): crops take im2col unless the filters are fixed") }
            }
        }
    }

    /// How many convolutions below layer `top` a forward pass for the units at `position` computes on a
    /// crop with Winograd.
    private func winogradCropsOfForward(_ model: Sequential, below top: Int, at position: (y: Int, x: Int)) -> Int {
        var box = PlaneBox(y: position.y, x: position.x, height: 1, width: 1)
        var count = 0
        for i in stride(from: top, through: 0, by: -1) {
            if croppedConvolution(model.layers[i], reading: box)?.layer.usesWinograd ?? false { count += 1 }
            if i > 0 { box = footprint(model.layers[i], box) }
        }
        return count
    }

    /// The im2col crop (the filters are not fixed) of a padded 3×3 convolution below a corner computes
    /// exactly the box's outputs, padded only on the sides where their windows pass the plane; a strided
    /// one's reads exactly its windows.
    func testCropGeometry() throws {
        let model = try makeModel("conv:8:3:same,conv:16:3:same,conv:8:3:stride=2:pad=1,fc", ImageShape(channels: 3, height: 20, width: 20))
        let (conv2, conv3) = (model.layers[1], model.layers[2])
        let corner = try XCTUnwrap(croppedConvolution(conv2, reading: PlaneBox(y0: 0, y1: 3, x0: 17, x1: 20)))
        XCTAssertEqual(corner.inputBox, PlaneBox(y0: 0, y1: 4, x0: 16, x1: 20))
        XCTAssertEqual(corner.outputBox, PlaneBox(y0: 0, y1: 3, x0: 17, x1: 20))
        let g = corner.layer.geometry
        XCTAssertEqual([g.padTop, g.padLeft, g.padBottom, g.padRight], [1, 0, 0, 1])
        XCTAssertTrue(conv2 is Conv2D && (conv2 as! Conv2D).usesWinograd)
        XCTAssertEqual(corner.layer.path, .im2col)
        let strided = try XCTUnwrap(croppedConvolution(conv3, reading: PlaneBox(y0: 5, y1: 6, x0: 5, x1: 6)))
        XCTAssertEqual(strided.inputBox, PlaneBox(y0: 9, y1: 12, x0: 9, x1: 12))  // rows 9-11 and no padding
        XCTAssertEqual(strided.outputBox, PlaneBox(y0: 5, y1: 6, x0: 5, x1: 6))
        XCTAssertEqual(strided.layer.geometry.uniformPadding, 0)
        XCTAssertNil(croppedConvolution(conv2, reading: PlaneBox(y0: 0, y1: 20, x0: 1, x1: 19)), "a crop that covers the plane")
        XCTAssertNil(croppedConvolution(model.layers[3], reading: PlaneBox(y0: 0, y1: 1, x0: 0, x1: 1)), "not a convolution")
    }

    /// Whether the projection of `seeds` from layer `top` filters layer `index` over a crop.
    private func isCropped(_ model: Sequential, below top: Int, seeds: [FeatureUnit], at index: Int) -> Bool {
        var box = PlaneBox(y0: seeds.map(\.y).min()!, y1: seeds.map(\.y).max()! + 1, x0: seeds.map(\.x).min()!, x1: seeds.map(\.x).max()! + 1)
        for i in stride(from: top, to: index, by: -1) { box = footprint(model.layers[i], box) }
        return croppedConvolution(model.layers[index], reading: box) != nil
    }

    /// The projections of the last forward batch carried over whole planes (`carryDown` told nothing
    /// of where the signal lies).
    private func wholePlaneProjections(_ projector: Projector, layer: Int, seeds: [FeatureUnit], method: ProjectionMethod) -> [[Float]] {
        let (model, n) = (projector.model, seeds.count)
        let (g, spare) = signalBuffers(model.layers[0...layer], batch: n)
        defer {
            g.deallocate()
            spare.deallocate()
        }
        let top = model.layers[layer], s = top.outputShape
        g.update(repeating: 0, count: n * top.outputCount)
        for (b, unit) in seeds.enumerated() { g[b * top.outputCount + (unit.channel * s[1] + unit.y) * s[2] + unit.x] = 1 }
        let size = model.inputShape.count
        var out = [Float](repeating: .nan, count: n * size)
        out.withUnsafeMutableBufferPointer {
            carryDown(model, projector.record, from: layer, signal: g, spare: spare, support: .anywhere, scratch: Workspace(), method: method, into: $0.baseAddress!)
        }
        return (0..<n).map { Array(out[$0 * size..<($0 + 1) * size]) }
    }
}
