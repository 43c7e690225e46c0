@testable import Net

/// ONNX decoding and the graph walk: any bytes give a network or throw (never trap, hang or allocate
/// past the budget); a network that comes out builds as a model or throws.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let data = fuzzInput(bytes, count)
    guard let network = try? ONNXImporter.read(bytes: [UInt8](data), inputShape: nil) else { return 0 }
    _ = try? network.model()
    return 0
}
