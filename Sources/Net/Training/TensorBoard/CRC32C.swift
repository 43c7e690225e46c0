/// CRC-32C (Castagnoli, reflected polynomial `0x82F63B78`), the checksum of TFRecord framing (and the
/// key of `explore`'s top-9 cache).
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { byte in
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        return crc
    }

    /// The CRC-32C of `bytes`; `checksum("123456789".utf8) == 0xE306_9283`.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }

    /// TFRecord's masking of a CRC, so that checksums of data containing checksums stay well spread.
    static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// `mask(checksum(bytes))`.
    static func maskedChecksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        mask(checksum(bytes))
    }
}
