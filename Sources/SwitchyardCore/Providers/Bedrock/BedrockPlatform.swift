import Yams

/// `type: bedrock`: Claude on AWS Bedrock (PRODUCT.md section 11).
enum BedrockPlatform: PlatformKind {
    static func makeProvider(spec: ProviderSpec, services: ProviderServices) -> any UpstreamProvider {
        guard let settings = spec.settings as? BedrockSettings else { preconditionFailure("provider '\(spec.name)' is not a BedrockPlatform definition") }
        return BedrockProvider(spec: spec, settings: settings, services: services)
    }

    static let platform = Platform.bedrock
    static let configKeys = ["region", "aws_profile", "anthropic_version"]
    static let defaultAnthropicVersion = "bedrock-2023-05-31"

    static func readSettings(_ fields: ConfigReader.Fields, context: ProviderConfigContext) -> (any PlatformSettings)? {
        let reader = context.reader
        var region: String?
        if let node = fields.required("region"), let text = reader.string(node, path: fields.path("region")) {
            if isRegionName(text) {
                region = text
            } else {
                reader.report("invalid AWS region '\(text)' (expected e.g. us-east-1)", at: node, path: fields.path("region"))
            }
        }
        let profile = fields["aws_profile"].flatMap { reader.string($0, path: fields.path("aws_profile")) }
        let version = fields["anthropic_version"].flatMap { reader.string($0, path: fields.path("anthropic_version")) } ?? defaultAnthropicVersion
        guard let region else { return nil }
        switch AWSCredentialSource.resolve(environment: context.environment, profile: profile, region: region) {
        case .success(let source):
            return BedrockSettings(region: region, profile: profile, anthropicVersion: version, credentials: source)
        case .failure(let error):
            context.report("no AWS credentials: \(error.message)", at: fields.keyNode("aws_profile") ?? fields.mapping, path: fields.path, warningInCheck: true)
            // `check` goes on with the rest of the file; `serve` has an error and stops.
            return context.mode == .check ? BedrockSettings(region: region, profile: profile, anthropicVersion: version, credentials: nil) : nil
        }
    }

    static func isRegionName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 32 && text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    }
}

public struct BedrockSettings: PlatformSettings {
    public var region: String
    public var profile: String?
    /// The body's `anthropic_version`.
    public var anthropicVersion: String
    /// nil only in `check` mode when no source was found.
    public var credentials: AWSCredentialSource?

    public var platform: Platform { .bedrock }
    public var defaultBaseURL: UpstreamURL {
        UpstreamURL(isTLS: true, host: "bedrock-runtime.\(region).amazonaws.com", port: 443, pathPrefix: "")
    }
    public var upstreamIdentity: String { region }
    public var fingerprint: String { "\(region)|\(profile ?? "")|\(anthropicVersion)|\(credentials?.fingerprint ?? "none")" }
    public var credentialDescription: String { credentials?.description ?? "aws: no credentials found" }
    public var passesCallerCredentials: Bool { false }

    /// `/model/{id}/invoke`: the id percent-encoded as the AWS SDKs do (`:` kept, the `/` of an ARN encoded).
    public func path(upstreamModel: String, api: UpstreamAPI, stream: Bool) -> String {
        let action: String
        switch api {
        case .messages: action = stream ? "invoke-with-response-stream" : "invoke"
        case .countTokens: action = "count-tokens"
        }
        return "/model/\(PathEncoding.segment(upstreamModel, keeping: ":"))/\(action)"
    }

}
