import Foundation
import Testing

@testable import SwitchyardCore

/// The failover engine through real HTTP: breakers, downgrade and recovery, the outcome table's
/// effects, `when_all_unavailable`, and the audit trail. Time is a ManualClock: open periods
/// pass when the test says so, backoff sleeps return at once.
@Suite("Failover engine", .serialized)
struct FailoverTests {
    func breakerLines(_ lines: [[String: Any]]) -> [[String: Any]] {
        lines.filter { $0["event"] as? String == "breaker" }
    }

    @Test func consecutive500sOpenTheBreakerThenAProbeBringsTrafficBack() async throws {
        try await RouterHarness.with(sims: ["a": "500*3,ok*", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let a = harness.sim("a")
            // Request 1: two 500s on sonnet (per_model 2), then haiku.
            let first = try await harness.message()
            #expect(first.status == 200)
            #expect(first.header("x-switchyard-model") == "haiku")
            #expect(first.header("x-switchyard-attempts") == "3")
            // Request 2: the third 500 opens sonnet's breaker; haiku answers without a backoff wait.
            let second = try await harness.message()
            #expect(second.header("x-switchyard-model") == "haiku")
            #expect(a.requestCount == 3)

            // While open, sonnet receives nothing.
            for _ in 0..<5 {
                let reply = try await harness.message()
                #expect(reply.status == 200)
                #expect(reply.header("x-switchyard-model") == "haiku")
                #expect(reply.header("x-switchyard-attempts") == "1")
            }
            #expect(a.requestCount == 3, "no traffic to an open breaker")

            // After open_for, exactly one probe reaches sonnet; it succeeds and traffic returns.
            harness.clock!.advance(by: .seconds(30))
            let probe = try await harness.message()
            #expect(probe.header("x-switchyard-model") == "sonnet")
            #expect(a.requestCount == 4)
            let after = try await harness.message()
            #expect(after.header("x-switchyard-model") == "sonnet")
            #expect(a.requestCount == 5)

            let lines = try await harness.auditLines(requests: 9)
            let requests = lines.filter { $0["event"] as? String == "request" }
            #expect(requests[0]["downgraded"] as? Bool == true)
            let attempts = try #require(requests[0]["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["model"] as? String } == ["sonnet", "sonnet", "haiku"])
            #expect(attempts[1]["backoff_ms"] is Int, "backoff before the same-model retry")
            #expect(attempts[2]["backoff_ms"] == nil, "no wait when moving to another model")
            let secondAttempts = try #require(requests[1]["attempts"] as? [[String: Any]])
            #expect(secondAttempts.count == 2)
            #expect(secondAttempts[1]["backoff_ms"] == nil, "the breaker opened: no backoff for a retry that cannot happen")

            let skipped = try #require(requests[2]["decision"] as? [[String: Any]])
            #expect(skipped[0]["model"] as? String == "sonnet")
            #expect(skipped[0]["action"] as? String == "skipped")
            #expect(skipped[0]["breaker"] as? String == "open")
            #expect(skipped[0]["reason"] as? String == "breaker_open")
            #expect(skipped[1]["action"] as? String == "sent")

            let transitions = breakerLines(lines)
            #expect(transitions.map { "\($0["from"]!)->\($0["to"]!)" } == ["closed->open", "open->half_open", "half_open->closed"])
            #expect(transitions[0]["model"] as? String == "sonnet")
            #expect(transitions[0]["reason"] as? String == "3 consecutive failures (500, 500, 500)")
            #expect(transitions[0]["open_for_ms"] as? Int == 30000)
            #expect(transitions[2]["reason"] as? String == "probe succeeded")
            #expect(requests[7]["downgraded"] as? Bool == false)
        }
    }

    @Test func overloadedMovesToTheNextModelAtOnce() async throws {
        try await RouterHarness.with(sims: ["a": "529*", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message()
            #expect(reply.status == 200)
            #expect(reply.header("x-switchyard-model") == "haiku")
            #expect(harness.sim("a").requestCount == 1, "529: no second attempt on the same model")
            let line = try #require(try await harness.requestLines(1).first)
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts[0]["status"] as? Int == 529)
            #expect(attempts[0]["error_type"] as? String == "overloaded_error")
            #expect(attempts[1]["backoff_ms"] == nil)
            #expect(harness.runtime.table.model(named: "sonnet")?.health.snapshot.breaker.consecutiveFailures == 1, "529 counts")
        }
    }

    @Test func rateLimitSkipsTheModelForRetryAfterWithoutBlame() async throws {
        try await RouterHarness.with(sims: ["a": "429(retry-after=20),ok*", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let first = try await harness.message()
            #expect(first.header("x-switchyard-model") == "haiku")
            let second = try await harness.message()
            #expect(second.header("x-switchyard-model") == "haiku")
            #expect(harness.sim("a").requestCount == 1, "rate-limited: skipped for retry-after")
            let sonnet = try #require(harness.runtime.table.model(named: "sonnet"))
            #expect(sonnet.health.snapshot.breaker.consecutiveFailures == 0, "429 leaves the breaker alone")
            #expect(sonnet.health.snapshot.breaker.state == .closed)

            harness.clock!.advance(by: .seconds(21))
            let third = try await harness.message()
            #expect(third.header("x-switchyard-model") == "sonnet")

            let lines = try await harness.requestLines(3)
            let attempts = try #require(lines[0]["attempts"] as? [[String: Any]])
            #expect(attempts[0]["retry_after_ms"] as? Int == 20000)
            let decision = try #require(lines[1]["decision"] as? [[String: Any]])
            #expect(decision[0]["reason"] as? String == "rate_limited")
        }
    }

    @Test func clientErrorIsReturnedAsIsAndNotRetried() async throws {
        try await RouterHarness.with(sims: ["a": "422*", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message()
            #expect(reply.status == 422)
            #expect(reply.errorMessage == "simulated 422 from a")
            #expect(reply.header("x-sim-name") == "a", "the upstream's own headers are kept")
            #expect(reply.header("x-should-retry") == nil, "an upstream 4xx relayed as is is not annotated")
            #expect(harness.sim("a").requestCount == 1)
            #expect(harness.sim("b").requestCount == 0)
            #expect(harness.runtime.table.model(named: "sonnet")?.health.snapshot.breaker.consecutiveFailures == 0)
        }
    }

    @Test func shouldRetryFalseStopsAtOnce() async throws {
        try await RouterHarness.with(sims: ["a": "503(should-retry=false)", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message()
            #expect(reply.status == 503)
            #expect(harness.sim("a").requestCount == 1)
            #expect(harness.sim("b").requestCount == 0)
            #expect(reply.header("x-should-retry") == "false")
            #expect(harness.runtime.table.model(named: "sonnet")?.health.snapshot.breaker.consecutiveFailures == 1, "as its status says")
        }
    }

    @Test func whenEveryAttemptFailsTheCallerLearnsWhatHappenedAndIsToldNotToRetry() async throws {
        try await RouterHarness.with(sims: ["a": "500*", "b": "503*"], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message()
            #expect(reply.status == 503, "the last upstream error's status")
            #expect(reply.errorType == "api_error" || reply.errorType == "overloaded_error")
            #expect(reply.header("x-should-retry") == "false", "no retry amplification")
            let message = try #require(reply.errorMessage)
            #expect(message.hasPrefix("all 2 models of route 'default' failed: sonnet: 500 api_error (req_a_"))
            #expect(message.contains("haiku: 503"))
            #expect(message.contains("req_b_"))
            #expect(harness.sim("a").requestCount == 2)
            #expect(harness.sim("b").requestCount == 2, "max_attempts 4, per_model 2")
            #expect(reply.header("x-switchyard-attempts") == "4")
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "upstream_error")
            #expect(line["status"] as? Int == 503)
        }
    }

    @Test func connectionFailuresEndIn502() async throws {
        try await RouterHarness.with(sims: ["a": "reset*", "b": "reset*"], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message()
            #expect(reply.status == 502)
            #expect(reply.errorType == "api_error")
            #expect(reply.errorMessage?.contains("sonnet: reset") == true)
            #expect(reply.header("x-should-retry") == "false")
        }
    }

    @Test func timeoutsEndIn504() async throws {
        try await RouterHarness.with(
            sims: ["a": "hang*", "b": "hang*"],
            yaml: TestConfigs.twoModels(retry: "max_attempts: 2, per_model: 1", timeouts: "{ connect: 1s, first_byte: 200ms, idle: 1s }")
        ) { harness in
            let reply = try await harness.message()
            #expect(reply.status == 504)
            #expect(reply.errorType == "timeout_error")
            #expect(reply.errorMessage?.contains("sonnet: timeout") == true)
            #expect(reply.errorMessage?.contains("haiku: timeout") == true)
        }
    }

    @Test func rejectAnswers503WithRetryAfterWhenNothingAdmits() async throws {
        try await RouterHarness.with(
            sims: ["a": "500*", "b": "500*"],
            yaml: TestConfigs.twoModels(breaker: "failure_threshold: 1, open_for: 30s", whenAllUnavailable: "reject")
        ) { harness in
            _ = try await harness.message()  // opens both breakers
            harness.clock!.advance(by: .seconds(10))
            let before = harness.sim("a").requestCount + harness.sim("b").requestCount
            let reply = try await harness.message()
            #expect(reply.status == 503)
            #expect(reply.errorType == "overloaded_error")
            #expect(reply.header("retry-after") == "20", "the shortest remaining open time")
            #expect(reply.header("x-should-retry") == "true")
            #expect(reply.errorMessage?.contains("breaker_open") == true)
            #expect(harness.sim("a").requestCount + harness.sim("b").requestCount == before, "no upstream call")
            let lines = try await harness.requestLines(2)
            #expect(lines[1]["outcome"] as? String == "no_model_available")
        }
    }

    @Test func probePolicySendsToTheModelWhoseOpenPeriodEndsFirst() async throws {
        try await RouterHarness.with(
            sims: ["a": "500*", "b": "500,ok*"],
            yaml: TestConfigs.twoModels(breaker: "failure_threshold: 1, open_for: 30s", whenAllUnavailable: "probe")
        ) { harness in
            // haiku opens first (through route `fast`), sonnet 5 s later.
            _ = try await harness.message(model: "fast")
            harness.clock!.advance(by: .seconds(5))
            let failed = try await harness.message()
            #expect(failed.status == 500)
            #expect(harness.sim("b").requestCount == 1, "haiku was open: skipped")
            // Nothing admits now: the request becomes a probe on haiku (its period ends first).
            let probe = try await harness.message()
            #expect(probe.status == 200)
            #expect(probe.header("x-switchyard-model") == "haiku")
            let line = try #require(try await harness.requestLines(3).last)
            let decision = try #require(line["decision"] as? [[String: Any]])
            #expect(decision.last?["reason"] as? String == "forced_probe")
            #expect(harness.runtime.table.model(named: "haiku")?.health.snapshot.breaker.state == .closed)
        }
    }

    @Test(arguments: [1, 2])
    func concurrentRequestsRaceForTheHalfOpenProbeSlots(probes: Int) async throws {
        try await RouterHarness.with(
            sims: ["a": "500,slow(400ms)*", "b": ""],
            yaml: TestConfigs.twoModels(breaker: "failure_threshold: 1, open_for: 30s, half_open_probes: \(probes)")
        ) { harness in
            _ = try await harness.message()  // opens sonnet
            #expect(harness.sim("a").requestCount == 1)
            harness.clock!.advance(by: .seconds(30))
            let replies = try await withThrowingTaskGroup(of: RouterHarness.Reply.self) { group in
                for _ in 0..<8 { group.addTask { try await harness.message() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.status == 200 })
            #expect(harness.sim("a").requestCount == 1 + probes, "only half_open_probes reach the half-open model")
            #expect(replies.filter { $0.header("x-switchyard-model") == "sonnet" }.count == probes)
            let lines = try await harness.requestLines(9)
            let busy = lines.compactMap { $0["decision"] as? [[String: Any]] }.filter { decision in
                decision.contains { $0["reason"] as? String == "half_open_busy" }
            }
            #expect(busy.count == 8 - probes)
        }
    }

    @Test func retryAfterIsTheFloorOfTheBackoff() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": "503(retry-after=3),ok*"], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message(model: "fast")
            #expect(reply.status == 200)
            #expect(reply.header("x-switchyard-attempts") == "2")
            let line = try #require(try await harness.requestLines(1).first)
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts[0]["retry_after_ms"] as? Int == 3000)
            let backoff = try #require(attempts[1]["backoff_ms"] as? Int)
            #expect(backoff >= 3000, "backoff initial is 100ms; retry-after raises it")
        }
    }

    @Test func requestTimeoutStopsRetriesThatCannotFinishInTime() async throws {
        try await RouterHarness.with(
            sims: ["a": "", "b": "500*"],
            yaml: TestConfigs.twoModels(
                retry: "max_attempts: 4, per_model: 4, backoff: { initial: 10s, multiplier: 2, max: 20s, jitter: none }",
                server: "request_timeout: 5s"
            )
        ) { harness in
            let reply = try await harness.message(model: "fast")
            #expect(reply.status == 500)
            #expect(harness.sim("b").requestCount == 1, "a 10 s backoff would overrun the 5 s budget")
            #expect(reply.errorMessage?.contains("request_timeout of 5s reached") == true)
        }
    }

    @Test func aBreakerIsSharedByEveryRouteThatUsesTheModel() async throws {
        try await RouterHarness.with(
            sims: ["a": "500*", "b": "500,ok*"], yaml: TestConfigs.twoModels(breaker: "failure_threshold: 1, open_for: 30s")
        ) { harness in
            _ = try await harness.message(model: "fast")  // haiku opens via route `fast`
            let table = harness.runtime.table
            #expect(table.route(named: "default")?.models[1].health === table.route(named: "fast")?.models[0].health)
            let reply = try await harness.message()
            #expect(reply.status == 500, "sonnet fails and haiku is open for route `default` too")
            #expect(harness.sim("b").requestCount == 1)
            let line = try #require(try await harness.requestLines(2).last)
            let decision = try #require(line["decision"] as? [[String: Any]])
            #expect(decision.contains { $0["model"] as? String == "haiku" && $0["reason"] as? String == "breaker_open" })
        }
    }
}
