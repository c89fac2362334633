import NIOCore

/// Turns a Messages stream, one Anthropic event at a time, into Chat Completions chunks
/// (`data: {…}\n\n`), and ends it with ``finish()``.
///
/// - `message_start` → the first chunk, `delta: {"role":"assistant","content":""}`, as OpenAI's is.
/// - `text_delta` (and a `text` block's initial text) → `delta.content`.
/// - A `tool_use` block's start → `delta.tool_calls[{index, id, type: "function", function: {name,
///   arguments: ""}}]`, `index` counting tool calls from 0 (not Anthropic's block index);
///   each `input_json_delta` → `delta.tool_calls[{index, function: {arguments: partial_json}}]`.
/// - `message_delta` with a `stop_reason` → a chunk with an empty delta and `finish_reason`.
/// - `ping`, `content_block_stop`, `message_stop`, thinking blocks and their deltas (no Chat
///   Completions form), server-tool blocks and any unknown event are ignored.
/// - `event: error` → `data: {"error":{…}}` in OpenAI's shape (``OpenAIErrorEnvelope``), which
///   the openai SDKs raise as an `APIError` mid-stream; the stream ends there: later events are
///   ignored and ``finish()`` writes nothing, not even `[DONE]`, so a reader that waits for
///   `[DONE]` cannot take the broken answer for a whole one. An event of a known kind whose data
///   is not JSON ends the stream the same way, as a `server_error`.
///
/// With `include_usage`, every chunk carries `"usage": null` and ``finish()`` first writes a chunk
/// with `choices: []` and the usage (``ChatUsage``), as OpenAI does.
public struct ChatStreamTranslator: Sendable {
    public let model: String
    public let created: Int64
    public let includeUsage: Bool

    private var id = "chatcmpl-"
    private var started = false
    private var ended = false
    /// Anthropic block index → tool call index.
    private var toolCallIndex: [Int: Int] = [:]
    private var usage = ChatUsage()

    public init(model: String, created: Int64, includeUsage: Bool) {
        self.model = model
        self.created = created
        self.includeUsage = includeUsage
    }

    public mutating func translate(_ event: SSEEvent) -> ByteBuffer? {
        translate(event: event.name, data: event.data)
    }

    /// The chunks one Anthropic event becomes; nil when it becomes none.
    public mutating func translate(event name: SSEEventName, data: ByteBuffer) -> ByteBuffer? {
        guard !ended else { return nil }
        var output = ByteBuffer()
        do {
            try translate(event: name, data: data, into: &output)
        } catch {
            ended = true
            let envelope = OpenAIErrorEnvelope(message: "upstream sent an unreadable stream event: \(error.message)", type: "server_error")
            write(error: envelope, into: &output)
        }
        return output.readableBytes > 0 ? output : nil
    }

    /// The usage chunk (with `include_usage`) and `data: [DONE]`; nil after an error, or when
    /// already called.
    public mutating func finish() -> ByteBuffer? {
        guard !ended else { return nil }
        ended = true
        var output = ByteBuffer()
        if includeUsage {
            var chunk = header()
            chunk["choices"] = []
            chunk["usage"] = usage.json
            write(chunk, into: &output)
        }
        output.writeString("data: [DONE]\n\n")
        return output
    }

    private mutating func translate(event name: SSEEventName, data: ByteBuffer, into output: inout ByteBuffer) throws(TranslationError) {
        switch name {
        case .messageStart:
            let event = try JSONFieldReader.body(Array(data.readableBytesView), what: "message_start")
            if let message = try event.object("message") {
                if let messageID = try message.string("id") { id = "chatcmpl-" + messageID }
                if let usage = try message.object("usage") { try self.usage.merge(anthropic: usage) }
            }
            start(into: &output)
        case .contentBlockStart:
            let event = try JSONFieldReader.body(Array(data.readableBytesView), what: "content_block_start")
            guard let block = try event.object("content_block"), let index = try event.int("index") else { return }
            switch try block.string("type") {
            case "text":
                let text = try block.string("text") ?? ""
                if !text.isEmpty { write(delta: ["content": .string(text)], into: &output) }
            case "tool_use":
                let callIndex = toolCallIndex.count
                toolCallIndex[index] = callIndex
                let call: JSONValue = [
                    "index": .int(callIndex), "id": .string(try block.requiredString("id")), "type": "function",
                    "function": ["name": .string(try block.requiredString("name")), "arguments": ""],
                ]
                write(delta: ["tool_calls": [call]], into: &output)
            default:
                return
            }
        case .contentBlockDelta:
            let event = try JSONFieldReader.body(Array(data.readableBytesView), what: "content_block_delta")
            guard let delta = try event.object("delta") else { return }
            switch try delta.string("type") {
            case "text_delta":
                let text = try delta.string("text") ?? ""
                if !text.isEmpty { write(delta: ["content": .string(text)], into: &output) }
            case "input_json_delta":
                guard let index = try event.int("index"), let callIndex = toolCallIndex[index] else { return }
                let partial = try delta.string("partial_json") ?? ""
                guard !partial.isEmpty else { return }
                write(delta: ["tool_calls": [["index": .int(callIndex), "function": ["arguments": .string(partial)]]]], into: &output)
            default:
                return
            }
        case .messageDelta:
            let event = try JSONFieldReader.body(Array(data.readableBytesView), what: "message_delta")
            if let usage = try event.object("usage") { try self.usage.merge(anthropic: usage) }
            if let stopReason = try event.object("delta")?.string("stop_reason") {
                write(delta: .object(JSONObject()), finishReason: StopReasonMapping.finishReason(fromStopReason: stopReason), into: &output)
            }
        case .error:
            ended = true
            let error = AnthropicPayload.error(in: data)
            let envelope = OpenAIErrorEnvelope(anthropicType: error.type ?? "api_error", message: error.message ?? "upstream stream failed", status: 500)
            write(error: envelope, into: &output)
        case .ping, .contentBlockStop, .messageStop, .other:
            return
        }
    }

    /// The role chunk, once, before anything else.
    private mutating func start(into output: inout ByteBuffer) {
        guard !started else { return }
        started = true
        write(delta: ["role": "assistant", "content": ""], into: &output)
    }

    private func header() -> JSONObject {
        JSONObject([("id", .string(id)), ("object", "chat.completion.chunk"), ("created", .number(String(created))), ("model", .string(model))])
    }

    private mutating func write(delta: JSONValue, finishReason: String? = nil, into output: inout ByteBuffer) {
        start(into: &output)
        var chunk = header()
        let choice = JSONObject([("index", 0), ("delta", delta), ("logprobs", nil), ("finish_reason", finishReason.map(JSONValue.string) ?? .null)])
        chunk["choices"] = [.object(choice)]
        if includeUsage { chunk["usage"] = .null }
        write(chunk, into: &output)
    }

    private func write(_ chunk: JSONObject, into output: inout ByteBuffer) {
        output.writeString("data: ")
        output.writeBytes(JSONValue.object(chunk).encoded)
        output.writeString("\n\n")
    }

    private func write(error: OpenAIErrorEnvelope, into output: inout ByteBuffer) {
        output.writeString("data: ")
        output.writeImmutableBuffer(error.body)
        output.writeString("\n\n")
    }
}
