@testable import Net

/// One CIFAR-10 binary batch file, then the records converted as `--size 8 --grayscale` would.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIFAR(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let data = fuzzInput(bytes, count)
    guard let records = try? CIFARBinaryReader.parse(data, name: "fuzz.bin", classCount: 10) else { return 0 }
    precondition(records.labels.allSatisfy { 0..<10 ~= $0 })
    let shape = ImageShape(channels: 3, height: 32, width: 32)
    let pixels = try? Conversion(grayscale: true, size: 8).convertRecords(records.bytes, count: records.labels.count, natural: shape,
                                                                          offset: 1, stride: 1 + shape.count, name: "fuzz.bin")
    precondition(pixels.map { $0.count == records.labels.count * 64 } ?? true)
    return 0
}
