import Foundation
import Testing

@testable import SwitchyardCore

/// A Bedrock provider's region: its `region` key, else the AWS SDKs' variables.
@Suite struct PlatformConfigTests {
    static func yaml(region: String?) -> String {
        """
        version: 1
        providers:
          bedrock-us: { type: bedrock, \(region.map { "region: \($0), " } ?? "")base_url: "http://127.0.0.1:1" }
        models:
          sonnet-bedrock: { provider: bedrock-us, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0" }
        routes:
          default: { models: [sonnet-bedrock] }
        """
    }

    static let keys = ["AWS_ACCESS_KEY_ID": PlatformFixtures.awsKeyID, "AWS_SECRET_ACCESS_KEY": PlatformFixtures.awsSecret, "HOME": "/nonexistent"]

    func load(region: String?, _ environment: [String: String], mode: ConfigLoader.Mode = .serve) throws -> (BedrockSettings, String) {
        let loaded = try ConfigLoader(environment: Self.keys.merging(environment) { $1 }, mode: mode).load(yaml: Self.yaml(region: region), source: "routes.yaml")
        let settings = try #require(loaded.config.providers.first?.settings as? BedrockSettings)
        return (settings, RoutingTableDescription.render(loaded.config))
    }

    @Test func theRegionKeyWinsThenAWSRegionThenAWSDefaultRegion() throws {
        let both = ["AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "ap-south-1"]
        let (keyed, keyedText) = try load(region: "us-east-1", both)
        #expect(keyed.region == "us-east-1")
        #expect(keyedText.contains("aws: environment, region us-east-1 (from region key)"))

        let (fromRegion, regionText) = try load(region: nil, both)
        #expect(fromRegion.region == "eu-west-1")
        #expect(regionText.contains("region eu-west-1 (from AWS_REGION)"))
        #expect(fromRegion.defaultBaseURL.host == "bedrock-runtime.eu-west-1.amazonaws.com")

        let (fromDefault, defaultText) = try load(region: nil, ["AWS_DEFAULT_REGION": "ap-south-1", "AWS_REGION": ""])
        #expect(fromDefault.region == "ap-south-1")
        #expect(defaultText.contains("region ap-south-1 (from AWS_DEFAULT_REGION)"))
    }

    /// `type: openai`: its keys read into settings, its mistakes reported at the key with line
    /// and column.
    @Test func openAIProvidersReadTheirKeysAndPointAtMistakes() throws {
        let good = """
            version: 1
            providers:
              openai: { type: openai, api_key_env: OPENAI_API_KEY, organization: org-1 }
              azure: { type: openai, base_url: "https://res.openai.azure.com", api_key_env: OPENAI_API_KEY, api_version: "2024-10-21" }
            models:
              gpt: { provider: openai, model: gpt-4o }
              gpt-azure: { provider: azure, model: "my deployment" }
            routes:
              default: { models: [gpt, gpt-azure] }
            """
        let loaded = try ConfigLoader(environment: ["OPENAI_API_KEY": "sk-test-000000000000"], mode: .serve).load(yaml: good, source: "routes.yaml")
        let openai = try #require(loaded.config.providers.first { $0.name == "openai" }?.settings as? OpenAISettings)
        #expect(openai.apiKey == "sk-test-000000000000" && openai.organization == "org-1" && openai.apiVersion == nil)
        #expect(openai.path(upstreamModel: "gpt-4o", api: .messages, stream: false) == "/chat/completions")
        #expect(openai.defaultBaseURL.description == "https://api.openai.com/v1")
        let azure = try #require(loaded.config.providers.first { $0.name == "azure" }?.settings as? OpenAISettings)
        #expect(azure.path(upstreamModel: "my deployment", api: .messages, stream: true) == "/openai/deployments/my%20deployment/chat/completions?api-version=2024-10-21")
        #expect(!RoutingTableDescription.render(loaded.config).contains("sk-test-000000000000"))

        let bad = """
            version: 1
            providers:
              azure: { type: openai, api_key_env: OPENAI_API_KEY, api_version: "2024-10-21", organization: "two words" }
            models:
              gpt: { provider: azure, model: gpt-4o }
            routes:
              default: { models: [gpt] }
            """
        do {
            _ = try ConfigLoader(environment: ["OPENAI_API_KEY": "sk-test-000000000000"], mode: .serve).load(yaml: bad, source: "routes.yaml")
            Issue.record("loaded api_version without base_url")
        } catch {
            let problems = error.problems
            let version = problems.first { $0.path == "providers.azure.api_version" }
            #expect(version?.message.contains("needs base_url") == true && version?.line == 3 && (version?.column ?? 0) > 1, "\(problems)")
            #expect(problems.contains { $0.path == "providers.azure.organization" && $0.message.contains("invalid organization") })
        }
    }

    @Test func noRegionAnywhereIsAnErrorNamingAllThree() throws {
        for mode in [ConfigLoader.Mode.serve, .check] {
            do {
                _ = try load(region: nil, [:], mode: mode)
                Issue.record("loaded without a region (\(mode))")
            } catch let error as ConfigError {
                let problem = try #require(error.problems.first { $0.message.contains("region") })
                #expect(problem.message.contains("region key") && problem.message.contains("AWS_REGION") && problem.message.contains("AWS_DEFAULT_REGION"))
                #expect(problem.path == "providers.bedrock-us.region")
            }
        }
        do {
            _ = try load(region: nil, ["AWS_REGION": "not a region!"])
            Issue.record("loaded an invalid AWS_REGION")
        } catch let error as ConfigError {
            #expect(error.problems.contains { $0.message.contains("invalid AWS region 'not a region!' in AWS_REGION") })
        }
    }
}
