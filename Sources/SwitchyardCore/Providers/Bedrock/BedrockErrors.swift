import NIOCore

/// Bedrock's errors in Anthropic's terms. Read by the error's type (`x-amzn-errortype`, or the
/// exception frame's `:exception-type`), not by HTTP status alone: AWS's service model answers
/// ServiceQuotaExceededException with 400 and ModelTimeoutException with 408.
enum BedrockErrors {
    /// The table of README, "Claude on every platform", plus the two AWS errors its service model adds
    /// (ModelErrorException, 424) which are the model's failures, not the caller's.
    static let table: [String: PlatformErrorMapping] = [
        "ThrottlingException": PlatformErrorMapping(status: 429, type: "rate_limit_error", row: .rateLimited),
        "ServiceQuotaExceededException": PlatformErrorMapping(status: 429, type: "rate_limit_error", row: .rateLimited),
        "ModelNotReadyException": PlatformErrorMapping(status: 429, type: "rate_limit_error", row: .rateLimited),
        "ServiceUnavailableException": PlatformErrorMapping(status: 503, type: "overloaded_error", row: .overloaded),
        "InternalServerException": PlatformErrorMapping(status: 500, type: "api_error", row: .serverError),
        "ModelStreamErrorException": PlatformErrorMapping(status: 500, type: "api_error", row: .serverError),
        "ModelErrorException": PlatformErrorMapping(status: 500, type: "api_error", row: .serverError),
        "ModelTimeoutException": PlatformErrorMapping(status: 504, type: "timeout_error", row: .serverError),
        "ValidationException": PlatformErrorMapping(status: 400, type: "invalid_request_error", row: .clientError),
        "AccessDeniedException": PlatformErrorMapping(status: 403, type: "permission_error", row: .clientError),
        "ResourceNotFoundException": PlatformErrorMapping(status: 404, type: "not_found_error", row: .clientError),
    ]

    /// AWS's answers to a request whose signature or credentials it did not accept: Switchyard's
    /// own credentials, not the caller's request, are at fault.
    static let credentialErrors: Set<String> = [
        "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException", "MissingAuthenticationTokenException",
        "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch", "RequestExpired", "RequestTimeTooSkewed",
    ]

    static func read(status: Int, errorType: String?, body: ByteBuffer, api: UpstreamAPI, serverDate: Int64?, nowMs: Int64) -> PlatformError {
        let code = errorType.map(Self.code(fromHeader:)) ?? bodyType(body)
        let message = self.message(in: body)
        return read(status: status, code: code, message: message, api: api, serverDate: serverDate, nowMs: nowMs)
    }

    static func read(status: Int, code: String?, message: String?, api: UpstreamAPI, serverDate: Int64?, nowMs: Int64) -> PlatformError {
        guard let code, !code.isEmpty else {
            // No type at all (a load balancer's page): the status is all there is.
            return PlatformError(
                status: status, type: AnthropicErrorEnvelope.type(forStatus: status), message: message, row: OutcomeRow(status: status)
            )
        }
        if credentialErrors.contains(code) {
            return PlatformError(
                status: status, type: "authentication_error", message: message, row: .clientError, platformCode: code,
                credentialProblem: credentialProblem(code: code, message: message, serverDate: serverDate, nowMs: nowMs)
            )
        }
        guard let mapping = table[code] else {
            // An exception this table does not know: its HTTP status decides, and the audit keeps its name.
            let row = OutcomeRow(status: status)
            return PlatformError(
                status: status, type: AnthropicErrorEnvelope.type(forStatus: status), message: message, row: row, platformCode: code
            )
        }
        var row = mapping.row
        // CountTokens exists only for some models and regions: elsewhere AWS refuses it as invalid,
        // and the route's next model that can count serves it.
        if api == .countTokens, code == "ValidationException", let message, Self.saysUnsupported(message) {
            row = .unsupported
        }
        return PlatformError(
            status: mapping.status, type: mapping.type, message: message, row: row, platformCode: code,
            platformStatus: status == mapping.status ? nil : status
        )
    }

    /// `ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/` → `ThrottlingException`;
    /// an event-stream `:exception-type` (`throttlingException`) → `ThrottlingException`.
    static func code(fromHeader value: String) -> String {
        let name = value.split(separator: ":", maxSplits: 1).first.map(String.init) ?? value
        guard let first = name.first, first.isLowercase else { return name }
        return first.uppercased() + name.dropFirst()
    }

    /// `{"__type":"com.amazon.coral.validate#ValidationException"}` when the header is missing.
    private static func bodyType(_ body: ByteBuffer) -> String? {
        guard let type = AnthropicPayload.topLevelString("__type", in: body) else { return nil }
        return type.split(separator: "#").last.map(String.init)
    }

    static func message(in body: ByteBuffer) -> String? {
        AnthropicPayload.topLevelString("message", in: body) ?? AnthropicPayload.topLevelString("Message", in: body)
    }

    private static func saysUnsupported(_ message: String) -> Bool {
        let lowered = message.lowercased()
        return lowered.contains("support") && (lowered.contains("count") || lowered.contains("token"))
    }

    /// Which credential problem a refusal is. A signature outside AWS's 5-minute window means the
    /// clocks disagree: the offset comes from the answer's `Date` (as the AWS SDKs do).
    private static func credentialProblem(code: String, message: String?, serverDate: Int64?, nowMs: Int64) -> CredentialProblem {
        if code.hasPrefix("ExpiredToken") { return .expired }
        let text = message?.lowercased() ?? ""
        let skewed = code == "RequestTimeTooSkewed" || code == "RequestExpired" || text.contains("signature expired")
            || text.contains("signature not yet current")
        if skewed, let serverDate {
            return .clockSkew(seconds: (serverDate - nowMs) / 1000)
        }
        return .rejected
    }
}
