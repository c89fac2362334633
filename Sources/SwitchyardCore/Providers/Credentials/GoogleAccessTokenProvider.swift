import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore

/// OAuth2 access tokens for Vertex AI, cached and refreshed by one task before they expire.
///
/// - Service account: a JWT signed RS256 with the key (`iss` = `client_email`, `scope` =
///   cloud-platform, `aud` = `token_uri`, one hour), exchanged at `token_uri` with the
///   `jwt-bearer` grant.
/// - Metadata server: `GET /computeMetadata/v1/instance/service-accounts/default/token` with
///   `Metadata-Flavor: Google`.
public final class GoogleAccessTokenProvider: Sendable {
    public static let scope = "https://www.googleapis.com/auth/cloud-platform"
    /// The lifetime Google allows an assertion, and asks for.
    static let assertionLifetimeSeconds: Int64 = 3600

    public let source: GoogleCredentialSource
    private let cache: RefreshingCredential<String>

    /// - Parameters:
    ///   - egress: How credential endpoints are reached (the router's clients, the provider's proxy rules).
    ///   - now: Unix milliseconds; the assertion's `iat` and the token's refresh time come from it.
    ///   - fetchTimeout: How long one exchange with the token endpoint may take.
    public init(
        source: GoogleCredentialSource,
        egress: CredentialEgress,
        now: @escaping @Sendable () -> Int64,
        fetchTimeout: Duration = .seconds(10),
        logger: Logger = Logger(label: "switchyard.credentials")
    ) {
        self.source = source
        let endpoint = GoogleTokenEndpoint(source: source, egress: egress)
        cache = RefreshingCredential(source: endpoint.name, fetchTimeout: fetchTimeout, now: now, logger: logger) {
            deadline throws(CredentialError) in
            try await endpoint.fetch(now: now(), deadline: deadline)
        }
    }

    /// A token for `Authorization: Bearer`.
    ///
    /// - Parameter deadline: When the caller stops waiting for a fetch (its attempt's deadline).
    public func accessToken(deadline: NIODeadline? = nil) async throws(CredentialError) -> String {
        try await cache.value(deadline: deadline)
    }

    /// Google refused the token (401): the next call fetches a new one.
    public func invalidate() {
        cache.invalidate()
    }

    /// For `switchyard check` and logs; never a secret.
    public var sourceDescription: String { source.description }
}

/// One exchange with Google's token endpoint or the metadata server, and the reading of its answer.
struct GoogleTokenEndpoint: Sendable {
    let source: GoogleCredentialSource
    let egress: CredentialEgress

    /// The source as errors name it: `gcp token endpoint oauth2.googleapis.com`.
    var name: String {
        switch source {
        case .serviceAccount(let key, _): "gcp token endpoint \(CredentialHTTP.host(of: key.tokenURI))"
        case .metadataServer(let host): "gcp metadata server \(host)"
        }
    }

    func fetch(now: Int64, deadline: NIODeadline) async throws(CredentialError) -> RefreshingCredential<String>.Expiring {
        let http = CredentialHTTP(egress: egress, source: name)
        let answer: CredentialHTTP.Answer
        switch source {
        case .serviceAccount(let key, _):
            let assertion = try await Self.assertion(key: key, nowMs: now, source: name)
            let body = CredentialHTTP.formEncoded([("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)])
            answer = try await http.send(
                url: key.tokenURI, method: .POST,
                headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")],
                body: body, deadline: deadline
            )
        case .metadataServer(let host):
            do {
                answer = try await http.send(
                    url: "\(host.contains("://") ? host : "http://\(host)")/computeMetadata/v1/instance/service-accounts/default/token",
                    method: .GET,
                    headers: [("Metadata-Flavor", "Google"), ("Accept", "application/json")], deadline: deadline
                )
            } catch where error.kind == .unreachable {
                var error = error
                error.message += "; off GCE/GKE, give the provider credentials_file_env with a service-account key"
                throw error
            }
        }
        return try read(answer, now: now)
    }

    /// The signed JWT that the service account presents.
    static func assertion(key: GoogleServiceAccountKey, nowMs: Int64, source: String) async throws(CredentialError) -> String {
        let issuedAt = nowMs / 1000
        let claims = GoogleAssertionClaims(
            iss: key.clientEmail, scope: GoogleAccessTokenProvider.scope, aud: key.tokenURI, iat: issuedAt,
            exp: issuedAt + GoogleAccessTokenProvider.assertionLifetimeSeconds
        )
        let kid = key.privateKeyID.map { JWKIdentifier(string: $0) }
        let keys = JWTKeyCollection()
        await keys.add(rsa: key.privateKey, digestAlgorithm: .sha256, kid: kid)
        do {
            return try await keys.sign(claims, kid: kid)
        } catch {
            throw CredentialError(.notConfigured, source: source, message: "cannot sign the assertion with the service account's key")
        }
    }

    /// `{"access_token", "expires_in", "token_type"}`, or an OAuth error whose `error` and
    /// `error_description` are all an error repeats of the body.
    func read(_ answer: CredentialHTTP.Answer, now: Int64) throws(CredentialError) -> RefreshingCredential<String>.Expiring {
        let object = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
        guard answer.status == 200 else { throw rejection(status: answer.status, object: object) }
        guard let object else {
            throw CredentialError(.invalidResponse, source: name, message: "answered 200 with something that is not a JSON object")
        }
        guard let token = object["access_token"] as? String, !token.isEmpty else {
            throw CredentialError(.invalidResponse, source: name, message: "answered 200 without access_token")
        }
        guard CredentialHTTP.isHeaderSafe(token) else {
            throw CredentialError(.invalidResponse, source: name, message: "answered an access_token with characters that cannot be sent in a header")
        }
        if let type = object["token_type"] as? String, type.lowercased() != "bearer" {
            throw CredentialError(
                .invalidResponse, source: name, message: "answered token_type \(CredentialError.quoted(type, limit: 40)), not Bearer")
        }
        guard let expiresIn = (object["expires_in"] as? NSNumber)?.int64Value, expiresIn > 0 else {
            throw CredentialError(.invalidResponse, source: name, message: "answered 200 without a positive expires_in")
        }
        return .init(value: token, expiresAtMs: now + expiresIn * 1000)
    }

    private func rejection(status: Int, object: [String: Any]?) -> CredentialError {
        var message = "answered \(status)"
        if let code = object?["error"] as? String {
            message += " \(CredentialError.quoted(code, limit: 80))"
            if let description = object?["error_description"] as? String { message += ": \(CredentialError.quoted(description))" }
        } else if let error = object?["error"] as? [String: Any] {
            // Google API style: {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "..."}}
            if let status = error["status"] as? String { message += " \(CredentialError.quoted(status, limit: 80))" }
            if let text = error["message"] as? String { message += ": \(CredentialError.quoted(text))" }
        }
        switch (source, status) {
        case (.serviceAccount, 400), (.serviceAccount, 401):
            message += "; check that the key is not deleted or disabled in IAM and that this machine's clock is right"
        case (.metadataServer, 403), (.metadataServer, 404):
            message += "; check that a service account is attached to this VM or to the pod's Kubernetes service account"
        default:
            break
        }
        return CredentialError(status >= 500 || status == 429 ? .unreachable : .rejected, source: name, message: message)
    }
}

/// The claims of a service account's assertion. Plain integers for `iat` and `exp`: Google
/// wants whole seconds.
struct GoogleAssertionClaims: JWTPayload {
    var iss: String
    var scope: String
    var aud: String
    var iat: Int64
    var exp: Int64

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
