/// JPEG decoding (the decoder is chosen by content, so the seeds are JPEG files).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    fuzzImageDecoder(bytes, count, name: "fuzz.jpeg")
}
