import NIOCore
import NIOHTTP1

/// An OpenAI-compatible upstream's error answer, read for routing.
public struct OpenAIUpstreamError: Sendable, Equatable {
    public var error: PlatformError
    /// `insufficient_quota`: the account behind the key is out of credit. Answered 429 and routed
    /// in the `quotaExhausted` row: no `retry-after` will cure it, so the model is skipped for
    /// ``OpenAIUpstreamErrors/quotaSkip`` and never retried within the request
    public var quotaExhausted: Bool
}

/// OpenAI's errors in Anthropic's terms. OpenAI answers `{"error":{"message","type","param",
/// "code"}}`; older vLLM answers the same members at the top level with `"object":"error"`, and
/// some servers put a bare string in `error`. All three are read.
///
/// | OpenAI answer | status | Anthropic type | row |
/// |---|---|---|---|
/// | 429 with `code` or `type` `insufficient_quota` | 429 | rate_limit_error | quotaExhausted (next model at once, this one skipped for 5 minutes) |
/// | 429 | 429 | rate_limit_error | rateLimited |
/// | a 4xx with `code` `context_length_exceeded`, or whose message speaks of the context length | 400 | invalid_request_error | clientError (returned as is: another model with the same window would refuse it too) |
/// | 400, 422 | as is | invalid_request_error | clientError |
/// | 401 | 401 | authentication_error | clientError |
/// | 403 | 403 | permission_error | clientError |
/// | 404 | 404 | not_found_error | clientError |
/// | 413 | 413 | request_too_large | clientError |
/// | 408, 409 | as is | api_error | retrySameModel |
/// | 500, 502 | as is | api_error | serverError |
/// | 503 | 503 | overloaded_error | overloaded (like Anthropic's 529) |
/// | 504 | 504 | timeout_error | serverError |
/// | any other | as is | by status | by status |
public enum OpenAIUpstreamErrors {
    public static let quotaSkip: Duration = AttemptVerdict.maxRateLimit

    /// `headers` are not read: `retry-after`, `retry-after-ms` and `x-should-retry` are the same
    /// headers Anthropic sends, and the attempt loop reads them for every platform. The parameter
    /// keeps this a drop-in for a provider's `readError`.
    public static func read(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> OpenAIUpstreamError {
        let details = errorDetails(in: (try? JSONValueParser.parse(body)) ?? .null)
        let code = details?.code ?? details?.type
        if status == 429, details?.code == "insufficient_quota" || details?.type == "insufficient_quota" {
            return OpenAIUpstreamError(
                error: PlatformError(status: 429, type: "rate_limit_error", message: details?.message, row: .quotaExhausted, platformCode: "insufficient_quota"),
                quotaExhausted: true
            )
        }
        if (400..<500).contains(status), status != 429, isContextLength(details) {
            let error = PlatformError(
                status: 400, type: "invalid_request_error", message: details?.message, row: .clientError, platformCode: code ?? "context_length_exceeded",
                platformStatus: status == 400 ? nil : status
            )
            return OpenAIUpstreamError(error: error, quotaExhausted: false)
        }
        let mapped: (type: String, row: OutcomeRow)
        switch status {
        case 400, 422: mapped = ("invalid_request_error", .clientError)
        case 503: mapped = ("overloaded_error", .overloaded)
        default: mapped = (AnthropicErrorEnvelope.type(forStatus: status), OutcomeRow(status: status))
        }
        let error = PlatformError(status: status, type: mapped.type, message: details?.message, row: mapped.row, platformCode: code)
        return OpenAIUpstreamError(error: error, quotaExhausted: false)
    }

    /// The Anthropic error type of an error object met inside a stream, where there is no status.
    static func anthropicType(ofStreamError details: ErrorDetails) -> String {
        if isContextLength(details) { return "invalid_request_error" }
        let names = [details.code, details.type].compactMap { $0?.lowercased() }
        func any(_ candidates: Set<String>) -> Bool { names.contains { candidates.contains($0) } }
        if any(["insufficient_quota", "rate_limit_exceeded", "rate_limit_error", "requests", "tokens"]) { return "rate_limit_error" }
        if any(["invalid_request_error", "badrequesterror", "invalid_value"]) { return "invalid_request_error" }
        if any(["overloaded", "overloaded_error", "server_overloaded", "service_unavailable"]) { return "overloaded_error" }
        if any(["timeout", "timeout_error"]) { return "timeout_error" }
        if any(["authentication_error", "invalid_api_key"]) { return "authentication_error" }
        if any(["permission_error"]) { return "permission_error" }
        if any(["not_found_error", "model_not_found"]) { return "not_found_error" }
        return "api_error"
    }

    struct ErrorDetails: Sendable, Equatable {
        var message: String?
        var type: String?
        /// OpenAI's codes are strings; vLLM puts the HTTP status there as a number.
        var code: String?
    }

    /// The error object of a body or stream chunk, nil when it holds none.
    static func errorDetails(in value: JSONValue) -> ErrorDetails? {
        guard let object = value.objectValue else { return nil }
        if let error = object["error"], !error.isNull {
            if let message = error.stringValue { return ErrorDetails(message: message) }
            guard let inner = error.objectValue else { return ErrorDetails() }
            return details(of: inner)
        }
        guard object["object"] == "error" else { return nil }
        return details(of: object)
    }

    private static func details(of object: JSONObject) -> ErrorDetails {
        let code: String? =
            switch object["code"] {
            case .string(let text): text
            case .number(let text): text
            default: nil
            }
        return ErrorDetails(message: object["message"]?.stringValue, type: object["type"]?.stringValue, code: code)
    }

    private static func isContextLength(_ details: ErrorDetails?) -> Bool {
        guard let details else { return false }
        if details.code == "context_length_exceeded" || details.type == "context_length_exceeded" { return true }
        let message = details.message?.lowercased() ?? ""
        return message.contains("context length") || message.contains("context_length") || message.contains("context window")
            || message.contains("maximum context")
    }
}
