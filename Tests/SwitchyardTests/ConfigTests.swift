import Foundation
import Testing

@testable import SwitchyardCore

@Suite("routes.yaml loading and validation")
struct ConfigTests {
    static let env = ["ANTHROPIC_API_KEY": "sk-ant-test-000000000000", "SWITCHYARD_ADMIN_TOKEN": "admin-token-for-tests"]

    func problems(_ yaml: String, env: [String: String] = env, mode: ConfigLoader.Mode = .serve) -> [ConfigProblem] {
        do {
            _ = try ConfigLoader(environment: env, mode: mode).load(yaml: yaml, source: "routes.yaml")
            return []
        } catch {
            return error.problems
        }
    }

    /// The file at the repository root is what ops start from: it must stay valid.
    @Test func exampleRoutesYAMLIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes.yaml").path
        let keyFile = PlatformFixtures.temporaryPath("sa.json")
        try PlatformFixtures.serviceAccountKey(tokenSim: "v").replacingOccurrences(of: "{{v}}", with: "https://oauth2.googleapis.com")
            .write(toFile: keyFile, atomically: true, encoding: .utf8)
        var environment = Self.env
        environment.merge(PlatformFixtures.environment(keyFile: keyFile)) { old, _ in old }
        let loaded = try ConfigLoader(environment: environment, mode: .serve).load(path: path)
        let config = loaded.config
        #expect(config.routes.map(\.name) == ["default", "reasoning"])
        #expect(config.route(named: "default")?.models == ["sonnet", "sonnet-bedrock", "sonnet-vertex", "haiku"])
        #expect(config.providers.map(\.platform) == [.anthropic, .bedrock, .vertex], "one route spans the three platforms")
        #expect(config.route(named: "default")?.aliases.contains("claude-sonnet-4-0") == true)
        #expect(config.model(named: "haiku")?.breaker.failureThreshold == 5)
        #expect(config.model(named: "sonnet")?.breaker.failureThreshold == 3)
        #expect((config.providers.first?.settings as? AnthropicSettings)?.apiKey == "sk-ant-test-000000000000")
        #expect(config.server.maxBody == 32 << 20)
        #expect(config.server.requestTimeout == .seconds(600))
        #expect(loaded.warnings.isEmpty)
    }

    @Test func checkModeTurnsMissingSecretsIntoWarnings() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes.yaml").path
        let loaded = try ConfigLoader(environment: [:], mode: .check).load(path: path)
        let names = loaded.warnings.map(\.message).joined(separator: "\n")
        #expect(names.contains("ANTHROPIC_API_KEY"))
        #expect(names.contains("no AWS credentials"))
        #expect(names.contains("GOOGLE_APPLICATION_CREDENTIALS"))
        #expect(loaded.warnings.allSatisfy { $0.severity == .warning })
        // The same file cannot be served without the variables.
        let errors = problems(try String(contentsOfFile: path, encoding: .utf8), env: [:])
        #expect(errors.contains { $0.message.contains("ANTHROPIC_API_KEY") && $0.severity == .error })
    }

    @Test func minimalFileGetsDefaults() throws {
        let loaded = try ConfigLoader(environment: Self.env).load(
            yaml: """
                version: 1
                providers:
                  anthropic: { type: anthropic, base_url: "https://api.anthropic.com" }
                models:
                  sonnet: { provider: anthropic, model: claude-sonnet-4-20250514 }
                routes:
                  default: { models: [sonnet] }
                """,
            source: "routes.yaml"
        )
        let config = loaded.config
        #expect(config.server.listen == HostPort(host: "127.0.0.1", port: 8080))
        #expect((config.providers[0].settings as? AnthropicSettings)?.apiKey == nil, "no api_key_env: the caller's key is passed through")
        #expect(config.routes[0].retry.maxAttempts == 4)
        #expect(config.routes[0].retry.perModel == 2)
        #expect(config.models[0].breaker.failureThreshold == 3)
        #expect(config.models[0].breaker.openFor == .seconds(30))
        #expect(config.routes[0].whenAllUnavailable == .probe)
    }

    @Test func everyProblemIsReportedAtOnceWithLineAndColumn() {
        let found = problems(
            """
            version: 1
            server:
              listen: 127.0.0.1:8080
              max_body: 32Mb
              request_timout: 600s
            providers:
              anthropic:
                type: anthropic
                base_url: https://api.anthropic.com
                api_key_env: NOT_SET_ANYWHERE
                timeouts: { connect: 2 seconds }
            models:
              sonnet: { provider: anthropc, model: claude-sonnet-4-20250514 }
              haiku:  { provider: anthropic, model: claude-3-5-haiku-20241022, breaker: { failure_threshold: -1 } }
            routes:
              default:
                models: [sonnet, gpt-5]
                aliases: [x]
              other:
                models: [haiku]
                aliases: [x]
                when_all_unavailable: maybe
            """
        )
        let rendered = found.map(\.description)
        let expected = [
            "routes.yaml:4:13: server.max_body: invalid size '32Mb'",
            "routes.yaml:5:3: server.request_timout: unknown key 'request_timout' (did you mean 'request_timeout'?)",
            "routes.yaml:10:18: providers.anthropic.api_key_env: environment variable NOT_SET_ANYWHERE is not set",
            "routes.yaml:11:26: providers.anthropic.timeouts.connect: invalid duration '2 seconds'",
            "routes.yaml:13:23: models.sonnet.provider: unknown provider 'anthropc' (known: anthropic)",
            "routes.yaml:14:98: models.haiku.breaker.failure_threshold: must be between 1 and 10000, found -1",
            "routes.yaml:17:22: routes.default.models[1]: unknown model 'gpt-5' (known: sonnet, haiku)",
            "routes.yaml:21:15: routes.other.aliases[0]: alias 'x' is already an alias of route 'default'",
            "routes.yaml:22:27: routes.other.when_all_unavailable: unknown value 'maybe' (expected one of: probe, reject)",
        ]
        for prefix in expected {
            #expect(rendered.contains { $0.hasPrefix(prefix) }, "missing: \(prefix)\nfound:\n\(rendered.joined(separator: "\n"))")
        }
        #expect(found.count == expected.count, "\(rendered.joined(separator: "\n"))")
        #expect(found.allSatisfy { $0.severity == .error })
    }

    @Test func literalSecretsAreRejected() {
        let found = problems(
            """
            version: 1
            providers:
              anthropic: { type: anthropic, base_url: "https://api.anthropic.com", api_key: sk-ant-api03-abcdefghijklmnopqrstuvwxyz }
            models:
              sonnet: { provider: anthropic, model: claude-sonnet-4-20250514 }
            routes:
              default: { models: [sonnet] }
            """
        )
        #expect(found.contains { $0.line == 3 && $0.path == "providers.anthropic.api_key" && $0.message.contains("environment variable") })
        #expect(!found.map(\.description).joined().contains("abcdefghijklmnopqrstuvwxyz"), "the secret itself is never echoed")
    }

    @Test func invalidYAMLSyntaxPointsAtTheSpot() {
        let found = problems("version: 1\nroutes: [a\n")
        #expect(found.count == 1)
        #expect(found.first?.line == 3)
        #expect(found.first?.message.hasPrefix("invalid YAML") == true)
    }

    @Test func wrongTypesAndMissingSections() {
        let found = problems(
            """
            version: 2
            providers:
              anthropic: { type: gemini, base_url: "ftp://x" }
            models:
              sonnet: [not, a, map]
            routes:
              default: { models: sonnet }
            """
        )
        let paths = Set(found.map(\.path))
        #expect(paths.contains("version"))
        #expect(paths.contains("providers.anthropic.type"))
        #expect(paths.contains("providers.anthropic.base_url"))
        #expect(paths.contains("models.sonnet"))
        #expect(paths.contains("routes.default.models"))
        #expect(found.allSatisfy { $0.line > 0 && $0.column > 0 })
    }

    /// A host with a control character or a space would end up in every request's `host` line.
    @Test func aBaseURLHostWithAControlCharacterOrSpaceIsRefused() {
        for host in [#"exa\r\nmple.com"#, "exa mple.com", #"exa\tmple.com"#] {
            let found = problems(
                """
                version: 1
                providers:
                  anthropic: { type: anthropic, base_url: "https://\(host)", api_key_env: ANTHROPIC_API_KEY }
                models:
                  sonnet: { provider: anthropic, model: claude-sonnet-4-20250514 }
                routes:
                  default: { models: [sonnet] }
                """
            )
            #expect(found.map(\.path).contains("providers.anthropic.base_url"), "\(host): \(found)")
        }
        #expect(UpstreamURL.parse("https://api.anthropic.com:8443/v1")?.host == "api.anthropic.com")
    }

    @Test func clientsReferenceRoutesAndNeedTheirKeys() {
        let found = problems(
            """
            version: 1
            clients:
              - name: search-team
                key_env: SEARCH_TEAM_KEY
                routes: [default, nope]
            providers:
              anthropic: { type: anthropic, base_url: "https://api.anthropic.com", api_key_env: ANTHROPIC_API_KEY }
            models:
              sonnet: { provider: anthropic, model: claude-sonnet-4-20250514 }
            routes:
              default: { models: [sonnet] }
            """
        )
        #expect(found.contains { $0.path == "clients[0].key_env" && $0.message.contains("SEARCH_TEAM_KEY") })
        #expect(found.contains { $0.path == "clients[0].routes[1]" && $0.message.contains("unknown route 'nope'") })
    }

    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)), ("30s", .seconds(30)), ("5m", .seconds(300)), ("1h", .seconds(3600)),
    ])
    func durations(text: String, expected: Duration) throws {
        #expect(try ConfigValues.duration(text).get() == expected)
    }

    @Test func durationsRejectNonsense() {
        for text in ["", "5", "-1s", "1.5.2s", "10y", "s"] {
            #expect((try? ConfigValues.duration(text).get()) == nil, "\(text)")
        }
    }

    @Test func sizes() throws {
        #expect(try ConfigValues.byteSize("512KiB").get() == 512 * 1024)
        #expect(try ConfigValues.byteSize("32MiB").get() == 32 << 20)
        #expect(try ConfigValues.byteSize("1GiB").get() == 1 << 30)
        #expect(try ConfigValues.byteSize("1000").get() == 1000)
        #expect((try? ConfigValues.byteSize("32Mb").get()) == nil)
        #expect((try? ConfigValues.byteSize("-1").get()) == nil)
        #expect(ConfigValues.sizeNotation(32 << 20) == "32MiB")
        #expect(ConfigValues.sizeNotation(512 << 10) == "512KiB")
        #expect(ConfigValues.sizeNotation(1000) == "1000 bytes")
    }
}
