import NIOCore
import NIOHTTP1

/// Serialises a request head and its body into the bytes that go on the wire, so that head and
/// body leave in one write and one flush (NIOHTTP1's `HTTPRequestEncoder` would write the head,
/// the body and an empty end as three pipeline writes).
///
/// `content-length` is set from the body; the caller's `content-length` and `transfer-encoding`
/// are dropped. Header names must be tokens and values must not hold CR, LF or NUL: anything
/// else could smuggle a second request onto the connection.
enum HTTP1RequestEncoder {
    /// Bodies up to this size are copied behind the head (one buffer, one `write(2)`); larger
    /// ones go as a second buffer of the same flush (one `writev(2)`), without a copy.
    static let inlineBodyLimit = 16 << 10

    struct Encoded {
        var bytes: ByteBuffer
        /// The body, when it was too large to copy behind the head.
        var trailingBody: ByteBuffer?
        /// The request says `Connection: close`: the connection is not reused after it.
        var closeAfterResponse: Bool
    }

    /// `presetLines`: header lines encoded and checked once (``PresetHeaderLines``), written
    /// after `head`'s own.
    static func encode(
        _ head: HTTPRequestHead, presetLines: PresetHeaderLines = .none, body: ByteBuffer, allocator: ByteBufferAllocator
    ) throws(HTTP1ClientError) -> Encoded {
        let method = head.method
        switch method {
        case .HEAD, .CONNECT:
            // A HEAD answer has a content-length but no body, and CONNECT changes protocols: the
            // upstream calls of a router need neither.
            throw HTTP1ClientError(.invalidRequest, "\(method.rawValue) requests are not supported")
        default:
            break
        }
        let bodyLength = body.readableBytes
        guard isValidTarget(head.uri) else {
            throw HTTP1ClientError(.invalidRequest, "the request target holds a space or a control character")
        }
        // Checked and measured in one pass, written in another: the head goes into room reserved
        // for it (``WireBytes``). 64 covers the request line's spaces and version, the
        // `content-length` line and the blank line.
        var headSize = method.rawValue.utf8.count &+ head.uri.utf8.count &+ 64 &+ presetLines.byteCount
        var closeAfterResponse = false
        for (name, value) in head.headers {
            guard isToken(name) else { throw HTTP1ClientError(.invalidRequest, "invalid header name '\(name)'") }
            if isFraming(name) { continue }
            guard isValidValue(value) else { throw HTTP1ClientError(.invalidRequest, "header '\(name)' holds CR, LF or NUL") }
            if name.utf8.count == 10, name.equalsLowercasedASCII("connection"), hasCloseToken(value) { closeAfterResponse = true }
            headSize &+= ByteBuffer.httpHeaderLineSize(name: name, value: value)
        }
        let inline = bodyLength <= inlineBodyLimit
        var buffer = allocator.buffer(capacity: headSize + (inline ? bodyLength : 0))
        buffer.writeWire(reserving: headSize) { wire in
            wire.append(method.rawValue)
            wire.append(" ")
            wire.append(head.uri)
            wire.append(" HTTP/1.1\r\n")
            for (name, value) in head.headers where !isFraming(name) {
                wire.appendHeaderLine(name: name, value: value)
            }
            wire.append(presetLines.bytes)
            if bodyLength > 0 || method.hasRequestBody {
                wire.append("content-length: ")
                wire.appendDecimal(bodyLength)
                wire.append("\r\n")
            }
            wire.append("\r\n")
        }
        if inline {
            var body = body
            buffer.writeBuffer(&body)
            return Encoded(bytes: buffer, trailingBody: nil, closeAfterResponse: closeAfterResponse)
        }
        return Encoded(bytes: buffer, trailingBody: body, closeAfterResponse: closeAfterResponse)
    }

    /// `content-length` or `transfer-encoding`, in any case.
    static func isFraming(_ name: String) -> Bool {
        let count = name.utf8.count
        guard count == 14 || count == 17 else { return false }
        return name.equalsLowercasedASCII(count == 14 ? "content-length" : "transfer-encoding")
    }

    /// A `Connection` value listing `close`.
    private static func hasCloseToken(_ value: String) -> Bool {
        value.split(separator: ",").contains { $0.trimmingSpaces().lowercased() == "close" }
    }

    /// RFC 9110 token characters.
    static func isToken(_ name: String) -> Bool {
        if name.isEmpty { return false }
        return name.withUTF8Bytes { bytes in
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    continue
                case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
                    UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
                    UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                    continue
                default:
                    return false
                }
            }
            return true
        }
    }

    static func isValidValue(_ value: String) -> Bool {
        value.withUTF8Bytes { bytes in
            !bytes.contains { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") || $0 == 0 }
        }
    }

    static func isValidTarget(_ uri: String) -> Bool {
        if uri.isEmpty { return false }
        return uri.withUTF8Bytes { bytes in !bytes.contains { $0 <= UInt8(ascii: " ") || $0 == 0x7F } }
    }
}

/// Header lines that are the same on every request of a provider (its client's `host`, its API
/// key), checked and encoded once when the provider is set up instead of on every request.
public struct PresetHeaderLines: Sendable {
    /// `name: value\r\n` lines, as they go on the wire.
    private(set) var bytes: ByteBuffer

    public static let none = PresetHeaderLines(checked: ByteBuffer())

    private init(checked bytes: ByteBuffer) {
        self.bytes = bytes
    }

    /// Fails on a name that is not a token, a value with CR, LF or NUL, or a header about the
    /// message or the connection (`content-length` and `transfer-encoding` are the encoder's; a
    /// `connection` it would not see when deciding whether the connection is kept).
    public init(_ lines: [(String, String)]) throws(HTTP1ClientError) {
        var buffer = ByteBuffer()
        for (name, value) in lines {
            guard HTTP1RequestEncoder.isToken(name), !HTTP1RequestEncoder.isFraming(name), !name.equalsLowercasedASCII("connection") else {
                throw HTTP1ClientError(.invalidRequest, "invalid preset header name '\(name)'")
            }
            guard HTTP1RequestEncoder.isValidValue(value) else { throw HTTP1ClientError(.invalidRequest, "header '\(name)' holds CR, LF or NUL") }
            buffer.writeHTTPHeaderLine(name: name, value: value)
        }
        bytes = buffer
    }

    /// These lines, then `other`'s (made once, when a client is set up).
    func followed(by other: PresetHeaderLines) -> PresetHeaderLines {
        var joined = bytes
        joined.writeImmutableBuffer(other.bytes)
        return PresetHeaderLines(checked: joined)
    }

    var byteCount: Int { bytes.readableBytes }

    /// The lines as they go on the wire, for tests.
    var text: String { String(buffer: bytes) }
}

extension HTTPMethod {
    /// Methods whose requests carry a body by definition: they get `content-length: 0` when empty.
    fileprivate var hasRequestBody: Bool {
        switch self {
        case .POST, .PUT, .PATCH: true
        default: false
        }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var slice = self
        while slice.first == " " || slice.first == "\t" { slice.removeFirst() }
        while slice.last == " " || slice.last == "\t" { slice.removeLast() }
        return slice
    }
}
