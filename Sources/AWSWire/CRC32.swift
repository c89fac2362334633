import NIOCore

/// CRC-32 as zlib computes it (IEEE 802.3, reflected polynomial 0xEDB88320), which is the checksum
/// AWS event-stream frames carry twice: once over the prelude, once over the whole message.
///
/// `seed` continues an earlier checksum the way zlib's `crc32(data, crc)` does:
/// `checksum(b, seed: checksum(a)) == checksum(a + b)`.
public enum CRC32 {
    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        tables.withUnsafeBufferPointer { table in
            var crc = ~seed
            var index = 0
            let count = bytes.count
            // Slicing-by-8: eight table lookups per 8 bytes instead of one lookup per byte, because a
            // 24 MiB frame is allowed and the byte-wise loop is several times slower.
            while count - index >= 8 {
                let low =
                    crc ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16
                        | UInt32(bytes[index + 3]) << 24)
                crc =
                    table[7 &* 256 &+ Int(low & 0xFF)] ^ table[6 &* 256 &+ Int((low >> 8) & 0xFF)]
                    ^ table[5 &* 256 &+ Int((low >> 16) & 0xFF)] ^ table[4 &* 256 &+ Int(low >> 24)]
                    ^ table[3 &* 256 &+ Int(bytes[index + 4])] ^ table[2 &* 256 &+ Int(bytes[index + 5])]
                    ^ table[1 &* 256 &+ Int(bytes[index + 6])] ^ table[Int(bytes[index + 7])]
                index &+= 8
            }
            while index < count {
                crc = table[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
                index &+= 1
            }
            return ~crc
        }
    }

    public static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }

    /// The checksum of the buffer's readable bytes.
    public static func checksum(_ buffer: ByteBuffer, seed: UInt32 = 0) -> UInt32 {
        buffer.withUnsafeReadableBytes { checksum($0, seed: seed) }
    }

    /// The checksum of `length` bytes at `index`, which the caller has checked are readable.
    static func checksum(_ buffer: ByteBuffer, at index: Int, length: Int, seed: UInt32 = 0) -> UInt32 {
        // Indices are relative to the slice, as `withVeryUnsafeBytes` is, so this reads no copy.
        buffer.withVeryUnsafeBytes { checksum(UnsafeRawBufferPointer(rebasing: $0[index..<(index + length)]), seed: seed) }
    }

    /// Eight 256-entry tables back to back: table k gives the CRC of a byte followed by k zero bytes.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 {
                crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1
            }
            tables[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()
}
