import Foundation
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// One route across Anthropic, Bedrock and Vertex simulators, through real HTTP: a platform-wide
/// outage moves the route to the next platform, and each platform gets its own protocol.
@Suite("Failover across platforms", .serialized)
struct PlatformFailoverTests {
    @Test func anOutageOnAnthropicLandsOnBedrockThenVertexWhenBedrockThrottles() async throws {
        try await PlatformFixtures.with(scripts: ["a": "500*2,529*"]) { harness in
            // Request 1: two 500s on Anthropic (per_model 2), then Bedrock answers.
            let first = try await harness.message()
            #expect(first.status == 200)
            #expect(first.header("x-switchyard-model") == "sonnet-bedrock")
            #expect(first.header("request-id")?.hasPrefix("req_b_") == true, "request-id is Bedrock's x-amzn-requestid")
            #expect(first.json["type"] as? String == "message")

            // What Bedrock received: its own path, a signed request, the InvokeModel body.
            let received = try #require(harness.sim("b").receivedRequests.last)
            #expect(received.uri == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke")
            let authorization = try #require(received.header("authorization"))
            #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=\(PlatformFixtures.awsKeyID)/"))
            #expect(authorization.contains("/us-east-1/bedrock/aws4_request"))
            let body = try #require(try JSONSerialization.jsonObject(with: Data(received.body.utf8)) as? [String: Any])
            #expect(body["model"] == nil && body["stream"] == nil)
            #expect(body["anthropic_version"] as? String == "bedrock-2023-05-31")
            #expect(body["max_tokens"] as? Int == 64)
            #expect(received.header("x-api-key") == nil, "the Anthropic key never goes to another platform")

            // Request 2: Anthropic answers 529 (next model at once); Bedrock throttles: Vertex serves.
            harness.sim("b").setScript(try FaultScript.parse("error(ThrottlingException,429)*"))
            let second = try await harness.message()
            #expect(second.status == 200)
            #expect(second.header("x-switchyard-model") == "sonnet-vertex")
            let vertexRequest = try #require(harness.sim("v").receivedRequests.last)
            #expect(vertexRequest.uri == "/v1/projects/sim-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict")
            #expect(vertexRequest.header("authorization")?.hasPrefix("Bearer ya29.sim-") == true)
            let vertexBody = try #require(try JSONSerialization.jsonObject(with: Data(vertexRequest.body.utf8)) as? [String: Any])
            #expect(vertexBody["model"] == nil)
            #expect(vertexBody["anthropic_version"] as? String == "vertex-2023-10-16")

            let lines = try await harness.requestLines(2)
            let firstAttempts = try #require(lines[0]["attempts"] as? [[String: Any]])
            #expect(firstAttempts.map { $0["platform"] as? String } == ["anthropic", "anthropic", "bedrock"])
            #expect(firstAttempts.map { $0["provider"] as? String } == ["anthropic", "anthropic", "bedrock-us"])
            #expect((firstAttempts[2]["upstream_request_id"] as? String)?.hasPrefix("req_b_") == true)
            let secondAttempts = try #require(lines[1]["attempts"] as? [[String: Any]])
            #expect(secondAttempts.map { $0["platform"] as? String } == ["anthropic", "bedrock", "vertex"])
            #expect(secondAttempts[0]["status"] as? Int == 529)
            #expect(secondAttempts[1]["status"] as? Int == 429)
            #expect(secondAttempts[1]["error_type"] as? String == "rate_limit_error")
            #expect(secondAttempts[1]["platform_error"] as? String == "ThrottlingException")
            #expect(lines[1]["upstream_model"] as? String == "claude-sonnet-4-5@20250929")
        }
    }

    @Test func aBedrockStreamIsRelayedAsAnthropicSSE() async throws {
        try await PlatformFixtures.with(scripts: [:]) { harness in
            let reply = try await harness.message(model: "bedrock", stream: true)
            #expect(reply.status == 200)
            #expect(reply.header("content-type") == "text/event-stream")
            #expect(reply.header("x-switchyard-model") == "sonnet-bedrock")
            let events = try SSE.parse(reply.body)
            #expect(events.map(\.name) == StreamingTests.expectedEvents)
            #expect(events[0].data.contains("us.anthropic.claude-sonnet-4-5-20250929-v1:0"))
            let received = try #require(harness.sim("b").receivedRequests.last)
            #expect(received.uri.hasSuffix("/invoke-with-response-stream"))
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "ok")
            let usage = try #require(line["usage"] as? [String: Any])
            #expect(usage["output_tokens"] as? Int == 4)
        }
    }

    @Test func aVertexStreamKeepsStreamInTheBody() async throws {
        try await PlatformFixtures.with(scripts: [:]) { harness in
            let reply = try await harness.message(model: "vertex", stream: true)
            #expect(reply.status == 200)
            #expect(try SSE.parse(reply.body).map(\.name) == StreamingTests.expectedEvents)
            let received = try #require(harness.sim("v").receivedRequests.last)
            #expect(received.uri.hasSuffix(":streamRawPredict"))
            #expect(received.body.contains(#""stream":true"#))
        }
    }

    @Test func anthropicBetaHeaderBecomesBedrocksArrayAndStaysAHeaderOnVertex() async throws {
        try await PlatformFixtures.with(scripts: [:]) { harness in
            let betas = [("anthropic-beta", "prompt-caching-2024-07-31, token-efficient-tools-2025-02-19")]
            #expect(try await harness.message(model: "bedrock", headers: betas).status == 200)
            let bedrock = try #require(harness.sim("b").receivedRequests.last)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(bedrock.body.utf8)) as? [String: Any])
            #expect(body["anthropic_beta"] as? [String] == ["prompt-caching-2024-07-31", "token-efficient-tools-2025-02-19"])
            #expect(try await harness.message(model: "vertex", headers: betas).status == 200)
            let vertex = try #require(harness.sim("v").receivedRequests.last)
            #expect(vertex.header("anthropic-beta") == "prompt-caching-2024-07-31, token-efficient-tools-2025-02-19")
        }
    }

    @Test func countTokensUsesEachPlatformsOwnEndpoint() async throws {
        try await PlatformFixtures.with(scripts: [:]) { harness in
            let body = #"{"model":"bedrock","messages":[{"role":"user","content":"count me"}]}"#
            let bedrock = try await harness.send(.POST, "/v1/messages/count_tokens", body: body)
            #expect(bedrock.status == 200)
            #expect(bedrock.json["input_tokens"] as? Int == 42)
            let sent = try #require(harness.sim("b").receivedRequests.last)
            #expect(sent.uri == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/count-tokens")
            let wrapper = try #require(try JSONSerialization.jsonObject(with: Data(sent.body.utf8)) as? [String: Any])
            let inner = try #require(((wrapper["input"] as? [String: Any])?["invokeModel"] as? [String: Any])?["body"] as? String)
            let decoded = try #require(Data(base64Encoded: inner))
            let invoke = try #require(try JSONSerialization.jsonObject(with: decoded) as? [String: Any])
            #expect(invoke["anthropic_version"] as? String == "bedrock-2023-05-31")
            #expect(invoke["model"] == nil)

            let vertex = try await harness.send(.POST, "/v1/messages/count_tokens", body: body.replacingOccurrences(of: "bedrock", with: "vertex"))
            #expect(vertex.status == 200)
            #expect(vertex.json["input_tokens"] as? Int == 42)
            let vertexSent = try #require(harness.sim("v").receivedRequests.last)
            #expect(vertexSent.uri.hasSuffix("/publishers/anthropic/models/count-tokens:rawPredict"))
            #expect(vertexSent.body.contains(#""model":"claude-sonnet-4-5@20250929""#), "count-tokens names the model in the body")
        }
    }

    @Test func countTokensMovesOnWhenAPlatformCannotCount() async throws {
        try await PlatformFixtures.with(scripts: ["b": "error(ValidationException,400)"]) { harness in
            // The sim's ValidationException message says nothing about support: it is the caller's error.
            let refused = try await harness.send(.POST, "/v1/messages/count_tokens", body: #"{"model":"bedrock","messages":[]}"#)
            #expect(refused.status == 400)
            #expect(refused.errorType == "invalid_request_error")
        }
        try await PlatformFixtures.with(scripts: ["v": "error(UNIMPLEMENTED,501)"]) { harness in
            let counted = try await harness.send(.POST, "/v1/messages/count_tokens", body: #"{"model":"vertex","messages":[]}"#)
            #expect(counted.status == 200, "Vertex cannot count for this model: the route's next model does")
            #expect(counted.header("x-switchyard-model") == "sonnet")
            let line = try #require(try await harness.requestLines(1).first)
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.first?["platform_error"] as? String == "UNIMPLEMENTED")
        }
    }

    @Test func checkPrintsResolvedURLsAndCredentialSourcesButNoSecret() throws {
        let keyFile = PlatformFixtures.temporaryPath("sa.json")
        try PlatformFixtures.serviceAccountKey(tokenSim: "v").replacingOccurrences(of: "{{v}}", with: "https://oauth2.googleapis.com")
            .write(toFile: keyFile, atomically: true, encoding: .utf8)
        let yaml = PlatformFixtures.threePlatforms()
            .replacingOccurrences(of: #"base_url: "{{a}}", "#, with: "")
            .replacingOccurrences(of: #"base_url: "{{b}}", "#, with: "")
            .replacingOccurrences(of: #"base_url: "{{v}}", "#, with: "")
        let loaded = try ConfigLoader(environment: PlatformFixtures.environment(keyFile: keyFile), mode: .check).load(yaml: yaml, source: "routes.yaml")
        let text = RoutingTableDescription.render(loaded.config)
        #expect(text.contains("provider bedrock-us: bedrock at https://bedrock-runtime.us-east-1.amazonaws.com, aws: environment"))
        #expect(text.contains("provider vertex-us: vertex at https://us-east5-aiplatform.googleapis.com, gcp: service account switchyard@sim-project.iam.gserviceaccount.com"))
        #expect(text.contains("POST https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke"))
        #expect(text.contains("(streams: https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream)"))
        #expect(text.contains("POST https://us-east5-aiplatform.googleapis.com/v1/projects/sim-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"))
        #expect(!text.contains(PlatformFixtures.awsSecret))
        #expect(!text.contains("PRIVATE KEY"))
    }
}
