import Net
import Occlusion

/// Drawing rules for the occlusion figures: position maps are spread over the image (each pixel takes
/// the value of the occluder position whose window centre is nearest) and blended over the image's gray.
enum OcclusionStyle {
    /// Upscaling that draws an image about 168 pixels wide (times `scale`), and a position grid likewise.
    static func imageScale(_ shape: ImageShape, scale: Int = 1) -> Int { tileScale(max(shape.height, shape.width), target: 168) * scale }
    static func mapScale(_ grid: OcclusionGrid, scale: Int = 1) -> Int { tileScale(max(grid.rows, grid.cols), target: 168) * scale }

    /// The image, upscaled, with its caption.
    static func input(_ pixels: [Float], _ shape: ImageShape, scale: Int) -> (canvas: Canvas, caption: String) {
        (tile(pixels, channels: shape.channels, height: shape.height, width: shape.width, .range(0, 1), scale: scale), "input")
    }

    /// How position maps are drawn, for a note line.
    static func positionNote(_ grid: OcclusionGrid) -> String {
        "map value at each occluder position drawn at the window's centre; \(grid.window)x\(grid.window) window, stride \(grid.stride)"
    }

    /// `p(name)` or `logit(name)`, as the maps were scored.
    static func scoreLabel(_ maps: OcclusionMaps, targetName: String) -> String {
        maps.score == .probability ? "p(\(targetName))" : "logit(\(targetName))"
    }

    /// Figure 7 d: the target's score by occluder position, alone and over the image (lowest position
    /// outlined in red), on the map's own range (probabilities often stay within a few percent); tiles
    /// drawn `tileScale` times their usual size.
    static func classScoreFigure(_ maps: OcclusionMaps, _ pixels: [Float], targetName: String, tileScale: Int = 1) -> Canvas {
        let (shape, grid) = (maps.shape, maps.grid)
        let (lo, hi) = (maps.classScore.min()!, maps.classScore.max()!)
        let (scoreMap, scoreOverlay) = classScoreTiles(maps, pixels, tileScale: tileScale)
        let scale = imageScale(shape, scale: tileScale)
        let label = scoreLabel(maps, targetName: targetName)
        return figure(title: "class score: \(label), \(formatValue(maps.baseScore)) unoccluded", Canvas.panels([
            input(pixels, shape, scale: scale), (scoreMap, "\(label) by position"), (scoreOverlay, "over the image; red: lowest"),
        ]), notes: [positionNote(grid), "target \(maps.target) (\(maps.targetSource)); " + Normalization.range(lo, hi).description],
            extras: [colorBar(.heat, lo: lo, hi: hi, unit: maps.score == .probability ? "probability" : "logit")])
    }

    /// The bare tiles of Figure 7 d: the score by position on the map's own range, and the same over the
    /// image with the lowest position outlined in red.
    static func classScoreTiles(_ maps: OcclusionMaps, _ pixels: [Float], tileScale: Int = 1) -> (map: Canvas, overlay: Canvas) {
        let (shape, grid) = (maps.shape, maps.grid)
        let scale = imageScale(shape, scale: tileScale)
        let (lo, hi) = (maps.classScore.min()!, maps.classScore.max()!)
        var scoreOverlay = overlay(pixels, shape, map: spread(maps.classScore, grid), lo: lo, hi: hi, scale: scale)
        let m = maps.minimumScorePosition
        outline(&scoreOverlay, grid.box(at: m.row * grid.cols + m.col), scale: scale)
        let map = tile(maps.classScore, channels: 1, height: grid.rows, width: grid.cols, .range(lo, hi), colorMap: .heat, scale: mapScale(grid, scale: tileScale))
        return (map, scoreOverlay)
    }

    /// Share of the map's colour in an overlay; the rest is the image's gray.
    static let alpha: Float = 0.6

    /// A `(rows, cols)` position map spread to `(H, W)`: pixel (y, x) takes the position whose window
    /// centre `(r·s + (w−1)/2, c·s + (w−1)/2)` is nearest, clamped to the grid.
    static func spread(_ map: [Float], _ grid: OcclusionGrid) -> [Float] {
        func nearest(_ p: Int, _ count: Int) -> Int {
            let r = ((Float(p) - Float(grid.window - 1) / 2) / Float(grid.stride)).rounded()
            return min(max(Int(r), 0), count - 1)
        }
        var out = [Float](repeating: 0, count: grid.height * grid.width)
        for y in 0..<grid.height {
            for x in 0..<grid.width { out[y * grid.width + x] = map[nearest(y, grid.rows) * grid.cols + nearest(x, grid.cols)] }
        }
        return out
    }

    /// The image's luma, `(H, W)` in [0, 1] (the mean of three channels).
    static func gray(_ pixels: [Float], _ shape: ImageShape) -> [Float] {
        let plane = shape.height * shape.width
        return (0..<plane).map { i in (0..<shape.channels).reduce(Float(0)) { $0 + pixels[$1 * plane + i] } / Float(shape.channels) }
    }

    /// `colors` `(H·W)` blended over the image's gray at `alpha`, upscaled by `scale`.
    static func overlay(_ pixels: [Float], _ shape: ImageShape, colors: [RGB], scale: Int) -> Canvas {
        let g = gray(pixels, shape)
        var out = Canvas(width: shape.width, height: shape.height)
        for y in 0..<shape.height {
            for x in 0..<shape.width {
                let i = y * shape.width + x
                let v = min(max(g[i], 0), 1) * 255 * (1 - alpha)
                let c = colors[i]
                func mix(_ channel: UInt8) -> UInt8 { UInt8(min(255, (v + Float(channel) * alpha).rounded())) }
                out[x, y] = RGB(r: mix(c.r), g: mix(c.g), b: mix(c.b))
            }
        }
        return out.upscaled(scale)
    }

    /// A continuous `(H, W)` map over the image through `colorMap`, `lo ↦ 0` and `hi ↦ 1`.
    static func overlay(_ pixels: [Float], _ shape: ImageShape, map: [Float], lo: Float, hi: Float, colorMap: ColorMap = .heat, scale: Int) -> Canvas {
        let span = hi - lo
        return overlay(pixels, shape, colors: map.map { colorMap.color(span > 0 ? ($0 - lo) / span : 0.5) }, scale: scale)
    }

    /// Distinct colours for class indices (cycled beyond 12).
    static let palette: [RGB] = [
        RGB(r: 31, g: 119, b: 180), RGB(r: 255, g: 127, b: 14), RGB(r: 44, g: 160, b: 44), RGB(r: 214, g: 39, b: 40),
        RGB(r: 148, g: 103, b: 189), RGB(r: 140, g: 86, b: 75), RGB(r: 227, g: 119, b: 194), RGB(r: 127, g: 127, b: 127),
        RGB(r: 188, g: 189, b: 34), RGB(r: 23, g: 190, b: 207), RGB(r: 0, g: 0, b: 128), RGB(r: 128, g: 128, b: 0),
    ]

    static func color(ofClass c: Int) -> RGB { palette[c % palette.count] }

    /// One swatch and name per class, in a column.
    static func legend(_ classes: [Int], names: [String], counts: [Int: Int]) -> Canvas {
        Canvas.column(classes.map { c in
            var swatch = Canvas(width: 10, height: 10, background: color(ofClass: c))
            swatch.outline(x: 0, y: 0, width: 10, height: 10, .faint)
            let name = c < names.count ? names[c] : "class \(c)"
            return Canvas.row([swatch, .label("\(c) \(name): \(counts[c] ?? 0) positions", maxWidth: 280)], gap: 4)
        }, gap: 3)
    }

    /// A red outline of occluder `box` on a canvas drawn at `scale`.
    static func outline(_ canvas: inout Canvas, _ box: PlaneBox, scale: Int) {
        canvas.outline(x: box.x0 * scale - 1, y: box.y0 * scale - 1, width: box.width * scale + 2, height: box.height * scale + 2, .highlight)
    }
}
