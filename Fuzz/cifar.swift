@testable import Net

/// One CIFAR-10 binary batch file: its records and labels, then the first image converted.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIFAR(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let data = fuzzInput(bytes, count)
    guard let records = try? CIFARBinaryReader.parse(data, name: "fuzz.bin", classCount: 10) else { return 0 }
    precondition(records.labels.allSatisfy { 0..<10 ~= $0 })
    // the first record converted as `--size 8 --grayscale` would (one image: Dispatch under ASan is slow)
    let shape = ImageShape(channels: 3, height: 32, width: 32)
    let image = Image(planar: records.bytes[1..<1 + shape.count], shape: shape)
    precondition(image.planarBytes(ImageShape(channels: 1, height: 8, width: 8)).count == 64)
    return 0
}
