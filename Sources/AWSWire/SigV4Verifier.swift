import NIOCore

/// Checks a received request's SigV4 Authorization header the way an AWS REST front end does,
/// for the Bedrock mode of upstream-sim: same checks, same error types and messages, so that the
/// router's handling of AWS's authentication failures can be tested without AWS.
///
/// Presigned (query-string) requests and the `Date` header in place of `X-Amz-Date` are not
/// accepted: Bedrock clients send neither.
public struct SigV4Verifier: Sendable {
    /// Why AWS would refuse the request, with the error type, status and message it answers with.
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// No Authorization header.
        case missingAuthentication
        /// The Authorization header or X-Amz-Date cannot be read; the message says what is wrong.
        case malformedAuthorization(String)
        /// The credential scope names another region, service or date, or a wrong terminator.
        case credentialScope(String)
        case unknownAccessKey
        case signatureMismatch
        /// The request time is more than 5 minutes before the server's (both as X-Amz-Date).
        case expired(requestTime: String, serverTime: String)
        /// The request time is more than 5 minutes after the server's.
        case notYetCurrent(requestTime: String, serverTime: String)
        /// Temporary credentials sent without their X-Amz-Security-Token.
        case missingSessionToken
        /// An X-Amz-Security-Token that is not the one issued with the access key.
        case invalidSessionToken
        /// Temporary credentials used after `expiresAtMs`.
        case expiredToken

        /// The error type AWS names in `x-amzn-ErrorType` and `__type`, without its namespace.
        public var awsErrorType: String {
            switch self {
            case .missingAuthentication: "MissingAuthenticationTokenException"
            case .malformedAuthorization: "IncompleteSignatureException"
            case .credentialScope, .signatureMismatch, .expired, .notYetCurrent: "InvalidSignatureException"
            case .unknownAccessKey, .missingSessionToken, .invalidSessionToken: "UnrecognizedClientException"
            case .expiredToken: "ExpiredTokenException"
            }
        }

        /// 403 for every one of them: AWS's REST front ends (Bedrock, Lambda, API Gateway) answer
        /// authentication failures with 403, IncompleteSignatureException included; the 400s seen
        /// in reports come from JSON-RPC services such as DynamoDB.
        public var httpStatus: Int { 403 }

        /// AWS's wording. It never holds the secret, the session token or the signature.
        public var message: String {
            switch self {
            case .missingAuthentication:
                return "Missing Authentication Token"
            case .malformedAuthorization(let detail), .credentialScope(let detail):
                return detail
            case .unknownAccessKey, .missingSessionToken, .invalidSessionToken:
                return "The security token included in the request is invalid."
            case .signatureMismatch:
                return "The request signature we calculated does not match the signature you provided. "
                    + "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
            case .expired(let requestTime, let serverTime):
                let bound = SigV4Timestamp(amzDate: serverTime).map { SigV4Timestamp(unixSeconds: $0.unixSeconds - allowedSkewSeconds).amzDate }
                return "Signature expired: \(requestTime) is now earlier than \(bound ?? "?") (\(serverTime) - 5 min.)"
            case .notYetCurrent(let requestTime, let serverTime):
                let bound = SigV4Timestamp(amzDate: serverTime).map { SigV4Timestamp(unixSeconds: $0.unixSeconds + allowedSkewSeconds).amzDate }
                return "Signature not yet current: \(requestTime) is still later than \(bound ?? "?") (\(serverTime) + 5 min.)"
            case .expiredToken:
                return "The security token included in the request is expired"
            }
        }

        public var description: String { "\(awsErrorType) (\(httpStatus)): \(message)" }
    }

    /// How far the request time may be from the server's, either way.
    public static let allowedSkewSeconds: Int64 = 300

    public let service: String
    public let region: String
    private let credentials: @Sendable (String) -> AWSCredentials?

    /// - credentials: access key id → its credentials (the secret and, for temporary ones, the
    ///   session token that must come with it), or nil for a key AWS would not know.
    public init(service: String, region: String, credentials: @escaping @Sendable (String) -> AWSCredentials?) {
        self.service = service
        self.region = region
        self.credentials = credentials
    }

    /// Checks the request against the body it came with.
    /// - Returns: on success, the access key ID the request was signed with.
    public func verify(
        method: String, path: String, query: String?, headers: [(name: String, value: String)], body: UnsafeRawBufferPointer,
        now: SigV4Timestamp
    ) -> Result<String, Failure> {
        verify(method: method, path: path, query: query, headers: headers, payloadSHA256: SigV4Signer.sha256Hex(body), now: now)
    }

    /// Checks the request against the body it came with (its readable bytes).
    /// - Returns: on success, the access key ID the request was signed with.
    public func verify(
        method: String, path: String, query: String?, headers: [(name: String, value: String)], body: ByteBuffer, now: SigV4Timestamp
    ) -> Result<String, Failure> {
        verify(method: method, path: path, query: query, headers: headers, payloadSHA256: SigV4Signer.sha256Hex(body), now: now)
    }

    /// Checks the request against the SHA-256 (lower-case hex) of the body it came with.
    /// An `x-amz-content-sha256: UNSIGNED-PAYLOAD` header is honoured, as AWS does; any other
    /// value of it is ignored in favour of the body's real hash, so a changed body never verifies.
    /// - Returns: on success, the access key ID the request was signed with.
    public func verify(
        method: String, path: String, query: String?, headers: [(name: String, value: String)], payloadSHA256: String,
        now: SigV4Timestamp
    ) -> Result<String, Failure> {
        Result { () throws(Failure) -> String in
            try check(method: method, path: path, query: query, headers: headers, payloadSHA256: payloadSHA256, now: now)
        }
    }

    /// A readable header first, then the scope, the clock, the key, the token and last the signature,
    /// so that each failure names the most basic thing wrong.
    private func check(
        method: String, path: String, query: String?, headers: [(name: String, value: String)], payloadSHA256: String,
        now: SigV4Timestamp
    ) throws(Failure) -> String {
        let authorizations = Self.values(of: "authorization", in: headers)
        guard let authorizationHeader = authorizations.first else { throw .missingAuthentication }
        guard authorizations.count == 1 else { throw .malformedAuthorization("Authorization header appears more than once.") }
        let dates = Self.values(of: "x-amz-date", in: headers)
        let authorization = try Authorization(parsing: authorizationHeader, hasDate: !dates.isEmpty)
        guard dates.count == 1, let requestTime = SigV4Timestamp(amzDate: SigV4Canonical.trimAll(dates[0])) else {
            let shown = dates.count == 1 ? SigV4Canonical.trimAll(dates[0]) : dates.joined(separator: ",")
            throw .malformedAuthorization("Date must be in ISO-8601 'basic format'. Got '\(shown)'. See http://en.wikipedia.org/wiki/ISO_8601")
        }
        try checkScope(authorization, requestTime: requestTime)
        if requestTime.unixSeconds < now.unixSeconds - Self.allowedSkewSeconds {
            throw .expired(requestTime: requestTime.amzDate, serverTime: now.amzDate)
        }
        if requestTime.unixSeconds > now.unixSeconds + Self.allowedSkewSeconds {
            throw .notYetCurrent(requestTime: requestTime.amzDate, serverTime: now.amzDate)
        }
        guard let known = credentials(authorization.accessKeyID) else { throw .unknownAccessKey }
        if let expiresAtMs = known.expiresAtMs, now.unixSeconds * 1_000 >= expiresAtMs { throw .expiredToken }
        try checkSessionToken(Self.values(of: "x-amz-security-token", in: headers), expected: known.sessionToken)

        let signed = Set(authorization.signedHeaders.split(separator: ";").map { String($0) })
        let canonicalHeaders = SigV4Canonical.headers(headers.filter { signed.contains(SigV4Canonical.lowercased($0.name)) })
        let declaredPayload = Self.values(of: "x-amz-content-sha256", in: headers).map(SigV4Canonical.trimAll)
        let payload = declaredPayload == ["UNSIGNED-PAYLOAD"] ? "UNSIGNED-PAYLOAD" : payloadSHA256
        let canonicalRequest = SigV4Canonical.request(
            method: method, uri: SigV4Canonical.uri(path, normalize: true), query: SigV4Canonical.query(query),
            headerBlock: canonicalHeaders.block, signedHeaders: canonicalHeaders.signedHeaders, payloadSHA256: payload
        )
        let signer = SigV4Signer(credentials: known, service: service, region: region)
        let expected = signer.signature(
            of: signer.stringToSign(canonicalRequest: canonicalRequest, at: requestTime), dateStamp: requestTime.dateStamp
        )
        guard canonicalHeaders.signedHeaders == authorization.signedHeaders,
            SigV4Canonical.constantTimeEquals(expected, authorization.signature)
        else { throw .signatureMismatch }
        return authorization.accessKeyID
    }

    private func checkScope(_ authorization: Authorization, requestTime: SigV4Timestamp) throws(Failure) {
        let scope = authorization.scope
        guard scope.terminator == "aws4_request" else {
            throw .credentialScope("Credential should be scoped with a valid terminator: 'aws4_request', not '\(scope.terminator)'.")
        }
        guard scope.date == requestTime.dateStamp else {
            throw .credentialScope(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                    + "'\(scope.date)' != '\(requestTime.dateStamp)', from '\(requestTime.amzDate)'."
            )
        }
        guard scope.region == region else {
            throw .credentialScope("Credential should be scoped to a valid region, not '\(scope.region)'.")
        }
        guard scope.service == service else {
            throw .credentialScope("Credential should be scoped to correct service: '\(service)'.")
        }
    }

    private func checkSessionToken(_ sent: [String], expected: String?) throws(Failure) {
        switch (sent.count, expected) {
        case (0, nil): return
        case (0, .some): throw .missingSessionToken
        case (1, .some(let token)) where SigV4Canonical.constantTimeEquals(SigV4Canonical.trimAll(sent[0]), token): return
        default: throw .invalidSessionToken
        }
    }

    private static func values(of name: String, in headers: [(name: String, value: String)]) -> [String] {
        headers.filter { SigV4Canonical.lowercased($0.name) == name }.map(\.value)
    }

    /// "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=…"
    private struct Authorization {
        var accessKeyID: String
        var scope: (date: String, region: String, service: String, terminator: String)
        var signedHeaders: String
        var signature: String

        /// Messages follow AWS's and, like them, list every missing part at once; none repeats
        /// the header's value, which for a foreign scheme could be a bearer secret.
        init(parsing header: String, hasDate: Bool) throws(Failure) {
            let trimmed = SigV4Canonical.trimAll(header)
            var parameters: [String: String] = [:]
            if trimmed.hasPrefix(SigV4Signer.algorithm + " ") {
                for part in trimmed.dropFirst(SigV4Signer.algorithm.count + 1).split(separator: ",") {
                    let part = part.trimmingSpaces
                    guard let equals = part.firstIndex(of: "=") else {
                        throw .malformedAuthorization("A part of the Authorization header is not a valid key=value pair (missing equal-sign).")
                    }
                    parameters[String(part[..<equals])] = String(part[part.index(after: equals)...])
                }
            }
            var missing: [String] = []
            for name in ["Credential", "Signature", "SignedHeaders"] where parameters[name, default: ""].isEmpty {
                missing.append("Authorization header requires '\(name)' parameter.")
            }
            if !hasDate { missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.") }
            guard missing.isEmpty, let credential = parameters["Credential"], let signedHeaders = parameters["SignedHeaders"],
                let signature = parameters["Signature"]
            else { throw .malformedAuthorization(missing.joined(separator: " ")) }

            let fields = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 5, !fields[0].isEmpty else {
                throw .malformedAuthorization(
                    "Credential must have the form <access key ID>/<YYYYMMDD>/<region>/<service>/aws4_request.")
            }
            guard signedHeaders.split(separator: ";").contains("host") else {
                throw .malformedAuthorization("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
            }
            accessKeyID = fields[0]
            scope = (fields[1], fields[2], fields[3], fields[4])
            self.signedHeaders = signedHeaders
            self.signature = signature
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        guard let first = firstIndex(where: { $0 != " " }), let last = lastIndex(where: { $0 != " " }) else { return "" }
        return self[first...last]
    }
}
