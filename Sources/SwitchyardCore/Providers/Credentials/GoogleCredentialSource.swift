/// Where a Vertex AI provider's OAuth2 access tokens come from: a service-account key file named
/// by an environment variable (the provider's `credentials_file_env`), or, with none configured,
/// the metadata server of the GCE VM or GKE pod Switchyard runs on.
///
/// Its description (for `switchyard check` and logs) never shows the key.
public enum GoogleCredentialSource: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    case serviceAccount(GoogleServiceAccountKey, path: String)
    /// `GCE_METADATA_HOST` (host or host:port; a URL with a scheme is taken as it is), default
    /// `metadata.google.internal`.
    case metadataServer(host: String)

    public static let defaultMetadataHost = "metadata.google.internal"

    /// Resolves the source, reading and checking the key file; no network.
    ///
    /// - Parameter credentialsFileEnv: The variable holding the key file's path; nil: the metadata server.
    public static func resolve(environment: [String: String], credentialsFileEnv: String?) -> Result<GoogleCredentialSource, CredentialError> {
        guard let credentialsFileEnv else {
            var host = environment["GCE_METADATA_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultMetadataHost
            while host.hasSuffix("/") { host.removeLast() }
            return .success(.metadataServer(host: host))
        }
        guard let path = environment[credentialsFileEnv], !path.isEmpty else {
            return .failure(
                CredentialError(
                    .notConfigured, source: "gcp credentials",
                    message: "\(credentialsFileEnv) is not set; it must hold the path of a service-account JSON key file "
                        + "(or remove credentials_file_env to use the metadata server)"
                )
            )
        }
        do throws(CredentialError) {
            return .success(.serviceAccount(try GoogleServiceAccountKey.load(path: path), path: path))
        } catch {
            return .failure(error)
        }
    }

    public var description: String {
        switch self {
        case .serviceAccount(let key, let path): "gcp: service account \(key.clientEmail) (\(path))"
        case .metadataServer(let host): "gcp: metadata server (\(host))"
        }
    }

    public var debugDescription: String { description }
}
