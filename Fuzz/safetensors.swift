@testable import Net

/// Safetensors parsing, then loading the tensors into a small model as a checkpoint would.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let data = fuzzInput(bytes, count)
    guard let checkpoint = try? Checkpoint.parse([UInt8](data), path: "fuzz.safetensors") else { return 0 }
    let model = try! Sequential(spec: ModelSpec(parsing: "fc:3,fc"), inputShape: ImageShape(channels: 1, height: 2, width: 2), classes: 2)
    try? model.load(parameters: checkpoint)
    return 0
}
