import Net

/// Every feature map of one layer for one or more images, all on one colour scale (the minimum to the
/// maximum over every map shown), with a colour bar. One image: its input beside a grid of its maps;
/// several: one row per image. Used by `featuremaps` and `inspect`.
struct FeatureMapFigure {
    /// `(n, C, h, w)`: the layer's output for the n images.
    var activations: [Float]
    /// `(C, h, w)` of the layer.
    var mapShape: [Int]
    /// The n images, `(C, H, W)` each in [0, 1], and their names.
    var inputs: [[Float]]
    var names: [String]
    var inputShape: ImageShape

    /// The shared scale: the smallest and largest activation shown.
    var range: (lo: Float, hi: Float) { (activations.min() ?? 0, activations.max() ?? 0) }

    var normalization: Normalization { .range(range.lo, range.hi) }

    /// Map `channel` of image `image` on the shared scale, upscaled by `scale`.
    func mapTile(image b: Int, channel c: Int, scale: Int) -> Canvas {
        let plane = mapShape[1] * mapShape[2]
        let start = (b * mapShape[0] + c) * plane
        return tile(Array(activations[start..<start + plane]), channels: 1, height: mapShape[1], width: mapShape[2], normalization, colorMap: .heat, scale: scale)
    }

    /// The figure, titled `title`, its tiles drawn `scale` times their usual size.
    func render(title: String, scale: Int = 1) -> Canvas {
        let s = mapShape
        let (lo, hi) = range
        let single = inputs.count == 1
        let mapScale = tileScale(max(s[1], s[2]), target: single ? 56 : 28) * scale
        let inputScale = tileScale(max(inputShape.height, inputShape.width), target: single ? 84 : 28) * scale
        func maps(_ b: Int) -> [Canvas] { (0..<s[0]).map { mapTile(image: b, channel: $0, scale: mapScale) } }
        func input(_ b: Int) -> Canvas { tile(inputs[b], channels: inputShape.channels, height: inputShape.height, width: inputShape.width, .range(0, 1), scale: inputScale) }
        let body: Canvas
        if single {
            let grid = Grid(wrapping: maps(0), captions: (0..<s[0]).map(String.init), columns: s[0] > 64 ? 16 : min(8, s[0])).render()
            body = Canvas.panels([(input(0), names[0]), (grid, "")], gap: 16)
        } else {
            let rows = inputs.indices.map { [input($0) as Canvas?] + maps($0).map { $0 as Canvas? } }
            body = Grid(rows: rows, columnHeaders: ["input"] + (0..<s[0]).map(String.init), rowHeaders: names).render()
        }
        return figure(title: title, body, notes: [normalization.description + " (after the layer's activation)"],
                      extras: [colorBar(.heat, lo: lo, hi: hi, unit: "activation")])
    }
}
