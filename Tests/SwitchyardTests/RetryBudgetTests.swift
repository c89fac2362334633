import Testing

@testable import SwitchyardCore

/// The retry budget as a pure value, then through the router against a failing upstream.
@Suite("Retry budget")
struct RetryBudgetTests {
    let t0 = MonotonicInstant(nanoseconds: 1_000_000_000_000)

    @Test func retriesInFlightStayWithinTheShareOfActiveRequests() {
        var budget = RetryBudget(policy: RetryBudgetPolicy(percent: 0.2, minPerSecond: 0))
        for _ in 0..<10 { budget.requestStarted() }
        #expect(budget.grant(now: t0) == .share)
        #expect(budget.grant(now: t0) == .share)
        #expect(budget.grant(now: t0) == .refused, "2 retries in flight are 20% of 10 requests")
        budget.retryEnded()
        #expect(budget.grant(now: t0) == .share)
        for _ in 0..<5 { budget.requestStarted() }
        #expect(budget.grant(now: t0) == .share, "15 requests allow 3")
        #expect(budget.grant(now: t0) == .refused)
    }

    @Test func theFloorAllowsMinPerSecondWhateverTheShare() {
        var budget = RetryBudget(policy: RetryBudgetPolicy(percent: 0.2, minPerSecond: 5))
        budget.requestStarted()
        let granted = (0..<8).map { _ in budget.grant(now: t0) }
        #expect(granted.filter { $0 == .floor }.count == 5)
        #expect(granted.filter { $0 == .refused }.count == 3)
        // The floor refills at 5 a second, up to 5.
        #expect(budget.grant(now: t0 + .milliseconds(200)) == .floor)
        #expect(budget.grant(now: t0 + .milliseconds(200)) == .refused)
        #expect((0..<9).map { _ in budget.grant(now: t0 + .seconds(10)) }.filter { $0 == .floor }.count == 5)
    }

    @Test func countsNeverGoBelowZero() {
        var budget = RetryBudget(policy: RetryBudgetPolicy(percent: 0.2, minPerSecond: 0))
        budget.requestEnded()
        budget.retryEnded()
        #expect(budget.activeRequests == 0 && budget.activeRetries == 0)
    }

    @Test func anOutageMakesNoRetryBeyondTheBudget() async throws {
        let yaml = """
            version: 1
            server: { listen: 127.0.0.1:0 }
            providers:
              a: { type: anthropic, base_url: "{{a}}", api_key_env: SIM_KEY }
              b: { type: anthropic, base_url: "{{b}}", api_key_env: SIM_KEY }
            models:
              sonnet: { provider: a, model: claude-sonnet-4-20250514 }
              haiku: { provider: b, model: claude-3-5-haiku-20241022 }
            defaults:
              breaker: { failure_threshold: 1000 }
              retry: { max_attempts: 4, per_model: 2, backoff: { initial: 10ms, multiplier: 2, max: 50ms } }
            routes:
              default:
                models: [sonnet, haiku]
                retry_budget: { percent: 20, min_per_second: 2 }
            """
        try await RouterHarness.with(sims: ["a": "500*", "b": "500*"], yaml: yaml) { harness in
            // One caller at a time earns no share (⌊20% of 1⌋ = 0): only the floor's 2 retries
            // (and what backoff time refills) are made, where 4 attempts each were allowed.
            var statuses: [Int] = []
            for _ in 0..<6 { statuses.append(try await harness.message().status) }
            #expect(statuses.allSatisfy { $0 == 500 })
            let lines = try await harness.requestLines(6)
            let attempts = lines.map { ($0["attempts"] as? [[String: Any]])?.count ?? 0 }
            #expect(attempts.reduce(0, +) <= 6 + 3, "attempts per request: \(attempts)")
            #expect(lines.filter { $0["error"] as? String == "retry_budget" }.count >= 3)
            #expect((lines.last?["message"] as? String)?.contains("retry budget") == true)
            let metrics = try await harness.metricsText()
            #expect(metrics.contains(#"switchyard_retry_budget_exhausted_total{route="default"}"#))
        }
    }

    @Test func withoutABudgetEveryRetryIsMade() async throws {
        try await RouterHarness.with(
            sims: ["a": "500*", "b": "500*"],
            yaml: TestConfigs.twoModels(breaker: "failure_threshold: 1000", retry: "max_attempts: 4, per_model: 2, backoff: { initial: 10ms, max: 50ms }")
        ) { harness in
            for _ in 0..<3 { #expect(try await harness.message().status == 500) }
            let attempts = try await harness.requestLines(3).map { ($0["attempts"] as? [[String: Any]])?.count ?? 0 }
            #expect(attempts == [4, 4, 4])
        }
    }
}
