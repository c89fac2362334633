/// A set of ASCII bytes as a 128-bit mask: membership is a shift and an AND, where a `switch`
/// over ranges and single characters is a chain of comparisons per byte of a request head.
struct ASCIIByteSet: Sendable {
    private var low: UInt64 = 0
    private var high: UInt64 = 0

    /// Letters, digits and each byte of `others` (which must be ASCII).
    init(alphanumericsAnd others: String) {
        let alphanumerics = (UInt8(ascii: "a")...UInt8(ascii: "z")).map { $0 }
            + (UInt8(ascii: "A")...UInt8(ascii: "Z")).map { $0 }
            + (UInt8(ascii: "0")...UInt8(ascii: "9")).map { $0 }
        for byte in alphanumerics + Array(others.utf8) {
            precondition(byte < 128, "ASCIIByteSet holds ASCII only")
            if byte < 64 { low |= 1 << UInt64(byte) } else { high |= 1 << UInt64(byte - 64) }
        }
    }

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        byte < 64 ? (low >> UInt64(byte)) & 1 == 1 : byte < 128 ? (high >> UInt64(byte &- 64)) & 1 == 1 : false
    }
}
