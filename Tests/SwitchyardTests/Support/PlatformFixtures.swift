import AWSWire
import Foundation
import Synchronization
import UpstreamSim
import _CryptoExtras

/// Configurations and credentials for routes that span Anthropic, Bedrock and Vertex simulators.
enum PlatformFixtures {
    static let awsKeyID = "AKIASIMTEST000000001"
    static let awsSecret = "sim/secret+key/for-tests-only-0000000000"
    static let awsCredentials = AWSCredentials(accessKeyID: awsKeyID, secretAccessKey: awsSecret)

    /// Static AWS keys in the environment, the Anthropic key, and a service-account key file for Vertex.
    static func environment(keyFile: String) -> [String: String] {
        [
            "SIM_KEY": "sk-ant-sim-test-key-0123456789", "AWS_ACCESS_KEY_ID": awsKeyID, "AWS_SECRET_ACCESS_KEY": awsSecret,
            "GOOGLE_APPLICATION_CREDENTIALS": keyFile, "HOME": "/nonexistent-home",
        ]
    }

    /// One RSA key per test process (generating one takes a while).
    static let rsaKey: _RSA.Signing.PrivateKey = {
        // swift-format-ignore
        try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    }()

    /// A Google service-account key file whose token_uri is the `{{SIM}}/token` of a simulator.
    static func serviceAccountKey(tokenSim sim: String, email: String = "switchyard@sim-project.iam.gserviceaccount.com") -> String {
        let json: [String: Any] = [
            "type": "service_account", "project_id": "sim-project", "private_key_id": "simkey0001",
            "private_key": rsaKey.pkcs8PEMRepresentation, "client_email": email, "client_id": "1234567890",
            "token_uri": "{{\(sim)}}/token",
        ]
        let data = try! JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
    }

    static func temporaryPath(_ name: String) -> String {
        TestScratch.path(name)
    }

    /// Options for a Bedrock simulator that checks signatures made with the test keys.
    static var bedrockOptions: SimPlatformOptions { SimPlatformOptions(awsCredentials: [awsCredentials]) }

    /// Route `default` = [sonnet (sim a, Anthropic), sonnet-bedrock (sim b), sonnet-vertex (sim v)];
    /// route `bedrock` = [sonnet-bedrock, sonnet]; route `vertex` = [sonnet-vertex, sonnet].
    static func threePlatforms(
        retry: String = "max_attempts: 6, per_model: 2, backoff: { initial: 100ms, multiplier: 2, max: 1s }",
        breaker: String = "failure_threshold: 3, open_for: 30s, max_open_for: 5m, half_open_probes: 1",
        timeouts: String = "{ connect: 1s, first_byte: 2s, idle: 2s }",
        bedrockExtra: String = "",
        vertexExtra: String = "credentials_file_env: GOOGLE_APPLICATION_CREDENTIALS,"
    ) -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0, max_body: 1MiB }
        providers:
          anthropic: { type: anthropic, base_url: "{{a}}", api_key_env: SIM_KEY, timeouts: \(timeouts) }
          bedrock-us: { type: bedrock, region: us-east-1, base_url: "{{b}}", \(bedrockExtra) timeouts: \(timeouts) }
          vertex-us: { type: vertex, project: sim-project, region: us-east5, base_url: "{{v}}", \(vertexExtra) timeouts: \(timeouts) }
        models:
          sonnet: { provider: anthropic, model: claude-sonnet-4-5-20250929 }
          sonnet-bedrock: { provider: bedrock-us, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0" }
          sonnet-vertex: { provider: vertex-us, model: "claude-sonnet-4-5@20250929" }
        defaults:
          breaker: { \(breaker) }
          retry: { \(retry) }
        routes:
          default: { models: [sonnet, sonnet-bedrock, sonnet-vertex] }
          bedrock: { models: [sonnet-bedrock, sonnet] }
          vertex: { models: [sonnet-vertex, sonnet] }
        """
    }

    /// Starts the three-platform harness with static AWS keys and a service-account key file.
    static func with(
        scripts: [String: String], yaml: String = threePlatforms(), bedrock: SimPlatformOptions = bedrockOptions,
        vertex: SimPlatformOptions = SimPlatformOptions(), environment extra: [String: String] = [:],
        wallClock: (@Sendable () -> Int64)? = nil, _ body: (RouterHarness) async throws -> Void
    ) async throws {
        let keyFile = temporaryPath("sa.json")
        var environment = environment(keyFile: keyFile)
        environment.merge(extra) { $1 }
        try await RouterHarness.with(
            sims: ["a": "", "b": "", "v": ""].merging(scripts) { $1 }, platforms: ["b": (.bedrock, bedrock), "v": (.vertex, vertex)], yaml: yaml,
            environment: environment, files: [keyFile: serviceAccountKey(tokenSim: "v")], wallClock: wallClock, body
        )
    }
}

/// A wall clock the test moves forward (credential expiry, refresh windows).
final class TestWallClock: Sendable {
    private let offsetMs = Mutex<Int64>(0)

    func now() -> Int64 { WallClock.nowMilliseconds() + offsetMs.withLock { $0 } }

    func advance(seconds: Int64) { offsetMs.withLock { $0 += seconds * 1000 } }
}

import SwitchyardCore
