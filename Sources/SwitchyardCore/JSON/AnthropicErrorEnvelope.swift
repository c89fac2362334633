import NIOCore

/// Anthropic's error envelope, `{"type":"error","error":{"type":…,"message":…},"request_id":…}`:
/// the one writer of it, for errors Switchyard makes itself and for platform errors rebuilt in
/// Anthropic's shape, so SDKs raise their usual exception classes.
public enum AnthropicErrorEnvelope {
    public static func body(type: String, message: String, requestID: String?) -> ByteBuffer {
        var json = JSONWriter(capacity: 128 + message.utf8.count)
        json.beginObject()
        json.field("type", "error")
        json.key("error")
        json.beginObject()
        json.field("type", type)
        json.field("message", message)
        json.endObject()
        json.field("request_id", requestID)
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }

    /// The envelope in place of a platform's own error: its message, else the error's name on the
    /// platform (`codeName` says what that name is called when there is none).
    static func body(rewriting error: PlatformError, platform: String, codeName: String, requestID: String?) -> ByteBuffer {
        let said = error.platformCode ?? "HTTP \(error.status) without an error \(codeName)"
        return body(type: error.type, message: error.message ?? "\(platform) answered \(said)", requestID: requestID)
    }

    /// The `error.type` Anthropic's API uses with a status.
    public static func type(forStatus status: Int) -> String {
        switch status {
        case 400: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 504: "timeout_error"
        case 529: "overloaded_error"
        default: "api_error"
        }
    }
}
