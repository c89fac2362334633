import AWSWire
import AsyncHTTPClient
import Logging
import NIOCore

/// A Bedrock provider's AWS credentials, ready for the signer: static keys at once, temporary
/// ones (web identity, container endpoint) cached and refreshed before `Expiration` by one task.
public final class AWSCredentialProvider: Sendable {
    public let source: AWSCredentialSource
    private let supply: Supply

    private enum Supply {
        case fixed(AWSCredentials)
        case refreshing(RefreshingCredential<AWSCredentials>)
    }

    /// - Parameters:
    ///   - region: The provider's region, named in logs next to the source.
    ///   - egress: How credential endpoints are reached (the router's clients, the provider's proxy rules).
    ///   - now: Unix milliseconds; decides when temporary credentials are refreshed.
    ///   - fetchTimeout: How long one STS or container-endpoint call may take.
    public init(
        source: AWSCredentialSource,
        region: String,
        egress: CredentialEgress,
        now: @escaping @Sendable () -> Int64,
        fetchTimeout: Duration = .seconds(10),
        logger: Logger = Logger(label: "switchyard.credentials")
    ) {
        self.source = source
        var logger = logger
        logger[metadataKey: "aws_region"] = "\(region)"
        switch source {
        case .environment(let credentials), .profile(_, _, let credentials):
            supply = .fixed(credentials)
        case .webIdentity(let identity):
            supply = .refreshing(
                RefreshingCredential(source: identity.source, fetchTimeout: fetchTimeout, now: now, logger: logger) {
                    deadline throws(CredentialError) in
                    try await identity.fetch(egress: egress, now: now(), deadline: deadline)
                }
            )
        case .container(let endpoint):
            supply = .refreshing(
                RefreshingCredential(source: endpoint.source, fetchTimeout: fetchTimeout, now: now, logger: logger) {
                    deadline throws(CredentialError) in
                    try await endpoint.fetch(egress: egress, deadline: deadline)
                }
            )
        }
    }

    /// Credentials to sign one request with.
    ///
    /// - Parameter deadline: When the caller stops waiting for a fetch (its attempt's deadline).
    public func credentials(deadline: NIODeadline? = nil) async throws(CredentialError) -> AWSCredentials {
        switch supply {
        case .fixed(let credentials): return credentials
        case .refreshing(let cache): return try await cache.value(deadline: deadline)
        }
    }

    /// AWS refused the credentials as expired: temporary ones are fetched again on the next call.
    /// Static keys cannot be renewed by Switchyard, so this does nothing for them.
    public func invalidate() {
        if case .refreshing(let cache) = supply { cache.invalidate() }
    }

    /// For `switchyard check` and logs; never a secret.
    public var sourceDescription: String { source.description }
}
