import NIOCore

/// Reads the framing of a chunked body when it has the plain shape an API's stream has: each
/// chunk a size in hex, CRLF, its bytes, CRLF; then `0`, CRLF, CRLF. Nothing else is read here.
/// At the first byte that is anything else (a chunk extension, a trailer, a size too long, a
/// framing error) the reader declines, and ``replay`` says what brings NIO's decoder, fresh from
/// a head that declares a chunked body, to the very place the reader stopped: that decoder reads
/// the rest of the connection and says what the bytes are, as it would have from the start.
///
/// Why it exists: through NIO's decoder (llhttp, its callbacks and `ByteToMessageHandler`) the
/// framing of one relayed event cost an eighth of the event's instructions (bench/README.md,
/// step 22).
struct ChunkedBodyReader {
    enum State: Equatable {
        /// `digits` hex digits of the size read so far.
        case size(value: Int, digits: Int)
        /// The size's CR was read.
        case sizeLF(value: Int, digits: Int)
        case data(left: Int)
        case dataCR
        case dataLF
        /// The last chunk's size line was read: its empty trailer line must follow.
        case lastCR
        case lastLF
    }

    enum Step {
        /// Body bytes, a slice of the buffer read.
        case data(ByteBuffer)
        /// The body's last byte was read.
        case end
        /// Every byte given was read.
        case needMore
        /// The next byte is not of the plain shape; it is still in the buffer.
        case declined
    }

    private(set) var state = State.size(value: 0, digits: 0)

    /// More hex digits than this (a size past 2^60) is not the plain shape.
    static let maxDigits = 15

    /// Reads framing from `buffer` up to the next body bytes, the end, or a byte it declines.
    mutating func next(_ buffer: inout ByteBuffer) -> Step {
        while buffer.readableBytes > 0 {
            if case .data(let left) = state {
                let length = min(left, buffer.readableBytes)
                state = length == left ? .dataCR : .data(left: left - length)
                return .data(buffer.readSlice(length: length)!)
            }
            // The framing bytes on the raw buffer, one pass; the buffer moves once.
            var state = self.state
            let (read, step) = buffer.withUnsafeReadableBytes { bytes in Self.frame(bytes, state: &state) }
            self.state = state
            buffer.moveReaderIndex(forwardBy: read)
            if let step { return step }
        }
        return .needMore
    }

    /// Reads framing bytes until the body's bytes start (nil step), the body ends, the bytes run
    /// out, or a byte is declined; returns how many bytes it read.
    private static func frame(_ bytes: UnsafeRawBufferPointer, state: inout State) -> (read: Int, step: Step?) {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch state {
            case .size(let value, let digits):
                if let digit = hexValue(byte) {
                    guard digits < maxDigits else { return (index, .declined) }
                    state = .size(value: value << 4 | digit, digits: digits + 1)
                } else if byte == UInt8(ascii: "\r"), digits > 0 {
                    state = .sizeLF(value: value, digits: digits)
                } else {
                    return (index, .declined)
                }
            case .sizeLF(let value, _):
                guard byte == UInt8(ascii: "\n") else { return (index, .declined) }
                if value == 0 {
                    state = .lastCR
                } else {
                    state = .data(left: value)
                    return (index + 1, nil)
                }
            case .data:
                return (index, nil)
            case .dataCR, .dataLF, .lastCR, .lastLF:
                // The CRLF after a chunk's bytes, or the empty line that ends the body.
                let expected = state == .dataCR || state == .lastCR ? UInt8(ascii: "\r") : UInt8(ascii: "\n")
                guard byte == expected else { return (index, .declined) }
                let ended = state == .lastLF
                state =
                    switch state {
                    case .dataCR: .dataLF
                    case .lastCR: .lastLF
                    default: .size(value: 0, digits: 0)
                    }
                if ended { return (index + 1, .end) }
            }
            index += 1
        }
        return (index, .needMore)
    }

    /// What NIO's decoder is fed, after a head declaring a chunked body, to stand where this
    /// reader stands: the framing read so far of the current chunk (its size as read, leading
    /// zeros kept), with a stand-in chunk of one byte when the reader stands after a chunk's bytes.
    /// `bodyBytes` of it are body the caller must not see.
    struct Replay {
        var bytes: String
        var bodyBytes: Int
    }

    var replay: Replay {
        switch state {
        case .size(let value, let digits): Replay(bytes: Self.hex(value, digits: digits), bodyBytes: 0)
        case .sizeLF(let value, let digits): Replay(bytes: Self.hex(value, digits: digits) + "\r", bodyBytes: 0)
        // The decoder then waits for `left` bytes of a chunk, as this reader did.
        case .data(let left): Replay(bytes: String(left, radix: 16) + "\r\n", bodyBytes: 0)
        case .dataCR: Replay(bytes: "1\r\nX", bodyBytes: 1)
        case .dataLF: Replay(bytes: "1\r\nX\r", bodyBytes: 1)
        case .lastCR: Replay(bytes: "0\r\n", bodyBytes: 0)
        case .lastLF: Replay(bytes: "0\r\n\r", bodyBytes: 0)
        }
    }

    private static func hex(_ value: Int, digits: Int) -> String {
        guard digits > 0 else { return "" }
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.utf8.count)) + text
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte &- UInt8(ascii: "a") &+ 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte &- UInt8(ascii: "A") &+ 10)
        default: nil
        }
    }
}
