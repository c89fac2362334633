import Yams

/// `type: vertex`: Claude on Google Vertex AI (README, "Claude on every platform").
enum VertexPlatform: PlatformKind {
    static func makeProvider(spec: ProviderSpec, services: ProviderServices) -> any UpstreamProvider {
        VertexProvider(spec: spec, settings: settings(of: spec), services: services)
    }

    static let platform = Platform.vertex
    static let genAISystem = "gcp.vertex_ai"
    static let configKeys = ["project", "region", "credentials_file_env", "anthropic_version"]
    static let defaultAnthropicVersion = "vertex-2023-10-16"

    static func readSettings(_ fields: ConfigReader.Fields, context: ProviderConfigContext) -> (any PlatformSettings)? {
        let reader = context.reader
        let project = requiredName("project", in: fields, reader: reader, invalid: "Google Cloud project", expected: "letters, digits, '-' and '.'")
        let region = requiredName("region", in: fields, reader: reader, invalid: "Vertex AI region", expected: "expected e.g. us-east5 or global")
        let version = fields["anthropic_version"].flatMap { reader.string($0, path: fields.path("anthropic_version")) } ?? defaultAnthropicVersion
        var credentialsFileEnv: String?
        if let node = fields["credentials_file_env"], let name = reader.string(node, path: fields.path("credentials_file_env")) {
            if ConfigValues.isEnvironmentVariableName(name) {
                credentialsFileEnv = name
            } else {
                reader.report("'\(name)' is not a valid environment variable name", at: node, path: fields.path("credentials_file_env"))
            }
        }
        guard let project, let region else { return nil }
        var settings = VertexSettings(project: project, region: region, anthropicVersion: version, credentialsFileEnv: credentialsFileEnv, credentials: nil)
        switch GoogleCredentialSource.resolve(environment: context.environment, credentialsFileEnv: credentialsFileEnv) {
        case .success(let source):
            settings.credentials = source
        case .failure(let error):
            context.report(
                "no Google credentials: \(error.message)", at: fields["credentials_file_env"] ?? fields.mapping,
                path: fields.path(fields["credentials_file_env"] == nil ? "" : "credentials_file_env"), warningInCheck: true
            )
            if context.mode == .serve { return nil }
        }
        return settings
    }

    /// The required `key`, a Google Cloud name (``isName(_:)``); a missing one is reported by
    /// `fields`, any other as `invalid <what> '<text>' (<expected>)`.
    private static func requiredName(
        _ key: String, in fields: ConfigReader.Fields, reader: ConfigReader, invalid what: String, expected: String
    ) -> String? {
        guard let node = fields.required(key), let text = reader.string(node, path: fields.path(key)) else { return nil }
        guard isName(text) else {
            reader.report("invalid \(what) '\(text)' (\(expected))", at: node, path: fields.path(key))
            return nil
        }
        return text
    }

    private static func isName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 64
            && text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 46 || $0 == 58 }
    }
}

public struct VertexSettings: PlatformSettings {
    public var project: String
    public var region: String
    /// The body's `anthropic_version`.
    public var anthropicVersion: String
    public var credentialsFileEnv: String?
    /// nil only in `check` mode when the key file could not be read.
    public var credentials: GoogleCredentialSource?

    public var platform: Platform { .vertex }

    /// `global` and the multi-regions have their own hosts (as in the anthropic SDK's Vertex client).
    public var defaultBaseURL: UpstreamURL {
        let host: String
        switch region {
        case "global": host = "aiplatform.googleapis.com"
        case "us", "eu": host = "aiplatform.\(region).rep.googleapis.com"
        default: host = "\(region)-aiplatform.googleapis.com"
        }
        return UpstreamURL(isTLS: true, host: host, port: 443, pathPrefix: "")
    }

    public var upstreamIdentity: String { "\(project)/\(region)" }
    public var fingerprint: String { "\(project)|\(region)|\(anthropicVersion)|\(credentials?.fingerprint ?? "none")" }
    public var credentialDescription: String { credentials?.description ?? "gcp: no credentials found" }
    public var passesCallerCredentials: Bool { false }

    public func path(upstreamModel: String, api: UpstreamAPI, stream: Bool) -> String {
        let models = "/v1/projects/\(PathEncoding.segment(project))/locations/\(PathEncoding.segment(region))/publishers/anthropic/models"
        switch api {
        case .messages: return "\(models)/\(PathEncoding.segment(upstreamModel, keeping: "@")):\(stream ? "streamRawPredict" : "rawPredict")"
        // One endpoint for all models: the model stays in the body.
        case .countTokens: return "\(models)/count-tokens:rawPredict"
        }
    }

}
