import Crypto
import NIOCore

/// AWS Signature Version 4 for one set of credentials, service and region: request parts in,
/// headers (or query parameters) out. It reads no clock and does no I/O: the caller passes the
/// time and the payload hash, so AWS's published vectors and botocore check it directly.
///
/// Header signing covers the headers the caller passes (which must include `host`) plus
/// `x-amz-date` and, unless told otherwise, `x-amz-security-token`. The canonical URI is made the
/// way botocore makes it for every service but S3: the wire path is percent-encoded once more.
public struct SigV4Signer: Sendable {
    public var credentials: AWSCredentials
    public var service: String
    public var region: String

    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The SHA-256 of no bytes, the payload hash of a request without a body.
    public static let emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public init(credentials: AWSCredentials, service: String, region: String) {
        self.credentials = credentials
        self.service = service
        self.region = region
    }

    /// Everything the signature is made of, for tests and diagnostics, plus the headers to add.
    public struct Signature: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        /// "host;x-amz-date"
        public var signedHeaders: String
        /// Lower-case hex.
        public var signature: String
        /// The whole Authorization header value.
        public var authorization: String
        /// What the caller adds to the request, in this order: X-Amz-Security-Token (when the
        /// credentials have one, signed or not), X-Amz-Date, Authorization.
        public var headersToAdd: [(name: String, value: String)]
    }

    /// A presigned (query-string) request: the query to send instead of the one given.
    public struct PresignedQuery: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        public var signedHeaders: String
        public var signature: String
        /// The query to send, without "?": the one given, unchanged, then X-Amz-Algorithm,
        /// X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Expires, X-Amz-Security-Token
        /// (when there is one) and X-Amz-Signature, in the order AWS's vectors show.
        public var query: String
    }

    /// Signs a request with the Authorization header.
    /// - Parameters:
    ///   - path: the path exactly as it goes on the wire, already percent-encoded where the caller
    ///     encoded it. "/model/us.anthropic.claude-v1:0/invoke" signs as ".../claude-v1%3A0/invoke",
    ///     and a wire "%2F" signs as "%252F".
    ///   - query: the raw query without "?", or nil. Pairs are decoded and encoded again, so the
    ///     wire form may be encoded or not; "+" is a plus sign.
    ///   - headers: the headers to sign, as they will be sent; must include host. Any
    ///     Authorization, X-Amz-Date or X-Amz-Security-Token among them is left out: the signer
    ///     adds its own.
    ///   - payloadSHA256: lower-case hex SHA-256 of the body (`emptyPayloadSHA256` for none), or
    ///     "UNSIGNED-PAYLOAD" where the service accepts it.
    ///   - normalizePath: remove dot segments and collapse slashes first (every service but S3).
    ///   - signSessionToken: sign X-Amz-Security-Token (botocore's way); false adds it unsigned
    ///     (the vectors' post-sts-header-after).
    public func sign(
        method: String, path: String, query: String?, headers: [(name: String, value: String)], payloadSHA256: String,
        at time: SigV4Timestamp, normalizePath: Bool = true, signSessionToken: Bool = true
    ) -> Signature {
        let amzDate = time.amzDate
        var toSign = Self.withoutAuthHeaders(headers)
        toSign.append((name: "x-amz-date", value: amzDate))
        if let token = credentials.sessionToken, signSessionToken {
            toSign.append((name: "x-amz-security-token", value: token))
        }
        let canonicalHeaders = SigV4Canonical.headers(toSign)
        let canonicalRequest = SigV4Canonical.request(
            method: method, uri: SigV4Canonical.uri(path, normalize: normalizePath), query: SigV4Canonical.query(query),
            headerBlock: canonicalHeaders.block, signedHeaders: canonicalHeaders.signedHeaders, payloadSHA256: payloadSHA256
        )
        let stringToSign = stringToSign(canonicalRequest: canonicalRequest, at: time)
        let signature = signature(of: stringToSign, dateStamp: time.dateStamp)
        let authorization =
            "\(Self.algorithm) Credential=\(credentials.accessKeyID)/\(credentialScope(dateStamp: time.dateStamp)), "
            + "SignedHeaders=\(canonicalHeaders.signedHeaders), Signature=\(signature)"
        var headersToAdd: [(name: String, value: String)] = []
        if let token = credentials.sessionToken {
            headersToAdd.append((name: "X-Amz-Security-Token", value: token))
        }
        headersToAdd.append((name: "X-Amz-Date", value: amzDate))
        headersToAdd.append((name: "Authorization", value: authorization))
        return Signature(
            canonicalRequest: canonicalRequest, stringToSign: stringToSign, signedHeaders: canonicalHeaders.signedHeaders,
            signature: signature, authorization: authorization, headersToAdd: headersToAdd
        )
    }

    /// Signs a request in its query string (a presigned URL), valid for `expires` seconds.
    /// Parameters read as in `sign`; nothing is added to the headers.
    public func presign(
        method: String, path: String, query: String?, headers: [(name: String, value: String)], payloadSHA256: String,
        at time: SigV4Timestamp, expires: Int, normalizePath: Bool = true, signSessionToken: Bool = true
    ) -> PresignedQuery {
        let canonicalHeaders = SigV4Canonical.headers(Self.withoutAuthHeaders(headers))
        var authParameters: [(name: String, value: String)] = [
            ("X-Amz-Algorithm", Self.algorithm),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(credentialScope(dateStamp: time.dateStamp))"),
            ("X-Amz-Date", time.amzDate),
            ("X-Amz-SignedHeaders", canonicalHeaders.signedHeaders),
            ("X-Amz-Expires", String(expires)),
        ]
        let token = credentials.sessionToken.map { (name: "X-Amz-Security-Token", value: $0) }
        let signedParameters = authParameters + (signSessionToken ? token.map { [$0] } ?? [] : [])
        let canonicalRequest = SigV4Canonical.request(
            method: method, uri: SigV4Canonical.uri(path, normalize: normalizePath),
            query: SigV4Canonical.query(query, extra: signedParameters), headerBlock: canonicalHeaders.block,
            signedHeaders: canonicalHeaders.signedHeaders, payloadSHA256: payloadSHA256
        )
        let stringToSign = stringToSign(canonicalRequest: canonicalRequest, at: time)
        let signature = signature(of: stringToSign, dateStamp: time.dateStamp)
        if let token { authParameters.append(token) }
        authParameters.append((name: "X-Amz-Signature", value: signature))
        let added = authParameters.map { name, value in
            name + "=" + String(decoding: SigV4Canonical.encoded(Array(value.utf8)), as: UTF8.self)
        }
        let original = query.flatMap { $0.isEmpty ? nil : [$0] } ?? []
        return PresignedQuery(
            canonicalRequest: canonicalRequest, stringToSign: stringToSign, signedHeaders: canonicalHeaders.signedHeaders,
            signature: signature, query: (original + added).joined(separator: "&")
        )
    }

    /// Lower-case hex SHA-256, the payload hash `sign` takes.
    public static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        SigV4Canonical.lowerHex(SHA256.hash(data: bytes))
    }

    /// Lower-case hex SHA-256 of the readable bytes, without copying them.
    public static func sha256Hex(_ buffer: ByteBuffer) -> String {
        buffer.withUnsafeReadableBytes { sha256Hex($0) }
    }

    /// "20150830/us-east-1/service/aws4_request"
    func credentialScope(dateStamp: String) -> String {
        "\(dateStamp)/\(region)/\(service)/aws4_request"
    }

    func stringToSign(canonicalRequest: String, at time: SigV4Timestamp) -> String {
        let hash = SigV4Canonical.lowerHex(SHA256.hash(data: Array(canonicalRequest.utf8)))
        return "\(Self.algorithm)\n\(time.amzDate)\n\(credentialScope(dateStamp: time.dateStamp))\n\(hash)"
    }

    /// HMAC chain: "AWS4"+secret → date → region → service → "aws4_request", then the string to sign.
    func signature(of stringToSign: String, dateStamp: String) -> String {
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [dateStamp, region, service, "aws4_request"] {
            key = SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key))
        }
        return SigV4Canonical.lowerHex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
    }

    private static func withoutAuthHeaders(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        headers.filter { header in
            let name = SigV4Canonical.lowercased(header.name)
            return name != "authorization" && name != "x-amz-date" && name != "x-amz-security-token"
        }
    }
}
