@testable import Net

/// `.npy` parsing; what parses writes back to the same bytes' tensor.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNpy(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let data = fuzzInput(bytes, count)
    guard let tensor = try? parseNpy([UInt8](data), path: "fuzz.npy") else { return 0 }
    precondition(tensor.data.count == tensor.shape.reduce(1, *))
    if tensor.shape.count > 0 {
        let again = try! parseNpy(npyBytes(tensor))
        precondition(again.shape == tensor.shape && again.data.count == tensor.data.count)
    }
    return 0
}
