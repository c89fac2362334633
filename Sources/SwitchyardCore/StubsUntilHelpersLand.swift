// TEMPORARY: stand-ins for the credential types being written in parallel; deleted when they land.
import AWSWire
import AsyncHTTPClient

public struct CredentialError: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var message: String
    public init(source: String, message: String) { self.source = source; self.message = message }
    public var description: String { "\(source): \(message)" }
}
public enum AWSCredentialSource: Sendable, CustomStringConvertible {
    case environment
    public static func resolve(environment: [String: String], profile: String?, region: String) -> Result<AWSCredentialSource, CredentialError> { .success(.environment) }
    public var description: String { "aws: environment" }
}
public final class AWSCredentialProvider: Sendable {
    public init(source: AWSCredentialSource, region: String, httpClient: HTTPClient, now: @escaping @Sendable () -> Int64) {}
    public func credentials() async throws(CredentialError) -> AWSCredentials { AWSCredentials(accessKeyID: "a", secretAccessKey: "b") }
    public func invalidate() {}
}
public enum GoogleCredentialSource: Sendable, CustomStringConvertible {
    case metadataServer(String)
    public static func resolve(environment: [String: String], credentialsFileEnv: String?) -> Result<GoogleCredentialSource, CredentialError> { .success(.metadataServer("x")) }
    public var description: String { "gcp: metadata" }
}
public final class GoogleAccessTokenProvider: Sendable {
    public init(source: GoogleCredentialSource, httpClient: HTTPClient, now: @escaping @Sendable () -> Int64) {}
    public func accessToken() async throws(CredentialError) -> String { "t" }
    public func invalidate() {}
}
