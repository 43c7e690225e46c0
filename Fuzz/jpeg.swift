@testable import Net

/// JPEG decoding: any bytes decode to an image or throw `DataError`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let data = fuzzInput(bytes, count)
    if let image = try? Image.decode(data, name: "fuzz.jpg") {
        precondition(image.pixels.count == image.width * image.height * image.channels)
    }
    return 0
}
