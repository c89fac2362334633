import NIOCore

/// Translates a Messages answer (JSON) into a `chat.completion`.
///
/// | Messages | Chat Completions |
/// |---|---|
/// | `id` | `id`: `chatcmpl-` + the id |
/// | — | `object: "chat.completion"`, `created` (given), `model` (given: the name the caller asked for) |
/// | `text` blocks | `choices[0].message.content`, joined with nothing between (a stream concatenates its deltas the same way); null when there is no text |
/// | `tool_use` blocks | `choices[0].message.tool_calls[]`: `id`, `type: "function"`, `function.name`, `function.arguments` = `input` as a JSON string |
/// | `stop_reason` | `choices[0].finish_reason` (``StopReasonMapping/finishReason(fromStopReason:)``) |
/// | `usage` | `prompt_tokens` = input + cache read + cache creation tokens, `completion_tokens` = output tokens, `total_tokens`, and `prompt_tokens_details.cached_tokens` when the cache was read |
///
/// Thinking blocks and server-tool blocks (`server_tool_use`, `web_search_tool_result`, ...)
/// have no Chat Completions form and are left out.
public enum MessagesResponseToChat {
    public static func translate(_ body: ByteBuffer, model: String, created: Int64) throws(TranslationError) -> ByteBuffer {
        let message = try JSONFieldReader.body(Array(body.readableBytesView), what: "the upstream answer")
        guard try message.string("type") == "message" else {
            throw TranslationError(field: "type", message: "the upstream answer is not a message")
        }
        var text: String?
        var toolCalls: [JSONValue] = []
        for block in try message.objects("content") ?? [] {
            switch try block.string("type") {
            case "text":
                text = (text ?? "") + (try block.requiredString("text"))
            case "tool_use":
                toolCalls.append(try toolCall(block))
            default:
                continue
            }
        }
        let finishReason = try message.string("stop_reason").map(StopReasonMapping.finishReason(fromStopReason:))

        var chat = JSONObject()
        chat["id"] = .string("chatcmpl-" + (try message.string("id") ?? ""))
        chat["object"] = "chat.completion"
        chat["created"] = .number(String(created))
        chat["model"] = .string(model)
        var reply = JSONObject([("role", "assistant"), ("content", text.map(JSONValue.string) ?? .null)])
        if !toolCalls.isEmpty { reply["tool_calls"] = .array(toolCalls) }
        let choice = JSONObject([
            ("index", 0), ("message", .object(reply)), ("logprobs", nil), ("finish_reason", finishReason.map(JSONValue.string) ?? .null),
        ])
        chat["choices"] = [.object(choice)]
        if let usage = try message.object("usage") {
            chat["usage"] = try ChatUsage(anthropic: usage).json
        }
        return ByteBuffer(bytes: JSONValue.object(chat).encoded)
    }

    private static func toolCall(_ block: JSONFieldReader) throws(TranslationError) -> JSONValue {
        let input = block.value("input") ?? .object(JSONObject())
        return [
            "id": .string(try block.requiredString("id")), "type": "function",
            "function": ["name": .string(try block.requiredString("name")), "arguments": .string(input.encodedString)],
        ]
    }
}

/// Anthropic's token counts as OpenAI's `usage`. Anthropic counts cached prompt tokens apart from
/// `input_tokens`; OpenAI's `prompt_tokens` is the whole prompt, with the cached part repeated in
/// `prompt_tokens_details.cached_tokens`.
struct ChatUsage: Sendable, Equatable {
    var inputTokens = 0
    var cacheReadTokens = 0
    var cacheCreationTokens = 0
    var outputTokens = 0

    init() {}

    init(anthropic usage: JSONFieldReader) throws(TranslationError) {
        try merge(anthropic: usage)
    }

    /// Later counts win: `message_delta` repeats them cumulatively.
    mutating func merge(anthropic usage: JSONFieldReader) throws(TranslationError) {
        inputTokens = try usage.int("input_tokens") ?? inputTokens
        cacheReadTokens = try usage.int("cache_read_input_tokens") ?? cacheReadTokens
        cacheCreationTokens = try usage.int("cache_creation_input_tokens") ?? cacheCreationTokens
        outputTokens = try usage.int("output_tokens") ?? outputTokens
    }

    var promptTokens: Int { inputTokens + cacheReadTokens + cacheCreationTokens }

    var json: JSONValue {
        var usage = JSONObject([
            ("prompt_tokens", .int(promptTokens)), ("completion_tokens", .int(outputTokens)), ("total_tokens", .int(promptTokens + outputTokens)),
        ])
        if cacheReadTokens > 0 { usage["prompt_tokens_details"] = ["cached_tokens": .int(cacheReadTokens)] }
        return .object(usage)
    }
}
