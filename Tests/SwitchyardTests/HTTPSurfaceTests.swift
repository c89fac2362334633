import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import SwitchyardCore

/// The callers' HTTP API through real HTTP: router and upstream-sim in this process.
@Suite("HTTP surface", .serialized)
struct HTTPSurfaceTests {
    @Test func jsonRequestByAliasIsRewrittenAndAnnotated() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let body = #"{"model":"claude-sonnet-4-0","max_tokens":64,"system":"be brief","messages":[{"role":"user","content":"hello \u00e9"}],"metadata":{"user_id":"u1"}}"#
            let reply = try await harness.send(
                body: body,
                headers: [
                    ("anthropic-beta", "tools-2024-04-04"), ("x-custom-header", "must-not-pass"), ("x-api-key", "caller-key-not-forwarded"),
                    ("connection", "keep-alive"), ("accept", "application/json"),
                ]
            )
            #expect(reply.status == 200)
            #expect(reply.json["type"] as? String == "message")
            #expect(reply.header("x-switchyard-route") == "default")
            #expect(reply.header("x-switchyard-model") == "sonnet")
            #expect(reply.header("x-switchyard-attempts") == "1")
            let requestID = try #require(reply.header("x-request-id"))
            #expect(requestID.hasPrefix("sy_") && requestID.count == 29)
            #expect(reply.header("request-id")?.hasPrefix("req_a_") == true, "request-id is the upstream's")

            let received = try #require(harness.sim("a").receivedRequests.first)
            #expect(harness.sim("b").requestCount == 0)
            #expect(received.model == "claude-sonnet-4-20250514")
            // Nothing but `model` changed, byte for byte.
            #expect(received.body == body.replacingOccurrences(of: "claude-sonnet-4-0", with: "claude-sonnet-4-20250514"))
            #expect(received.header("x-api-key") == "sk-ant-sim-test-key-0123456789", "the provider's key, not the caller's")
            // The key and `host` go as the provider's preset lines: each once.
            for name in ["x-api-key", "host"] {
                #expect(received.headers.filter { $0.0.lowercased() == name }.count == 1, "\(name): \(received.headers)")
            }
            #expect(received.header("host")?.hasPrefix("127.0.0.1:") == true)
            #expect(received.header("anthropic-version") == "2023-06-01")
            #expect(received.header("anthropic-beta") == "tools-2024-04-04")
            #expect(received.header("accept") == "application/json")
            #expect(received.header("x-custom-header") == nil)
            #expect(received.header("authorization") == nil)
            #expect(received.uri == "/v1/messages")
        }
    }

    @Test func callerRequestIDIsKeptWhenValidAndReplacedOtherwise() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let kept = try await harness.message(headers: [("x-request-id", "trace-42.a:b_c")])
            #expect(kept.header("x-request-id") == "trace-42.a:b_c")
            let replaced = try await harness.message(headers: [("x-request-id", "has spaces and $ signs")])
            #expect(replaced.header("x-request-id")?.hasPrefix("sy_") == true)
            let first = try await harness.message()
            let second = try await harness.message()
            let ids = [first, second].compactMap { $0.header("x-request-id") }
            #expect(ids.count == 2 && ids[0] < ids[1], "generated ids are unique and time-ordered")
        }
    }

    @Test func badInputGetsAnthropicErrorsAndNoUpstreamCall() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in

            let badJSON = try await harness.send(body: #"{"model":"default","messages":[}"#)
            #expect(badJSON.status == 400)
            #expect(badJSON.json["type"] as? String == "error")
            #expect(badJSON.errorType == "invalid_request_error")
            #expect(badJSON.errorMessage?.contains("JSON") == true)
            #expect(badJSON.json["request_id"] as? String == badJSON.header("x-request-id"))

            let missingModel = try await harness.send(body: #"{"max_tokens":1,"messages":[]}"#)
            #expect(missingModel.status == 400)
            #expect(missingModel.errorMessage?.contains("model") == true)

            let numericModel = try await harness.send(body: #"{"model":42,"max_tokens":1,"messages":[]}"#)
            #expect(numericModel.status == 400)
            #expect(numericModel.errorType == "invalid_request_error")

            let unknown = try await harness.message(model: "gpt-5")
            #expect(unknown.status == 404)
            #expect(unknown.errorType == "not_found_error")
            #expect(unknown.errorMessage?.contains("default") == true && unknown.errorMessage?.contains("fast") == true)

            let notFound = try await harness.send(.GET, "/v2/whatever")
            #expect(notFound.status == 404)
            #expect(notFound.errorType == "not_found_error")

            let wrongMethod = try await harness.send(.GET, "/v1/messages")
            #expect(wrongMethod.status == 405)

            #expect(harness.sim("a").requestCount == 0)
            #expect(harness.sim("b").requestCount == 0)
            let lines = try await harness.requestLines(4)
            #expect(lines.allSatisfy { $0["outcome"] as? String == "rejected" || $0["outcome"] as? String == "client_error" })
        }
    }

    @Test func oversizedBodiesAre413WithoutAnUpstreamCall() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels(server: "max_body: 1KiB")) { harness in
            let big = RouterHarness.messages(text: String(repeating: "x", count: 4096))
            let withLength = try await harness.send(body: big)
            #expect(withLength.status == 413)
            #expect(withLength.errorType == "request_too_large")

            // Chunked, no content-length: cut off while streaming in.
            var request = HTTPClientRequest(url: harness.baseURL + "/v1/messages")
            request.method = .POST
            let chunks = (0..<16).map { _ in ByteBuffer(string: String(repeating: "y", count: 512)) }
            request.body = .stream(chunks.async, length: .unknown)
            let response = try await RouterHarness.client.execute(request, timeout: .seconds(10))
            #expect(response.status.code == 413)
            #expect(harness.sim("a").requestCount == 0)
        }
    }

    @Test func countTokensModelsAndProbes() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let count = try await harness.send(
                .POST, "/v1/messages/count_tokens", body: #"{"model":"default","messages":[{"role":"user","content":"hi"}]}"#
            )
            #expect(count.status == 200)
            #expect(count.json["input_tokens"] as? Int == 42)
            #expect(harness.sim("a").receivedRequests.last?.uri == "/v1/messages/count_tokens")
            #expect(harness.sim("a").receivedRequests.last?.model == "claude-sonnet-4-20250514")

            let models = try await harness.send(.GET, "/v1/models")
            #expect(models.status == 200)
            let data = try #require(models.json["data"] as? [[String: Any]])
            let ids = data.compactMap { $0["id"] as? String }
            #expect(ids.contains("default") && ids.contains("fast") && ids.contains("claude-sonnet-4-0"))
            #expect(data.allSatisfy { $0["type"] as? String == "model" })
            #expect(models.json["has_more"] as? Bool == false)

            #expect(try await harness.send(.GET, "/healthz").status == 200)
            #expect(try await harness.send(.GET, "/readyz").status == 200)
        }
    }

    @Test func upstreamClientErrorIsReturnedAsIs() async throws {
        try await RouterHarness.with(sims: ["a": "400", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message()
            #expect(reply.status == 400)
            #expect(reply.errorType == "invalid_request_error")
            #expect(reply.errorMessage == "simulated 400 from a", "the upstream's own body")
            #expect(reply.header("request-id")?.hasPrefix("req_a_") == true)
            #expect(harness.sim("a").requestCount == 1)
            #expect(harness.sim("b").requestCount == 0)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "client_error")
            #expect(line["status"] as? Int == 400)
        }
    }

    @Test func auditLineCarriesTheDecisionAndNothingSecret() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.send(
                body: RouterHarness.messages(model: "claude-sonnet-4-0", text: "TOP-SECRET-PROMPT"),
                headers: [("x-api-key", "sk-ant-caller-secret-999")]
            )
            #expect(reply.status == 200)
            let lines = try await harness.requestLines(1)
            let line = try #require(lines.first)
            #expect(line["request_id"] as? String == reply.header("x-request-id"))
            #expect(line["route"] as? String == "default")
            #expect(line["requested_model"] as? String == "claude-sonnet-4-0")
            #expect(line["api"] as? String == "messages")
            #expect(line["stream"] as? Bool == false)
            #expect(line["status"] as? Int == 200)
            #expect(line["outcome"] as? String == "ok")
            #expect(line["model"] as? String == "sonnet")
            #expect(line["upstream_model"] as? String == "claude-sonnet-4-20250514")
            #expect(line["upstream_request_id"] as? String == reply.header("request-id"))
            #expect(line["downgraded"] as? Bool == false)
            #expect((line["ts"] as? String)?.hasSuffix("Z") == true)
            #expect(line["duration_ms"] is Int)
            let decision = try #require(line["decision"] as? [[String: Any]])
            #expect(decision.count == 1)
            #expect(decision[0]["model"] as? String == "sonnet")
            #expect(decision[0]["action"] as? String == "sent")
            #expect(decision[0]["breaker"] as? String == "closed")
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.count == 1)
            #expect(attempts[0]["status"] as? Int == 200)
            #expect(attempts[0]["upstream_request_id"] as? String == reply.header("request-id"))
            #expect(attempts[0]["duration_ms"] is Int)
            let usage = try #require(line["usage"] as? [String: Any])
            #expect(usage["input_tokens"] as? Int == 12)

            let everything = harness.audit.memoryContents
            #expect(!everything.contains("TOP-SECRET-PROMPT"))
            #expect(!everything.contains("sk-ant-caller-secret-999"))
            #expect(!everything.contains("sk-ant-sim-test-key"))
        }
    }
}
