import Foundation
import NIOCore
import NIOHTTP1

/// OpenAI's Chat Completions API: `POST /v1/chat/completions`, Azure OpenAI's
/// `POST /openai/deployments/{deployment}/chat/completions?api-version=…` (the deployment is the
/// model), and `GET /v1/models`. API keys are checked (`Authorization: Bearer`, or Azure's
/// `api-key`) when ``SimPlatformOptions/acceptedKeys`` has any. Errors are
/// `{"error":{"message","type","param","code"}}`; streams are `data:` chunks ending in
/// `data: [DONE]` (``OpenAIAnswer``). OpenAI has no 529: a script's 529 answers 503, its overload.
struct OpenAIDialect: SimDialect {
    let options: SimPlatformOptions
    var requestIDHeader: String { "x-request-id" }
    var streamContentType: String { "text/event-stream" }
    /// A fixed processing time: clients log it, none acts on it.
    var responseHeaders: [(String, String)] { [("openai-processing-ms", "1"), ("openai-version", "2020-10-01")] }

    /// Models `GET /v1/models` lists. Chat requests may name any model.
    static let listedModels = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"]

    func classify(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer, requestID: String) -> SimRequest {
        let parts = uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? uri
        let query = parts.count > 1 ? SimJSON.form(ByteBuffer(string: String(parts[1]))) : [:]
        let segments = path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        switch (method, segments.count) {
        case (.GET, 2) where segments == ["v1", "models"]:
            return refusal(headers) ?? .respond(SimResponse(status: 200, headers: [], body: Self.modelList()))
        case (.GET, 3) where segments[0] == "v1" && segments[1] == "models":
            return refusal(headers) ?? .respond(SimResponse(status: 200, headers: [], body: SimJSON.string(Self.modelObject(segments[2]))))
        case (.POST, 3) where segments == ["v1", "chat", "completions"]:
            return refusal(headers) ?? chat(body: body, deployment: nil)
        case (.POST, 5) where segments[0] == "openai" && segments[1] == "deployments" && segments[3] == "chat" && segments[4] == "completions":
            // Azure answers a call without api-version as it answers an unknown path.
            guard query["api-version"]?.isEmpty == false else {
                return .respond(SimResponse(status: 404, headers: [], body: #"{"error":{"code":"404","message":"Resource not found"}}"#))
            }
            return refusal(headers) ?? chat(body: body, deployment: segments[2])
        default:
            return .respond(envelope(status: 404, type: "invalid_request_error", code: nil, message: "Invalid URL (\(method) \(path))"))
        }
    }

    private func chat(body: ByteBuffer, deployment: String?) -> SimRequest {
        do {
            let request = try OpenAIChatRequest.read(body, deployment: deployment)
            return .messages(model: request.model, stream: request.stream, answer: OpenAIAnswer(request: request))
        } catch {
            return .respond(envelope(status: 400, type: "invalid_request_error", code: error.code, param: error.param, message: error.message))
        }
    }

    /// A 401 for a missing or unknown key, when keys are checked.
    private func refusal(_ headers: HTTPHeaders) -> SimRequest? {
        guard !options.acceptedKeys.isEmpty else { return nil }
        let bearer = headers.first(name: "authorization").flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        let azureKey = headers.first(name: "api-key")
        if [bearer, azureKey].contains(where: { $0.map(options.acceptedKeys.contains) == true }) { return nil }
        let message: String
        if let given = bearer ?? azureKey {
            // Like OpenAI, never echo a key whole.
            let masked = given.count > 8 ? "\(given.prefix(3))***\(given.suffix(4))" : "***"
            message = "Incorrect API key provided: \(masked). You can find your API key at https://platform.openai.com/account/api-keys."
        } else {
            message = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth."
        }
        return .respond(envelope(status: 401, type: "invalid_request_error", code: "invalid_api_key", message: message))
    }

    // MARK: Errors

    func error(status: Int, name: String?, message: String, requestID: String) -> SimResponse {
        let kind = Self.errorKind(status: status, code: name)
        let wording = kind.message.map { "\($0) (\(message))" } ?? message
        var response = envelope(status: kind.status, type: kind.type, code: kind.code, param: kind.param, message: wording)
        if kind.code == "rate_limit_exceeded" {
            response.headers += [
                ("retry-after", "1"), ("x-ratelimit-limit-requests", "500"), ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "1s"), ("x-ratelimit-limit-tokens", "30000"), ("x-ratelimit-remaining-tokens", "29000"),
                ("x-ratelimit-reset-tokens", "2ms"),
            ]
        }
        return response
    }

    /// The status, type, code (and for some codes a param and OpenAI's wording) of an error, from
    /// a script's status or an `error(CODE,STATUS)` step.
    static func errorKind(status: Int, code: String?) -> (status: Int, type: String, code: String?, param: String?, message: String?) {
        switch (status, code) {
        case (_, "insufficient_quota"):
            let message = "You exceeded your current quota, please check your plan and billing details."
            return (status, "insufficient_quota", "insufficient_quota", nil, message)
        case (_, "context_length_exceeded"):
            let message = "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. "
                + "Please reduce the length of the messages."
            return (status, "invalid_request_error", "context_length_exceeded", "messages", message)
        case (429, nil), (_, "rate_limit_exceeded"):
            return (status, "requests", "rate_limit_exceeded", nil, "Rate limit reached for requests.")
        case (503, nil), (529, nil):
            return (503, "server_error", "service_unavailable", nil, "The server is overloaded or not ready yet.")
        case (401, nil):
            return (status, "invalid_request_error", "invalid_api_key", nil, nil)
        case (404, nil):
            return (status, "invalid_request_error", "model_not_found", nil, nil)
        case (500..., _):
            return (status, "server_error", code ?? "server_error", nil, nil)
        default:
            return (status, "invalid_request_error", code, nil, nil)
        }
    }

    func envelope(status: Int, type: String, code: String?, param: String? = nil, message: String) -> SimResponse {
        let error: [String: Any] = ["message": message, "type": type, "param": SimJSON.orNull(param), "code": SimJSON.orNull(code)]
        return SimResponse(status: status, headers: [], body: SimJSON.string(["error": error]))
    }

    /// `{"error":{"message":…}}`, with no type or code.
    func untypedError(status: Int, message: String) -> SimResponse {
        SimResponse(status: status, headers: [], body: SimJSON.string(["error": ["message": message]]))
    }

    /// Never asked: OpenAI has no count_tokens endpoint, so nothing is classified as one.
    func countTokensAnswer() -> String { "{}" }

    // MARK: Streams

    func streamEvent(name: String, data: String) -> ByteBuffer {
        ByteBuffer(string: "data: \(data)\n\n")
    }

    /// OpenAI reports a failure mid-stream as a chunk holding only `error`, then stops (no `[DONE]`).
    func streamFailure(anthropicType: String, name: String?) -> ByteBuffer {
        let status: Int
        switch anthropicType {
        case "rate_limit_error": status = 429
        case "overloaded_error": status = 503
        case "invalid_request_error": status = 400
        default: status = 500
        }
        let kind = Self.errorKind(status: status, code: name)
        let error: [String: Any] = [
            "message": kind.message ?? "simulated stream error", "type": kind.type, "param": SimJSON.orNull(kind.param),
            "code": SimJSON.orNull(kind.code),
        ]
        return streamEvent(name: "error", data: SimJSON.string(["error": error]))
    }

    // MARK: Models

    static func modelObject(_ id: String) -> [String: Any] {
        ["id": id, "object": "model", "created": 1_715_367_049, "owned_by": "system"]
    }

    static func modelList() -> String {
        SimJSON.string(["object": "list", "data": listedModels.map(modelObject)])
    }
}
