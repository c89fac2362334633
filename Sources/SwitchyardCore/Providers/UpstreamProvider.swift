import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1

/// One attempt's request as the caller made it, before any platform touched it.
struct UpstreamCall: Sendable {
    var api: UpstreamAPI
    var body: InboundBody
    var inboundHeaders: HTTPHeaders
    /// The query string, without `?`.
    var query: Substring?
    var stream: Bool
}

/// How a platform speaks the Messages API: where a model lives, how a call is authenticated, and
/// how answers and errors read in Anthropic's terms. The attempt loop asks these questions and
/// never which platform it holds.
protocol UpstreamProvider: Sendable {
    var spec: ProviderSpec { get }

    /// Header lines every request to this provider carries (the Anthropic key), sent by its
    /// client after each request's own headers (``PresetHeaderLines``).
    var presetHeaderLines: PresetHeaderLines { get }

    /// Whether this platform can serve the API at all (when it cannot, the route's next model does).
    func supports(_ api: UpstreamAPI) -> Bool

    /// The upstream request of one attempt, authenticated. A credential that cannot be had (token
    /// endpoint down, no AWS credentials) fails the attempt as `auth`; a request the platform
    /// cannot express (a server tool for an OpenAI-compatible model) is refused with its error.
    /// `deadline` bounds the wait for a credential (the attempt's first-byte budget).
    nonisolated(nonsending) func makeRequest(_ call: UpstreamCall, model: RoutingTable.Model, deadline: NIODeadline) async throws(UpstreamRequestError) -> UpstreamRequest

    /// The upstream's request id (Anthropic's `request-id`, Bedrock's `x-amzn-requestid`, ...).
    func requestID(in headers: HTTPHeaders) -> String?

    /// A non-2xx answer in Anthropic's terms, with the outcome-table row it falls in.
    func readError(status: Int, headers: HTTPHeaders, body: ByteBuffer, api: UpstreamAPI) -> PlatformError

    /// The error body the caller gets when an upstream error is returned as is: Anthropic's
    /// envelope. nil: the upstream's own body already is one.
    func errorBody(_ error: PlatformError, upstreamRequestID: String?) -> ByteBuffer?

    /// A 2xx JSON answer as Anthropic shapes it; nil when it is not a usable answer.
    func readSuccess(api: UpstreamAPI, body: ByteBuffer) -> UsableResponse?

    /// A 2xx stream's body as Anthropic SSE bytes.
    func streamBody(_ body: UpstreamBody) -> UpstreamBody

    /// The platform's own error name and status behind an `event: error` of a stream that
    /// ``streamBody(_:)`` translated (Bedrock's exception frames), for the audit line; nil when
    /// the event is Anthropic's own.
    func platformError(inStreamError data: ByteBuffer) -> (code: String, status: Int?)?

    /// The upstream's response headers as the caller should see them (without `request-id`,
    /// which the exchange sets).
    func relayedHeaders(_ upstream: HTTPHeaders, stream: Bool) -> HTTPHeaders

    /// The platform refused Switchyard's own credentials: drop cached ones, correct the clock, ...
    func credentialsRejected(_ problem: CredentialProblem)

    /// What an answer's headers say about the model's rate limits, read once per answer; nil
    /// when they say nothing (Bedrock and Vertex report limits only by throttling).
    func headroom(in headers: HTTPHeaders) -> HeadroomReading?

    /// The platform speaks another API than Messages, so what the caller gets was translated
    /// (the audit line's `translated`).
    var translatesAnswers: Bool { get }
}

/// Why an attempt's upstream request could not be made.
enum UpstreamRequestError: Error {
    /// Switchyard's own credential could not be had.
    case credential(CredentialError)
    /// The request cannot be put in the platform's terms; the caller gets this error.
    case refused(PlatformError)
}

/// A platform whose requests carry Switchyard's own credential (Bedrock's AWS keys, Vertex's
/// access token) and fail only for want of it: such a failure is the attempt's `auth`, never a
/// refusal of the request itself.
protocol CredentialAuthorizedProvider: UpstreamProvider {
    /// The upstream request of one attempt with the credential it needs, or why that credential
    /// cannot be had.
    nonisolated(nonsending) func makeAuthorizedRequest(_ call: UpstreamCall, model: RoutingTable.Model, deadline: NIODeadline) async throws(CredentialError) -> UpstreamRequest
}

extension CredentialAuthorizedProvider {
    nonisolated(nonsending) func makeRequest(_ call: UpstreamCall, model: RoutingTable.Model, deadline: NIODeadline) async throws(UpstreamRequestError) -> UpstreamRequest {
        do {
            return try await makeAuthorizedRequest(call, model: model, deadline: deadline)
        } catch {
            throw .credential(error)
        }
    }
}

/// A 2xx answer's body as the caller gets it, with the token usage read from it on the way
/// (`messages` only), so that the body is skimmed once.
struct UsableResponse {
    var body: ByteBuffer
    var usage: TokenUsage? = nil
}

extension UsableResponse {
    /// A 2xx Messages answer relayed as it came, when it is one: a 200 that is not a message (a
    /// gateway's page, a truncated body) is no answer. For platforms that answer in Anthropic's
    /// shape but may put something else in front of it.
    static func message(_ body: ByteBuffer) -> UsableResponse? {
        guard let summary = AnthropicPayload.summary(ofMessage: body), summary.type == "message" else { return nil }
        return UsableResponse(body: body, usage: summary.usage)
    }
}

/// What a provider gets from the router to do its work.
struct ProviderServices: Sendable {
    /// For token endpoints, STS and metadata servers: not the hot path.
    var credentialClients: CredentialClients
    var environment: [String: String]
    var logger: Logger
    /// Unix milliseconds.
    var wallClock: @Sendable () -> Int64

    /// How `spec`'s credential endpoints are reached: through the provider's own `proxy` when it
    /// names one, else by the environment's proxy rules for each endpoint.
    func credentialEgress(for spec: ProviderSpec) -> CredentialEgress {
        let own = spec.proxy.flatMap { $0.isProviderKey ? $0.proxy : nil }
        return CredentialEgress(clients: credentialClients, providerProxy: own, environment: spec.proxyEnvironment)
    }
}

/// A platform's error answer read in Anthropic's terms.
public struct PlatformError: Sendable, Equatable {
    /// The status the caller sees and the audit records.
    public var status: Int
    /// Anthropic's `error.type`.
    public var type: String
    public var message: String?
    /// The outcome-table row: usually what `status` says, but platforms answer some conditions
    /// with a status that means something else (Bedrock's ServiceQuotaExceededException is a 400).
    public var row: OutcomeRow
    /// The platform's own name for the error (`ThrottlingException`, `RESOURCE_EXHAUSTED`), when
    /// it differs from Anthropic's, for the audit line.
    public var platformCode: String?
    /// The platform's HTTP status, when it differs from `status`.
    public var platformStatus: Int?
    /// Set when the platform refused Switchyard's own credentials.
    public var credentialProblem: CredentialProblem?
    /// The upstream's body already is Anthropic's error envelope (the model's own error, relayed
    /// by the platform): the caller gets it as it is. Anything else (the platform's own error
    /// shape, a gateway's HTML page, an empty body) is replaced by an envelope built from this error.
    public var bodyIsEnvelope: Bool

    public init(
        status: Int, type: String, message: String?, row: OutcomeRow, platformCode: String? = nil, platformStatus: Int? = nil,
        credentialProblem: CredentialProblem? = nil, bodyIsEnvelope: Bool = false
    ) {
        self.status = status
        self.type = type
        self.message = message
        self.row = row
        self.platformCode = platformCode
        self.platformStatus = platformStatus
        self.credentialProblem = credentialProblem
        self.bodyIsEnvelope = bodyIsEnvelope
    }
}

/// Why a platform refused Switchyard's credentials.
public enum CredentialProblem: Sendable, Equatable {
    /// Wrong or unknown credentials: nothing to do but report it.
    case rejected
    /// Temporary credentials or a token that expired early: fetch new ones.
    case expired
    /// The request's signature time differs from the platform's clock by this much (platform
    /// minus local); later requests are signed with the correction.
    case clockSkew(seconds: Int64)
}

extension UpstreamProvider {
    var platform: Platform { spec.platform }

    /// Bedrock and Vertex sign or authorize each request: nothing is the same on all of them.
    var presetHeaderLines: PresetHeaderLines { .none }

    func platformError(inStreamError data: ByteBuffer) -> (code: String, status: Int?)? { nil }

    func headroom(in headers: HTTPHeaders) -> HeadroomReading? { nil }

    var translatesAnswers: Bool { false }
}
