import NIOCore

/// A head's bytes written straight into room reserved in a buffer, each piece one `memcpy`.
/// `ByteBuffer`'s own writes check uniqueness, capacity and exclusive access for every piece,
/// ~250 instructions apiece, and a head is ~40 pieces (bench/README.md, step 16).
///
/// Only ever lives inside ``NIOCore/ByteBuffer/writeWire(reserving:_:)``. Every append is
/// bounds-checked against the room reserved: a size computed wrong stops the process instead of
/// writing past the buffer.
struct WireBytes {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var count = 0

    fileprivate init(_ room: UnsafeMutableRawBufferPointer) {
        // A buffer's writable room always has an address; an empty one is never asked for.
        base = room.baseAddress!
        capacity = room.count
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= capacity &- count, "a head written past the room reserved for it")
        guard let source = bytes.baseAddress else { return }
        (base + count).copyMemory(from: source, byteCount: bytes.count)
        count &+= bytes.count
    }

    mutating func append(_ string: StaticString) {
        string.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    mutating func append(_ string: String) {
        string.withUTF8Bytes { append(UnsafeRawBufferPointer($0)) }
    }

    mutating func append(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { append($0) }
    }

    /// `name: value\r\n`, as given: the caller has checked them.
    mutating func appendHeaderLine(name: String, value: String) {
        append(name)
        append(": ")
        append(value)
        append("\r\n")
    }

    /// A non-negative integer in decimal.
    mutating func appendDecimal(_ value: Int) {
        precondition(value >= 0, "a length or a status code")
        let digits = DecimalDigits.count(UInt64(value))
        precondition(digits <= capacity &- count, "a head written past the room reserved for it")
        DecimalDigits.write(UInt64(value), digits: digits, at: base + count)
        count &+= digits
    }
}

/// An unsigned integer's decimal digits, written without making a string: both encoders' lengths
/// and statuses, and the JSON writer's numbers.
enum DecimalDigits {
    static func count(_ value: UInt64) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits &+= 1
        }
        return digits
    }

    /// Writes `value`'s `digits` digits (``count(_:)`` of it) at `room`.
    static func write(_ value: UInt64, digits: Int, at room: UnsafeMutableRawPointer) {
        var rest = value
        var index = digits
        repeat {
            index &-= 1
            room.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10), toByteOffset: index, as: UInt8.self)
            rest /= 10
        } while rest > 0
    }
}

extension ByteBuffer {
    /// Writes what `body` appends, into at most `size` bytes reserved at the writer index.
    mutating func writeWire(reserving size: Int, _ body: (inout WireBytes) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: size) { room in
            var wire = WireBytes(room)
            body(&wire)
            return wire.count
        }
    }

    /// The bytes of `name: value\r\n`, for sizing a buffer before writing.
    static func httpHeaderLineSize(name: String, value: String) -> Int {
        name.utf8.count &+ value.utf8.count &+ 4
    }

    /// `name: value\r\n`, as given: the caller has checked them. (Lines written once, when a
    /// provider is set up; a request's or an answer's head goes through ``WireBytes``.)
    mutating func writeHTTPHeaderLine(name: String, value: String) {
        writeString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }
}

extension String {
    /// `body` on the string's UTF-8 bytes where they are. A native string always has them in
    /// one piece; any other is copied once (never on the proxy path, whose strings are native).
    @inline(__always)
    func withUTF8Bytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return try copy.withUTF8(body)
    }
}
