import NIOCore

/// A typed header value of an AWS event-stream message (`application/vnd.amazon.eventstream`).
/// The case order follows the wire's type byte: 0 true, 1 false, 2 byte, … 9 uuid.
public enum EventStreamHeaderValue: Sendable, Equatable {
    case bool(Bool)
    case byte(Int8)
    case int16(Int16)
    case int32(Int32)
    case int64(Int64)
    /// At most 65,535 bytes.
    case bytes([UInt8])
    /// At most 65,535 bytes of UTF-8.
    case string(String)
    /// Milliseconds since the Unix epoch.
    case timestamp(Int64)
    /// Exactly 16 bytes.
    case uuid([UInt8])
}

/// One frame of an AWS event stream: ordered, typed headers and an opaque payload.
///
/// Bedrock's `InvokeModelWithResponseStream` sends three kinds, told apart by `:message-type`:
/// `event` (`:event-type: chunk`, JSON payload `{"bytes":"<base64>","p":"…"}`), `exception`
/// (`:exception-type` names the modeled error, JSON payload `{"message":"…"}`), and `error`
/// (`:error-code` and `:error-message` headers, payload usually empty).
public struct EventStreamMessage: Sendable, Equatable {
    /// In wire order. The decoder rejects a frame that repeats a name, as botocore does, so a
    /// name finds at most one value in decoded messages.
    public var headers: [(name: String, value: EventStreamHeaderValue)]
    /// A slice of the decoder's buffer when decoded, so reading a frame copies no payload bytes.
    public var payload: ByteBuffer

    public init(headers: [(name: String, value: EventStreamHeaderValue)], payload: ByteBuffer = ByteBuffer()) {
        self.headers = headers
        self.payload = payload
    }

    /// The first header called `name`, whatever its type.
    public func header(_ name: String) -> EventStreamHeaderValue? {
        headers.first { $0.name == name }?.value
    }

    /// The value of the first header called `name` when it is a string (`:message-type`,
    /// `:event-type`, `:exception-type`, `:error-code`, `:content-type`…); nil when absent or of another type.
    public func stringHeader(_ name: String) -> String? {
        guard case .string(let value) = header(name) else { return nil }
        return value
    }

    public static func == (lhs: EventStreamMessage, rhs: EventStreamMessage) -> Bool {
        // Tuples are not Equatable, so the synthesized conformance is not available.
        lhs.headers.count == rhs.headers.count
            && zip(lhs.headers, rhs.headers).allSatisfy { $0.name == $1.name && $0.value == $1.value }
            && lhs.payload == rhs.payload
    }
}

/// Why a byte stream is not a valid AWS event stream. The decoder that threw it is unusable afterwards:
/// without a trustworthy length there is no way to find the next frame.
public enum EventStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The CRC32 over the first 8 bytes does not match, so the lengths cannot be trusted.
    case preludeChecksumMismatch(expected: UInt32, computed: UInt32)
    /// The CRC32 over the whole frame does not match: headers or payload were damaged in transit.
    case messageChecksumMismatch(expected: UInt32, computed: UInt32)
    /// The prelude's lengths are impossible or over the limit.
    case invalidLength(String)
    /// A header is cut off, has an unknown type byte, invalid UTF-8, or repeats a name.
    case malformedHeader(String)
    /// The stream ended inside a frame.
    case truncated(bufferedBytes: Int)

    public var description: String {
        switch self {
        case .preludeChecksumMismatch(let expected, let computed):
            "event-stream frame failed its prelude CRC (expected \(hex(expected)), computed \(hex(computed))); "
                + "the stream is corrupt or not an event stream"
        case .messageChecksumMismatch(let expected, let computed):
            "event-stream frame failed its message CRC (expected \(hex(expected)), computed \(hex(computed))); "
                + "its headers or payload were damaged in transit"
        case .invalidLength(let detail):
            "event-stream frame has an invalid length: \(detail)"
        case .malformedHeader(let detail):
            "event-stream frame has a malformed header: \(detail)"
        case .truncated(let bufferedBytes):
            "event stream ended inside a frame (\(bufferedBytes) bytes of an incomplete frame buffered); "
                + "the upstream closed the connection mid-message"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
