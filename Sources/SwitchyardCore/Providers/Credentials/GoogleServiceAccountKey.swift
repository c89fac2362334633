import Foundation
import JWTKit

/// A Google service-account JSON key file, parsed and checked when the configuration loads, so
/// that a wrong file fails `check` rather than the first request.
///
/// Errors name the file and the field; nothing here ever prints the private key.
public struct GoogleServiceAccountKey: Sendable, CustomStringConvertible {
    public static let defaultTokenURI = "https://oauth2.googleapis.com/token"

    public var clientEmail: String
    /// The `kid` of the assertions; nil when the file has none.
    public var privateKeyID: String?
    public var tokenURI: String
    public var projectID: String?
    let privateKey: Insecure.RSA.PrivateKey

    /// Reads and checks the key file at `path`.
    public static func load(path: String) throws(CredentialError) -> GoogleServiceAccountKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CredentialError(.notConfigured, source: "gcp key file \(path)", message: "cannot read it; check the path and its permissions")
        }
        return try GoogleServiceAccountKey(json: data, path: path)
    }

    /// Parses a key file's contents; `path` is for messages only.
    public init(json: Data, path: String) throws(CredentialError) {
        let source = "gcp key file \(path)"
        guard let object = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            throw CredentialError(
                .notConfigured, source: source, message: "it is not a JSON object; expected a service-account key downloaded from IAM")
        }
        func field(_ name: String, required: Bool) throws(CredentialError) -> String? {
            switch object[name] {
            case let value as String where !value.isEmpty: return value
            case nil where !required: return nil
            case nil: throw CredentialError(.notConfigured, source: source, message: "the field \(name) is missing")
            default: throw CredentialError(.notConfigured, source: source, message: "the field \(name) is not a non-empty string")
            }
        }
        let type = try field("type", required: true)
        guard type == "service_account" else {
            throw CredentialError(
                .notConfigured, source: source,
                message: "type is \(CredentialError.quoted(type ?? "", limit: 40)), not service_account; Switchyard needs a service-account key "
                    + "(user credentials from gcloud and workload identity federation files are not supported), "
                    + "or no key file to use the metadata server"
            )
        }
        clientEmail = try field("client_email", required: true) ?? ""
        privateKeyID = try field("private_key_id", required: false)
        projectID = try field("project_id", required: false)
        tokenURI = try field("token_uri", required: false) ?? Self.defaultTokenURI
        guard Self.isAcceptable(tokenURI: tokenURI) else {
            throw CredentialError(
                .notConfigured, source: source,
                message: "the field token_uri must be an https URL (http only to loopback), since the signed assertion is sent there"
            )
        }
        let pem = try field("private_key", required: true) ?? ""
        guard pem.contains("-----BEGIN PRIVATE KEY-----") || pem.contains("-----BEGIN RSA PRIVATE KEY-----") else {
            throw CredentialError(.notConfigured, source: source, message: "the field private_key is not a PEM private key")
        }
        do {
            privateKey = try Insecure.RSA.PrivateKey(pem: pem)
        } catch {
            // The error of the PEM parser is not shown: it could quote the key's bytes.
            throw CredentialError(.notConfigured, source: source, message: "the field private_key is not an RSA private key of 2048 bits or more")
        }
    }

    public var description: String {
        "GoogleServiceAccountKey(\(clientEmail), key id \(privateKeyID.map { String($0.prefix(8)) + "…" } ?? "none"))"
    }

    private static func isAcceptable(tokenURI: String) -> Bool {
        guard let components = URLComponents(string: tokenURI), let scheme = components.scheme?.lowercased(), let host = components.host else {
            return false
        }
        if scheme == "https" { return true }
        return scheme == "http" && (host == "localhost" || host.hasPrefix("127.") || host == "[::1]" || host == "::1")
    }
}
