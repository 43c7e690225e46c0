@testable import Net
import Foundation

/// The bytes libFuzzer hands a target, as `Data`. Every target runs under a small memory budget, so
/// that a size the input declares is refused by the readers' own checks, well before libFuzzer's
/// allocation limit would call it a crash.
func fuzzInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Data {
    MemoryBudget.current = MemoryBudget(bytes: 64 << 20)
    return Data(bytes: bytes, count: count)
}
