/// The platform that serves a provider's models: what the audit line's `platform` says.
public struct Platform: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static let anthropic = Platform(rawValue: "anthropic")
    public static let bedrock = Platform(rawValue: "bedrock")
    public static let vertex = Platform(rawValue: "vertex")
    public static let openai = Platform(rawValue: "openai")
}

/// One platform as routes.yaml knows it: the provider `type`, the keys it adds to a provider
/// definition, and how its settings become a running ``UpstreamProvider``.
///
/// A new platform is one folder under `Providers/` with a type conforming to this, plus its line
/// in ``Platforms/all``; the routing engine, breakers, outcome table, audit and metrics never
/// name a platform.
protocol PlatformKind: SendableMetatype {
    static var platform: Platform { get }
    /// OpenTelemetry's `gen_ai.system` for Claude served by this platform.
    static var genAISystem: String { get }
    /// Keys a provider of this type accepts besides `type`, `base_url`, `timeouts` and `max_connections`.
    static var configKeys: [String] { get }
    /// Reads the platform's own keys; reports problems through `context` and returns nil when
    /// the definition cannot be used.
    static func readSettings(_ fields: ConfigReader.Fields, context: ProviderConfigContext) -> (any PlatformSettings)?
    /// The running provider for a definition whose settings this kind read.
    static func makeProvider(spec: ProviderSpec, services: ProviderServices) -> any UpstreamProvider
}

extension PlatformKind {
    /// The settings this kind read for `spec`, as its own type. ``Platforms/makeProvider(spec:services:)``
    /// picks the kind by the spec's platform, so any other type is a bug, not a configuration error.
    static func settings<Settings: PlatformSettings>(of spec: ProviderSpec, as _: Settings.Type = Settings.self) -> Settings {
        guard let settings = spec.settings as? Settings else { preconditionFailure("provider '\(spec.name)' is not a \(Self.self) definition") }
        return settings
    }
}

/// A provider's validated, platform-specific configuration.
public protocol PlatformSettings: Sendable {
    var platform: Platform { get }
    /// The upstream root when `base_url` is not given.
    var defaultBaseURL: UpstreamURL { get }
    /// What, besides the base URL, names the upstream a model lives on (Vertex's project): a reload
    /// keeps a model's breaker only while this is unchanged.
    var upstreamIdentity: String { get }
    /// Everything that, when changed by a reload, means the provider must be rebuilt (secrets
    /// included: the fingerprint is compared, never printed).
    var fingerprint: String { get }
    /// Where credentials come from, for `switchyard check`: never a secret.
    var credentialDescription: String { get }
    /// Anything else `check` should say about the provider (where a setting came from), or nil.
    var settingsDescription: String? { get }
    /// The URL path (after the base URL, its prefix included) a model is called at.
    func path(upstreamModel: String, api: UpstreamAPI, stream: Bool) -> String
    /// Providers without their own credential make callers' keys pass through, which conflicts
    /// with `clients:`.
    var passesCallerCredentials: Bool { get }
}

extension PlatformSettings {
    public var settingsDescription: String? { nil }

    /// `https://…/model/…/invoke`, for `check`.
    func url(base: UpstreamURL, upstreamModel: String, api: UpstreamAPI, stream: Bool) -> String {
        "\(base)\(path(upstreamModel: upstreamModel, api: api, stream: stream))"
    }
}

enum Platforms {
    static let all: [any PlatformKind.Type] = [AnthropicPlatform.self, BedrockPlatform.self, VertexPlatform.self, OpenAIPlatform.self]

    static func kind(named name: String) -> (any PlatformKind.Type)? {
        all.first { $0.platform.rawValue == name }
    }

    static var typeNames: [String] { all.map { $0.platform.rawValue } }

    static func genAISystem(of platform: Platform) -> String {
        all.first { $0.platform == platform }?.genAISystem ?? platform.rawValue
    }

    static func makeProvider(spec: ProviderSpec, services: ProviderServices) -> any UpstreamProvider {
        guard let kind = kind(named: spec.platform.rawValue) else {
            preconditionFailure("provider '\(spec.name)' has platform \(spec.platform), which no PlatformKind serves")
        }
        return kind.makeProvider(spec: spec, services: services)
    }
}

/// What a platform's config reader may use: the reader (positions, problems), secrets from the
/// environment, and the provider's name for messages.
struct ProviderConfigContext {
    let reader: ConfigReader
    let providerName: String
    let environment: [String: String]
    let mode: ConfigLoader.Mode
    /// Reads the secret named by an `*_env` key (reporting a missing variable).
    let secret: (_ name: String, _ node: Node, _ path: String) -> String?
    /// Marks a provider with no credential of its own (see ``PlatformSettings/passesCallerCredentials``).
    let notePassThrough: () -> Void

    /// A problem with no single key to point at (a credential source), reported at the provider.
    func report(_ message: String, at node: Node?, path: String, warningInCheck: Bool) {
        let severity: ConfigProblem.Severity = warningInCheck && mode == .check ? .warning : .error
        reader.report(message + (severity == .warning ? " (serve will refuse to start)" : ""), at: node, path: path, severity: severity)
    }
}

import Yams
