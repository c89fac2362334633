import AWSWire
import Foundation
import NIOCore
import NIOHTTP1

/// AWS Bedrock's runtime API, as strict as AWS about what matters to a client: the SigV4
/// signature (checked when credentials are configured or issued), the InvokeModel body (no
/// `model`, no `stream`, an `anthropic_version`), event-stream frames with both CRCs, and errors
/// as `x-amzn-errortype` plus `{"message": …}`. Also serves the credential endpoints a router
/// may use: the container credentials endpoint (`GET /v2/credentials/…`) and STS
/// AssumeRoleWithWebIdentity (`POST /`).
struct BedrockDialect: SimDialect {
    let options: SimPlatformOptions
    let issuer: SimIssuer
    var requestIDHeader: String { "x-amzn-requestid" }
    var streamContentType: String { "application/vnd.amazon.eventstream" }
    private static let namespace = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

    func classify(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer, requestID: String) -> SimRequest {
        let parts = uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? uri
        let query = parts.count > 1 ? String(parts[1]) : nil
        if method == .GET, path.hasPrefix("/v2/credentials") || path == "/container-credentials" {
            return .credentials(containerCredentials(headers: headers))
        }
        if method == .POST, path == "/" {
            return .credentials(assumeRoleWithWebIdentity(body: body))
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        // ["", "model", "<id>", "<action>"]
        guard method == .POST, segments.count == 4, segments[1] == "model", let model = String(segments[2]).removingPercentEncoding else {
            return .respond(awsError(status: 404, type: "UnknownOperationException", message: "no operation at \(method) \(path)"))
        }
        if let refusal = verifySignature(method: method, path: path, query: query, headers: headers, body: body) {
            return .respond(refusal)
        }
        let action = segments[3]
        switch action {
        case "invoke", "invoke-with-response-stream":
            if let problem = Self.invalidInvokeBody(body) {
                return .respond(awsError(status: 400, type: "ValidationException", message: problem))
            }
            return anthropicMessages(model: model, stream: action == "invoke-with-response-stream", body: body)
        case "count-tokens":
            guard let input = SimJSON.object(body)?["input"] as? [String: Any], let invoke = input["invokeModel"] as? [String: Any],
                let encoded = invoke["body"] as? String, let decoded = Data(base64Encoded: encoded)
            else {
                return .respond(awsError(status: 400, type: "ValidationException", message: "input.invokeModel.body must be a base64 InvokeModel body"))
            }
            if let problem = Self.invalidInvokeBody(ByteBuffer(bytes: decoded)) {
                return .respond(awsError(status: 400, type: "ValidationException", message: problem))
            }
            return .countTokens
        default:
            return .respond(awsError(status: 404, type: "UnknownOperationException", message: "unknown action \(action)"))
        }
    }

    /// What Bedrock says about an InvokeModel body for Claude, or nil when it is acceptable.
    static func invalidInvokeBody(_ body: ByteBuffer) -> String? {
        guard let json = SimJSON.object(body) else { return "Malformed input request: body is not a JSON object" }
        for key in ["model", "stream"] where json[key] != nil {
            return "Malformed input request: #: extraneous key [\(key)] is not permitted, please reformat your input and try again."
        }
        guard json["anthropic_version"] is String else {
            return "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again."
        }
        if let betas = json["anthropic_beta"], !(betas is [String]) {
            return "Malformed input request: #/anthropic_beta: expected type: JSONArray"
        }
        return nil
    }

    private func verifySignature(method: HTTPMethod, path: String, query: String?, headers: HTTPHeaders, body: ByteBuffer) -> SimResponse? {
        let configured = options.awsCredentials
        let issuer = issuer
        let verifier = SigV4Verifier(service: "bedrock", region: options.region) { keyID in
            configured.first { $0.accessKeyID == keyID } ?? issuer.awsCredentials(accessKeyID: keyID)
        }
        // With nothing configured and nothing issued, signatures are not checked (benchmarks).
        guard !configured.isEmpty || issuer.count("container") + issuer.count("sts") > 0 else { return nil }
        let result = body.withUnsafeReadableBytes { bytes in
            verifier.verify(
                method: "\(method)", path: path, query: query, headers: headers.map { ($0.name, $0.value) }, body: bytes,
                now: SigV4Timestamp(unixSeconds: issuer.now())
            )
        }
        guard case .failure(let failure) = result else { return nil }
        return awsError(status: failure.httpStatus, type: failure.awsErrorType, message: failure.message)
    }

    /// Bedrock's error type for each status it answers with, and the status it uses for it.
    static let errorTypes: [Int: (status: Int, type: String)] = [
        400: (400, "ValidationException"), 403: (403, "AccessDeniedException"), 404: (404, "ResourceNotFoundException"),
        408: (408, "ModelTimeoutException"), 424: (424, "ModelErrorException"), 429: (429, "ThrottlingException"),
        503: (503, "ServiceUnavailableException"), 529: (503, "ServiceUnavailableException"),
    ]

    func error(status: Int, name: String?, message: String, requestID: String) -> SimResponse {
        if let name { return awsError(status: status, type: name, message: message) }
        if let known = Self.errorTypes[status] { return awsError(status: known.status, type: known.type, message: message) }
        if (500..<600).contains(status), status != 504 { return awsError(status: 500, type: "InternalServerException", message: message) }
        // A gateway's answer: no error type at all.
        return SimResponse(status: status, headers: [], body: SimJSON.string(["message": message]))
    }

    /// `{"message": …}` with no `x-amzn-errortype` and no `__type`.
    func untypedError(status: Int, message: String) -> SimResponse {
        SimResponse(status: status, headers: [], body: SimJSON.string(["message": message]))
    }

    func awsError(status: Int, type: String, message: String) -> SimResponse {
        SimResponse(
            status: status, headers: [("x-amzn-errortype", type + Self.namespace), ("date", SimJSON.httpDate(unixSeconds: issuer.now()))],
            body: SimJSON.string(["message": message])
        )
    }

    func countTokensAnswer() -> String { #"{"inputTokens":42}"# }

    func streamEvent(name: String, data: String) -> ByteBuffer {
        let payload = SimJSON.string(["bytes": Data(data.utf8).base64EncodedString(), "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"])
        return EventStreamEncoder.encode(
            EventStreamMessage(
                headers: [(":event-type", .string("chunk")), (":content-type", .string("application/json")), (":message-type", .string("event"))],
                payload: ByteBuffer(string: payload)
            )
        )
    }

    func streamFailure(anthropicType: String, name: String?) -> ByteBuffer {
        let exception: String
        switch name ?? anthropicType {
        case "overloaded_error": exception = "serviceUnavailableException"
        case "rate_limit_error": exception = "throttlingException"
        case "api_error": exception = "internalServerException"
        case let other where other.hasSuffix("_error"): exception = "modelStreamErrorException"
        case let other: exception = other
        }
        return EventStreamEncoder.encode(
            EventStreamMessage(
                headers: [(":exception-type", .string(exception)), (":content-type", .string("application/json")), (":message-type", .string("exception"))],
                payload: ByteBuffer(string: SimJSON.string(["message": "simulated \(exception)"]))
            )
        )
    }

    // MARK: Credential endpoints

    private func containerCredentials(headers: HTTPHeaders) -> SimResponse {
        guard headers.first(name: "authorization")?.isEmpty == false else {
            return SimResponse(status: 401, headers: [], body: #"{"code":"Unauthorized","message":"missing authorization token"}"#)
        }
        let credentials = issuer.issueAWSCredentials(for: "container")
        let body = SimJSON.string([
            "AccessKeyId": credentials.accessKeyID, "SecretAccessKey": credentials.secretAccessKey, "Token": credentials.sessionToken ?? "",
            "Expiration": SimJSON.iso8601(unixSeconds: (credentials.expiresAtMs ?? 0) / 1000),
        ])
        return SimResponse(status: 200, headers: [], body: body)
    }

    private func assumeRoleWithWebIdentity(body: ByteBuffer) -> SimResponse {
        let form = SimJSON.form(body)
        guard form["Action"] == "AssumeRoleWithWebIdentity", let role = form["RoleArn"], !role.isEmpty, form["WebIdentityToken"]?.isEmpty == false,
            form["RoleSessionName"]?.isEmpty == false
        else {
            let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>missing Action, RoleArn, "
                + "RoleSessionName or WebIdentityToken</Message></Error><RequestId>sim</RequestId></ErrorResponse>"
            return SimResponse(status: 400, headers: [("content-type", "text/xml")], body: xml)
        }
        let credentials = issuer.issueAWSCredentials(for: "sts")
        let expiration = SimJSON.iso8601(unixSeconds: (credentials.expiresAtMs ?? 0) / 1000)
        let xml = """
            <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>\
            <Credentials><AccessKeyId>\(credentials.accessKeyID)</AccessKeyId><SecretAccessKey>\(credentials.secretAccessKey)</SecretAccessKey>\
            <SessionToken>\(credentials.sessionToken ?? "")</SessionToken><Expiration>\(expiration)</Expiration></Credentials>\
            <AssumedRoleUser><Arn>\(role)/sim</Arn></AssumedRoleUser></AssumeRoleWithWebIdentityResult>\
            <ResponseMetadata><RequestId>sim</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>
            """
        return SimResponse(status: 200, headers: [("content-type", "text/xml")], body: xml)
    }
}
