import NIOCore

/// An incremental decoder of AWS event-stream frames (`application/vnd.amazon.eventstream`).
///
/// Feed it bytes as they arrive, in chunks of any size, and drain complete messages with `next()`:
///
///     decoder.append(chunk)
///     while let message = try decoder.next() { … }
///     // at end of input, once next() has returned nil:
///     try decoder.finish()
///
/// A frame is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes), the
/// header block, the payload and a CRC32 of everything before it. The prelude CRC is checked
/// before its lengths are believed, and the lengths are bounded before any byte is awaited, so a
/// hostile length costs one error and no memory. Payloads are slices of the buffered input, not copies.
///
/// After any error the decoder is unusable: every later `next()` and `finish()` throws the same
/// error and `append` discards its bytes, because a frame that failed cannot tell where the next begins.
public struct EventStreamDecoder: Sendable {
    /// Prelude (12 bytes) plus message CRC (4 bytes): a frame with no headers and no payload.
    public static let minimumMessageSize = 16
    /// AWS's limit on a frame's header block, which botocore enforces as well.
    public static let maxHeadersLength = 128 * 1024

    /// The largest frame accepted, prelude and CRCs included.
    public let maxMessageSize: Int
    private var buffer = ByteBuffer()
    private var state = State.awaitingPrelude

    private enum State: Sendable {
        case awaitingPrelude
        /// The prelude passed its CRC and its lengths are sane; the rest of the frame is awaited.
        case awaitingFrame(EventStreamPrelude)
        case failed(EventStreamError)
    }

    public init(maxMessageSize: Int = 24 << 20) {
        precondition(maxMessageSize >= Self.minimumMessageSize, "an event-stream frame is at least 16 bytes")
        self.maxMessageSize = maxMessageSize
    }

    public mutating func append(_ chunk: ByteBuffer) {
        if case .failed = state { return }
        guard buffer.readableBytes > 0 else {
            // The common case once a frame is drained: adopt the chunk instead of copying it.
            buffer = chunk
            return
        }
        // Drop consumed frames first, so that when payload slices still share the storage the
        // copy-on-write copies only the partial frame, not everything already handed out.
        buffer.discardReadBytes()
        buffer.writeImmutableBuffer(chunk)
    }

    /// The next complete message, or nil when more bytes are needed.
    /// After an error the decoder is unusable: later calls throw the same error.
    public mutating func next() throws(EventStreamError) -> EventStreamMessage? {
        do throws(EventStreamError) {
            return try decodeNext()
        } catch {
            state = .failed(error)
            buffer = ByteBuffer()
            throw error
        }
    }

    /// Call at end of input, after `next()` has returned nil: throws `.truncated` when part of a
    /// frame is buffered, or the error that made the decoder unusable.
    public func finish() throws(EventStreamError) {
        if case .failed(let error) = state { throw error }
        if buffer.readableBytes > 0 { throw .truncated(bufferedBytes: buffer.readableBytes) }
    }

    private mutating func decodeNext() throws(EventStreamError) -> EventStreamMessage? {
        let prelude: EventStreamPrelude
        switch state {
        case .failed(let error):
            throw error
        case .awaitingFrame(let known):
            prelude = known
        case .awaitingPrelude:
            guard let parsed = try EventStreamPrelude(buffer, maxMessageSize: maxMessageSize) else { return nil }
            prelude = parsed
            state = .awaitingFrame(prelude)
        }
        guard buffer.readableBytes >= prelude.totalLength else { return nil }

        let start = buffer.readerIndex
        let crcIndex = start + prelude.totalLength - 4
        let expected = buffer.getInteger(at: crcIndex, as: UInt32.self)!
        // The prelude's 8 bytes already hash to its verified CRC; continue from there.
        let computed = CRC32.checksum(buffer, at: start + 8, length: prelude.totalLength - 12, seed: prelude.checksum)
        guard expected == computed else { throw .messageChecksumMismatch(expected: expected, computed: computed) }

        let headerBlock = buffer.getSlice(at: start + 12, length: prelude.headersLength)!
        let headers = try EventStreamHeaderParser.parse(headerBlock)
        let payloadIndex = start + 12 + prelude.headersLength
        let payload = buffer.getSlice(at: payloadIndex, length: crcIndex - payloadIndex)!
        buffer.moveReaderIndex(forwardBy: prelude.totalLength)
        state = .awaitingPrelude
        return EventStreamMessage(headers: headers, payload: payload)
    }
}

/// The first 12 bytes of a frame, checked: CRC first, then lengths.
struct EventStreamPrelude: Sendable {
    var totalLength: Int
    var headersLength: Int
    /// CRC32 of the two lengths, and so the seed of the message CRC.
    var checksum: UInt32

    /// nil when fewer than 12 bytes are readable.
    init?(_ buffer: ByteBuffer, maxMessageSize: Int) throws(EventStreamError) {
        guard buffer.readableBytes >= 12 else { return nil }
        let start = buffer.readerIndex
        let total = buffer.getInteger(at: start, as: UInt32.self)!
        let headers = buffer.getInteger(at: start + 4, as: UInt32.self)!
        let expected = buffer.getInteger(at: start + 8, as: UInt32.self)!
        let computed = CRC32.checksum(buffer, at: start, length: 8)
        guard expected == computed else { throw .preludeChecksumMismatch(expected: expected, computed: computed) }

        let totalLength = Int(total)
        let headersLength = Int(headers)
        guard totalLength >= EventStreamDecoder.minimumMessageSize else {
            throw .invalidLength("total length \(totalLength) is below the 16-byte minimum (prelude and message CRC)")
        }
        guard totalLength <= maxMessageSize else {
            throw .invalidLength("total length \(totalLength) exceeds the limit of \(maxMessageSize) bytes")
        }
        guard headersLength <= totalLength - EventStreamDecoder.minimumMessageSize else {
            throw .invalidLength("headers length \(headersLength) does not fit in a frame of \(totalLength) bytes")
        }
        guard headersLength <= EventStreamDecoder.maxHeadersLength else {
            throw .invalidLength("headers length \(headersLength) exceeds the limit of \(EventStreamDecoder.maxHeadersLength) bytes")
        }
        self.totalLength = totalLength
        self.headersLength = headersLength
        self.checksum = computed
    }
}

/// Reads a header block: repeated (name length u8, name, type u8, value), big-endian throughout.
enum EventStreamHeaderParser {
    static func parse(_ block: ByteBuffer) throws(EventStreamError) -> [(name: String, value: EventStreamHeaderValue)] {
        var block = block
        let blockLength = block.readableBytes
        var headers: [(name: String, value: EventStreamHeaderValue)] = []
        // A linear scan finds repeats among the handful of headers real frames carry; a set takes
        // over past that so a hostile block of thousands of tiny headers stays linear.
        var seen: Set<String>? = nil
        while block.readableBytes > 0 {
            let offset = blockLength - block.readableBytes
            let nameLength = Int(block.readInteger(as: UInt8.self)!)
            let name = try readString(&block, length: nameLength, what: "name of the header at offset \(offset)")
            guard let type = block.readInteger(as: UInt8.self) else {
                throw .malformedHeader("header '\(name)' has no type byte before the end of the \(blockLength)-byte header block")
            }
            let value = try readValue(&block, type: type, name: name)
            if seen != nil {
                guard seen!.insert(name).inserted else { throw duplicate(name) }
            } else {
                guard !headers.contains(where: { $0.name == name }) else { throw duplicate(name) }
                if headers.count == 16 { seen = Set(headers.map(\.name) + [name]) }
            }
            headers.append((name, value))
        }
        return headers
    }

    private static func readValue(_ block: inout ByteBuffer, type: UInt8, name: String) throws(EventStreamError) -> EventStreamHeaderValue {
        func fixed<T: FixedWidthInteger>(_: T.Type) throws(EventStreamError) -> T {
            guard let value = block.readInteger(as: T.self) else { throw pastEnd(name) }
            return value
        }
        func variable() throws(EventStreamError) -> Int { Int(try fixed(UInt16.self)) }

        switch type {
        case 0: return .bool(true)
        case 1: return .bool(false)
        case 2: return .byte(try fixed(Int8.self))
        case 3: return .int16(try fixed(Int16.self))
        case 4: return .int32(try fixed(Int32.self))
        case 5: return .int64(try fixed(Int64.self))
        case 6:
            let length = try variable()
            guard let bytes = block.readBytes(length: length) else { throw pastEnd(name) }
            return .bytes(bytes)
        case 7: return .string(try readString(&block, length: try variable(), what: "string value of header '\(name)'"))
        case 8: return .timestamp(try fixed(Int64.self))
        case 9:
            guard let bytes = block.readBytes(length: 16) else { throw pastEnd(name) }
            return .uuid(bytes)
        default:
            throw .malformedHeader("header '\(name)' has unknown value type \(type) (known types are 0 to 9)")
        }
    }

    private static func readString(_ block: inout ByteBuffer, length: Int, what: @autoclosure () -> String) throws(EventStreamError) -> String {
        guard let bytes = block.readSlice(length: length) else {
            throw .malformedHeader("\(what()) (\(length) bytes) runs past the end of the header block")
        }
        guard let string = bytes.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) else {
            throw .malformedHeader("\(what()) is not valid UTF-8")
        }
        return string
    }

    private static func pastEnd(_ name: String) -> EventStreamError {
        .malformedHeader("value of header '\(name)' runs past the end of the header block")
    }

    private static func duplicate(_ name: String) -> EventStreamError {
        .malformedHeader("header '\(name)' appears twice in one frame")
    }
}
