import NIOCore

/// Translates a `chat.completion` from an OpenAI-compatible upstream into a Messages answer.
///
/// | Chat Completions | Messages |
/// |---|---|
/// | `id` | `id`: `msg_` + the id |
/// | — | `type: "message"`, `role: "assistant"`, `stop_sequence: null` |
/// | `model` | `model` (the upstream's own name for it) |
/// | `choices[0].message.content` (a string or text parts), else its `refusal` | one `text` block, when not empty |
/// | `choices[0].message.tool_calls[]` | `tool_use` blocks: `id`, `function.name` → `name`, `function.arguments` parsed → `input` ("" reads as `{}`) |
/// | `choices[0].finish_reason` | `stop_reason` (``StopReasonMapping/stopReason(fromFinishReason:)``) |
/// | `usage.prompt_tokens`, `usage.completion_tokens` | `usage.input_tokens`, `usage.output_tokens` (0 when absent); OpenAI's prompt count includes cached tokens, and so does `input_tokens` here |
///
/// An answer with no choice, or a tool call whose arguments are not a JSON object, is not a
/// usable answer: ``TranslationError`` (the attempt's outcome is then an invalid response, which
/// the router retries). Only the first choice is read: Switchyard never asks for more.
/// `reasoning_content` (vLLM's, DeepSeek's) is dropped: it would need a thinking block's signature.
public enum ChatResponseToMessages {
    public static func translate(_ body: ByteBuffer) throws(TranslationError) -> ByteBuffer {
        let completion = try JSONFieldReader.body(Array(body.readableBytesView), what: "the upstream answer")
        guard let choice = try completion.objects("choices")?.first else {
            throw TranslationError(field: "choices", message: "the upstream answer has no choice")
        }
        guard let message = try choice.object("message") else { throw .missing(choice.name("message")) }
        var content: [JSONValue] = []
        let text = try self.text(of: message)
        if !text.isEmpty { content.append(["type": "text", "text": .string(text)]) }
        for call in try message.objects("tool_calls") ?? [] {
            content.append(try toolUse(call))
        }
        let finishReason = try choice.string("finish_reason")
        let usage = try completion.object("usage")

        var out = JSONObject()
        out["id"] = .string("msg_" + (try completion.string("id") ?? ""))
        out["type"] = "message"
        out["role"] = "assistant"
        out["model"] = .string(try completion.string("model") ?? "")
        out["content"] = .array(content)
        out["stop_reason"] = .string(StopReasonMapping.stopReason(fromFinishReason: finishReason ?? "stop"))
        out["stop_sequence"] = .null
        out["usage"] = ["input_tokens": .int(try usage?.int("prompt_tokens") ?? 0), "output_tokens": .int(try usage?.int("completion_tokens") ?? 0)]
        return ByteBuffer(bytes: JSONValue.object(out).encoded)
    }

    private static func text(of message: JSONFieldReader) throws(TranslationError) -> String {
        if let content = message.value("content") {
            if let text = content.stringValue, !text.isEmpty { return text }
            if content.arrayValue != nil {
                var text = ""
                for part in try message.objects("content") ?? [] where try part.string("type") == "text" {
                    text += try part.requiredString("text")
                }
                if !text.isEmpty { return text }
            }
        }
        return try message.string("refusal") ?? ""
    }

    private static func toolUse(_ call: JSONFieldReader) throws(TranslationError) -> JSONValue {
        guard let function = try call.object("function") else { throw .missing(call.name("function")) }
        return [
            "type": "tool_use", "id": .string(try call.requiredString("id")), "name": .string(try function.requiredString("name")),
            "input": try ToolCallArguments.parse(try function.string("arguments") ?? "", field: function.name("arguments")),
        ]
    }
}
