/// One set of AWS credentials: long-lived keys, or temporary ones with a session token.
/// Its description never shows the secret or the token, so it is safe in logs and errors.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Unix milliseconds after which temporary credentials are no longer valid; nil: long-lived.
    public var expiresAtMs: Int64?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiresAtMs: Int64? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiresAtMs = expiresAtMs
    }

    public var description: String {
        let token = sessionToken == nil ? "no session token" : "session token"
        return "AWSCredentials(\(accessKeyID.prefix(4))…, \(token)\(expiresAtMs.map { ", expires at \($0) ms" } ?? ""))"
    }
}
