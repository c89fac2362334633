import NIOCore
import NIOHTTP1
import Yams

/// `type: anthropic`: the Anthropic API itself (or anything that speaks it).
enum AnthropicPlatform: PlatformKind {
    static func makeProvider(spec: ProviderSpec, services: ProviderServices) -> any UpstreamProvider {
        AnthropicProvider(spec: spec, apiKey: settings(of: spec, as: AnthropicSettings.self).apiKey)
    }

    static let platform = Platform.anthropic
    static let genAISystem = "anthropic"
    static let configKeys = ["api_key_env"]

    static func readSettings(_ fields: ConfigReader.Fields, context: ProviderConfigContext) -> (any PlatformSettings)? {
        var settings = AnthropicSettings(apiKeyEnv: nil, apiKey: nil)
        if let envNode = fields["api_key_env"] {
            settings.apiKeyEnv = context.reader.string(envNode, path: fields.path("api_key_env"))
            settings.apiKey = settings.apiKeyEnv.flatMap { context.secret($0, envNode, fields.path("api_key_env")) }
        } else {
            context.notePassThrough()
        }
        return settings
    }
}

public struct AnthropicSettings: PlatformSettings {
    public var apiKeyEnv: String?
    /// nil: pass the caller's own credential through.
    public var apiKey: String?

    public var platform: Platform { .anthropic }
    public var defaultBaseURL: UpstreamURL { UpstreamURL(isTLS: true, host: "api.anthropic.com", port: 443, pathPrefix: "") }
    public var upstreamIdentity: String { "" }
    public var fingerprint: String { apiKey ?? "" }
    public var credentialDescription: String { apiKeyEnv.map { "key from $\($0)" } ?? "callers' own keys passed through" }
    public var passesCallerCredentials: Bool { apiKey == nil }

    public func path(upstreamModel: String, api: UpstreamAPI, stream: Bool) -> String { api.path }

}

/// The Anthropic API needs no translation: the body goes out with `model` patched, answers and
/// errors come back in the caller's own shapes.
struct AnthropicProvider: UpstreamProvider {
    let spec: ProviderSpec
    /// Where a request's credential comes from: the key as the client's preset line, encoded once;
    /// a key no header line can carry added to each request (which the encoder then refuses, with
    /// that error); without a key of its own, the caller's.
    let credential: HeaderPolicy.Credential
    let presetHeaderLines: PresetHeaderLines
    private static let requestIDHeader = "request-id"

    init(spec: ProviderSpec, apiKey: String?) {
        self.spec = spec
        if let apiKey, let line = try? PresetHeaderLines([("x-api-key", apiKey)]) {
            credential = .preset
            presetHeaderLines = line
        } else {
            credential = apiKey.map { .providerKey($0) } ?? .callers
            presetHeaderLines = .none
        }
    }

    func supports(_ api: UpstreamAPI) -> Bool { true }

    nonisolated(nonsending) func makeRequest(_ call: UpstreamCall, model: RoutingTable.Model, deadline: NIODeadline) async throws(UpstreamRequestError) -> UpstreamRequest {
        var path = call.api.path
        if let query = call.query, !query.isEmpty {
            path += "?"
            path += query
        }
        return UpstreamRequest(
            pathAndQuery: path, headers: HeaderPolicy.upstreamHeaders(from: call.inboundHeaders, credential: credential),
            body: call.body.withModel(model.encodedUpstreamModel), isStreaming: call.stream
        )
    }

    func headroom(in headers: HTTPHeaders) -> HeadroomReading? {
        AnthropicRateLimitHeaders.read(headers)
    }

    func requestID(in headers: HTTPHeaders) -> String? {
        headers.first(name: Self.requestIDHeader)
    }

    func readError(status: Int, headers: HTTPHeaders, body: ByteBuffer, api: UpstreamAPI) -> PlatformError {
        let (type, message) = AnthropicPayload.error(in: body)
        return PlatformError(
            status: status, type: type ?? AnthropicErrorEnvelope.type(forStatus: status), message: message, row: OutcomeRow(status: status)
        )
    }

    func errorBody(_ error: PlatformError, upstreamRequestID: String?) -> ByteBuffer? { nil }

    func readSuccess(api: UpstreamAPI, body: ByteBuffer) -> UsableResponse? {
        switch api {
        case .messages: AnthropicPayload.summary(ofMessage: body).map { UsableResponse(body: body, usage: $0.usage) }
        case .countTokens: AnthropicPayload.isJSONObject(body) ? UsableResponse(body: body) : nil
        }
    }

    func streamBody(_ body: UpstreamBody) -> UpstreamBody { body }

    func relayedHeaders(_ upstream: HTTPHeaders, stream: Bool) -> HTTPHeaders {
        HeaderPolicy.relayedHeaders(from: upstream)
    }

    func credentialsRejected(_ problem: CredentialProblem) {}
}
