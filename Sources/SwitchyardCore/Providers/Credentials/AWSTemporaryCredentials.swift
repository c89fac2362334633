import AWSWire

/// Temporary AWS credentials as an endpoint answered them (STS's XML, the container endpoint's
/// JSON), not yet trusted: both answers are checked the same way before anything is signed
/// with them; only the wording of the errors says which endpoint it was.
struct AWSTemporaryCredentials {
    var accessKeyID: String
    var secretAccessKey: String
    var sessionToken: String
    /// `Expiration` as answered: an ISO 8601 time.
    var expiration: String

    /// The credentials and when they expire, once every part can be sent in a header and
    /// `Expiration` reads as a time; else `.invalidResponse` with `unsafeMessage` or
    /// `expirationMessage`.
    func checked(source: String, unsafeMessage: String, expirationMessage: String) throws(CredentialError)
        -> RefreshingCredential<AWSCredentials>.Expiring
    {
        guard [accessKeyID, secretAccessKey, sessionToken].allSatisfy(CredentialHTTP.isHeaderSafe) else {
            throw CredentialError(.invalidResponse, source: source, message: unsafeMessage)
        }
        guard let expiresAtMs = CredentialTimestamp.unixMilliseconds(expiration) else {
            throw CredentialError(.invalidResponse, source: source, message: expirationMessage)
        }
        let value = AWSCredentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: sessionToken, expiresAtMs: expiresAtMs)
        return .init(value: value, expiresAtMs: expiresAtMs)
    }
}
