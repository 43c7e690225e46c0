@testable import Net

/// PNG decoding: any bytes after the PNG signature decode to an image or throw `DataError`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let data = fuzzInput(bytes, count)
    if let image = try? Image.decode(data, name: "fuzz.png") {
        precondition(image.pixels.count == image.width * image.height * image.channels)
    }
    return 0
}
