import AWSWire
import NIOCore
import NIOHTTP1

/// Which platform's protocol the simulator speaks.
public enum SimPlatform: String, Sendable, CaseIterable {
    /// The Anthropic API: `/v1/messages`, SSE, Anthropic error envelopes.
    case anthropic
    /// AWS Bedrock: `/model/{id}/invoke…`, SigV4, event-stream frames, `x-amzn-errortype`.
    case bedrock
    /// Google Vertex AI: `…/models/{model}:rawPredict`, OAuth2 bearer tokens, Google errors.
    case vertex
    /// OpenAI's Chat Completions API (and Azure OpenAI's deployment paths): `data:` chunks ending
    /// in `[DONE]`, OpenAI's error envelope.
    case openai
}

/// What the platform modes check and issue.
public struct SimPlatformOptions: Sendable {
    /// Bedrock: credentials whose signatures are accepted (besides the temporary ones the sim
    /// issues itself). Empty, and nothing issued: signatures are not checked.
    public var awsCredentials: [AWSCredentials]
    public var region: String
    /// Bedrock: the sim's clock runs this many seconds ahead of the real one (clock-skew drills).
    public var clockOffsetSeconds: Int64
    /// Lifetime of temporary AWS credentials (container endpoint, STS) and Google tokens it issues.
    public var issuedLifetimeSeconds: Int64
    /// Vertex: check `Authorization: Bearer`; tokens accepted are those issued here plus these.
    public var checkTokens: Bool
    public var acceptedTokens: Set<String>
    /// OpenAI: API keys accepted in `Authorization: Bearer` or Azure's `api-key`. Empty: not checked.
    public var acceptedKeys: Set<String>

    public init(
        awsCredentials: [AWSCredentials] = [], region: String = "us-east-1", clockOffsetSeconds: Int64 = 0, issuedLifetimeSeconds: Int64 = 3600,
        checkTokens: Bool = true, acceptedTokens: Set<String> = [], acceptedKeys: Set<String> = []
    ) {
        self.awsCredentials = awsCredentials
        self.region = region
        self.clockOffsetSeconds = clockOffsetSeconds
        self.issuedLifetimeSeconds = issuedLifetimeSeconds
        self.checkTokens = checkTokens
        self.acceptedTokens = acceptedTokens
        self.acceptedKeys = acceptedKeys
    }
}

/// One answer, written whole.
struct SimResponse {
    var status: Int
    var headers: [(String, String)]
    var body: String
}

/// What a request is, once the platform's routing and authentication have looked at it.
enum SimRequest {
    /// A model request, and what its successful answer says.
    case messages(model: String, stream: Bool, answer: any SimAnswer)
    case countTokens
    /// The Message Batches API: the path after `/v1/messages/batches`.
    case batches(segments: [Substring])
    /// Answered by the platform itself: a refused signature, a bad path or body.
    case respond(SimResponse)
    /// A token or credential endpoint: answered, counted by the ``SimIssuer``, not recorded as model traffic.
    case credentials(SimResponse)
}

/// How the simulator speaks one platform: routing and authentication, the shape of errors, and
/// how stream events go on the wire. The fault script and its timing are shared.
protocol SimDialect: Sendable {
    var requestIDHeader: String { get }
    var streamContentType: String { get }
    /// Headers every answer carries besides the request id (none, but for OpenAI's).
    var responseHeaders: [(String, String)] { get }
    /// Routes (and authenticates) a request.
    func classify(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer, requestID: String) -> SimRequest
    /// An error answer for a fault script status, or for an explicit `error(NAME,STATUS)` step.
    func error(status: Int, name: String?, message: String, requestID: String) -> SimResponse
    /// An error in the platform's shape without the error's type (see ``Fault/untypedError(_:)``).
    func untypedError(status: Int, message: String) -> SimResponse
    /// A successful count_tokens answer.
    func countTokensAnswer() -> String
    /// One stream event (of the answer's ``SimAnswer/streamEvents(deltas:blocks:)``) as it goes on the wire.
    func streamEvent(name: String, data: String) -> ByteBuffer
    /// A stream failure after some events: Anthropic's `event: error`, or the platform's
    /// exception frame. `name` is the platform's own error name when the fault gave one.
    func streamFailure(anthropicType: String, name: String?) -> ByteBuffer
}

extension SimDialect {
    var responseHeaders: [(String, String)] { [] }

    static func anthropicEnvelope(type: String, message: String) -> String {
        #"{"type":"error","error":{"type":"\#(type)","message":"\#(message)"}}"#
    }
}

/// The Anthropic API as it is.
struct AnthropicDialect: SimDialect {
    let name: String
    var requestIDHeader: String { "request-id" }
    var streamContentType: String { "text/event-stream" }

    func classify(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer, requestID: String) -> SimRequest {
        let path = uri.split(separator: "?").first.map(String.init) ?? uri
        if path == "/v1/messages/batches" || path.hasPrefix("/v1/messages/batches/") {
            return .batches(segments: Array(path.split(separator: "/").dropFirst(3)))
        }
        switch (method, path) {
        case (.POST, "/v1/messages/count_tokens"):
            return .countTokens
        case (.POST, "/v1/messages"):
            let json = SimJSON.object(body)
            return anthropicMessages(model: json?["model"] as? String ?? "unknown", stream: json?["stream"] as? Bool ?? false, body: body)
        default:
            return .respond(error(status: 404, name: nil, message: "no endpoint \(method) \(path)", requestID: requestID))
        }
    }

    func error(status: Int, name: String?, message: String, requestID: String) -> SimResponse {
        SimResponse(status: status, headers: [], body: Self.anthropicEnvelope(type: name ?? SimPayloads.errorType(status: status), message: message))
    }

    func untypedError(status: Int, message: String) -> SimResponse {
        SimResponse(status: status, headers: [], body: SimJSON.string(["error": ["message": message]]))
    }

    func countTokensAnswer() -> String { #"{"input_tokens":42}"# }

    func streamEvent(name: String, data: String) -> ByteBuffer {
        ByteBuffer(string: "event: \(name)\ndata: \(data)\n\n")
    }

    func streamFailure(anthropicType: String, name: String?) -> ByteBuffer {
        streamEvent(name: "error", data: Self.anthropicEnvelope(type: name ?? anthropicType, message: "simulated stream error"))
    }
}
