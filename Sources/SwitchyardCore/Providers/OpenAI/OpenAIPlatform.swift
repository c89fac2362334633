import Yams

/// `type: openai`: any server that speaks OpenAI's Chat Completions API — OpenAI itself, Azure
/// OpenAI (`api_version`), vLLM, Ollama, LiteLLM... Messages requests are translated on the way
/// out and answers on the way back (``OpenAIProvider``).
enum OpenAIPlatform: PlatformKind {
    static func makeProvider(spec: ProviderSpec, services: ProviderServices) -> any UpstreamProvider {
        OpenAIProvider(spec: spec, settings: settings(of: spec))
    }

    static let platform = Platform.openai
    static let genAISystem = "openai"
    static let configKeys = ["api_key_env", "organization", "api_version"]

    static func readSettings(_ fields: ConfigReader.Fields, context: ProviderConfigContext) -> (any PlatformSettings)? {
        let reader = context.reader
        var settings = OpenAISettings()
        if let node = fields["api_key_env"] {
            settings.apiKeyEnv = reader.string(node, path: fields.path("api_key_env"))
            settings.apiKey = settings.apiKeyEnv.flatMap { context.secret($0, node, fields.path("api_key_env")) }
        }
        if let node = fields["organization"], let text = reader.string(node, path: fields.path("organization")) {
            if isHeaderValue(text) {
                settings.organization = text
            } else {
                reader.report("invalid organization '\(text)' (visible ASCII, no spaces)", at: node, path: fields.path("organization"))
            }
        }
        if let node = fields["api_version"], let text = reader.string(node, path: fields.path("api_version")) {
            if isHeaderValue(text), !text.isEmpty {
                settings.apiVersion = text
            } else {
                reader.report("invalid api_version '\(text)' (expected e.g. 2024-10-21)", at: node, path: fields.path("api_version"))
            }
            if fields["base_url"] == nil {
                reader.report(
                    "api_version (Azure OpenAI) needs base_url: the resource's endpoint, e.g. https://NAME.openai.azure.com", at: node,
                    path: fields.path("api_version")
                )
            }
        }
        return settings
    }

    private static func isHeaderValue(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}

public struct OpenAISettings: PlatformSettings {
    public var apiKeyEnv: String?
    /// nil: no key is sent (a local vLLM or Ollama needs none). Callers' own keys are never sent.
    public var apiKey: String?
    /// Sent as `OpenAI-Organization`.
    public var organization: String?
    /// Azure OpenAI: the model is a deployment in the path and the version a query parameter;
    /// the key goes in `api-key`.
    public var apiVersion: String?

    public var platform: Platform { .openai }
    /// As OpenAI's SDKs take it: the API root, `/v1` included.
    public var defaultBaseURL: UpstreamURL { UpstreamURL(isTLS: true, host: "api.openai.com", port: 443, pathPrefix: "/v1") }
    public var upstreamIdentity: String { apiVersion ?? "" }
    public var fingerprint: String { "\(apiKey ?? "")|\(organization ?? "")|\(apiVersion ?? "")" }
    public var credentialDescription: String {
        guard let apiKeyEnv else { return "no key sent (for a server that needs none)" }
        return "key from $\(apiKeyEnv)\(apiVersion == nil ? "" : " as api-key")"
    }
    public var settingsDescription: String? {
        var parts: [String] = ["Chat Completions, translated from and to Messages"]
        if let apiVersion { parts.append("Azure OpenAI api-version \(apiVersion)") }
        if let organization { parts.append("organization \(organization)") }
        return parts.joined(separator: ", ")
    }
    public var passesCallerCredentials: Bool { false }

    public func path(upstreamModel: String, api: UpstreamAPI, stream: Bool) -> String {
        guard let apiVersion else { return "/chat/completions" }
        return "/openai/deployments/\(PathEncoding.segment(upstreamModel))/chat/completions?api-version=\(PathEncoding.segment(apiVersion))"
    }
}
