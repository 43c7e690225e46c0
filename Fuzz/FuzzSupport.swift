@testable import Net
import Foundation

/// The bytes libFuzzer hands a target, as `Data`. Every target runs under a small memory budget, so
/// that a size the input declares is refused by the readers' own checks, well before libFuzzer's
/// allocation limit would call it a crash.
func fuzzInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Data {
    MemoryBudget.current = MemoryBudget(bytes: 64 << 20)
    return Data(bytes: bytes, count: count)
}

/// Image decoding: any bytes decode to a consistent image or throw `DataError` (never trap or exhaust memory).
func fuzzImageDecoder(_ bytes: UnsafePointer<UInt8>, _ count: Int, name: String) -> Int32 {
    let data = fuzzInput(bytes, count)
    if let image = try? Image.decode(data, name: name) {
        precondition(image.pixels.count == image.width * image.height * image.channels)
    }
    return 0
}
