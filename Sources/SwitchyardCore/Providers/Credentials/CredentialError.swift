/// Why a platform credential (AWS keys, a Google access token) could not be had.
///
/// Safe to log and to show: it names where the credential was looked for, the endpoint host and
/// status, and an OAuth or STS error code with its description, never a key, token, assertion
/// or raw response body.
public struct CredentialError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for callers that decide by it (a cancelled caller is no breaker failure).
    public enum Kind: String, Sendable {
        /// No source is configured, or a file or variable it needs is missing or malformed.
        case notConfigured = "not_configured"
        /// The endpoint could not be reached, did not answer in time (its own timeout or the
        /// caller's deadline), or answered with a server error.
        case unreachable
        /// The endpoint answered with an error (bad key, unknown role, denied).
        case rejected
        /// The endpoint answered 2xx with something that is not a credential.
        case invalidResponse = "invalid_response"
        /// The caller's task was cancelled (its client went away) before a credential came:
        /// nothing is known about the endpoint.
        case cancelled
    }

    public var kind: Kind
    /// Where the credential comes from, e.g. `gcp token endpoint oauth2.googleapis.com`.
    public var source: String
    /// What happened and what to do about it.
    public var message: String

    public init(_ kind: Kind = .notConfigured, source: String, message: String) {
        self.kind = kind
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}

extension CredentialError {
    /// Text from a remote error body (an OAuth `error_description`, an STS `Message`), made safe
    /// to put in a message: one line, printable, and short, whatever the endpoint sent.
    static func quoted(_ remote: String, limit: Int = 300) -> String {
        var out = ""
        for scalar in remote.unicodeScalars {
            if out.unicodeScalars.count >= limit {
                out += "…"
                break
            }
            out.unicodeScalars.append(scalar.properties.generalCategory == .control ? " " : scalar)
        }
        return out
    }
}
