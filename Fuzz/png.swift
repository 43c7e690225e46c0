/// PNG decoding (the decoder is chosen by content, so the seeds are PNG files).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    fuzzImageDecoder(bytes, count, name: "fuzz.png")
}
