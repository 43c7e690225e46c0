import CJPEG
import CPNG
import Foundation

extension Image {
    /// Reads and decodes a PNG or JPEG file, told apart by its first bytes, not its extension
    /// (see `decode(_:name:)`). Errors name `path`.
    public init(contentsOfFile path: String) throws(DataError) {
        self = try Image.decode(readFile(path), name: path)
    }

    /// Decodes PNG or JPEG bytes, told apart by their magic bytes. PNG of any bit depth and color type
    /// becomes gray (1 channel) or RGB (3, for color and palette images); 16-bit samples are scaled to 8 bits;
    /// an alpha channel is dropped, keeping the color values as stored. JPEG becomes gray or RGB.
    /// A corrupt or truncated file throws `DataError.undecodableImage` naming `name`, and so does one whose
    /// header declares more than `maximumPixels` (at most `Image.maximumPixels`), before anything is decoded.
    public static func decode(_ bytes: some ContiguousBytes, name: String = "<memory>", maximumPixels: Int = Image.maximumPixels) throws(DataError) -> Image {
        let limit = min(maximumPixels, Image.maximumPixels)
        let result: Result<Image, DataError> = bytes.withUnsafeBytes { raw in
            if raw.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return decodePNG(raw, name: name, maximumPixels: limit) }
            if raw.starts(with: [0xFF, 0xD8, 0xFF]) { return decodeJPEG(raw, name: name, maximumPixels: limit) }
            return .failure(.undecodableImage(name, reason: "not a PNG or JPEG file"))
        }
        return try result.get()
    }

    /// The image as an 8-bit PNG file (gray or RGB), in memory.
    public func pngData() throws(DataError) -> Data {
        var png = pngHeader()
        var size: png_alloc_size_t = 0
        let measured = pixels.withUnsafeBytes { png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, 0, nil) }
        guard measured != 0 else { throw .writeFailed("<memory>", reason: pngMessage(png)) }
        var data = Data(count: Int(size))
        png = pngHeader()
        let written = data.withUnsafeMutableBytes { out in
            pixels.withUnsafeBytes { png_image_write_to_memory(&png, out.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        guard written != 0 else { throw .writeFailed("<memory>", reason: pngMessage(png)) }
        return data.prefix(Int(size))
    }

    /// Writes the image as an 8-bit PNG file, atomically: readers of `path` never see a partial file.
    public func writePNG(toFile path: String) throws(DataError) {
        let data: Data
        do {
            data = try pngData()
        } catch {
            throw .writeFailed(path, reason: error.localizedDescription)
        }
        do {
            try writeAtomically(data, to: path)
        } catch {
            throw .writeFailed(path, reason: error.localizedDescription)
        }
    }

    private func pngHeader() -> png_image {
        var png = png_image()
        png.version = png_uint_32(PNG_IMAGE_VERSION)
        png.width = png_uint_32(width)
        png.height = png_uint_32(height)
        png.format = channels == 3 ? png_uint_32(PNG_FORMAT_FLAG_COLOR) : 0
        return png
    }
}

extension Image {
    /// Every decoder refuses an image whose header declares more pixels than this (2^28, e.g. 16384 x 16384)
    /// before decoding it, whatever the memory budget.
    public static let maximumPixels = 1 << 28

    /// Why a `width x height` image with `stored` bytes per pixel while decoding cannot be decoded: more
    /// than `maximumPixels`, or over `MemoryBudget.current`; nil when it can. `name` names the file.
    static func checkDecodable(width: Int, height: Int, stored: Int, name: String, maximumPixels: Int = maximumPixels) -> DataError? {
        guard let pixels = MemoryBudget.size(of: [width, height]), pixels <= maximumPixels else {
            return .undecodableImage(name, reason: "its header declares \(width)x\(height) pixels, more than the"
                                     + " \(maximumPixels) this tool decodes")
        }
        do {
            try MemoryBudget.current.check(shape: [pixels, stored], for: "\(name) (a \(width)x\(height) image)")
        } catch {
            return .overBudget(error)
        }
        return nil
    }
}

private func decodePNG(_ raw: UnsafeRawBufferPointer, name: String, maximumPixels: Int) -> Result<Image, DataError> {
    var png = png_image()
    png.version = png_uint_32(PNG_IMAGE_VERSION)
    defer { png_image_free(&png) }
    guard png_image_begin_read_from_memory(&png, raw.baseAddress, raw.count) != 0 else {
        return .failure(.undecodableImage(name, reason: pngMessage(png)))
    }
    let color = png.format & png_uint_32(PNG_FORMAT_FLAG_COLOR) != 0
    let alpha = png.format & png_uint_32(PNG_FORMAT_FLAG_ALPHA) != 0
    // Asking for alpha when the file has it stops libpng from compositing; the alpha is dropped below.
    png.format = (color ? png_uint_32(PNG_FORMAT_FLAG_COLOR) : 0) | (alpha ? png_uint_32(PNG_FORMAT_FLAG_ALPHA) : 0)
    // Without this flag libpng takes 16-bit samples as linear light and gamma-encodes them.
    png.flags |= png_uint_32(PNG_IMAGE_FLAG_16BIT_sRGB)
    let (width, height) = (Int(png.width), Int(png.height))
    let channels = color ? 3 : 1, stored = channels + (alpha ? 1 : 0)
    if let refusal = Image.checkDecodable(width: width, height: height, stored: stored, name: name, maximumPixels: maximumPixels) { return .failure(refusal) }
    var buffer = [UInt8](repeating: 0, count: width * height * stored)
    let finished = buffer.withUnsafeMutableBytes { png_image_finish_read(&png, nil, $0.baseAddress, 0, nil) }
    guard finished != 0 else { return .failure(.undecodableImage(name, reason: pngMessage(png))) }
    if alpha {
        buffer = (0..<width * height).flatMap { buffer[$0 * stored..<$0 * stored + channels] }
    }
    return .success(Image(width: width, height: height, channels: channels, pixels: buffer))
}

/// libpng's message for the last warning or error on `png`.
private func pngMessage(_ png: png_image) -> String {
    withUnsafeBytes(of: png.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

private func decodeJPEG(_ raw: UnsafeRawBufferPointer, name: String, maximumPixels: Int) -> Result<Image, DataError> {
    var pixels: UnsafeMutablePointer<UInt8>?
    var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
    var message = [CChar](repeating: 0, count: Int(JMSG_LENGTH_MAX))
    // The shim stops after the header when the image is larger than this; then the check below says why.
    let maximumBytes = min(maximumPixels * 3, MemoryBudget.current.bytes)
    let status = deconvnet_jpeg_decode(raw.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(raw.count),
                                       UInt64(maximumPixels), UInt64(maximumBytes),
                                       &pixels, &width, &height, &channels, &message, Int32(message.count))
    defer { free(pixels) }
    if status == -2 {
        let refusal = Image.checkDecodable(width: Int(width), height: Int(height), stored: Int(channels), name: name, maximumPixels: maximumPixels)
        return .failure(refusal ?? .undecodableImage(name, reason: "image of \(width)x\(height) pixels is too large"))
    }
    guard status == 0, let pixels else {
        return .failure(.undecodableImage(name, reason: String(cString: message)))
    }
    guard jpegEndsWithEndMarker(raw) else {
        return .failure(.undecodableImage(name, reason: "JPEG data is truncated (no end-of-image marker)"))
    }
    let count = Int(width) * Int(height) * Int(channels)
    return .success(Image(width: Int(width), height: Int(height), channels: Int(channels),
                          pixels: Array(UnsafeBufferPointer(start: pixels, count: count))))
}

/// libjpeg pads a stream that ends early with a fake end-of-image marker and only warns, so a truncated
/// file would decode to a partly gray image. Entropy-coded data never holds `FF D9` or `FF DA`, so the real
/// end-of-image marker must come after the last start-of-scan marker.
private func jpegEndsWithEndMarker(_ raw: UnsafeRawBufferPointer) -> Bool {
    var i = raw.count - 2
    while i >= 0 {
        if raw[i] == 0xFF && raw[i + 1] == 0xD9 { return true }
        if raw[i] == 0xFF && raw[i + 1] == 0xDA { return false }
        i -= 1
    }
    return false
}
