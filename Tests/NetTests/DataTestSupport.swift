import CZlib
import Foundation
import XCTest
@testable import Net

extension XCTestCase {
    /// A new empty directory, removed when the test ends.
    func makeTemporaryDirectory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("deconvnet-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    /// Asserts that `body` throws a `DataError` whose message contains every one of `fragments`.
    func assertDataError<T>(_ body: @autoclosure () throws -> T, mentions fragments: String...,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let error = error as? DataError else { return XCTFail("not a DataError: \(error)", file: file, line: line) }
            let message = error.localizedDescription
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "\"\(message)\" does not mention \"\(fragment)\"", file: file, line: line)
            }
        }
    }
}

/// The bytes spelled by a hex string.
func bytes(hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

/// An IDX file of unsigned bytes with the given dimensions; `values.count` must be their product.
func idxFile(dimensions: [Int], values: [UInt8]) -> [UInt8] {
    var file: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
    for d in dimensions { file += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: d >> $0) } }
    return file + values
}

/// `data` compressed as a gzip stream.
func gzip(_ data: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    precondition(deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                               zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { deflateEnd(&stream) }
    var input = data
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(data.count))) + 32)
    let produced = input.withUnsafeMutableBufferPointer { input in
        output.withUnsafeMutableBufferPointer { output in
            stream.next_in = input.baseAddress
            stream.avail_in = uInt(input.count)
            stream.next_out = output.baseAddress
            stream.avail_out = uInt(output.count)
            precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
            return output.count - Int(stream.avail_out)
        }
    }
    return Array(output[..<produced])
}

/// Writes `bytes` to `path`, creating the parent directories.
func write(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(bytes).write(to: url)
}

/// A gray `width x height` image whose pixel `i` is `(seed + i) % 256`.
func grayImage(width: Int, height: Int, seed: Int = 0) -> Image {
    Image(width: width, height: height, channels: 1, pixels: (0..<width * height).map { UInt8((seed + $0) % 256) })
}

/// An 8x8 RGB JPEG written by Pillow (quality 95): left half (200, 40, 40), right half (40, 40, 200).
let smallJPEG = bytes(hex: """
    ffd8ffe000104a46494600010100000100010000ffdb0043000201010101010201010102020202020403020202020504040304060506\
    060605060606070908060709070606080b08090a0a0a0a0a06080b0c0b0a0c090a0a0affdb004301020202020202050303050a070607\
    0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a\
    0a0affc00011080008000803012200021101031101ffc4001500010100000000000000000000000000000008ffc40018100100030100\
    000000000000000000000000074583c3ffc4001501010100000000000000000000000000000608ffc4001c1100000603000000000000\
    00000000000000030507378308b3b4ffda000c03010002110311003f0088e6dacdb980b571da1c4cbba0d0a5f7959469d050ffd9
    """)
