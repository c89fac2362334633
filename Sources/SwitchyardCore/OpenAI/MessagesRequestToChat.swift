import NIOCore

/// Translates a `POST /v1/messages` body into a Chat Completions body for an OpenAI-compatible
/// upstream (`type: openai`), for the model id that upstream knows.
///
/// | Messages | Chat Completions |
/// |---|---|
/// | `model` | `model`: the upstream's model id |
/// | `system`, `messages` | `messages` (``MessagesConversationToChat``) |
/// | `max_tokens` | `max_tokens`: OpenAI's newer `max_completion_tokens` is what its reasoning models want, but vLLM, Ollama and most compatible servers read `max_tokens`, and OpenAI still takes it for chat models |
/// | `stop_sequences` | `stop` |
/// | `temperature`, `top_p` | `temperature`, `top_p` (Anthropic's 0...1 is inside OpenAI's 0...2) |
/// | `tools` (custom tools) | `tools`: `{"type":"function","function":{name, description, parameters: input_schema}}` |
/// | `tool_choice` auto / any / none / `{"type":"tool","name"}` | `tool_choice` auto / required / none / `{"type":"function","function":{"name"}}` |
/// | `tool_choice.disable_parallel_tool_use: true` | `parallel_tool_calls: false` |
/// | `metadata.user_id` | `user` |
/// | `stream: true` | `stream: true`, `stream_options: {"include_usage": true}` (the usage Anthropic's `message_delta` reports) |
///
/// Dropped, as they tune the answer without changing its shape: `top_k` (OpenAI refuses unknown
/// parameters), `thinking` (no portable form; the answer comes without thinking blocks),
/// `cache_control` marks, `service_tier`, and unknown fields. Refused with 400 naming the field:
/// server tools (a tool whose `type` is not `custom`), `mcp_servers` and `container` (they need
/// Anthropic's servers), `output_format` (a structured answer cannot be promised).
public enum MessagesRequestToChat {
    public static func translate(_ body: ByteBuffer, model: String) throws(TranslationError) -> ByteBuffer {
        try translate(Array(body.readableBytesView), model: model)
    }

    public static func translate(_ bytes: [UInt8], model: String) throws(TranslationError) -> ByteBuffer {
        let request = try JSONFieldReader.body(bytes, what: "the request body")
        for field in ["mcp_servers", "container", "output_format"] where request.has(field) {
            throw .unsupported(field, "not supported by OpenAI-compatible upstreams")
        }
        guard let messages = try request.objects("messages") else { throw .missing("messages") }

        var out = JSONObject()
        out["model"] = .string(model)
        out["messages"] = .array(try MessagesConversationToChat.convert(system: request.value("system"), messages: messages))
        if let maxTokens = try request.int("max_tokens") { out["max_tokens"] = .int(maxTokens) }
        if let stops = try request.array("stop_sequences"), !stops.isEmpty {
            for (index, stop) in stops.enumerated() where stop.stringValue == nil {
                throw .wrongType("stop_sequences[\(index)]", expected: "a string", got: stop)
            }
            out["stop"] = .array(stops)
        }
        for field in ["temperature", "top_p"] where try request.double(field) != nil {
            out[field] = request.value(field)
        }
        let tools = try self.tools(request)
        if !tools.isEmpty {
            out["tools"] = .array(tools)
            try addToolChoice(request, to: &out)
        }
        if let user = try request.object("metadata")?.string("user_id") { out["user"] = .string(user) }
        if try request.bool("stream") == true {
            out["stream"] = true
            out["stream_options"] = ["include_usage": true]
        }
        return ByteBuffer(bytes: JSONValue.object(out).encoded)
    }

    private static func tools(_ request: JSONFieldReader) throws(TranslationError) -> [JSONValue] {
        var tools: [JSONValue] = []
        for tool in try request.objects("tools") ?? [] {
            if let type = try tool.string("type"), type != "custom" {
                throw .unsupported(tool.name("type"), "server tool '\(type)' cannot run on an OpenAI-compatible upstream")
            }
            var function = JSONObject()
            function["name"] = .string(try tool.requiredString("name"))
            function["description"] = try tool.string("description").map(JSONValue.string)
            function["parameters"] = try tool.object("input_schema").map { .object($0.object) } ?? ["type": "object"]
            tools.append(["type": "function", "function": .object(function)])
        }
        return tools
    }

    private static func addToolChoice(_ request: JSONFieldReader, to out: inout JSONObject) throws(TranslationError) {
        guard let choice = try request.object("tool_choice") else { return }
        let type = try choice.requiredString("type")
        switch type {
        case "auto": out["tool_choice"] = "auto"
        case "any": out["tool_choice"] = "required"
        case "none": out["tool_choice"] = "none"
        case "tool": out["tool_choice"] = ["type": "function", "function": ["name": .string(try choice.requiredString("name"))]]
        default: throw .unsupported(choice.name("type"), "expected auto, any, none or tool, got '\(type)'")
        }
        if try choice.bool("disable_parallel_tool_use") == true, type != "none" {
            out["parallel_tool_calls"] = false
        }
    }
}
