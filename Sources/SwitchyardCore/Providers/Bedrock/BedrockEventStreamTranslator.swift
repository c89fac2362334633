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
            writeError(code: code, message: BedrockErrors.message(in: message.payload), status: originalStatus(in: message.payload), into: &output)
        case "error":
            let code = BedrockErrors.code(fromHeader: message.stringHeader(":error-code") ?? "UnknownError")
            writeError(code: code, message: message.stringHeader(":error-message"), status: nil, into: &output)
        default:
            throw UpstreamError(failure: .reset, detail: "Bedrock event stream: a frame with no known :message-type")
        }
    }

    /// The Anthropic event inside a chunk's `{"bytes": base64}`.
    private static func decodeChunk(_ payload: ByteBuffer) -> ByteBuffer? {
        payload.withUnsafeReadableBytes { bytes -> ByteBuffer? in
            guard let skim = try? JSONSkimmer.skim(bytes), let member = JSONSkimmer.member("bytes", in: skim, bytes: bytes),
                member.kind == .string
            else { return nil }
            let decoded: [UInt8]?
            if member.valueHasEscapes {
                // A JSON encoder may write base64's `/` as `\/` (and could escape any character):
                // the string's value, not its spelling, is the base64 text.
                guard let text = JSONSkimmer.stringValue(member, bytes: bytes) else { return nil }
                decoded = try? Base64.decode(bytes: Array(text.utf8))
            } else {
                let content = (member.value.lowerBound + 1)..<(member.value.upperBound - 1)
                decoded = try? Base64.decode(bytes: UnsafeRawBufferPointer(rebasing: bytes[content]))
            }
            return decoded.map { ByteBuffer(bytes: $0) }
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

    /// The `event: error` an exception frame becomes. Its message starts with the exception's
    /// name (and the model's original status, when the frame gave one), which is how
    /// ``platformError(inErrorEvent:)`` finds them again for the audit line.
    private static func writeError(code: String, message: String?, status: Int?, into output: inout ByteBuffer) {
        let mapped = BedrockErrors.read(status: 500, code: code, message: message, api: .messages, serverDate: nil, nowMs: 0)
        var json = JSONWriter(capacity: 128)
        json.beginObject()
        json.field("type", "error")
        json.key("error")
        json.beginObject()
        json.field("type", mapped.type)
        json.field("message", "\(code)\(status.map { " (status \($0))" } ?? ""): \(message ?? "Bedrock stream failed")")
        json.endObject()
        json.endObject()
        writeEvent(name: "error", data: ByteBuffer(bytes: json.bytes), into: &output)
    }

    /// ModelStreamErrorException's `originalStatusCode`: the model's own status behind the failure.
    private static func originalStatus(in payload: ByteBuffer) -> Int? {
        payload.withUnsafeReadableBytes { bytes in
            guard let skim = try? JSONSkimmer.skim(bytes), let member = JSONSkimmer.member("originalStatusCode", in: skim, bytes: bytes) else {
                return nil
            }
            return JSONSkimmer.intValue(member, bytes: bytes)
        }
    }

    /// The exception's name and original status in an `event: error` that ``writeError`` made:
    /// `ModelStreamErrorException (status 424): …` → (`ModelStreamErrorException`, 424).
    static func platformError(inErrorEvent data: ByteBuffer) -> (code: String, status: Int?)? {
        guard let message = AnthropicPayload.error(in: data).message, let colon = message.range(of: ": ") else { return nil }
        let head = message[..<colon.lowerBound]
        let parts = head.split(separator: " ", maxSplits: 1)
        guard let name = parts.first, !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
        var status: Int?
        if parts.count == 2 {
            let rest = parts[1]
            guard rest.hasPrefix("(status "), rest.hasSuffix(")"), let value = Int(rest.dropFirst(8).dropLast()) else { return nil }
            status = value
        }
        return (String(name), status)
    }
}
