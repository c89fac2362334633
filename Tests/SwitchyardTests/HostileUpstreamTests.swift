import Foundation
import Testing

@testable import SwitchyardCore

/// Upstreams that misbehave: each ends as a counted failure with a clear audit line, within the
/// configured timeouts, and the next model is tried.
@Suite("Hostile upstreams", .serialized)
struct HostileUpstreamTests {
    static let timeouts = "{ connect: 1s, first_byte: 500ms, idle: 500ms }"

    /// Runs one request against a primary that misbehaves with `fault` (haiku is healthy), and
    /// returns the reply and the request's audit line.
    func drill(_ fault: String, stream: Bool = false, timeouts: String = timeouts) async throws -> (RouterHarness.Reply, [String: Any], Duration) {
        var result: (RouterHarness.Reply, [String: Any], Duration)?
        try await RouterHarness.with(
            sims: ["a": "\(fault)*", "b": ""],
            yaml: TestConfigs.twoModels(retry: "max_attempts: 3, per_model: 1", timeouts: timeouts),
            manualClock: false
        ) { harness in
            let start = ContinuousClock.now
            let reply = try await harness.message(stream: stream)
            let took = ContinuousClock.now - start
            let line = try #require(try await harness.requestLines(1).first)
            #expect(harness.runtime.table.model(named: "sonnet")?.health.snapshot.breaker.consecutiveFailures == 1, "\(fault) counts as a failure")
            result = (reply, line, took)
        }
        return try #require(result)
    }

    func firstAttempt(_ line: [String: Any]) -> [String: Any] {
        (line["attempts"] as? [[String: Any]])?.first ?? [:]
    }

    @Test func invalidJSONFromUpstream() async throws {
        let (reply, line, _) = try await drill("invalid-json")
        #expect(reply.status == 200)
        #expect(reply.header("x-switchyard-model") == "haiku")
        #expect(firstAttempt(line)["error"] as? String == "invalid_response")
    }

    @Test func malformedSSEFromUpstream() async throws {
        // Generous timeouts: on a loaded machine a 500 ms idle timer can fire before the bad
        // frame is read, and this test is about the frame, not the timer.
        let (reply, line, _) = try await drill("malformed-sse", stream: true, timeouts: "{ connect: 5s, first_byte: 10s, idle: 10s }")
        #expect(reply.status == 200)
        #expect(reply.header("x-switchyard-model") == "haiku")
        #expect(try SSE.parse(reply.body).last?.name == .messageStop)
        #expect(firstAttempt(line)["error"] as? String == "stream_error")
    }

    @Test func responseLargerThanAnySaneLimit() async throws {
        let (reply, line, took) = try await drill("huge(80MiB)")
        #expect(reply.status == 200)
        #expect(reply.header("x-switchyard-model") == "haiku")
        #expect(firstAttempt(line)["error"] != nil)
        #expect(took < .seconds(10))
    }

    @Test func headersThatNeverEnd() async throws {
        let (reply, line, took) = try await drill("endless-headers")
        #expect(reply.status == 200)
        #expect(reply.header("x-switchyard-model") == "haiku")
        #expect(firstAttempt(line)["error"] as? String == "timeout")
        #expect(took < .seconds(3), "cut at first_byte (500 ms), took \(took)")
    }

    @Test func connectionThatHangsAfterHeaders() async throws {
        let (reply, line, took) = try await drill("stall(0)")
        #expect(reply.status == 200)
        #expect(reply.header("x-switchyard-model") == "haiku")
        #expect(firstAttempt(line)["error"] as? String == "timeout")
        #expect(took < .seconds(3), "cut at idle (500 ms), took \(took)")
    }

    @Test func streamThatHangsBeforeItsFirstContentEvent() async throws {
        let (reply, line, took) = try await drill("stall(2)", stream: true)
        #expect(reply.status == 200)
        #expect(try SSE.parse(reply.body).last?.name == .messageStop)
        #expect(reply.body.contains("claude-3-5-haiku-20241022"))
        #expect(firstAttempt(line)["error"] as? String == "stream_error" || firstAttempt(line)["error"] as? String == "timeout")
        #expect(took < .seconds(3))
    }

    @Test func everyModelSendingGarbageIsA502NotA200() async throws {
        try await RouterHarness.with(
            sims: ["a": "invalid-json*", "b": "invalid-json*"],
            yaml: TestConfigs.twoModels(retry: "max_attempts: 2, per_model: 1", timeouts: Self.timeouts)
        ) { harness in
            let reply = try await harness.message()
            #expect(reply.status == 502)
            #expect(reply.errorType == "api_error")
            #expect(reply.errorMessage?.contains("invalid_response") == true)
            #expect(reply.header("x-should-retry") == "false")
        }
    }
}
