import Foundation
import NIOCore
import NIOHTTP1

/// Google Vertex AI's Claude endpoints: `…/publishers/anthropic/models/{model}:rawPredict` and
/// `:streamRawPredict` (Anthropic SSE), `…/models/count-tokens:rawPredict`, an OAuth2 bearer
/// token on every call, Google's error shape from its front end and Anthropic's from the model.
/// Also serves the token endpoints a router may use: a service account's `token_uri`
/// (`POST /token`, the JWT-bearer grant) and the metadata server's token path.
struct VertexDialect: SimDialect {
    let options: SimPlatformOptions
    let issuer: SimIssuer
    var requestIDHeader: String { "request-id" }
    var streamContentType: String { "text/event-stream" }
    static let metadataTokenPath = "/computeMetadata/v1/instance/service-accounts/default/token"

    func classify(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer, requestID: String) -> SimRequest {
        let path = uri.split(separator: "?").first.map(String.init) ?? uri
        if method == .POST, path == "/token" { return .credentials(tokenEndpoint(body: body)) }
        if method == .GET, path == Self.metadataTokenPath { return .credentials(metadataToken(headers: headers)) }
        // /v1/projects/P/locations/R/publishers/anthropic/models/MODEL:SPECIFIER
        let segments = path.split(separator: "/").map(String.init)
        guard method == .POST, segments.count == 9, segments[0] == "v1", segments[1] == "projects", segments[3] == "locations",
            segments[5] == "publishers", segments[6] == "anthropic", segments[7] == "models",
            let colon = segments[8].lastIndex(of: ":")
        else {
            return .respond(googleError(status: 404, code: "NOT_FOUND", message: "The requested URL \(path) was not found on this server."))
        }
        if options.checkTokens {
            let token = headers.first(name: "authorization").flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
            guard let token, issuer.isValid(token: token) || options.acceptedTokens.contains(token) else {
                return .respond(
                    googleError(
                        status: 401, code: "UNAUTHENTICATED",
                        message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
                    )
                )
            }
        }
        let model = String(segments[8][..<colon]).removingPercentEncoding ?? ""
        let specifier = segments[8][segments[8].index(after: colon)...]
        guard let json = SimJSON.object(body) else {
            return .respond(googleError(status: 400, code: "INVALID_ARGUMENT", message: "Invalid JSON payload received."))
        }
        guard json["anthropic_version"] is String else {
            return .respond(anthropicError(status: 400, type: "invalid_request_error", message: "anthropic_version: Field required"))
        }
        switch (model, specifier) {
        case ("count-tokens", "rawPredict"):
            guard json["model"] is String else {
                return .respond(anthropicError(status: 400, type: "invalid_request_error", message: "model: Field required"))
            }
            return .countTokens
        case (_, "rawPredict"), (_, "streamRawPredict"):
            if json["model"] != nil {
                return .respond(anthropicError(status: 400, type: "invalid_request_error", message: "model: Extra inputs are not permitted"))
            }
            let stream = specifier == "streamRawPredict"
            if stream, json["stream"] as? Bool != true {
                return .respond(anthropicError(status: 400, type: "invalid_request_error", message: "streamRawPredict needs \"stream\": true"))
            }
            return anthropicMessages(model: model, stream: stream, body: body)
        default:
            return .respond(googleError(status: 400, code: "INVALID_ARGUMENT", message: "unknown method \(specifier)"))
        }
    }

    /// Google's canonical code for each status Vertex answers with.
    static let errorCodes: [Int: String] = [
        400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
        409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
    ]

    func error(status: Int, name: String?, message: String, requestID: String) -> SimResponse {
        if let name { return googleError(status: status, code: name, message: message) }
        // The model's own overload comes through Vertex in Anthropic's envelope.
        if status == 529 { return anthropicError(status: 529, type: "overloaded_error", message: message) }
        if let code = Self.errorCodes[status] { return googleError(status: status, code: code, message: message) }
        if (500..<600).contains(status) { return googleError(status: status, code: "INTERNAL", message: message) }
        return anthropicError(status: status, type: SimPayloads.errorType(status: status), message: message)
    }

    func googleError(status: Int, code: String, message: String) -> SimResponse {
        let body = SimJSON.string(["error": ["code": status, "message": message, "status": code] as [String: Any]])
        return SimResponse(status: status, headers: [], body: body)
    }

    /// Google's error object with `code` and `message` but no `status`, as some front ends send.
    func untypedError(status: Int, message: String) -> SimResponse {
        SimResponse(status: status, headers: [], body: SimJSON.string(["error": ["code": status, "message": message] as [String: Any]]))
    }

    func anthropicError(status: Int, type: String, message: String) -> SimResponse {
        SimResponse(status: status, headers: [], body: Self.anthropicEnvelope(type: type, message: message))
    }

    func countTokensAnswer() -> String { #"{"input_tokens":42}"# }

    func streamEvent(name: String, data: String) -> ByteBuffer {
        ByteBuffer(string: "event: \(name)\ndata: \(data)\n\n")
    }

    func streamFailure(anthropicType: String, name: String?) -> ByteBuffer {
        streamEvent(name: "error", data: Self.anthropicEnvelope(type: name ?? anthropicType, message: "simulated stream error"))
    }

    // MARK: Token endpoints

    private func tokenEndpoint(body: ByteBuffer) -> SimResponse {
        let form = SimJSON.form(body)
        guard form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer", let assertion = form["assertion"] else {
            return SimResponse(status: 400, headers: [], body: #"{"error":"unsupported_grant_type","error_description":"Invalid grant_type"}"#)
        }
        // The signature is checked by the tests with PyJWT; here the claims a token endpoint reads.
        let parts = assertion.split(separator: ".")
        guard parts.count == 3, let claims = Self.base64URLJSON(String(parts[1])), claims["iss"] is String, claims["aud"] is String,
            (claims["scope"] as? String)?.contains("https://www.googleapis.com/auth/cloud-platform") == true
        else {
            return SimResponse(status: 400, headers: [], body: #"{"error":"invalid_grant","error_description":"Invalid JWT: missing claims"}"#)
        }
        let token = issuer.issueToken(for: "token")
        return SimResponse(status: 200, headers: [], body: #"{"access_token":"\#(token)","expires_in":\#(issuer.lifetimeSeconds),"token_type":"Bearer"}"#)
    }

    private func metadataToken(headers: HTTPHeaders) -> SimResponse {
        guard headers.first(name: "metadata-flavor") == "Google" else {
            return SimResponse(status: 403, headers: [], body: "Missing Metadata-Flavor:Google header.")
        }
        let token = issuer.issueToken(for: "metadata")
        return SimResponse(status: 200, headers: [], body: #"{"access_token":"\#(token)","expires_in":\#(issuer.lifetimeSeconds),"token_type":"Bearer"}"#)
    }

    private static func base64URLJSON(_ text: String) -> [String: Any]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        guard let data = Data(base64Encoded: base64) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}
