import Yams

/// `type: bedrock`: Claude on AWS Bedrock (README, "Claude on every platform").
enum BedrockPlatform: PlatformKind {
    static func makeProvider(spec: ProviderSpec, services: ProviderServices) -> any UpstreamProvider {
        BedrockProvider(spec: spec, settings: settings(of: spec), services: services)
    }

    static let platform = Platform.bedrock
    static let genAISystem = "aws.bedrock"
    static let configKeys = ["region", "aws_profile", "anthropic_version"]
    static let defaultAnthropicVersion = "bedrock-2023-05-31"

    static func readSettings(_ fields: ConfigReader.Fields, context: ProviderConfigContext) -> (any PlatformSettings)? {
        let reader = context.reader
        let profile = fields["aws_profile"].flatMap { reader.string($0, path: fields.path("aws_profile")) }
        let version = fields["anthropic_version"].flatMap { reader.string($0, path: fields.path("anthropic_version")) } ?? defaultAnthropicVersion
        guard let (region, regionSource) = readRegion(fields, context: context) else { return nil }
        switch AWSCredentialSource.resolve(environment: context.environment, profile: profile, region: region) {
        case .success(let source):
            return BedrockSettings(region: region, regionSource: regionSource, profile: profile, anthropicVersion: version, credentials: source)
        case .failure(let error):
            context.report("no AWS credentials: \(error.message)", at: fields.keyNode("aws_profile") ?? fields.mapping, path: fields.path, warningInCheck: true)
            // `check` goes on with the rest of the file; `serve` has an error and stops.
            guard context.mode == .check else { return nil }
            return BedrockSettings(region: region, regionSource: regionSource, profile: profile, anthropicVersion: version, credentials: nil)
        }
    }

    /// Variables that name the region when the provider has no `region` key, in the AWS SDKs' order.
    static let regionVariables = ["AWS_REGION", "AWS_DEFAULT_REGION"]

    /// The provider's `region`, else the AWS SDKs' region variables, with where it came from.
    private static func readRegion(_ fields: ConfigReader.Fields, context: ProviderConfigContext) -> (String, String)? {
        let reader = context.reader
        if let node = fields["region"] {
            guard let text = reader.string(node, path: fields.path("region")) else { return nil }
            guard isRegionName(text) else {
                reader.report("invalid AWS region '\(text)' (expected e.g. us-east-1)", at: node, path: fields.path("region"))
                return nil
            }
            return (text, "region key")
        }
        for name in regionVariables {
            guard let text = context.environment[name]?.trimmingWhitespace(), !text.isEmpty else { continue }
            guard isRegionName(String(text)) else {
                context.report(
                    "invalid AWS region '\(text)' in \(name) (expected e.g. us-east-1)", at: fields.mapping, path: fields.path, warningInCheck: false
                )
                return nil
            }
            return (String(text), name)
        }
        context.report(
            "no AWS region: set the provider's region key, or AWS_REGION or AWS_DEFAULT_REGION in the environment", at: fields.mapping,
            path: fields.path("region"), warningInCheck: false
        )
        return nil
    }

    static func isRegionName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 32 && text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    }
}

public struct BedrockSettings: PlatformSettings {
    public var region: String
    /// Where the region came from: `region key`, `AWS_REGION` or `AWS_DEFAULT_REGION` (for `check`).
    public var regionSource: String
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
    public var settingsDescription: String? { "region \(region) (from \(regionSource))" }
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
