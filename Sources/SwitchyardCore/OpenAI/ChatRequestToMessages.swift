import NIOCore

/// A Chat Completions request in Messages terms, and what the answer's translation needs to know.
public struct TranslatedChatRequest: Sendable {
    /// The Messages request body.
    public var body: ByteBuffer
    /// `model` as the caller gave it; the body carries it too, for the router to rewrite.
    public var model: String
    public var stream: Bool
    /// `stream_options.include_usage`: the stream ends with a usage chunk. Not sent upstream.
    public var includeUsage: Bool
}

/// Translates a `POST /v1/chat/completions` body into a `POST /v1/messages` body.
///
/// | Chat Completions | Messages |
/// |---|---|
/// | `model` | `model`, unchanged |
/// | `messages` | `system` and `messages` (``ChatConversationToMessages``) |
/// | `max_completion_tokens`, else `max_tokens`, else 4096 | `max_tokens` (Anthropic requires one; 4096 fits every current model) |
/// | `stop` (a string or an array) | `stop_sequences` |
/// | `temperature` (0...2) | `temperature`, values above 1 clamped to 1 (Anthropic's range is 0...1, and both read 1 as the model's natural sampling) |
/// | `top_p` | `top_p` |
/// | `tools` (`type: function`) | `tools`: `name`, `description`, `parameters` → `input_schema` (default `{"type":"object"}`) |
/// | `tool_choice` auto / required / none / `{"type":"function","function":{"name"}}` | `tool_choice` auto / any / none / `{"type":"tool","name"}` |
/// | `parallel_tool_calls: false` | `tool_choice.disable_parallel_tool_use: true` (with `auto` when no choice was given) |
/// | `user`, else `safety_identifier` | `metadata.user_id` |
/// | `stream` | `stream` |
/// | `stream_options.include_usage` | kept in ``TranslatedChatRequest/includeUsage`` |
///
/// `tool_choice` and `parallel_tool_calls` are dropped when no tools are given (Anthropic refuses a
/// choice without tools). Refused with 400 naming the field, because the caller would silently get
/// something else than asked: `n` other than 1, `logprobs: true`, `top_logprobs` above 0,
/// `response_format` other than `text`, `audio`, `modalities` other than text, `prediction`, a
/// non-empty `logit_bias`, non-zero `frequency_penalty`/`presence_penalty`, `web_search_options`,
/// and the legacy `functions`/`function_call`. Ignored, as hints or bookkeeping that do not change
/// the answer's shape (the SDKs send some by default): `seed`, `store`, `metadata`,
/// `service_tier`, `reasoning_effort`, `verbosity`, `prompt_cache_key`, zero penalties,
/// `parallel_tool_calls: true`, and any field not named here.
public enum ChatRequestToMessages {
    public static let defaultMaxTokens = 4096

    public static func translate(_ body: ByteBuffer) throws(TranslationError) -> TranslatedChatRequest {
        try translate(Array(body.readableBytesView))
    }

    public static func translate(_ bytes: [UInt8]) throws(TranslationError) -> TranslatedChatRequest {
        let request = try JSONFieldReader.body(bytes, what: "the request body")
        try refuseUnsupported(request)
        let model = try request.requiredString("model")
        guard let messages = try request.objects("messages"), !messages.isEmpty else {
            throw TranslationError(field: "messages", message: "messages: at least one message is required")
        }
        let conversation = try ChatConversationToMessages.convert(messages)

        var out = JSONObject()
        out["model"] = .string(model)
        out["max_tokens"] = .int(try maxTokens(request))
        out["system"] = conversation.system.map(JSONValue.string)
        out["messages"] = .array(conversation.messages)
        out["stop_sequences"] = try stopSequences(request)
        if let temperature = try request.double("temperature") {
            guard (0...2).contains(temperature) else {
                throw .unsupported("temperature", "must be between 0 and 2, got \(temperature)")
            }
            out["temperature"] = temperature <= 1 ? request.value("temperature") : .int(1)
        }
        if try request.double("top_p") != nil { out["top_p"] = request.value("top_p") }
        let tools = try self.tools(request)
        if !tools.isEmpty {
            out["tools"] = .array(tools)
            out["tool_choice"] = try toolChoice(request)
        }
        let user = try request.string("user")
        let safetyIdentifier = try request.string("safety_identifier")
        if let user = user ?? safetyIdentifier {
            out["metadata"] = ["user_id": .string(user)]
        }
        let stream = try request.bool("stream") ?? false
        if stream { out["stream"] = true }
        let includeUsage = try request.object("stream_options")?.bool("include_usage") ?? false
        return TranslatedChatRequest(body: ByteBuffer(bytes: JSONValue.object(out).encoded), model: model, stream: stream, includeUsage: includeUsage)
    }

    private static func refuseUnsupported(_ request: JSONFieldReader) throws(TranslationError) {
        if let n = try request.int("n"), n != 1 { throw .unsupported("n", "only one choice per request is supported (n=1)") }
        if try request.bool("logprobs") == true { throw .unsupported("logprobs", "log probabilities are not supported") }
        if let top = try request.int("top_logprobs"), top != 0 { throw .unsupported("top_logprobs", "log probabilities are not supported") }
        if let format = try request.object("response_format") {
            let type = try format.requiredString("type")
            guard type == "text" else {
                throw .unsupported("response_format", "response_format of type '\(type)' is not supported; describe the format in the prompt or use a tool")
            }
        }
        for field in ["audio", "prediction", "web_search_options", "functions", "function_call"] where request.has(field) {
            throw .unsupported(field, "not supported")
        }
        if let modalities = try request.array("modalities"), modalities.contains(where: { $0 != "text" }) {
            throw .unsupported("modalities", "only text output is supported")
        }
        if let bias = try request.object("logit_bias"), !bias.object.isEmpty {
            throw .unsupported("logit_bias", "token biases are not supported")
        }
        for field in ["frequency_penalty", "presence_penalty"] {
            if let penalty = try request.double(field), penalty != 0 { throw .unsupported(field, "penalties are not supported (only 0)") }
        }
    }

    private static func maxTokens(_ request: JSONFieldReader) throws(TranslationError) -> Int {
        for field in ["max_completion_tokens", "max_tokens"] {
            guard let value = try request.int(field) else { continue }
            guard value >= 1 else { throw .unsupported(field, "must be at least 1") }
            return value
        }
        return defaultMaxTokens
    }

    private static func stopSequences(_ request: JSONFieldReader) throws(TranslationError) -> JSONValue? {
        guard let stop = request.value("stop") else { return nil }
        if stop.stringValue != nil { return [stop] }
        guard let list = stop.arrayValue else { throw .wrongType("stop", expected: "a string or an array of strings", got: stop) }
        for (index, element) in list.enumerated() where element.stringValue == nil {
            throw .wrongType("stop[\(index)]", expected: "a string", got: element)
        }
        return list.isEmpty ? nil : stop
    }

    private static func tools(_ request: JSONFieldReader) throws(TranslationError) -> [JSONValue] {
        var tools: [JSONValue] = []
        for tool in try request.objects("tools") ?? [] {
            let type = try tool.requiredString("type")
            guard type == "function" else { throw .unsupported(tool.name("type"), "only 'function' tools are supported, got '\(type)'") }
            guard let function = try tool.object("function") else { throw .missing(tool.name("function")) }
            var out = JSONObject()
            out["name"] = .string(try function.requiredString("name"))
            out["description"] = try function.string("description").map(JSONValue.string)
            let parameters = try function.object("parameters")
            out["input_schema"] = parameters.map { .object($0.object) } ?? ["type": "object"]
            tools.append(.object(out))
        }
        return tools
    }

    private static func toolChoice(_ request: JSONFieldReader) throws(TranslationError) -> JSONValue? {
        var choice: JSONObject?
        if let value = request.value("tool_choice") {
            if let mode = value.stringValue {
                switch mode {
                case "auto": choice = JSONObject([("type", "auto")])
                case "required": choice = JSONObject([("type", "any")])
                case "none": choice = JSONObject([("type", "none")])
                default: throw .unsupported("tool_choice", "expected auto, required, none or a function, got '\(mode)'")
                }
            } else {
                let object = try JSONFieldReader(value, path: "tool_choice")
                let type = try object.requiredString("type")
                guard type == "function" else { throw .unsupported("tool_choice.type", "only 'function' is supported, got '\(type)'") }
                guard let function = try object.object("function") else { throw .missing("tool_choice.function") }
                choice = JSONObject([("type", "tool"), ("name", .string(try function.requiredString("name")))])
            }
        }
        if try request.bool("parallel_tool_calls") == false, choice?["type"] != "none" {
            var disabled = choice ?? JSONObject([("type", "auto")])
            disabled["disable_parallel_tool_use"] = true
            choice = disabled
        }
        return choice.map(JSONValue.object)
    }
}
