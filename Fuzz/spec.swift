@testable import Net

/// The model-spec parser: what parses prints back to a spec that parses to itself, and building it on a
/// 1x28x28 input either works or throws (never traps or runs out of memory).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpec(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let text = String(decoding: fuzzInput(bytes, count), as: UTF8.self)
    guard let spec = try? ModelSpec(parsing: text) else { return 0 }
    precondition((try? ModelSpec(parsing: spec.description)) == spec, "\(spec) does not round-trip")
    MemoryBudget.current = MemoryBudget(bytes: 8 << 20)
    _ = try? Sequential(spec: spec, inputShape: ImageShape(channels: 1, height: 28, width: 28), classes: 10)
    return 0
}
