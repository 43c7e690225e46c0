import ArgumentParser
import Foundation
import Net
import Occlusion

/// `--region Y,X,H,W`.
struct RegionArgument: ExpressibleByArgument {
    var box: PlaneBox

    init?(argument: String) {
        let parts = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 4, let y = parts[0], let x = parts[1], let h = parts[2], let w = parts[3] else { return nil }
        box = PlaneBox(y: y, x: x, height: h, width: w)
    }
}

/// `deconvnet correspondence`: Zeiler and Fergus's section 4.2 on a set of images.
struct CorrespondenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "correspondence",
        abstract: "Occlude the same region in several images and measure how consistently each layer's features change (Zeiler & Fergus, section 4.2).",
        discussion: """
            For each image i and layer l, eps_i = x_i - x~_i is the change of the layer's feature vector \
            when the region is set to --fill. Delta is the mean over image pairs of the Hamming distance \
            between sign(eps_i) and sign(eps_j), divided by the vector's length (0: every image's features \
            moved the same way). It is compared with the mean Delta of --random regions of the same size, \
            each placed uniformly at random (the same place in every image); a region whose Delta is below \
            the random one is one the layer treats consistently across the images.
            """)

    @OptionGroup var checkpoint: CheckpointOptions

    @Option(help: ArgumentHelp("Data set directory.", valueName: "dir"))
    var data: String

    @Option(help: "Split of --data: train or test.")
    var split: Split = .test

    @Option(help: ArgumentHelp("Images of the split, comma-separated (at least two).", valueName: "i1,i2,..."))
    var indices: String

    @Option(help: ArgumentHelp("The occluded region: top row, left column, height, width.", valueName: "y,x,h,w"))
    var region: RegionArgument

    @Option(help: ArgumentHelp("Layers, comma-separated (default: all but dropouts and the classifier).", valueName: "names"))
    var layer: String?

    @Option(help: "Random regions of the same size to compare with.")
    var random = 10

    @Option(help: "Occluder value: a number, zero, or mean.")
    var fill = FillArgument(.constant(0.5))

    @Option(help: "Seed for the random regions.")
    var seed: UInt64 = 0

    @Flag(help: "Print JSON.")
    var json = false

    private var indexList: [Int]? {
        let parts = indices.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        return parts.map { $0! }
    }

    @OptionGroup var memoryOptions: MemoryOptions

    func validate() throws {
        guard let list = indexList else { throw ValidationError("--indices must be image numbers separated by commas, not '\(indices)'") }
        guard list.count >= 2 else { throw ValidationError("--indices needs at least two images") }
        guard region.box.height >= 1, region.box.width >= 1, region.box.y0 >= 0, region.box.x0 >= 0 else {
            throw ValidationError("--region needs y,x >= 0 and h,w >= 1")
        }
        guard random >= 0 else { throw ValidationError("--random must be 0 or more") }
    }

    func run() throws {
        let model = try checkpoint.load().model
        let dataset = try loadSplit(data, split, for: model)
        let list = indexList!
        for i in list where i >= dataset.count { throw InspectionError.indexOutOfRange(i, count: dataset.count, data: data, split: split) }
        let layers = try layer.map { text in
            try text.split(separator: ",").map { name -> Int in
                let name = name.trimmingCharacters(in: .whitespaces)
                guard let found = model.layer(named: name) else { throw OcclusionError.layerNotFound(name, available: model.layers.map(\.name)) }
                return found.index
            }
        }
        let rows = try correspondence(model: model, images: list.map { dataset.image($0).data }, region: region.box, fill: fill.fill,
                                      layers: layers, randomRegions: random, seed: seed)
        if json {
            struct Output: Encodable {
                var region: [Int], images: [Int], random: Int, fill: String
                var layers: [CorrespondenceRow]
            }
            let b = region.box
            print(jsonString(Output(region: [b.y0, b.x0, b.height, b.width], images: list, random: random, fill: fill.description, layers: rows)))
            return
        }
        let b = region.box
        print("region rows \(b.y0)-\(b.y1 - 1), columns \(b.x0)-\(b.x1 - 1) (\(b.height)x\(b.width)) in \(list.count) images, fill \(fill); \(random) random regions")
        print("layer".padding(toLength: 10, withPad: " ", startingAt: 0) + "features".leftPadded(10) + "delta".leftPadded(10) + "random".leftPadded(18))
        for row in rows {
            let randomText = row.randomDelta.map { String(format: "%.4f ± %.4f", $0, row.randomStd ?? 0) } ?? "-"
            print(row.layer.padding(toLength: 10, withPad: " ", startingAt: 0) + "\(row.features)".leftPadded(10)
                  + String(format: "%.4f", row.delta).leftPadded(10) + randomText.leftPadded(18))
        }
    }
}

extension String {
    /// Right-aligned in `width` characters.
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
