import Net

/// One row of first-layer filters for the training log's snapshots (`Trainer.drawFilters`): each tile
/// min–max normalised on its own (0 → black, 1 → white), `scale` pixels per weight, 1-pixel gaps. Color
/// when the filters have 3 input channels, else the first input channel in gray. `weights` is
/// `(O, C, kh, kw)`.
func filterRow(_ weights: UnsafePointer<Float>, shape: [Int], scale: Int = 4) -> Image {
    let (o, c, kh, kw) = (shape[0], shape[1], shape[2], shape[3])
    let channels = c == 3 ? 3 : 1
    let (tileW, tileH) = (kw * scale, kh * scale)
    let width = o * (tileW + 1) - 1
    var pixels = [UInt8](repeating: 40, count: width * tileH * channels)
    for f in 0..<o {
        let filter = weights + f * c * kh * kw
        var (low, high) = (Float.infinity, -Float.infinity)
        for i in 0..<channels * kh * kw { low = Swift.min(low, filter[i]); high = Swift.max(high, filter[i]) }
        let range = high > low ? high - low : 1
        for y in 0..<tileH {
            for x in 0..<tileW {
                for ch in 0..<channels {
                    let v = (filter[(ch * kh + y / scale) * kw + x / scale] - low) / range
                    pixels[(y * width + f * (tileW + 1) + x) * channels + ch] = UInt8((v * 255).rounded())
                }
            }
        }
    }
    return Image(width: width, height: tileH, channels: channels, pixels: pixels)
}
