import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// `POST /v1/chat/completions` and `type: openai` upstreams through real HTTP: a Chat Completions
/// caller routed over Claude simulators, and a Messages caller whose route falls over to an
/// OpenAI-shaped simulator.
@Suite("Chat Completions front and OpenAI upstreams", .serialized)
struct ChatCompletionsTests {
    static let openAIKey = "sk-sim-openai-0123456789"

    /// Claude first, then an OpenAI-compatible model; `gpt` alone for the OpenAI-only route.
    static func mixed(retry: String = "max_attempts: 4, per_model: 2, backoff: { initial: 1ms, max: 2ms }") -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0 }
        providers:
          anthropic: { type: anthropic, base_url: "{{a}}", api_key_env: SIM_KEY }
          openai: { type: openai, base_url: "{{o}}/v1", api_key_env: OPENAI_KEY, organization: org-sim }
        models:
          sonnet: { provider: anthropic, model: claude-sonnet-4-5 }
          gpt: { provider: openai, model: gpt-4o }
        defaults:
          breaker: { failure_threshold: 5, open_for: 30s }
          retry: { \(retry) }
        routes:
          default: { models: [sonnet, gpt], aliases: [claude-or-gpt] }
          openai-only: { models: [gpt] }
        """
    }

    static func with(a: String = "", o: String = "", yaml: String = mixed(), _ body: (RouterHarness) async throws -> Void) async throws {
        try await RouterHarness.with(
            sims: ["a": a, "o": o], platforms: ["o": (.openai, SimPlatformOptions(acceptedKeys: [openAIKey]))], yaml: yaml,
            environment: ["SIM_KEY": "sk-ant-sim-test-key-0123456789", "OPENAI_KEY": openAIKey], body
        )
    }

    static func chat(model: String = "default", stream: Bool = false, extra: String = "") -> String {
        let streamPart = stream ? #","stream":true,"stream_options":{"include_usage":true}"# : ""
        return #"{"model":"\#(model)","max_completion_tokens":50,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]\#(streamPart)\#(extra)}"#
    }

    /// The `data:` payloads of an SSE body.
    static func dataLines(_ body: String) -> [String] {
        body.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    // MARK: The Chat Completions front

    @Test func aChatCompletionIsTranslatedRoutedAndAuditedAsChatCompletions() async throws {
        try await Self.with { harness in
            let reply = try await harness.send(.POST, "/v1/chat/completions", body: Self.chat())
            #expect(reply.status == 200, "\(reply.body)")
            #expect(reply.json["object"] as? String == "chat.completion")
            #expect(reply.json["model"] as? String == "default")
            #expect((reply.json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
            let choice = try #require((reply.json["choices"] as? [[String: Any]])?.first)
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["role"] as? String == "assistant")
            #expect((message["content"] as? String)?.isEmpty == false)
            #expect(choice["finish_reason"] as? String == "stop")
            let usage = try #require(reply.json["usage"] as? [String: Any])
            #expect((usage["prompt_tokens"] as? Int ?? 0) > 0)
            #expect(usage["total_tokens"] as? Int == (usage["prompt_tokens"] as? Int ?? 0) + (usage["completion_tokens"] as? Int ?? 0))
            #expect(reply.header("x-switchyard-model") == "sonnet")
            #expect(reply.header("x-request-id") != nil && reply.header("request-id") != nil)

            // Claude received a Messages request: the system message as `system`, max_tokens.
            let sent = try #require(harness.sim("a").receivedRequests.last)
            #expect(sent.uri == "/v1/messages")
            let body = Self.object(sent.body)
            #expect(body["system"] as? String == "Be brief.")
            #expect(body["max_tokens"] as? Int == 50)
            #expect(body["model"] as? String == "claude-sonnet-4-5")

            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["api"] as? String == "chat_completions")
            #expect(line["route"] as? String == "default")
            #expect(line["translated"] as? Bool == false)
            #expect((line["usage"] as? [String: Any])?["input_tokens"] != nil)
        }
    }

    @Test func aChatStreamEndsWithUsageAndDone() async throws {
        try await Self.with(a: "ok(events=5)") { harness in
            let reply = try await harness.send(.POST, "/v1/chat/completions", body: Self.chat(stream: true))
            #expect(reply.status == 200)
            #expect(reply.header("content-type")?.hasPrefix("text/event-stream") == true)
            let data = Self.dataLines(reply.body)
            #expect(data.last == "[DONE]")
            let chunks = data.dropLast().map(Self.object)
            #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" && $0["model"] as? String == "default" })
            let first = try #require((chunks.first?["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])
            #expect(first["role"] as? String == "assistant")
            let text = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any])?["content"] as? String }.joined()
            #expect(!text.isEmpty)
            let reasons = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
            #expect(reasons == ["stop"])
            // include_usage: the last chunk has no choice and the usage.
            let usageChunk = try #require(chunks.last)
            #expect((usageChunk["choices"] as? [Any])?.isEmpty == true)
            #expect(((usageChunk["usage"] as? [String: Any])?["completion_tokens"] as? Int ?? 0) > 0)

            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["api"] as? String == "chat_completions")
            #expect(line["stream"] as? Bool == true)
        }
    }

    @Test func aChatCallerFailsOverLikeAMessagesCaller() async throws {
        try await Self.with(a: "500*") { harness in
            let reply = try await harness.send(.POST, "/v1/chat/completions", body: Self.chat())
            #expect(reply.status == 200, "\(reply.body)")
            #expect(reply.header("x-switchyard-model") == "gpt")
            #expect(reply.json["object"] as? String == "chat.completion")
            let line = try #require(try await harness.requestLines(1).first)
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["model"] as? String } == ["sonnet", "sonnet", "gpt"])
            #expect(line["downgraded"] as? Bool == true)
            #expect(line["translated"] as? Bool == true)
        }
    }

    @Test func errorsUseOpenAIsEnvelopeWithTheSameStatuses() async throws {
        try await Self.with(a: "500*", o: "500*") { harness in
            let unsupported = try await harness.send(.POST, "/v1/chat/completions", body: Self.chat(extra: #","n":2"#))
            #expect(unsupported.status == 400)
            let error = try #require(unsupported.json["error"] as? [String: Any])
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error["param"] as? String == "n")
            #expect((error["message"] as? String)?.contains("n") == true)
            #expect(error.keys.contains("code"))

            let unknown = try await harness.send(.POST, "/v1/chat/completions", body: Self.chat(model: "nope"))
            #expect(unknown.status == 404)
            #expect((unknown.json["error"] as? [String: Any])?["type"] as? String == "not_found_error")
            #expect((unknown.json["error"] as? [String: Any])?["code"] as? String == "model_not_found")

            let notJSON = try await harness.send(.POST, "/v1/chat/completions", body: "{")
            #expect(notJSON.status == 400)
            #expect((notJSON.json["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")

            // Every model fails: the route's error, in OpenAI's envelope, with the Messages path's status.
            let exhausted = try await harness.send(.POST, "/v1/chat/completions", body: Self.chat())
            #expect(exhausted.status >= 500)
            #expect((exhausted.json["error"] as? [String: Any])?["type"] as? String == "server_error")
            #expect(exhausted.json["type"] == nil, "not Anthropic's envelope")
        }
    }

    @Test func toolsAndToolResultsRoundTrip() async throws {
        try await Self.with { harness in
            let body = """
                {"model":"default","messages":[{"role":"user","content":"weather?"},
                 {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}}]},
                 {"role":"tool","tool_call_id":"call_1","content":"sunny"}],
                 "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
                 "tool_choice":"required"}
                """
            let reply = try await harness.send(.POST, "/v1/chat/completions", body: body)
            #expect(reply.status == 200, "\(reply.body)")
            let sent = Self.object(try #require(harness.sim("a").receivedRequests.last).body)
            let messages = try #require(sent["messages"] as? [[String: Any]])
            #expect(messages.count == 3)
            let toolUse = try #require((messages[1]["content"] as? [[String: Any]])?.first)
            #expect(toolUse["type"] as? String == "tool_use" && toolUse["id"] as? String == "call_1")
            #expect((toolUse["input"] as? [String: Any])?["city"] as? String == "Paris")
            let toolResult = try #require((messages[2]["content"] as? [[String: Any]])?.first)
            #expect(toolResult["type"] as? String == "tool_result" && toolResult["tool_use_id"] as? String == "call_1")
            #expect((sent["tool_choice"] as? [String: Any])?["type"] as? String == "any")
            #expect(((sent["tools"] as? [[String: Any]])?.first?["input_schema"] as? [String: Any])?["type"] as? String == "object")
        }
    }

    @Test func modelsListInOpenAIsShapeForAnOpenAICaller() async throws {
        try await Self.with { harness in
            var request = HTTPClientRequest(url: harness.baseURL + "/v1/models")
            request.headers.add(name: "authorization", value: "Bearer anything")
            request.headers.add(name: "user-agent", value: "OpenAI/Python 1.99.0")
            let response = try await RouterHarness.client.execute(request, timeout: .seconds(10))
            let body = Self.object(String(buffer: try await response.body.collect(upTo: 1 << 20)))
            #expect(response.status == .ok)
            #expect(body["object"] as? String == "list")
            let ids = (body["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
            #expect(ids == ["default", "claude-or-gpt", "openai-only"])
            #expect((body["data"] as? [[String: Any]])?.allSatisfy { $0["object"] as? String == "model" && $0["owned_by"] != nil } == true)

            // An Anthropic caller keeps Anthropic's shape.
            let anthropic = try await harness.send(.GET, "/v1/models")
            #expect(anthropic.json["has_more"] as? Bool == false)
            #expect(anthropic.json["object"] == nil)
        }
    }

    // MARK: OpenAI-compatible upstreams

    @Test func aMessagesCallerFallingOverToAnOpenAIModelGetsATranslatedMessage() async throws {
        try await Self.with(a: "529*") { harness in
            let reply = try await harness.message()
            #expect(reply.status == 200, "\(reply.body)")
            #expect(reply.json["type"] as? String == "message")
            #expect(reply.json["role"] as? String == "assistant")
            #expect((reply.json["id"] as? String)?.hasPrefix("msg_") == true)
            #expect(((reply.json["content"] as? [[String: Any]])?.first?["type"] as? String) == "text")
            #expect(reply.json["stop_reason"] as? String == "end_turn")
            #expect(reply.header("x-switchyard-translated") == "true")
            #expect(reply.header("x-switchyard-model") == "gpt")

            let sent = try #require(harness.sim("o").receivedRequests.last)
            #expect(sent.uri == "/v1/chat/completions")
            #expect(sent.header("authorization") == "Bearer \(Self.openAIKey)")
            #expect(sent.header("openai-organization") == "org-sim")
            #expect(sent.header("x-api-key") == nil, "the Anthropic key never goes to another vendor")
            #expect(sent.header("anthropic-version") == nil)
            let body = Self.object(sent.body)
            #expect(body["model"] as? String == "gpt-4o")
            #expect((body["messages"] as? [[String: Any]])?.first?["role"] as? String == "user")

            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["translated"] as? Bool == true)
            #expect(line["api"] as? String == "messages")
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.last?["platform"] as? String == "openai")
            #expect((attempts.last?["upstream_request_id"] as? String)?.isEmpty == false)
        }
    }

    @Test func aMessagesStreamFromAnOpenAIModelIsAnthropicSSE() async throws {
        try await Self.with(a: "529*", o: "ok(events=4)") { harness in
            let reply = try await harness.message(stream: true)
            #expect(reply.status == 200)
            #expect(reply.header("x-switchyard-translated") == "true")
            let events = reply.body.components(separatedBy: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
            #expect(events.first == "message_start")
            #expect(events.contains("content_block_delta"))
            #expect(Array(events.suffix(2)) == ["message_delta", "message_stop"])
            let sent = Self.object(try #require(harness.sim("o").receivedRequests.last).body)
            #expect(sent["stream"] as? Bool == true)
            #expect((sent["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["translated"] as? Bool == true)
            #expect(((line["usage"] as? [String: Any])?["output_tokens"] as? Int ?? 0) > 0)
        }
    }

    @Test func anOpenAIStreamThatFailsBeforeItsFirstChunkFailsOver() async throws {
        let yaml = """
            version: 1
            server: { listen: 127.0.0.1:0 }
            providers:
              anthropic: { type: anthropic, base_url: "{{a}}", api_key_env: SIM_KEY }
              openai: { type: openai, base_url: "{{o}}/v1", api_key_env: OPENAI_KEY }
            models:
              sonnet: { provider: anthropic, model: claude-sonnet-4-5 }
              gpt: { provider: openai, model: gpt-4o }
            defaults:
              retry: { max_attempts: 3, per_model: 1, backoff: { initial: 1ms } }
            routes:
              default: { models: [gpt, sonnet] }
            """
        try await Self.with(o: "sse-error(0)*", yaml: yaml) { harness in
            let reply = try await harness.message(stream: true)
            #expect(reply.status == 200)
            #expect(reply.header("x-switchyard-model") == "sonnet")
            #expect(reply.header("x-switchyard-translated") == nil)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["translated"] as? Bool == false)
            #expect((line["attempts"] as? [[String: Any]])?.first?["platform"] as? String == "openai")
        }
    }

    @Test func insufficientQuotaSkipsTheModelAndContextLengthIsReturned() async throws {
        try await Self.with(o: "quota") { harness in
            // openai-only: the quota error is the caller's answer (429), and the model is then skipped.
            let first = try await harness.message(model: "openai-only")
            #expect(first.status == 429, "\(first.body)")
            #expect(first.errorType == "rate_limit_error")
            let second = try await harness.message(model: "openai-only")
            #expect(second.status == 503 || second.status == 429)
            #expect(harness.sim("o").requestCount == 1, "not retried on that model")
            let lines = try await harness.requestLines(2)
            #expect((lines[0]["attempts"] as? [[String: Any]])?.first?["platform_error"] as? String == "insufficient_quota")
            let skipped = try #require(lines[1]["decision"] as? [[String: Any]])
            #expect(skipped.first?["action"] as? String == "skipped")
        }
        try await Self.with(a: "529*", o: "context-length*") { harness in
            let reply = try await harness.message()
            #expect(reply.status == 400)
            #expect(reply.errorType == "invalid_request_error")
            #expect(reply.errorMessage?.contains("context length") == true)
            #expect(reply.header("x-switchyard-translated") == "true")
            #expect(harness.sim("o").requestCount == 1)
        }
    }

    @Test func aRequestAnOpenAIModelCannotExpressIsRefusedNamingTheField() async throws {
        try await Self.with(a: "529*") { harness in
            let body = #"{"model":"default","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"mcp_servers":[{"type":"url","url":"https://x","name":"x"}]}"#
            let reply = try await harness.send(body: body)
            #expect(reply.status == 400)
            #expect(reply.errorMessage?.contains("mcp_servers") == true)
            #expect(harness.sim("o").requestCount == 0)
            let count = try await harness.send(.POST, "/v1/messages/count_tokens", body: RouterHarness.messages(model: "openai-only"))
            #expect(count.status >= 400)
            #expect(harness.sim("o").requestCount == 0)
        }
    }

    @Test func aRefusedKeyIsTheRoutersFaultNotTheCallers() async throws {
        try await RouterHarness.with(
            sims: ["a": "529*", "o": ""], platforms: ["o": (.openai, SimPlatformOptions(acceptedKeys: [Self.openAIKey]))], yaml: Self.mixed(),
            environment: ["SIM_KEY": "sk-ant-sim-test-key-0123456789", "OPENAI_KEY": "sk-wrong-key-000000"]
        ) { harness in
            let reply = try await harness.message()
            // Told as Switchyard's own credentials refused (as for Bedrock and Vertex), after the
            // route moved past the model.
            #expect(reply.status == 401)
            #expect(reply.errorMessage?.contains("refused Switchyard's credentials for provider 'openai'") == true)
            let line = try #require(try await harness.requestLines(1).first)
            let last = try #require((line["attempts"] as? [[String: Any]])?.last)
            #expect(last["error"] as? String == "auth")
            #expect(last["platform_status"] as? Int == 401)
        }
    }

    @Test func azureFormPutsTheDeploymentInThePathAndTheKeyInApiKey() async throws {
        let yaml = """
            version: 1
            server: { listen: 127.0.0.1:0 }
            providers:
              azure: { type: openai, base_url: "{{o}}", api_key_env: OPENAI_KEY, api_version: 2024-10-21 }
            models:
              gpt: { provider: azure, model: my-gpt4o-deployment }
            routes:
              default: { models: [gpt] }
            """
        try await Self.with(yaml: yaml) { harness in
            let reply = try await harness.message()
            #expect(reply.status == 200, "\(reply.body)")
            let sent = try #require(harness.sim("o").receivedRequests.last)
            #expect(sent.uri == "/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21")
            #expect(sent.header("api-key") == Self.openAIKey)
            #expect(sent.header("authorization") == nil)
        }
    }
}
