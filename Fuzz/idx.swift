@testable import Net

/// IDX parsing, plain or gzip (told apart by content, so one target covers both): the first byte picks
/// the number of dimensions (1 or 3), the rest is the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    guard count > 0 else { return 0 }
    let data = fuzzInput(bytes + 1, count - 1)
    let dimensions = bytes[0] & 1 == 0 ? 1 : 3
    if let array = try? IDXReader.parse(data, name: "fuzz-idx", dimensions: dimensions) {
        precondition(array.bytes.count >= array.offset + array.shape.reduce(1, *))
    }
    return 0
}
