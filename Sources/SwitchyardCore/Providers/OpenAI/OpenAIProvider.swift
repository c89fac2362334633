import NIOCore
import NIOHTTP1

/// An OpenAI-compatible model behind the Messages API: the request is translated to Chat
/// Completions (``MessagesRequestToChat``), the answer and its stream back to Messages
/// (``ChatResponseToMessages``, ``ChatStreamToMessages``), errors read by
/// ``OpenAIUpstreamErrors``. The caller sees `x-switchyard-translated: true`.
struct OpenAIProvider: UpstreamProvider {
    let spec: ProviderSpec
    let settings: OpenAISettings
    let presetHeaderLines: PresetHeaderLines
    /// The key as a header added to each request when no preset line can carry it (the encoder
    /// then refuses it with its reason).
    private let keyHeader: (name: String, value: String)?
    private static let requestIDHeaders = ["x-request-id", "apim-request-id"]
    static let translatedHeader = "x-switchyard-translated"

    init(spec: ProviderSpec, settings: OpenAISettings) {
        self.spec = spec
        self.settings = settings
        var lines: [(String, String)] = []
        if let key = settings.apiKey {
            lines.append(settings.apiVersion == nil ? ("authorization", "Bearer \(key)") : ("api-key", key))
        }
        if let organization = settings.organization { lines.append(("openai-organization", organization)) }
        if let preset = try? PresetHeaderLines(lines) {
            presetHeaderLines = preset
            keyHeader = nil
        } else {
            presetHeaderLines = .none
            keyHeader = lines.first
        }
    }

    var translatesAnswers: Bool { true }

    func supports(_ api: UpstreamAPI) -> Bool { api == .messages }

    nonisolated(nonsending) func makeRequest(_ call: UpstreamCall, model: RoutingTable.Model, deadline: NIODeadline) async throws(UpstreamRequestError) -> UpstreamRequest {
        guard call.api == .messages else {
            throw .refused(
                PlatformError(
                    status: 404, type: "not_found_error", message: "model '\(model.name)' is OpenAI-compatible, which has no \(call.api.path)",
                    row: .unsupported
                )
            )
        }
        let body: ByteBuffer
        do {
            body = try MessagesRequestToChat.translate(call.body.buffer, model: model.spec.upstreamModel)
        } catch {
            throw .refused(
                PlatformError(
                    status: 400, type: "invalid_request_error",
                    message: "model '\(model.name)' (OpenAI-compatible) cannot take this request: \(error.message)", row: .clientError
                )
            )
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "accept", value: call.stream ? "text/event-stream" : "application/json")
        if let keyHeader { headers.add(name: keyHeader.name, value: keyHeader.value) }
        return UpstreamRequest(
            pathAndQuery: settings.path(upstreamModel: model.spec.upstreamModel, api: call.api, stream: call.stream), headers: headers, body: body,
            isStreaming: call.stream
        )
    }

    func requestID(in headers: HTTPHeaders) -> String? {
        for name in Self.requestIDHeaders {
            if let value = headers.first(name: name) { return value }
        }
        return nil
    }

    func readError(status: Int, headers: HTTPHeaders, body: ByteBuffer, api: UpstreamAPI) -> PlatformError {
        var error = OpenAIUpstreamErrors.read(status: status, headers: headers, body: body).error
        // Callers' keys are never sent: a 401 refuses Switchyard's own (or its lack of one), no
        // fault of the caller's request, and every request to this model would meet it.
        if status == 401 { error.credentialProblem = .rejected }
        return error
    }

    func errorBody(_ error: PlatformError, upstreamRequestID: String?) -> ByteBuffer? {
        let said = error.platformCode.map { " (\($0))" } ?? ""
        return AnthropicErrorEnvelope.body(
            type: error.type, message: error.message ?? "the OpenAI-compatible upstream answered \(error.platformStatus ?? error.status)\(said)",
            requestID: upstreamRequestID
        )
    }

    func readSuccess(api: UpstreamAPI, body: ByteBuffer) -> UsableResponse? {
        guard api == .messages, let message = try? ChatResponseToMessages.translate(body),
            let summary = AnthropicPayload.summary(ofMessage: message)
        else { return nil }
        return UsableResponse(body: message, usage: summary.usage)
    }

    func streamBody(_ body: UpstreamBody) -> UpstreamBody {
        body.translated(by: ChatStreamToMessages())
    }

    func relayedHeaders(_ upstream: HTTPHeaders, stream: Bool) -> HTTPHeaders {
        var headers = HeaderPolicy.platformAnswerHeaders(stream: stream)
        headers.add(name: Self.translatedHeader, value: "true")
        return headers
    }

    func credentialsRejected(_ problem: CredentialProblem) {}
}
