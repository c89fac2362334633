import NIOCore

/// OpenAI's error body, `{"error":{"message":…,"type":…,"param":…|null,"code":…|null}}`, for
/// callers of `/v1/chat/completions`. The openai SDKs choose their exception class by HTTP status
/// (400 `BadRequestError`, 401 `AuthenticationError`, 429 `RateLimitError`, ≥500
/// `InternalServerError`, ...), so a translated error keeps the status Anthropic's answer had;
/// `type` and `code` are what a caller inspects after that.
public struct OpenAIErrorEnvelope: Sendable, Equatable {
    public var message: String
    public var type: String
    /// The request field at fault, when one is.
    public var param: String?
    public var code: String?

    public init(message: String, type: String, param: String? = nil, code: String? = nil) {
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// Anthropic's error type in OpenAI's terms:
    ///
    /// | Anthropic `error.type` | OpenAI `type` | `code` |
    /// |---|---|---|
    /// | invalid_request_error, request_too_large | invalid_request_error | null |
    /// | authentication_error | authentication_error | invalid_api_key (OpenAI's own code for a refused key) |
    /// | permission_error | permission_error | null |
    /// | not_found_error | not_found_error | model_not_found when the message is about a model, else null |
    /// | rate_limit_error | rate_limit_error | rate_limit_exceeded |
    /// | billing_error | insufficient_quota | insufficient_quota |
    /// | api_error, overloaded_error | server_error | null |
    /// | timeout_error | timeout | null |
    /// | anything else | invalid_request_error below 500, server_error from 500 | null |
    public init(anthropicType: String?, message: String, status: Int) {
        self.message = message
        switch anthropicType {
        case "invalid_request_error", "request_too_large":
            (type, code) = ("invalid_request_error", nil)
        case "authentication_error":
            (type, code) = ("authentication_error", "invalid_api_key")
        case "permission_error":
            (type, code) = ("permission_error", nil)
        case "not_found_error":
            (type, code) = ("not_found_error", message.lowercased().contains("model") ? "model_not_found" : nil)
        case "rate_limit_error":
            (type, code) = ("rate_limit_error", "rate_limit_exceeded")
        case "billing_error":
            (type, code) = ("insufficient_quota", "insufficient_quota")
        case "api_error", "overloaded_error":
            (type, code) = ("server_error", nil)
        case "timeout_error":
            (type, code) = ("timeout", nil)
        default:
            (type, code) = (status >= 500 ? "server_error" : "invalid_request_error", nil)
        }
        param = nil
    }

    /// An Anthropic error body (an upstream's, or one Switchyard made) as OpenAI's envelope; the
    /// caller answers with the same status. A body that is not Anthropic's envelope (a gateway's
    /// HTML page) is described by its status alone.
    public init(anthropicBody: ByteBuffer, status: Int) {
        let error = AnthropicPayload.error(in: anthropicBody)
        self.init(anthropicType: error.type, message: error.message ?? "upstream answered with status \(status)", status: status)
    }

    /// The envelope's JSON.
    public var body: ByteBuffer {
        var json = JSONWriter(capacity: 96 + message.utf8.count)
        json.beginObject()
        json.key("error")
        writeObject(into: &json)
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }

    /// `{"message":…,"type":…,"param":…,"code":…}` with its nulls.
    func writeObject(into json: inout JSONWriter) {
        json.beginObject()
        json.field("message", message)
        json.field("type", type)
        json.key("param")
        if let param { json.string(param) } else { json.null() }
        json.key("code")
        if let code { json.string(code) } else { json.null() }
        json.endObject()
    }
}
