import NIOCore

/// Writes AWS event-stream frames; upstream-sim's Bedrock mode speaks through it.
///
/// The limits of the format are preconditions, because only our own code builds messages: a header
/// name of at most 255 UTF-8 bytes, `.bytes` and `.string` values of at most 65,535 bytes, `.uuid`
/// values of exactly 16 bytes, and a frame of at most 4 GiB.
public enum EventStreamEncoder {
    /// Appends one frame to `buffer`.
    public static func encode(_ message: EventStreamMessage, into buffer: inout ByteBuffer) {
        let headersLength = message.headers.reduce(0) { $0 + encodedLength($1) }
        let totalLength = 12 + headersLength + message.payload.readableBytes + 4
        precondition(totalLength <= Int(UInt32.max), "an event-stream frame is at most 4 GiB, this one is \(totalLength) bytes")

        buffer.reserveCapacity(minimumWritableBytes: totalLength)
        let start = buffer.writerIndex
        buffer.writeInteger(UInt32(totalLength))
        buffer.writeInteger(UInt32(headersLength))
        buffer.writeInteger(CRC32.checksum(buffer, at: start, length: 8))
        for header in message.headers {
            write(header, into: &buffer)
        }
        buffer.writeImmutableBuffer(message.payload)
        buffer.writeInteger(CRC32.checksum(buffer, at: start, length: totalLength - 4))
    }

    /// One frame in a buffer of its own.
    public static func encode(_ message: EventStreamMessage) -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(message, into: &buffer)
        return buffer
    }

    private static func encodedLength(_ header: (name: String, value: EventStreamHeaderValue)) -> Int {
        let valueLength =
            switch header.value {
            case .bool: 0
            case .byte: 1
            case .int16: 2
            case .int32: 4
            case .int64, .timestamp: 8
            case .bytes(let bytes): 2 + bytes.count
            case .string(let string): 2 + string.utf8.count
            case .uuid: 16
            }
        return 1 + header.name.utf8.count + 1 + valueLength
    }

    private static func write(_ header: (name: String, value: EventStreamHeaderValue), into buffer: inout ByteBuffer) {
        let nameLength = header.name.utf8.count
        precondition(nameLength <= Int(UInt8.max), "event-stream header name '\(header.name.prefix(40))…' is over 255 bytes")
        buffer.writeInteger(UInt8(nameLength))
        buffer.writeString(header.name)
        buffer.writeInteger(header.value.typeByte)
        switch header.value {
        case .bool:
            break
        case .byte(let value):
            buffer.writeInteger(value)
        case .int16(let value):
            buffer.writeInteger(value)
        case .int32(let value):
            buffer.writeInteger(value)
        case .int64(let value), .timestamp(let value):
            buffer.writeInteger(value)
        case .bytes(let bytes):
            precondition(bytes.count <= Int(UInt16.max), "event-stream header '\(header.name)' has \(bytes.count) bytes, over 65,535")
            buffer.writeInteger(UInt16(bytes.count))
            buffer.writeBytes(bytes)
        case .string(let string):
            let length = string.utf8.count
            precondition(length <= Int(UInt16.max), "event-stream header '\(header.name)' has a \(length)-byte string, over 65,535")
            buffer.writeInteger(UInt16(length))
            buffer.writeString(string)
        case .uuid(let bytes):
            precondition(bytes.count == 16, "event-stream header '\(header.name)' has a \(bytes.count)-byte uuid, not 16")
            buffer.writeBytes(bytes)
        }
    }
}

extension EventStreamHeaderValue {
    /// The wire's type byte; true and false are types of their own with no value bytes.
    var typeByte: UInt8 {
        switch self {
        case .bool(let value): value ? 0 : 1
        case .byte: 2
        case .int16: 3
        case .int32: 4
        case .int64: 5
        case .bytes: 6
        case .string: 7
        case .timestamp: 8
        case .uuid: 9
        }
    }
}
