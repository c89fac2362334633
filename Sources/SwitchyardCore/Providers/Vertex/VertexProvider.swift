import NIOCore
import NIOHTTP1

/// Claude on Vertex AI: the model lives in the URL (`:rawPredict`, `:streamRawPredict`), the body
/// carries `anthropic_version` instead of `model`, requests carry an OAuth2 access token, and
/// answers (SSE included) are Anthropic's already; errors may be Google's.
final class VertexProvider: CredentialAuthorizedProvider {
    let spec: ProviderSpec
    let settings: VertexSettings
    private let tokens: GoogleAccessTokenProvider?
    private static let requestIDHeaders = ["x-request-id", "request-id", "x-goog-request-id"]
    private static let forwarded = ["anthropic-beta", "accept"]

    init(spec: ProviderSpec, settings: VertexSettings, services: ProviderServices) {
        self.spec = spec
        self.settings = settings
        self.tokens = settings.credentials.map { GoogleAccessTokenProvider(source: $0, egress: services.credentialEgress(for: spec), now: services.wallClock, logger: services.logger) }
    }

    func supports(_ api: UpstreamAPI) -> Bool { true }

    nonisolated(nonsending) func makeAuthorizedRequest(_ call: UpstreamCall, model: RoutingTable.Model, deadline: NIODeadline) async throws(CredentialError) -> UpstreamRequest {
        guard let tokens else {
            throw CredentialError(source: "gcp", message: "no Google credential source was found when the configuration was loaded")
        }
        let token = try await tokens.accessToken(deadline: deadline)
        var editor = JSONBodyEditor()
        editor.set("anthropic_version", string: settings.anthropicVersion)
        if call.api == .countTokens {
            // The count-tokens endpoint is one for all models: the model stays in the body.
            editor.set("model", raw: model.encodedUpstreamModel)
        } else {
            editor.remove("model")
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "authorization", value: "Bearer \(token)")
        for name in Self.forwarded {
            for value in call.inboundHeaders[name] { headers.add(name: name, value: value) }
        }
        return UpstreamRequest(
            pathAndQuery: settings.path(upstreamModel: model.spec.upstreamModel, api: call.api, stream: call.stream), headers: headers,
            body: editor.apply(to: call.body.buffer), isStreaming: call.stream
        )
    }

    func requestID(in headers: HTTPHeaders) -> String? {
        for name in Self.requestIDHeaders {
            if let value = headers.first(name: name) { return value }
        }
        return nil
    }

    func readError(status: Int, headers: HTTPHeaders, body: ByteBuffer, api: UpstreamAPI) -> PlatformError {
        VertexErrors.read(status: status, body: body, api: api)
    }

    func errorBody(_ error: PlatformError, upstreamRequestID: String?) -> ByteBuffer? {
        // The model's own errors arrive in Anthropic's envelope already; everything else is rewritten.
        guard !error.bodyIsEnvelope else { return nil }
        return AnthropicErrorEnvelope.body(rewriting: error, platform: "Vertex AI", codeName: "status", requestID: upstreamRequestID)
    }

    func readSuccess(api: UpstreamAPI, body: ByteBuffer) -> UsableResponse? {
        switch api {
        case .messages: return .message(body)
        case .countTokens: return AnthropicPayload.isJSONObject(body) ? UsableResponse(body: body) : nil
        }
    }

    func streamBody(_ body: UpstreamBody) -> UpstreamBody { body }

    func relayedHeaders(_ upstream: HTTPHeaders, stream: Bool) -> HTTPHeaders {
        HeaderPolicy.platformAnswerHeaders(stream: stream)
    }

    func credentialsRejected(_ problem: CredentialProblem) {
        if problem != .rejected { tokens?.invalidate() }
    }
}
