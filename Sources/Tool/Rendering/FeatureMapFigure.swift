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

    /// The figure, titled `title`.
    func render(title: String) -> Canvas {
        let s = mapShape
        let (lo, hi) = range
        let count = s[0] * s[1] * s[2]
        let single = inputs.count == 1
        let mapScale = tileScale(max(s[1], s[2]), target: single ? 56 : 28)
        let inputScale = tileScale(max(inputShape.height, inputShape.width), target: single ? 84 : 28)
        func maps(_ b: Int) -> [Canvas] {
            (0..<s[0]).map { c in
                let start = b * count + c * s[1] * s[2]
                return tile(Array(activations[start..<start + s[1] * s[2]]), channels: 1, height: s[1], width: s[2], normalization, colorMap: .heat, scale: mapScale)
            }
        }
        func input(_ b: Int) -> Canvas { tile(inputs[b], channels: inputShape.channels, height: inputShape.height, width: inputShape.width, .range(0, 1), scale: inputScale) }
        let body: Canvas
        if single {
            let grid = Grid(wrapping: maps(0), captions: (0..<s[0]).map(String.init), columns: min(8, s[0])).render()
            body = Canvas.row([input(0).captioned(names[0]), grid], gap: 16)
        } else {
            let rows = inputs.indices.map { [input($0) as Canvas?] + maps($0).map { $0 as Canvas? } }
            body = Grid(rows: rows, columnHeaders: ["input"] + (0..<s[0]).map(String.init), rowHeaders: names).render()
        }
        return figure(title: title, body, notes: [normalization.description + " (after the layer's activation)"],
                      extras: [colorBar(.heat, lo: lo, hi: hi, caption: "activation")])
    }
}
