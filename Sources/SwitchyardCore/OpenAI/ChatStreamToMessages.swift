import NIOCore

/// Re-emits an OpenAI-compatible upstream's Chat Completions stream (`data: {chunk}` events
/// ending with `data: [DONE]`, split anywhere across reads) as Anthropic's Messages stream, for a
/// `/v1/messages` caller whose route fell over to a `type: openai` model.
///
/// - The first chunk with a choice → `message_start` (`id` `msg_` + the chunks' id, their `model`,
///   empty content). Its `usage.input_tokens` is 0 unless a chunk already carried usage:
///   OpenAI reports usage in the last chunk only, so the real counts arrive in `message_delta`,
///   whose `usage` then carries `input_tokens` as well as `output_tokens` (the Anthropic SDKs take
///   both from there).
/// - `delta.content` (and `delta.refusal`) → a `text` block: `content_block_start`, then
///   `text_delta`s. `reasoning_content` is dropped (a thinking block would need a signature).
/// - Each new `delta.tool_calls[].index` → a `tool_use` block (`id`, `function.name`, `input: {}`),
///   its `function.arguments` pieces → `input_json_delta` `partial_json`. A block closes when the
///   next one opens, as Anthropic's do; a tool call that resumes after another block began cannot
///   be expressed and fails the stream.
/// - `finish_reason` and the usage chunk are held until `[DONE]`, which closes the open block and
///   writes `message_delta` (`stop_reason`, ``StopReasonMapping/stopReason(fromFinishReason:)``;
///   `end_turn` when no reason came) and `message_stop`.
/// - `data: {"error":{…}}` → `event: error` with the type mapped by
///   ``OpenAIUpstreamErrors/anthropicType(ofStreamError:)``; the stream ends there.
/// - A body that ends without `[DONE]` or a `finish_reason`, a chunk that is not JSON and an
///   event over the parser's limit are broken streams: `UpstreamError(failure: .reset)`. A body
///   that ends after a `finish_reason` but without `[DONE]` is closed as if it had come.
public struct ChatStreamToMessages: UpstreamBodyTranslator {
    private enum Block: Equatable {
        case none
        case text(index: Int)
        case tool(call: Int, index: Int)

        var index: Int? {
            switch self {
            case .none: nil
            case .text(let index), .tool(_, let index): index
            }
        }

        var isText: Bool {
            if case .text = self { return true }
            return false
        }

        var toolCall: Int? {
            if case .tool(let call, _) = self { return call }
            return nil
        }
    }

    private var parser = SSEEventParser()
    private var sawChunk = false
    /// `message_start` was written.
    private var started = false
    /// The first non-empty `id` and `model` of the chunks.
    private var messageID = ""
    private var model = ""
    /// `[DONE]` was handled, or an error event written: nothing more is read.
    private var ended = false
    private var block = Block.none
    private var nextBlockIndex = 0
    private var toolCalls: Set<Int> = []
    private var finishReason: String?
    private var inputTokens: Int?
    private var outputTokens: Int?
    /// A failure met after good events of the same read: those go out first, the failure next.
    private var pendingError: UpstreamError?

    public init() {}

    public mutating func translate(_ chunk: ByteBuffer) throws(UpstreamError) -> ByteBuffer? {
        if let pendingError { throw pendingError }
        guard !ended else { return nil }
        parser.append(chunk)
        var output = ByteBuffer()
        do {
            try drain(into: &output)
        } catch {
            guard output.readableBytes > 0 else { throw error }
            pendingError = error
        }
        return output
    }

    public mutating func finish() throws(UpstreamError) -> ByteBuffer? {
        if let pendingError { throw pendingError }
        var output = ByteBuffer()
        if !ended, parser.hasUnparsedBytes {
            // The last event without its blank line: read it rather than lose it.
            parser.append(ByteBuffer(string: "\n\n"))
            try drain(into: &output)
        }
        if !ended {
            guard finishReason != nil else {
                throw UpstreamError(failure: .reset, detail: "OpenAI stream ended without [DONE] or a finish_reason")
            }
            try close(into: &output)
        }
        return output.readableBytes > 0 ? output : nil
    }

    private mutating func drain(into output: inout ByteBuffer) throws(UpstreamError) {
        while !ended {
            let event: SSEEvent?
            do {
                event = try parser.next()
            } catch {
                throw UpstreamError(failure: .reset, detail: "OpenAI stream event larger than \(error.limit) bytes")
            }
            guard let event else {
                // Every event read so far is handled: the parser may let go of its bytes.
                _ = parser.takeParsedBytes()
                return
            }
            try handle(event.data, into: &output)
        }
    }

    private mutating func handle(_ data: ByteBuffer, into output: inout ByteBuffer) throws(UpstreamError) {
        let text = data.readableBytesView.drop { $0 == 0x20 }
        if text.elementsEqual("[DONE]".utf8) {
            try close(into: &output)
            return
        }
        let chunk: JSONValue
        do {
            chunk = try JSONValueParser.parse(data)
        } catch {
            throw UpstreamError(failure: .reset, detail: "OpenAI stream chunk is not JSON: \(error)")
        }
        if let details = OpenAIUpstreamErrors.errorDetails(in: chunk) {
            ended = true
            let type = OpenAIUpstreamErrors.anthropicType(ofStreamError: details)
            let error: JSONValue = ["type": "error", "error": ["type": .string(type), "message": .string(details.message ?? "upstream stream failed")]]
            Self.write(event: "error", error, into: &output)
            return
        }
        guard let object = chunk.objectValue else { throw UpstreamError(failure: .reset, detail: "OpenAI stream chunk is not an object") }
        sawChunk = true
        if messageID.isEmpty, let id = object["id"]?.stringValue { messageID = id }
        if model.isEmpty, let name = object["model"]?.stringValue { model = name }
        if let usage = object["usage"]?.objectValue {
            inputTokens = usage["prompt_tokens"]?.intValue ?? inputTokens
            outputTokens = usage["completion_tokens"]?.intValue ?? outputTokens
        }
        guard let choice = object["choices"]?.arrayValue?.first?.objectValue else { return }
        start(into: &output)
        if let delta = choice["delta"]?.objectValue {
            for key in ["content", "refusal"] {
                if let text = delta[key]?.stringValue, !text.isEmpty { appendText(text, into: &output) }
            }
            for (position, call) in (delta["tool_calls"]?.arrayValue ?? []).enumerated() {
                guard let call = call.objectValue else { continue }
                try appendToolCall(call, position: position, into: &output)
            }
        }
        if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
    }

    /// `message_start`, once: at the first chunk with a choice (Azure's first chunk holds only
    /// content-filter results, with no id or model), or at the end.
    private mutating func start(into output: inout ByteBuffer) {
        guard !started else { return }
        started = true
        let message: JSONValue = [
            "id": .string("msg_" + messageID), "type": "message", "role": "assistant",
            "model": .string(model), "content": [], "stop_reason": nil, "stop_sequence": nil,
            "usage": ["input_tokens": .int(inputTokens ?? 0), "output_tokens": 0],
        ]
        Self.write(event: "message_start", ["type": "message_start", "message": message], into: &output)
    }

    private mutating func appendText(_ text: String, into output: inout ByteBuffer) {
        if !block.isText {
            open(.text(index: nextBlockIndex), ["type": "text", "text": ""], into: &output)
        }
        delta(["type": "text_delta", "text": .string(text)], into: &output)
    }

    private mutating func appendToolCall(_ call: JSONObject, position: Int, into output: inout ByteBuffer) throws(UpstreamError) {
        let callIndex = call["index"]?.intValue ?? position
        let function = call["function"]?.objectValue
        if !toolCalls.contains(callIndex) {
            toolCalls.insert(callIndex)
            let id = call["id"]?.stringValue ?? "call_\(callIndex)"
            let start: JSONValue = ["type": "tool_use", "id": .string(id), "name": .string(function?["name"]?.stringValue ?? ""), "input": [:]]
            open(.tool(call: callIndex, index: nextBlockIndex), start, into: &output)
        } else if block.toolCall != callIndex {
            throw UpstreamError(failure: .reset, detail: "OpenAI stream resumed tool call \(callIndex) after another block began")
        }
        if let arguments = function?["arguments"]?.stringValue, !arguments.isEmpty {
            delta(["type": "input_json_delta", "partial_json": .string(arguments)], into: &output)
        }
    }

    private mutating func open(_ next: Block, _ contentBlock: JSONValue, into output: inout ByteBuffer) {
        closeBlock(into: &output)
        block = next
        nextBlockIndex += 1
        let index = JSONValue.int(next.index ?? 0)
        Self.write(event: "content_block_start", ["type": "content_block_start", "index": index, "content_block": contentBlock], into: &output)
    }

    private func delta(_ delta: JSONValue, into output: inout ByteBuffer) {
        Self.write(event: "content_block_delta", ["type": "content_block_delta", "index": .int(block.index ?? 0), "delta": delta], into: &output)
    }

    private mutating func closeBlock(into output: inout ByteBuffer) {
        guard let index = block.index else { return }
        Self.write(event: "content_block_stop", ["type": "content_block_stop", "index": .int(index)], into: &output)
        block = .none
    }

    private mutating func close(into output: inout ByteBuffer) throws(UpstreamError) {
        guard sawChunk else { throw UpstreamError(failure: .reset, detail: "OpenAI stream ended before its first chunk") }
        start(into: &output)
        ended = true
        closeBlock(into: &output)
        var usage = JSONObject()
        if let inputTokens { usage["input_tokens"] = .int(inputTokens) }
        usage["output_tokens"] = .int(outputTokens ?? 0)
        let stopReason = StopReasonMapping.stopReason(fromFinishReason: finishReason ?? "stop")
        let messageDelta: JSONValue = [
            "type": "message_delta", "delta": ["stop_reason": .string(stopReason), "stop_sequence": nil], "usage": .object(usage),
        ]
        Self.write(event: "message_delta", messageDelta, into: &output)
        Self.write(event: "message_stop", ["type": "message_stop"], into: &output)
    }

    private static func write(event name: StaticString, _ data: JSONValue, into output: inout ByteBuffer) {
        output.writeStaticString("event: ")
        output.writeStaticString(name)
        output.writeStaticString("\ndata: ")
        output.writeBytes(data.encoded)
        output.writeStaticString("\n\n")
    }
}
