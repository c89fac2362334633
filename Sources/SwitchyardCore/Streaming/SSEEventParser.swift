import NIOCore

/// The event names of Anthropic's Messages stream that routing cares about.
public enum SSEEventName: Sendable, Equatable {
    case messageStart
    case messageDelta
    case messageStop
    case contentBlockStart
    case contentBlockDelta
    case contentBlockStop
    case ping
    case error
    /// Any other name, or none (`message` by the SSE spec).
    case other

    /// The wire name, for events Switchyard rewrites (nil for `other`, which it never rewrites).
    public var wireName: String? {
        switch self {
        case .messageStart: "message_start"
        case .messageDelta: "message_delta"
        case .messageStop: "message_stop"
        case .contentBlockStart: "content_block_start"
        case .contentBlockDelta: "content_block_delta"
        case .contentBlockStop: "content_block_stop"
        case .ping: "ping"
        case .error: "error"
        case .other: nil
        }
    }

    init(_ bytes: UnsafeRawBufferPointer) {
        switch bytes.count {
        case 4 where bytes.equals("ping"): self = .ping
        case 5 where bytes.equals("error"): self = .error
        case 12 where bytes.equals("message_stop"): self = .messageStop
        case 13 where bytes.equals("message_start"): self = .messageStart
        case 13 where bytes.equals("message_delta"): self = .messageDelta
        case 18 where bytes.equals("content_block_stop"): self = .contentBlockStop
        case 19 where bytes.equals("content_block_start"): self = .contentBlockStart
        case 19 where bytes.equals("content_block_delta"): self = .contentBlockDelta
        default: self = .other
        }
    }
}

public struct SSEEvent: Sendable {
    public var name: SSEEventName
    /// The `data:` lines, joined with `\n`.
    public var data: ByteBuffer
}

/// Splits a byte stream into server-sent events without copying complete chunks: when a chunk
/// holds only whole events (the usual case), the bytes handed back by ``takeParsedBytes()`` are
/// slices of that very chunk.
public struct SSEEventParser: Sendable {
    public struct EventTooLarge: Error, Sendable {
        public var limit: Int
    }

    /// Bytes received and not yet taken; `parsed` of them form events already returned.
    private var pending = ByteBuffer()
    private var parsed = 0
    public let maxEventSize: Int

    public init(maxEventSize: Int = 4 << 20) {
        self.maxEventSize = maxEventSize
    }

    public var hasUnparsedBytes: Bool {
        pending.readableBytesView.dropFirst(parsed).contains { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
    }

    public mutating func append(_ chunk: ByteBuffer) {
        if pending.readableBytes == 0 {
            pending = chunk
            parsed = 0
        } else {
            pending.writeImmutableBuffer(chunk)
        }
    }

    /// The next complete event, or nil when more bytes are needed.
    public mutating func next() throws(EventTooLarge) -> SSEEvent? {
        while true {
            let available = pending.readableBytes
            let start = parsed
            guard start < available else { return nil }
            // The event's lines are found on the raw bytes (a relayed stream parses every event;
            // walking a ByteBufferView index by index cost a tenth of a relayed event's user time),
            // then the data is sliced out of the buffer: one line is a slice, no copy.
            guard let found = pending.withUnsafeReadableBytes({ Self.scan($0, from: start) }) else {
                if available - start > maxEventSize { throw EventTooLarge(limit: maxEventSize) }
                return nil
            }
            parsed = found.end
            // A block of only comments, or a blank line alone, is keep-alive padding, not an event.
            guard found.sawField else { continue }
            guard let first = found.firstData else { return SSEEvent(name: found.name, data: ByteBuffer()) }
            var data = pending.getSlice(at: pending.readerIndex + first.lowerBound, length: first.count)!
            for line in found.moreData {
                data.writeInteger(UInt8(ascii: "\n"))
                data.writeImmutableBuffer(pending.getSlice(at: pending.readerIndex + line.lowerBound, length: line.count)!)
            }
            return SSEEvent(name: found.name, data: data)
        }
    }

    /// One event's lines, as offsets into the bytes scanned.
    private struct ScannedEvent {
        /// Where the line after the event's blank line starts.
        var end: Int
        var sawField = false
        var name = SSEEventName.other
        var firstData: Range<Int>?
        /// The data lines after the first (rare: Anthropic sends one).
        var moreData: [Range<Int>] = []
    }

    /// The event starting at `start`, or nil when its blank line has not arrived. Lines end with
    /// LF, CRLF or CR; a trailing lone CR waits for the next byte, since it may be the first half
    /// of CRLF.
    private static func scan(_ bytes: UnsafeRawBufferPointer, from start: Int) -> ScannedEvent? {
        let colon = UInt8(ascii: ":")
        var found = ScannedEvent(end: start)
        var lineStart = start
        while true {
            var lineEnd = lineStart
            var nextLine = -1
            while lineEnd < bytes.count {
                let byte = bytes[lineEnd]
                if byte == UInt8(ascii: "\n") {
                    nextLine = lineEnd + 1
                    break
                }
                if byte == UInt8(ascii: "\r") {
                    guard lineEnd + 1 < bytes.count else { return nil }
                    nextLine = bytes[lineEnd + 1] == UInt8(ascii: "\n") ? lineEnd + 2 : lineEnd + 1
                    break
                }
                lineEnd += 1
            }
            guard nextLine >= 0 else { return nil }
            if lineEnd == lineStart {
                // Blank line: the event ends here.
                found.end = nextLine
                return found
            }
            if bytes[lineStart] != colon {
                found.sawField = true
                var fieldEnd = lineStart
                while fieldEnd < lineEnd, bytes[fieldEnd] != colon { fieldEnd += 1 }
                var valueStart = fieldEnd == lineEnd ? fieldEnd : fieldEnd + 1
                if valueStart < lineEnd, bytes[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
                let field = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<fieldEnd])
                if field.equals("event") {
                    found.name = SSEEventName(UnsafeRawBufferPointer(rebasing: bytes[valueStart..<lineEnd]))
                } else if field.equals("data") {
                    if found.firstData == nil {
                        found.firstData = valueStart..<lineEnd
                    } else {
                        found.moreData.append(valueStart..<lineEnd)
                    }
                }
            }
            lineStart = nextLine
        }
    }

    /// How many bytes the events returned since the last take span: mark it before ``next()`` to
    /// hold one event back with ``takeParsedBytes(prefix:)``.
    public var parsedByteCount: Int { parsed }

    /// The raw bytes of the events before the one just returned (`prefix` from
    /// ``parsedByteCount``); the bytes of that last event are discarded.
    public mutating func takeParsedBytes(prefix: Int) -> ByteBuffer? {
        let kept = prefix > 0 ? pending.readSlice(length: prefix) : nil
        pending.moveReaderIndex(forwardBy: parsed - prefix)
        parsed = 0
        if pending.readableBytes == 0 { pending = ByteBuffer() }
        return kept
    }

    /// The raw bytes of every event returned by ``next()`` since the last call, ready to forward.
    public mutating func takeParsedBytes() -> ByteBuffer? {
        guard parsed > 0 else { return nil }
        let slice = pending.readSlice(length: parsed)
        parsed = 0
        if pending.readableBytes == 0 {
            pending = ByteBuffer()
        }
        return slice
    }
}
