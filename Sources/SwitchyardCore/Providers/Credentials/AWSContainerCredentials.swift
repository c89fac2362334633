import AWSWire
import AsyncHTTPClient
import Foundation
import NIOCore

/// Temporary credentials from the container credentials endpoint (ECS task roles, EKS Pod
/// Identity): `GET` the URL, with an `Authorization` header when the platform gives a token.
public struct AWSContainerCredentials: Sendable, Equatable {
    /// Where the `Authorization` header comes from.
    public enum Authorization: Sendable, Equatable {
        case none
        /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
        case token(String)
        /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read at every fetch: EKS rotates it.
        case tokenFile(String)
    }

    /// The ECS agent's address, to which `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is relative.
    public static let ecsHost = "http://169.254.170.2"

    public var url: String
    public var authorization: Authorization

    public init(url: String, authorization: Authorization) {
        self.url = url
        self.authorization = authorization
    }

    /// The URL without the part that identifies the task (`/v2/credentials/<id>`): the
    /// description goes to logs and `check`.
    var displayURL: String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return "…" }
        let hostPort = components.port.map { "\(host):\($0)" } ?? host
        let segments = components.path.split(separator: "/")
        let path = segments.count > 2 ? "/" + segments.prefix(2).joined(separator: "/") + "/…" : components.path
        return "\(scheme)://\(hostPort)\(path)"
    }

    var source: String { "aws container credentials endpoint \(CredentialHTTP.host(of: url))" }

    /// Hosts to which an `AWS_CONTAINER_CREDENTIALS_FULL_URI` over plain HTTP may point, as the
    /// AWS SDKs allow: the ECS and EKS agents' link-local addresses and loopback. Anything else
    /// must be HTTPS, so the authorization token is not sent in clear across a network.
    static func isAllowed(fullURI: String) -> Bool {
        guard let components = URLComponents(string: fullURI), let scheme = components.scheme?.lowercased(),
            let host = components.host?.lowercased()
        else { return false }
        if scheme == "https" { return true }
        guard scheme == "http" else { return false }
        let trimmed = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return trimmed == "localhost" || trimmed.hasPrefix("127.") || trimmed == "::1" || trimmed == "169.254.170.2"
            || trimmed == "169.254.170.23" || trimmed == "fd00:ec2::23"
    }

    func fetch(egress: CredentialEgress, deadline: NIODeadline) async throws(CredentialError) -> RefreshingCredential<AWSCredentials>.Expiring {
        var headers = [("Accept", "application/json")]
        if let token = try authorizationToken() { headers.append(("Authorization", token)) }
        let answer = try await CredentialHTTP(egress: egress, source: source).send(url: url, method: .GET, headers: headers, deadline: deadline)
        let object = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any]
        guard answer.status == 200 else {
            var message = "the endpoint answered \(answer.status)"
            if let code = object?["code"] as? String { message += " \(CredentialError.quoted(code, limit: 80))" }
            if let detail = object?["message"] as? String { message += ": \(CredentialError.quoted(detail))" }
            if answer.status == 401 || answer.status == 403 {
                message += "; check AWS_CONTAINER_AUTHORIZATION_TOKEN or AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
            }
            throw CredentialError(answer.status >= 500 ? .unreachable : .rejected, source: source, message: message)
        }
        guard let object else {
            throw CredentialError(.invalidResponse, source: source, message: "the endpoint answered 200 with something that is not a JSON object")
        }
        guard let keyID = object["AccessKeyId"] as? String, let secret = object["SecretAccessKey"] as? String,
            let sessionToken = object["Token"] as? String, let expiration = object["Expiration"] as? String
        else {
            throw CredentialError(.invalidResponse, source: source, message: "the answer lacks AccessKeyId, SecretAccessKey, Token or Expiration")
        }
        return try AWSTemporaryCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: sessionToken, expiration: expiration).checked(
            source: source, unsafeMessage: "the answer holds credentials with characters that cannot be sent in a header",
            expirationMessage: "the answer's Expiration is not an ISO 8601 time"
        )
    }

    private func authorizationToken() throws(CredentialError) -> String? {
        let token: String
        switch authorization {
        case .none:
            return nil
        case .token(let given):
            token = given
        case .tokenFile(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CredentialError(
                    .notConfigured, source: source,
                    message: "cannot read the authorization token file \(path) (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE); check that it is mounted"
                )
            }
            token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard !token.isEmpty, token.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else {
            throw CredentialError(
                .notConfigured, source: source, message: "the container authorization token is empty or holds a control character (a line break?)")
        }
        return token
    }
}
