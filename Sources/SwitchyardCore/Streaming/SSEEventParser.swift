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

    init(_ bytes: ByteBufferView) {
        switch bytes.count {
        case 4 where bytes.elementsEqual("ping".utf8): self = .ping
        case 5 where bytes.elementsEqual("error".utf8): self = .error
        case 12 where bytes.elementsEqual("message_stop".utf8): self = .messageStop
        case 13 where bytes.elementsEqual("message_start".utf8): self = .messageStart
        case 13 where bytes.elementsEqual("message_delta".utf8): self = .messageDelta
        case 18 where bytes.elementsEqual("content_block_stop".utf8): self = .contentBlockStop
        case 19 where bytes.elementsEqual("content_block_start".utf8): self = .contentBlockStart
        case 19 where bytes.elementsEqual("content_block_delta".utf8): self = .contentBlockDelta
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
            let view = pending.readableBytesView
            let start = view.startIndex + parsed
            guard start < view.endIndex else { return nil }
            var name: ByteBufferView?
            var data: ByteBuffer?
            var dataLines = 0
            var lineStart = start
            var sawField = false
            while true {
                guard let (lineEnd, nextLine) = Self.lineEnd(in: view, from: lineStart) else {
                    if view.endIndex - start > maxEventSize { throw EventTooLarge(limit: maxEventSize) }
                    return nil
                }
                if lineEnd == lineStart {
                    // Blank line: the event ends here.
                    parsed = nextLine - view.startIndex
                    break
                }
                let line = view[lineStart..<lineEnd]
                if line.first != UInt8(ascii: ":") {
                    sawField = true
                    let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
                    let field = view[lineStart..<colon]
                    var valueStart = colon == line.endIndex ? colon : colon + 1
                    if valueStart < lineEnd, view[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
                    let value = view[valueStart..<lineEnd]
                    if field.elementsEqual("event".utf8) {
                        name = value
                    } else if field.elementsEqual("data".utf8) {
                        dataLines += 1
                        if dataLines == 1 {
                            data = pending.getSlice(at: pending.readerIndex + (valueStart - view.startIndex), length: value.count)
                        } else {
                            data?.writeInteger(UInt8(ascii: "\n"))
                            data?.writeBytes(value)
                        }
                    }
                }
                lineStart = nextLine
            }
            // A block of only comments, or a blank line alone, is keep-alive padding, not an event.
            guard sawField else { continue }
            return SSEEvent(name: name.map(SSEEventName.init) ?? .other, data: data ?? ByteBuffer())
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

    /// Finds the end of the line starting at `from`: (end of content, start of next line).
    /// A trailing lone CR waits for the next byte, since it may be the first half of CRLF.
    private static func lineEnd(in view: ByteBufferView, from: Int) -> (Int, Int)? {
        var index = from
        while index < view.endIndex {
            let byte = view[index]
            if byte == UInt8(ascii: "\n") { return (index, index + 1) }
            if byte == UInt8(ascii: "\r") {
                guard index + 1 < view.endIndex else { return nil }
                return (index, view[index + 1] == UInt8(ascii: "\n") ? index + 2 : index + 1)
            }
            index += 1
        }
        return nil
    }
}
