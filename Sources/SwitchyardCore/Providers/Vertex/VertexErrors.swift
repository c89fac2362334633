import NIOCore

/// Vertex AI's errors in Anthropic's terms. The model's own errors (overloaded, invalid request)
/// arrive in Anthropic's envelope and are taken as they are; Google's front end answers in its
/// own shape, `{"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED"}}` (sometimes
/// wrapped in a list), read by its `status`, not by the HTTP code alone.
enum VertexErrors {
    static let table: [String: PlatformErrorMapping] = [
        "RESOURCE_EXHAUSTED": PlatformErrorMapping(status: 429, type: "rate_limit_error", row: .rateLimited),
        "UNAVAILABLE": PlatformErrorMapping(status: 503, type: "overloaded_error", row: .overloaded),
        "INTERNAL": PlatformErrorMapping(status: 500, type: "api_error", row: .serverError),
        "UNKNOWN": PlatformErrorMapping(status: 500, type: "api_error", row: .serverError),
        "DATA_LOSS": PlatformErrorMapping(status: 500, type: "api_error", row: .serverError),
        "CANCELLED": PlatformErrorMapping(status: 500, type: "api_error", row: .serverError),
        "DEADLINE_EXCEEDED": PlatformErrorMapping(status: 504, type: "timeout_error", row: .serverError),
        "ABORTED": PlatformErrorMapping(status: 409, type: "api_error", row: .retrySameModel),
        "INVALID_ARGUMENT": PlatformErrorMapping(status: 400, type: "invalid_request_error", row: .clientError),
        "FAILED_PRECONDITION": PlatformErrorMapping(status: 400, type: "invalid_request_error", row: .clientError),
        "OUT_OF_RANGE": PlatformErrorMapping(status: 400, type: "invalid_request_error", row: .clientError),
        "ALREADY_EXISTS": PlatformErrorMapping(status: 409, type: "invalid_request_error", row: .clientError),
        "PERMISSION_DENIED": PlatformErrorMapping(status: 403, type: "permission_error", row: .clientError),
        "NOT_FOUND": PlatformErrorMapping(status: 404, type: "not_found_error", row: .clientError),
        "UNIMPLEMENTED": PlatformErrorMapping(status: 404, type: "not_found_error", row: .clientError),
    ]

    static func read(status: Int, body: ByteBuffer, api: UpstreamAPI) -> PlatformError {
        let anthropic = AnthropicPayload.error(in: body)
        let google = googleError(in: body)
        if let type = anthropic.type, google == nil, AnthropicPayload.isErrorEnvelope(body) {
            return PlatformError(status: status, type: type, message: anthropic.message, row: OutcomeRow(status: status), bodyIsEnvelope: true)
        }
        guard let google, let code = google.status else {
            // Google's error without its `status`, a front end's HTML page, an empty body: the
            // HTTP status is all there is, and the caller still gets Anthropic's envelope.
            return PlatformError(
                status: status, type: AnthropicErrorEnvelope.type(forStatus: status), message: google?.message ?? anthropic.message,
                row: OutcomeRow(status: status)
            )
        }
        return read(status: status, code: code, message: google.message, api: api)
    }

    static func read(status: Int, code: String, message: String?, api: UpstreamAPI) -> PlatformError {
        if code == "UNAUTHENTICATED" {
            // Switchyard's access token was refused (revoked, expired early): fetch a new one.
            return PlatformError(
                status: 401, type: "authentication_error", message: message, row: .clientError, platformCode: code,
                platformStatus: status == 401 ? nil : status, credentialProblem: .expired
            )
        }
        guard var mapping = table[code] else {
            return PlatformError(
                status: status, type: AnthropicErrorEnvelope.type(forStatus: status), message: message, row: OutcomeRow(status: status),
                platformCode: code
            )
        }
        if api == .countTokens, code == "UNIMPLEMENTED" || code == "NOT_FOUND" {
            // No count-tokens for this model here: the route's next model that can count serves it.
            mapping.row = .unsupported
        }
        return PlatformError(
            status: mapping.status, type: mapping.type, message: message, row: mapping.row, platformCode: code,
            platformStatus: status == mapping.status ? nil : status
        )
    }

    /// `status` and `message` of Google's error object, or of the first one of a list of them.
    static func googleError(in body: ByteBuffer) -> (status: String?, message: String?)? {
        body.withUnsafeReadableBytes { bytes -> (String?, String?)? in
            var object = bytes
            if let first = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }), bytes[first] == UInt8(ascii: "[") {
                // `[{"error":{…}}]`: take the first element.
                guard let open = bytes[first...].firstIndex(of: UInt8(ascii: "{")), let close = bytes.lastIndex(of: UInt8(ascii: "]")) else { return nil }
                let inner = UnsafeRawBufferPointer(rebasing: bytes[open..<close])
                guard let end = Self.endOfFirstObject(inner) else { return nil }
                object = UnsafeRawBufferPointer(rebasing: inner[..<end])
            }
            guard let error = JSONSkimmer.object("error", in: object) else { return nil }
            let status = error.member("status").flatMap { JSONSkimmer.stringValue($0, bytes: error.bytes) }
            let message = error.member("message").flatMap { JSONSkimmer.stringValue($0, bytes: error.bytes) }
            guard status != nil || error.member("code") != nil else { return nil }
            return (status, message)
        }
    }

    /// The index just past the first balanced `{…}` (strings respected).
    private static func endOfFirstObject(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var depth = 0
        var inString = false
        var escaped = false
        for (index, byte) in bytes.enumerated() {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return index + 1 }
            default: break
            }
        }
        return nil
    }
}
