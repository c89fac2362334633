import Foundation
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// Stream recovery through real HTTP (README, "Stream recovery"): a stream cut after its commit
/// point is finished by a continuation and the caller sees one well-formed stream; every case
/// that is not recoverable ends as section 5 says.
@Suite("Stream recovery", .serialized)
struct StreamRecoveryTests {
    static func config(
        recovery: String = "continue", models: String = "[sonnet, haiku]", breaker: String = "failure_threshold: 3, open_for: 30s",
        retry: String = "max_attempts: 4, per_model: 2, backoff: { initial: 100ms, multiplier: 2, max: 1s }",
        timeouts: String = "{ connect: 1s, first_byte: 2s, idle: 2s }"
    ) -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0 }
        providers:
          a: { type: anthropic, base_url: "{{a}}", api_key_env: SIM_KEY, timeouts: \(timeouts) }
          b: { type: anthropic, base_url: "{{b}}", api_key_env: SIM_KEY, timeouts: \(timeouts) }
        models:
          sonnet: { provider: a, model: claude-sonnet-4-20250514 }
          haiku: { provider: b, model: claude-3-5-haiku-20241022 }
        defaults:
          breaker: { \(breaker) }
          retry: { \(retry) }
        routes:
          default: { models: \(models), stream_recovery: \(recovery) }
        """
    }

    /// The text of a stream as a caller assembles it.
    static func text(_ events: [SSE.Event]) -> String {
        events.filter { $0.name == .contentBlockDelta }.compactMap { event -> String? in
            let json = (try? JSONSerialization.jsonObject(with: Data(event.data.utf8))) as? [String: Any]
            return (json?["delta"] as? [String: Any])?["text"] as? String
        }.joined()
    }

    func prefill(at sim: UpstreamSimulator) throws -> String? {
        let body = try #require(sim.receivedRequests.last?.body)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let last = try #require((json["messages"] as? [[String: Any]])?.last)
        guard last["role"] as? String == "assistant" else { return nil }
        return (last["content"] as? [[String: Any]])?.compactMap { $0["text"] as? String }.joined()
    }

    @Test func anErrorEventAfterTheCommitPointIsFinishedByTheNextModel() async throws {
        try await RouterHarness.with(sims: ["a": "sse-error(5,overloaded_error)", "b": ""], yaml: Self.config()) { harness in
            let reply = try await harness.message(stream: true)
            #expect(reply.status == 200)
            let events = try SSE.parse(reply.body)
            #expect(events.filter { $0.name == .messageStart }.count == 1)
            #expect(events.filter { $0.name == .messageStop }.count == 1)
            #expect(!events.contains { $0.name == .error })
            #expect(Self.text(events) == "chunk0 chunk1 cont0 cont1 cont2", "the partial text, then the continuation without the doubled space")
            #expect(events.filter { $0.name == .contentBlockStart }.count == 1, "the open block continues: no second start")
            let delta = try #require(events.first { $0.name == .messageDelta })
            #expect(delta.data.contains(#""output_tokens":5"#), "4 of the continuation + 1 the failed stream reported: \(delta.data)")
            #expect(try prefill(at: harness.sim("b")) == "chunk0 chunk1", "the prefill, its trailing space cut")

            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "ok")
            #expect(line["recovered"] as? Bool == true)
            #expect(line["model"] as? String == "haiku")
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["model"] as? String } == ["sonnet", "haiku"])
            #expect(attempts[0]["error"] as? String == "stream_error")
            #expect(attempts[0]["error_type"] as? String == "overloaded_error")
            #expect(attempts[1]["continuation"] as? Bool == true)
            #expect((line["usage"] as? [String: Any])?["output_tokens"] as? Int == 5)
            #expect(harness.runtime.table.model(named: "sonnet")!.health.snapshot.breaker.consecutiveFailures == 1, "the failed stream counts")
            let metrics = try await harness.metricsText()
            #expect(metrics.contains(#"switchyard_stream_recoveries_total{route="default",result="recovered"} 1"#))
        }
    }

    @Test(arguments: ["cut(11)", "sse-error(11,overloaded_error)", "cut(10)"])
    func aFailureAfterTheAnswerWasWholeIsNeitherResumedNorSurfaced(fault: String) async throws {
        // 11 events: message_start, ping, block start, 5 deltas, block stop, message_delta (with
        // its stop reason), message_stop. cut(10) breaks before message_stop, the others after it.
        try await RouterHarness.with(sims: ["a": fault, "b": ""], yaml: Self.config()) { harness in
            let reply = try await harness.message(stream: true)
            let events = try SSE.parse(reply.body)
            #expect(events.filter { $0.name == .messageStop }.count == 1, "one message_stop")
            #expect(events.filter { $0.name == .messageDelta }.count == 1)
            #expect(!events.contains { $0.name == .error })
            #expect(Self.text(events) == "chunk0 chunk1 chunk2 chunk3 chunk4 ")
            #expect(harness.sim("b").requestCount == 0, "nothing to continue")
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "ok")
            #expect(line["recovered"] == nil)
            #expect(harness.runtime.table.model(named: "sonnet")!.health.snapshot.breaker.consecutiveFailures == 0, "a whole answer is a success")
        }
    }

    @Test func aFailureBeforeAnyTextIsFinishedWithTheOriginalRequest() async throws {
        // The error comes right after the block's start: nothing reached the caller to prefill.
        try await RouterHarness.with(sims: ["a": "sse-error(3,overloaded_error)", "b": ""], yaml: Self.config()) { harness in
            let reply = try await harness.message(stream: true)
            let events = try SSE.parse(reply.body)
            #expect(events.filter { $0.name == .messageStart }.count == 1)
            #expect(events.filter { $0.name == .contentBlockStart }.count == 1)
            #expect(events.filter { $0.name == .messageStop }.count == 1)
            #expect(!events.contains { $0.name == .error })
            #expect(!Self.text(events).isEmpty)
            #expect(try prefill(at: harness.sim("b")) == nil, "no assistant turn: the original request")
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["recovered"] as? Bool == true)
        }
    }

    @Test func theSameModelContinuesWhenNoOtherAdmits() async throws {
        try await RouterHarness.with(sims: ["a": "sse-error(5,overloaded_error),ok", "b": ""], yaml: Self.config()) { harness in
            harness.runtime.table.model(named: "haiku")!.health.withState { $0.disabledBy = "test" }
            let reply = try await harness.message(stream: true)
            let events = try SSE.parse(reply.body)
            #expect(!events.contains { $0.name == .error })
            #expect(events.filter { $0.name == .messageStop }.count == 1)
            #expect(try prefill(at: harness.sim("a")) == "chunk0 chunk1")
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["recovered"] as? Bool == true)
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["model"] as? String } == ["sonnet", "sonnet"])
            #expect(attempts[1]["continuation"] as? Bool == true)
            #expect(harness.sim("b").requestCount == 0)
        }
    }

    @Test func aResetIsRetriedOnTheSameModelWhenItStillAdmits() async throws {
        try await RouterHarness.with(sims: ["a": "cut(5),ok*", "b": ""], yaml: Self.config()) { harness in
            let reply = try await harness.message(stream: true)
            let events = try SSE.parse(reply.body)
            #expect(Self.text(events) == "chunk0 chunk1 cont0 cont1 cont2")
            #expect(harness.sim("b").requestCount == 0, "the same model took the continuation")
            let line = try #require(try await harness.requestLines(1).first)
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["model"] as? String } == ["sonnet", "sonnet"])
            #expect(attempts[1]["backoff_ms"] is Int, "a retry on the same model waits its backoff")
        }
    }

    @Test func aStallPastTheIdleTimeoutIsRecoveredToo() async throws {
        let yaml = Self.config(timeouts: "{ connect: 1s, first_byte: 2s, idle: 300ms }")
        try await RouterHarness.with(sims: ["a": "stall(5)", "b": ""], yaml: yaml) { harness in
            let events = try SSE.parse(try await harness.message(stream: true).body)
            #expect(Self.text(events) == "chunk0 chunk1 cont0 cont1 cont2")
            let line = try #require(try await harness.requestLines(1).first)
            #expect(((line["attempts"] as? [[String: Any]])?.first?["detail"] as? String)?.contains("idle") == true)
        }
    }

    @Test func severalResumesUpToMaxResumes() async throws {
        let scripts = ["a": "sse-error(5,api_error),sse-error(4,api_error),ok*", "b": ""]
        try await RouterHarness.with(sims: scripts, yaml: Self.config(recovery: "{ mode: continue, max_resumes: 2 }")) { harness in
            let events = try SSE.parse(try await harness.message(stream: true).body)
            #expect(Self.text(events) == "chunk0 chunk1 cont0 cont0 cont1 cont2")
            #expect(events.filter { $0.name == .messageStart }.count == 1 && events.filter { $0.name == .messageStop }.count == 1)
            #expect(try prefill(at: harness.sim("b")) == "chunk0 chunk1 cont0")
            let line = try #require(try await harness.requestLines(1).first)
            #expect((line["attempts"] as? [[String: Any]])?.map { $0["model"] as? String } == ["sonnet", "sonnet", "haiku"])
        }
        // With the default of one resume, the second failure reaches the caller.
        try await RouterHarness.with(sims: scripts, yaml: Self.config()) { harness in
            let events = try SSE.parse(try await harness.message(stream: true).body)
            #expect(events.last?.name == .error)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "stream_error")
            #expect(line["recovery"] as? String == "unavailable")
        }
    }

    @Test(arguments: ["thinking", "tool_use"])
    func aPartialThatIsNotPlainTextEndsWithAnErrorEvent(block: String) async throws {
        try await RouterHarness.with(sims: ["a": "sse-error(6,overloaded_error)", "b": ""], yaml: Self.config()) { harness in
            harness.sim("a").streamBlocks = [block, "text"]
            let events = try SSE.parse(try await harness.message(stream: true).body)
            #expect(events.last?.name == .error)
            #expect(events.last?.data.contains("overloaded_error") == true, "the upstream's own error event")
            #expect(harness.sim("b").requestCount == 0, "no continuation was asked for")
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "stream_error")
            #expect(line["recovery"] as? String == "unrecoverable")
            #expect(line["recovered"] as? Bool == false)
        }
    }

    @Test func aRefusedContinuationEndsWithAnErrorEvent() async throws {
        try await RouterHarness.with(sims: ["a": "sse-error(5,overloaded_error)", "b": "400"], yaml: Self.config()) { harness in
            let events = try SSE.parse(try await harness.message(stream: true).body)
            #expect(Self.text(events) == "chunk0 chunk1 ")
            #expect(events.last?.name == .error)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["recovery"] as? String == "refused")
            #expect((line["attempts"] as? [[String: Any]])?.last?["status"] as? Int == 400)
        }
    }

    @Test func noAdmittingModelOrNoBudgetLeftEndsWithAnErrorEvent() async throws {
        // The failure opens the only model's breaker: nothing admits a continuation.
        try await RouterHarness.with(sims: ["a": "sse-error(5,overloaded_error)", "b": ""], yaml: Self.config(models: "[sonnet]", breaker: "failure_threshold: 1, open_for: 30s")) {
            harness in
            let events = try SSE.parse(try await harness.message(stream: true).body)
            #expect(events.last?.name == .error)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["recovery"] as? String == "unavailable")
            #expect(harness.sim("a").requestCount == 1)
        }
        // max_attempts 1: the stream was the only attempt the request had.
        try await RouterHarness.with(sims: ["a": "sse-error(5,overloaded_error)", "b": ""], yaml: Self.config(retry: "max_attempts: 1")) { harness in
            let events = try SSE.parse(try await harness.message(stream: true).body)
            #expect(events.last?.name == .error)
            #expect(harness.sim("b").requestCount == 0)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["recovery"] as? String == "unavailable")
        }
    }

    @Test func withRecoveryOffTheFailureIsSurfacedAsBefore() async throws {
        try await RouterHarness.with(sims: ["a": "sse-error(5,overloaded_error)", "b": ""], yaml: Self.config(recovery: "off")) { harness in
            let events = try SSE.parse(try await harness.message(stream: true).body)
            #expect(events.last?.name == .error)
            #expect(harness.sim("b").requestCount == 0)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["recovered"] == nil)
        }
    }

    @Test func aBedrockContinuationIsSplicedIntoAnAnthropicStream() async throws {
        let yaml = PlatformFixtures.threePlatforms().replacingOccurrences(of: "default: { models: [sonnet, sonnet-bedrock, sonnet-vertex] }", with: "default: { models: [sonnet, sonnet-bedrock, sonnet-vertex], stream_recovery: continue }")
        try await PlatformFixtures.with(scripts: ["a": "sse-error(5,overloaded_error)"], yaml: yaml) { harness in
            let events = try SSE.parse(try await harness.message(stream: true).body)
            #expect(Self.text(events) == "chunk0 chunk1 cont0 cont1 cont2")
            let received = try #require(harness.sim("b").receivedRequests.last)
            #expect(received.uri.hasSuffix("/invoke-with-response-stream"))
            let body = try #require(try JSONSerialization.jsonObject(with: Data(received.body.utf8)) as? [String: Any])
            let last = try #require((body["messages"] as? [[String: Any]])?.last)
            #expect(last["role"] as? String == "assistant")
        }
    }
}
