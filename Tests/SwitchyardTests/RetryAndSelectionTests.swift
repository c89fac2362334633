import Testing

@testable import SwitchyardCore

/// A seeded generator (SplitMix64) so jitter is random but repeatable.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Always returns the same value: 0 gives the smallest jitter, .max the largest.
struct FixedRandom: RandomNumberGenerator {
    var value: UInt64
    mutating func next() -> UInt64 { value }
}

@Suite("Backoff")
struct BackoffTests {
    let policy = BackoffPolicy(initial: .milliseconds(500), multiplier: 2, max: .seconds(8), jitter: .full)

    @Test func exponentialAndCappedWithoutJitter() {
        var random = FixedRandom(value: 0)
        var plain = policy
        plain.jitter = .none
        let delays = (0..<7).map { Backoff.delay(policy: plain, retryIndex: $0, retryAfter: nil, using: &random) }
        #expect(delays == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8), .seconds(8)])
    }

    @Test func fullJitterStaysWithinZeroAndTheCeilingAndSpreads() {
        var random = SeededRandom(state: 42)
        for retryIndex in 0..<6 {
            let ceiling = min(Duration.milliseconds(500) * (1 << retryIndex), .seconds(8))
            let samples = (0..<2000).map { _ in Backoff.delay(policy: policy, retryIndex: retryIndex, retryAfter: nil, using: &random) }
            #expect(samples.allSatisfy { $0 >= .zero && $0 <= ceiling })
            // Full jitter covers the whole range: some samples in the lowest and highest tenth.
            #expect(samples.contains { $0 < ceiling / 10 })
            #expect(samples.contains { $0 > ceiling * 9 / 10 })
        }
    }

    @Test func equalJitterKeepsAtLeastHalf() {
        var random = SeededRandom(state: 7)
        var equal = policy
        equal.jitter = .equal
        let samples = (0..<1000).map { _ in Backoff.delay(policy: equal, retryIndex: 2, retryAfter: nil, using: &random) }
        #expect(samples.allSatisfy { $0 >= .seconds(1) && $0 <= .seconds(2) })
    }

    @Test func retryAfterIsAFloor() {
        var random = SeededRandom(state: 1)
        for _ in 0..<100 {
            #expect(Backoff.delay(policy: policy, retryIndex: 0, retryAfter: .seconds(3), using: &random) == .seconds(3))
        }
        // A short retry-after does not shorten the backoff.
        var plain = policy
        plain.jitter = .none
        #expect(Backoff.delay(policy: plain, retryIndex: 3, retryAfter: .milliseconds(10), using: &random) == .seconds(4))
    }

    @Test func retryAfterHeaderForms() {
        var headers = HTTPHeadersForTest()
        headers.add("retry-after", "7")
        #expect(RetryAfter.parse(headers.value, now: 0) == .seconds(7))
        headers = HTTPHeadersForTest()
        headers.add("retry-after-ms", "1500")
        headers.add("retry-after", "7")
        #expect(RetryAfter.parse(headers.value, now: 0) == .milliseconds(1500), "retry-after-ms is more precise")
        headers = HTTPHeadersForTest()
        headers.add("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")
        let date: Int64 = 1_445_412_480_000
        #expect(RetryAfter.parse(headers.value, now: date - 5000) == .seconds(5))
        headers = HTTPHeadersForTest()
        headers.add("retry-after", "soon")
        #expect(RetryAfter.parse(headers.value, now: 0) == nil)
    }
}

import NIOHTTP1

struct HTTPHeadersForTest {
    var value = HTTPHeaders()
    mutating func add(_ name: String, _ value: String) { self.value.add(name: name, value: value) }
}

@Suite("Retry planner")
struct RetryPlannerTests {
    let t0 = MonotonicInstant(nanoseconds: 1_000_000_000_000)
    let retry = RetryPolicy(
        maxAttempts: 4, perModel: 2, backoff: BackoffPolicy(initial: .milliseconds(500), multiplier: 2, max: .seconds(8), jitter: .none)
    )

    func planner(models: Int = 2, deadline: Duration = .seconds(600), policy: RetryPolicy? = nil) -> RetryPlanner {
        RetryPlanner(policy: policy ?? retry, modelCount: models, deadline: t0 + deadline)
    }

    let server = AttemptVerdict.classify(.response(status: 500, errorType: nil, retryAfter: nil, shouldRetry: nil))
    let overloaded = AttemptVerdict.classify(.response(status: 529, errorType: nil, retryAfter: nil, shouldRetry: nil))

    @Test func perModelThenMoveOnWithoutWaiting() {
        var random = FixedRandom(value: 0)
        var plan = planner()
        plan.willAttempt(modelAt: 0)
        #expect(plan.next(after: server, now: t0, using: &random) == .retrySameModel(delay: .milliseconds(500)))
        plan.willAttempt(modelAt: 0)
        #expect(plan.next(after: server, now: t0, using: &random) == .moveOn, "per_model 2 spent: next model, no wait")
        #expect(plan.left == [0])
        plan.willAttempt(modelAt: 1)
        #expect(plan.next(after: server, now: t0, using: &random) == .retrySameModel(delay: .milliseconds(500)))
        plan.willAttempt(modelAt: 1)
        #expect(plan.next(after: server, now: t0, using: &random) == .stop(.exhausted), "max_attempts 4 spent")
    }

    @Test func overloadedMovesOnAtOnce() {
        var random = FixedRandom(value: 0)
        var plan = planner()
        plan.willAttempt(modelAt: 0)
        #expect(plan.next(after: overloaded, now: t0, using: &random) == .moveOn)
    }

    @Test func lastModelKeepsItsPerModelBudget() {
        var random = FixedRandom(value: 0)
        var plan = planner(models: 1)
        plan.willAttempt(modelAt: 0)
        // 529 wants the next model; there is none, so the same model is retried after backoff.
        #expect(plan.next(after: overloaded, now: t0, using: &random) == .retrySameModel(delay: .milliseconds(500)))
        plan.willAttempt(modelAt: 0)
        #expect(plan.next(after: overloaded, now: t0, using: &random) == .stop(.exhausted))
    }

    @Test func maxAttemptsBoundsEverything() {
        var random = FixedRandom(value: 0)
        var policy = retry
        policy.maxAttempts = 1
        var plan = planner(policy: policy)
        plan.willAttempt(modelAt: 0)
        #expect(plan.next(after: server, now: t0, using: &random) == .stop(.exhausted))
    }

    @Test func waitingPastTheDeadlineStops() {
        var random = FixedRandom(value: 0)
        var plan = planner(models: 1, deadline: .milliseconds(300))
        plan.willAttempt(modelAt: 0)
        #expect(plan.next(after: server, now: t0, using: &random) == .stop(.deadline), "a 500 ms backoff would overrun 300 ms")
    }

    @Test func answersStop() {
        var random = FixedRandom(value: 0)
        var plan = planner()
        plan.willAttempt(modelAt: 0)
        let ok = AttemptVerdict.classify(.response(status: 200, errorType: nil, retryAfter: nil, shouldRetry: nil))
        #expect(plan.next(after: ok, now: t0, using: &random) == .stop(.answered))
        let bad = AttemptVerdict.classify(.response(status: 400, errorType: nil, retryAfter: nil, shouldRetry: nil))
        #expect(plan.next(after: bad, now: t0, using: &random) == .stop(.answered))
    }

    @Test func retryAfterRaisesTheBackoff() {
        var random = FixedRandom(value: 0)
        var plan = planner(models: 1)
        plan.willAttempt(modelAt: 0)
        let v = AttemptVerdict.classify(.response(status: 503, errorType: nil, retryAfter: .seconds(4), shouldRetry: nil))
        #expect(plan.next(after: v, now: t0, using: &random) == .retrySameModel(delay: .seconds(4)))
    }
}
