import AWSWire
import ExtrasBase64
import NIOCore

/// Re-emits a Bedrock response stream as Anthropic SSE. Each `chunk` event carries
/// `{"bytes":"<base64>"}` holding one Anthropic stream event, relayed as `event: <type>` /
/// `data: <json>`. An exception frame becomes an Anthropic `event: error`, so the relay treats it
/// like any upstream's stream error (before or after the commit point). A frame whose CRC fails,
/// or a stream that ends inside a frame, is a broken stream.
struct BedrockEventStreamTranslator: UpstreamBodyTranslator {
    private var decoder = EventStreamDecoder()
    /// A broken frame found after good ones in the same chunk: the good ones go out first (the
    /// failure may then fall after the commit point, where it belongs), the error next time.
    private var pendingError: UpstreamError?

    mutating func translate(_ chunk: ByteBuffer) throws(UpstreamError) -> ByteBuffer? {
        if let pendingError { throw pendingError }
        decoder.append(chunk)
        var output = ByteBuffer()
        while true {
            do {
                guard let message = try Self.next(from: &decoder) else { break }
                try Self.emit(message, into: &output)
            } catch {
                guard output.readableBytes > 0 else { throw error }
                pendingError = error
                break
            }
        }
        return output
    }

    private static func next(from decoder: inout EventStreamDecoder) throws(UpstreamError) -> EventStreamMessage? {
        do {
            return try decoder.next()
        } catch {
            throw UpstreamError(failure: .reset, detail: "Bedrock event stream: \(error)")
        }
    }

    mutating func finish() throws(UpstreamError) -> ByteBuffer? {
        if let pendingError { throw pendingError }
        do {
            try decoder.finish()
        } catch {
            throw UpstreamError(failure: .reset, detail: "Bedrock event stream: \(error)")
        }
        return nil
    }

    static func emit(_ message: EventStreamMessage, into output: inout ByteBuffer) throws(UpstreamError) {
        switch message.stringHeader(":message-type") {
        case "event":
            guard message.stringHeader(":event-type") == "chunk" else { return }
            guard let event = decodeChunk(message.payload), let type = AnthropicPayload.topLevelString("type", in: event) else {
                throw UpstreamError(failure: .reset, detail: "Bedrock event stream: a chunk that holds no Anthropic event")
            }
            writeEvent(name: type, data: event, into: &output)
        case "exception":
            let code = BedrockErrors.code(fromHeader: message.stringHeader(":exception-type") ?? "UnknownException")
            writeError(code: code, message: BedrockErrors.message(in: message.payload), into: &output)
        case "error":
            let code = BedrockErrors.code(fromHeader: message.stringHeader(":error-code") ?? "UnknownError")
            writeError(code: code, message: message.stringHeader(":error-message"), into: &output)
        default:
            throw UpstreamError(failure: .reset, detail: "Bedrock event stream: a frame with no known :message-type")
        }
    }

    /// The Anthropic event inside a chunk's `{"bytes": base64}`.
    private static func decodeChunk(_ payload: ByteBuffer) -> ByteBuffer? {
        payload.withUnsafeReadableBytes { bytes -> ByteBuffer? in
            guard let skim = try? JSONSkimmer.skim(bytes), let member = JSONSkimmer.member("bytes", in: skim, bytes: bytes),
                member.kind == .string, !member.valueHasEscapes
            else { return nil }
            let encoded = UnsafeRawBufferPointer(rebasing: bytes[(member.value.lowerBound + 1)..<(member.value.upperBound - 1)])
            guard let decoded = try? Base64.decode(bytes: encoded) else { return nil }
            return ByteBuffer(bytes: decoded)
        }
    }

    private static func writeEvent(name: String, data: ByteBuffer, into output: inout ByteBuffer) {
        output.writeString("event: ")
        output.writeString(name)
        output.writeString("\ndata: ")
        // SSE data may not hold a raw newline; Anthropic's events are single-line JSON, but a
        // pretty-printed one must still arrive as one event.
        if data.readableBytesView.contains(UInt8(ascii: "\n")) {
            for byte in data.readableBytesView where byte != UInt8(ascii: "\n") && byte != UInt8(ascii: "\r") {
                output.writeInteger(byte)
            }
        } else {
            output.writeImmutableBuffer(data)
        }
        output.writeString("\n\n")
    }

    private static func writeError(code: String, message: String?, into output: inout ByteBuffer) {
        let mapped = BedrockErrors.read(status: 500, code: code, message: message, api: .messages, serverDate: nil, nowMs: 0)
        var json = JSONWriter(capacity: 128)
        json.beginObject()
        json.field("type", "error")
        json.key("error")
        json.beginObject()
        json.field("type", mapped.type)
        json.field("message", "\(code): \(message ?? "Bedrock stream failed")")
        json.endObject()
        json.endObject()
        writeEvent(name: "error", data: ByteBuffer(bytes: json.bytes), into: &output)
    }
}
