import Synchronization

/// Switchyard's request ids: `sy_` + 26 Crockford base32 characters, a millisecond timestamp
/// followed by a per-process counter and random bits, so ids sort by time and never collide
/// within a process.
public enum RequestID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    private static let counter = Atomic<UInt64>(UInt64.random(in: 0..<(1 << 40)))
    private static let processBits = UInt64.random(in: 0..<(1 << 40))

    public static func generate(nowMilliseconds: Int64 = WallClock.nowMilliseconds()) -> String {
        let sequence = counter.wrappingAdd(1, ordering: .relaxed).newValue
        // 48 bits of time, 40 bits of counter, 40 bits of per-process randomness: 128 bits.
        let high = UInt64(truncatingIfNeeded: nowMilliseconds) << 16 | (sequence >> 24 & 0xFFFF)
        let low = (sequence & 0xFF_FFFF) << 40 | processBits
        // Written straight into the string's storage: one allocation per id.
        return String(unsafeUninitializedCapacity: 29) { bytes in
            bytes[0] = UInt8(ascii: "s")
            bytes[1] = UInt8(ascii: "y")
            bytes[2] = UInt8(ascii: "_")
            // 26 characters × 5 bits = 130 bits; the top two bits are zero.
            for index in 0..<26 {
                let bitOffset = 125 - index * 5
                let value: UInt64
                if bitOffset >= 64 {
                    value = high >> UInt64(bitOffset - 64)
                } else if bitOffset > 59 {
                    value = (high << UInt64(64 - bitOffset)) | (low >> UInt64(bitOffset))
                } else {
                    value = low >> UInt64(bitOffset)
                }
                bytes[3 + index] = alphabet[Int(value & 0x1F)]
            }
            return 29
        }
    }

    /// A caller's `x-request-id` is adopted when it is 1–128 characters of `[A-Za-z0-9._:-]`.
    public static func isAcceptable(_ candidate: Substring) -> Bool {
        guard (1...128).contains(candidate.utf8.count) else { return false }
        return candidate.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "-")
        }
    }
}
