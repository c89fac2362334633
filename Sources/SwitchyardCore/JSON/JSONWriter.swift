/// Builds one JSON object into a byte array in a single pass, for audit lines and error bodies.
/// Keys are static (known at compile time); values are escaped as they are appended.
public struct JSONWriter: Sendable {
    /// The output is `storage[..<count]`; the rest is zeroed room written into. Each piece is one
    /// copy into room already there, not an `Array.append` with its uniqueness and capacity checks
    /// (a key took ~185 instructions that way, and an audit line has 30: bench/README.md, step 16).
    private var storage: [UInt8]
    private var count = 0
    private var needsComma = false

    /// What has been written (the room past it given up: no copy is made).
    public var bytes: [UInt8] {
        mutating get {
            storage.removeLast(storage.count - count)
            return storage
        }
    }

    public init(capacity: Int = 512) {
        storage = [UInt8](repeating: 0, count: max(capacity, 16))
    }

    /// Writes on at the end of `buffer`, whose storage it takes over (no copy) until
    /// ``finish(into:)`` hands it back.
    public init(continuing buffer: inout [UInt8]) {
        storage = []
        swap(&storage, &buffer)
        count = storage.count
    }

    /// Hands the bytes back to the buffer given to ``init(continuing:)``.
    public mutating func finish(into buffer: inout [UInt8]) {
        storage.removeLast(storage.count - count)
        swap(&storage, &buffer)
        count = 0
    }

    /// Room for `size` more bytes at `count`, handed to `body`, which fills all of it.
    @inline(__always)
    private mutating func write(_ size: Int, _ body: (UnsafeMutableRawPointer) -> Void) {
        guard size > 0 else { return }
        if storage.count &- count < size { grow(size) }
        let start = count
        storage.withUnsafeMutableBytes { room in body(room.baseAddress! + start) }
        count &+= size
    }

    /// Room in steps of about an audit line or two; the array's own growth (doubling) keeps
    /// reallocations rare. Not more: a continued buffer may be a whole batch of lines, and room
    /// is zeroed.
    private mutating func grow(_ size: Int) {
        storage.append(contentsOf: repeatElement(0, count: max(size, 1024)))
    }

    private mutating func write(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        write(bytes.count) { $0.copyMemory(from: source, byteCount: bytes.count) }
    }

    private mutating func write(_ byte: UInt8) {
        write(1) { $0.storeBytes(of: byte, as: UInt8.self) }
    }

    private mutating func write(_ string: StaticString) {
        string.withUTF8Buffer { write(UnsafeRawBufferPointer($0)) }
    }

    /// A Unix time in milliseconds as an ISO 8601 string value (`"2026-11-24T10:00:01.234Z"`).
    public mutating func timestamp(milliseconds: Int64) {
        separate()
        write(ISO8601.length + 2) { room in
            room.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
            ISO8601.write(milliseconds: milliseconds, into: room + 1)
            room.storeBytes(of: UInt8(ascii: "\""), toByteOffset: ISO8601.length + 1, as: UInt8.self)
        }
        needsComma = true
    }

    public mutating func beginObject() {
        separate()
        write(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        write(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray() {
        separate()
        write(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        write(UInt8(ascii: "]"))
        needsComma = true
    }

    /// `,"name":` in one write.
    public mutating func key(_ name: StaticString) {
        let comma = needsComma ? 1 : 0
        let length = name.utf8CodeUnitCount
        write(comma &+ length &+ 3) { room in
            if comma == 1 { room.storeBytes(of: UInt8(ascii: ","), as: UInt8.self) }
            room.storeBytes(of: UInt8(ascii: "\""), toByteOffset: comma, as: UInt8.self)
            (room + comma + 1).copyMemory(from: name.utf8Start, byteCount: length)
            room.storeBytes(of: UInt8(ascii: "\""), toByteOffset: comma + 1 + length, as: UInt8.self)
            room.storeBytes(of: UInt8(ascii: ":"), toByteOffset: comma + 2 + length, as: UInt8.self)
        }
        needsComma = false
    }

    public mutating func key(dynamic name: String) {
        separate()
        appendEscaped(name)
        write(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func string(_ value: String) {
        separate()
        appendEscaped(value)
        needsComma = true
    }

    public mutating func int(_ value: some BinaryInteger) {
        separate()
        if let small = Int64(exactly: value) {
            appendDecimal(small)
        } else {
            String(value).withUTF8Bytes { write(UnsafeRawBufferPointer($0)) }
        }
        needsComma = true
    }

    /// Digits written straight into the buffer: an audit line has a dozen numbers, and a String
    /// per number was a measurable part of encoding one.
    private mutating func appendDecimal(_ value: Int64) {
        let magnitude = value.magnitude
        let digits = DecimalDigits.count(magnitude)
        let sign = value < 0 ? 1 : 0
        write(sign &+ digits) { room in
            if sign == 1 { room.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self) }
            DecimalDigits.write(magnitude, digits: digits, at: room + sign)
        }
    }

    public mutating func double(_ value: Double) {
        separate()
        if value.isFinite {
            String(value).withUTF8Bytes { write(UnsafeRawBufferPointer($0)) }
        } else {
            write("null")
        }
        needsComma = true
    }

    public mutating func bool(_ value: Bool) {
        separate()
        write(value ? "true" : "false")
        needsComma = true
    }

    public mutating func null() {
        separate()
        write("null")
        needsComma = true
    }

    /// Appends already-encoded JSON (a value produced by another writer or copied from a validated body).
    public mutating func raw(_ encoded: some Sequence<UInt8>) {
        separate()
        let copied: Void? = encoded.withContiguousStorageIfAvailable { write(UnsafeRawBufferPointer($0)) }
        if copied == nil {
            for byte in encoded { write(byte) }
        }
        needsComma = true
    }

    public mutating func field(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        string(value)
    }

    public mutating func field(_ name: StaticString, _ value: Int?) {
        guard let value else { return }
        key(name)
        int(value)
    }

    public mutating func field(_ name: StaticString, _ value: Int64?) {
        guard let value else { return }
        key(name)
        int(value)
    }

    public mutating func field(_ name: StaticString, _ value: Bool?) {
        guard let value else { return }
        key(name)
        bool(value)
    }

    public mutating func newline() {
        write(UInt8(ascii: "\n"))
    }

    private mutating func separate() {
        if needsComma { write(UInt8(ascii: ",")) }
    }

    private mutating func appendEscaped(_ value: String) {
        value.withUTF8Bytes { utf8 in
            // Most values need no escape: the quotes and the value in one write.
            guard let first = utf8.firstIndex(where: Self.needsEscape) else {
                write(utf8.count &+ 2) { room in
                    room.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
                    if let source = utf8.baseAddress { (room + 1).copyMemory(from: source, byteCount: utf8.count) }
                    room.storeBytes(of: UInt8(ascii: "\""), toByteOffset: utf8.count &+ 1, as: UInt8.self)
                }
                return
            }
            write(UInt8(ascii: "\""))
            var runStart = 0
            for index in first..<utf8.count where Self.needsEscape(utf8[index]) {
                if runStart < index { write(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[runStart..<index]))) }
                appendEscape(utf8[index])
                runStart = index + 1
            }
            if runStart < utf8.count { write(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[runStart...]))) }
            write(UInt8(ascii: "\""))
        }
    }

    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    private mutating func appendEscape(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): write("\\\"")
        case UInt8(ascii: "\\"): write("\\\\")
        case UInt8(ascii: "\n"): write("\\n")
        case UInt8(ascii: "\r"): write("\\r")
        case UInt8(ascii: "\t"): write("\\t")
        default:
            let hex = Self.hexDigits
            write("\\u00")
            write(hex[Int(byte >> 4)])
            write(hex[Int(byte & 0xF)])
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `"value"` as JSON text, e.g. to splice an upstream model id into a request body.
    public static func encodedString(_ value: String) -> [UInt8] {
        var writer = JSONWriter(capacity: value.utf8.count + 2)
        writer.string(value)
        return writer.bytes
    }
}
