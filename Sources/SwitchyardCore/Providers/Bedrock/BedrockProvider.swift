import AWSWire
import Atomics
import ExtrasBase64
import NIOCore
import NIOHTTP1

/// Claude on Bedrock: the model lives in the URL, the body carries `anthropic_version` instead of
/// `model` and `stream`, every request is signed with SigV4, streams arrive as AWS event-stream
/// frames and errors as `x-amzn-errortype`.
final class BedrockProvider: CredentialAuthorizedProvider {
    let spec: ProviderSpec
    let settings: BedrockSettings
    private let credentials: AWSCredentialProvider?
    private let wallClock: @Sendable () -> Int64
    /// AWS's clock minus ours, in seconds, learnt from a clock-skew refusal (as the AWS SDKs do).
    private let clockOffset = ManagedAtomic<Int64>(0)
    /// `host` as it goes on the wire, which the signature covers.
    private let hostHeader: String
    private static let requestIDHeader = "x-amzn-requestid"
    static let service = "bedrock"

    init(spec: ProviderSpec, settings: BedrockSettings, services: ProviderServices) {
        self.spec = spec
        self.settings = settings
        self.wallClock = services.wallClock
        self.credentials = settings.credentials.map {
            AWSCredentialProvider(
                source: $0, region: settings.region, egress: services.credentialEgress(for: spec), now: services.wallClock, logger: services.logger
            )
        }
        let url = spec.baseURL
        let hostPart = url.host.contains(":") ? "[\(url.host)]" : url.host
        hostHeader = url.port == (url.isTLS ? 443 : 80) ? hostPart : "\(hostPart):\(url.port)"
    }

    func supports(_ api: UpstreamAPI) -> Bool { true }

    nonisolated(nonsending) func makeAuthorizedRequest(_ call: UpstreamCall, model: RoutingTable.Model, deadline: NIODeadline) async throws(CredentialError) -> UpstreamRequest {
        guard let credentials else {
            throw CredentialError(source: "aws", message: "no AWS credential source was found when the configuration was loaded")
        }
        let current = try await credentials.credentials(deadline: deadline)
        let body = requestBody(call)
        let relative = settings.path(upstreamModel: model.spec.upstreamModel, api: call.api, stream: call.stream)
        // The signature covers the path as it goes on the wire, the base URL's prefix included.
        let fullPath = spec.baseURL.pathPrefix + relative
        var headers: [(name: String, value: String)] = [
            ("host", hostHeader),
            ("content-type", "application/json"),
            ("accept", call.stream ? "application/vnd.amazon.eventstream" : "application/json"),
        ]
        let timestamp = SigV4Timestamp(unixSeconds: wallClock() / 1000 + clockOffset.load(ordering: .relaxed))
        let signer = SigV4Signer(credentials: current, service: Self.service, region: settings.region)
        let signature = signer.sign(
            method: "POST", path: fullPath, query: nil, headers: headers, payloadSHA256: SigV4Signer.sha256Hex(body), at: timestamp
        )
        headers.append(contentsOf: signature.headersToAdd)
        var httpHeaders = HTTPHeaders()
        for (name, value) in headers { httpHeaders.add(name: name, value: value) }
        return UpstreamRequest(pathAndQuery: relative, headers: httpHeaders, body: body, isStreaming: call.stream)
    }

    /// The InvokeModel body: the caller's, without `model` and `stream`, with `anthropic_version`
    /// and the `anthropic-beta` header as an `anthropic_beta` array. count_tokens wraps it as
    /// CountTokens expects: `{"input":{"invokeModel":{"body":"<base64>"}}}`.
    func requestBody(_ call: UpstreamCall) -> ByteBuffer {
        var editor = JSONBodyEditor()
        editor.remove("model")
        editor.remove("stream")
        editor.set("anthropic_version", string: settings.anthropicVersion)
        let betas = call.inboundHeaders["anthropic-beta"]
            .flatMap { $0.split(separator: ",") }.map { String(String($0).trimmingWhitespace()) }.filter { !$0.isEmpty }
        if !betas.isEmpty { editor.set("anthropic_beta", raw: JSONBodyEditor.stringArray(betas)) }
        if call.api == .countTokens, !Self.hasMember("max_tokens", in: call.body.buffer) {
            // InvokeModel's schema for Claude requires max_tokens; it does not change the count.
            editor.set("max_tokens", raw: Array("1".utf8))
        }
        let invokeBody = editor.apply(to: call.body.buffer)
        guard call.api == .countTokens else { return invokeBody }
        var json = JSONWriter(capacity: invokeBody.readableBytes * 4 / 3 + 64)
        json.beginObject()
        json.key("input")
        json.beginObject()
        json.key("invokeModel")
        json.beginObject()
        json.field("body", Base64.encodeToString(bytes: invokeBody.readableBytesView))
        json.endObject()
        json.endObject()
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }

    private static func hasMember(_ key: StaticString, in buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            guard let skim = try? JSONSkimmer.skim(bytes) else { return false }
            return JSONSkimmer.member(key, in: skim, bytes: bytes) != nil
        }
    }

    func requestID(in headers: HTTPHeaders) -> String? {
        headers.first(name: Self.requestIDHeader)
    }

    func readError(status: Int, headers: HTTPHeaders, body: ByteBuffer, api: UpstreamAPI) -> PlatformError {
        BedrockErrors.read(
            status: status, errorType: headers.first(name: "x-amzn-errortype"), body: body, api: api,
            serverDate: headers.first(name: "date").flatMap(HTTPDate.parse), nowMs: wallClock() + clockOffset.load(ordering: .relaxed) * 1000
        )
    }

    func errorBody(_ error: PlatformError, upstreamRequestID: String?) -> ByteBuffer? {
        // Bedrock never relays Anthropic's envelope: its errors (and a gateway's pages) are always rewritten.
        AnthropicErrorEnvelope.body(rewriting: error, platform: "Bedrock", codeName: "type", requestID: upstreamRequestID)
    }

    func readSuccess(api: UpstreamAPI, body: ByteBuffer) -> UsableResponse? {
        switch api {
        case .messages:
            return .message(body)
        case .countTokens:
            guard let count = Self.inputTokens(in: body) else { return nil }
            return UsableResponse(body: ByteBuffer(string: #"{"input_tokens":\#(count)}"#))
        }
    }

    private static func inputTokens(in body: ByteBuffer) -> Int? {
        body.withUnsafeReadableBytes { bytes in
            guard let skim = try? JSONSkimmer.skim(bytes), let member = JSONSkimmer.member("inputTokens", in: skim, bytes: bytes) else { return nil }
            return JSONSkimmer.intValue(member, bytes: bytes)
        }
    }

    func streamBody(_ body: UpstreamBody) -> UpstreamBody {
        body.translated(by: BedrockEventStreamTranslator())
    }

    func platformError(inStreamError data: ByteBuffer) -> (code: String, status: Int?)? {
        BedrockEventStreamTranslator.platformError(inErrorEvent: data)
    }

    func relayedHeaders(_ upstream: HTTPHeaders, stream: Bool) -> HTTPHeaders {
        HeaderPolicy.platformAnswerHeaders(stream: stream)
    }

    func credentialsRejected(_ problem: CredentialProblem) {
        switch problem {
        case .rejected: break
        case .expired: credentials?.invalidate()
        case .clockSkew(let seconds): clockOffset.wrappingIncrement(by: seconds, ordering: .relaxed)
        }
    }
}

/// Percent-encoding of one path segment: RFC 3986 unreserved characters and `keeping` stay.
enum PathEncoding {
    static func segment(_ text: String, keeping extra: String = "") -> String {
        let kept = Set(extra.utf8)
        var output = [UInt8]()
        output.reserveCapacity(text.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.append(byte)
            default:
                if kept.contains(byte) {
                    output.append(byte)
                } else {
                    output.append(UInt8(ascii: "%"))
                    output.append(hex[Int(byte >> 4)])
                    output.append(hex[Int(byte & 0x0F)])
                }
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
