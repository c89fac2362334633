import NIOHTTP1
import Testing

@testable import SwitchyardCore

/// Headroom as pure values: the header reader, the skip rule, the merge rule, and selection.
@Suite("Headroom")
struct HeadroomTests {
    let t0 = MonotonicInstant(nanoseconds: 1_000_000_000_000)
    /// The wall clock at `t0`: 2026-01-31T12:00:00Z.
    let wall0: Int64 = 1_769_860_800_000

    @Test func anthropicRateLimitHeadersAreReadInOnePass() throws {
        let headers = HTTPHeaders([
            ("content-type", "application/json"),
            ("anthropic-ratelimit-requests-limit", "100"), ("Anthropic-RateLimit-Requests-Remaining", "3"),
            ("anthropic-ratelimit-requests-reset", "2026-01-31T12:00:05Z"),
            ("anthropic-ratelimit-tokens-limit", "80000"), ("anthropic-ratelimit-tokens-remaining", "79000"),
            ("anthropic-ratelimit-tokens-reset", "2026-01-31T12:00:00.250Z"),
            ("anthropic-ratelimit-input-tokens-limit", "60000"), ("anthropic-ratelimit-input-tokens-remaining", "59990"),
            ("anthropic-ratelimit-input-tokens-reset", "2026-01-31T13:00:01+01:00"),
            ("anthropic-ratelimit-output-tokens-limit", "20000"), ("anthropic-ratelimit-output-tokens-remaining", "abc"),
            ("anthropic-ratelimit-unknown-limit", "5"), ("request-id", "req_1"),
        ])
        let reading = try #require(AnthropicRateLimitHeaders.read(headers))
        #expect(reading.requests == HeadroomReport(limit: 100, remaining: 3, resetWallMs: wall0 + 5_000))
        #expect(reading.tokens == HeadroomReport(limit: 80_000, remaining: 79_000, resetWallMs: wall0 + 250))
        #expect(reading.inputTokens == HeadroomReport(limit: 60_000, remaining: 59_990, resetWallMs: wall0 + 1_000))
        // A remaining count that is not a number: the kind is not reported.
        #expect(reading.outputTokens == nil)
        #expect(AnthropicRateLimitHeaders.read(HTTPHeaders([("request-id", "req_2")])) == nil)
    }

    @Test func timestampsFollowRFC3339() {
        #expect(AnthropicRateLimitHeaders.parseTimestamp("2026-01-31T12:00:00Z") == wall0)
        #expect(AnthropicRateLimitHeaders.parseTimestamp("2026-01-31T12:00:00.5Z") == wall0 + 500)
        #expect(AnthropicRateLimitHeaders.parseTimestamp("2026-01-31T12:00:00.123456Z") == wall0 + 123)
        #expect(AnthropicRateLimitHeaders.parseTimestamp("2026-01-31T07:00:00-05:00") == wall0)
        for bad in ["", "2026-01-31", "2026-01-31T12:00:00", "2026-02-30T12:00:00Z", "2026-01-31T12:00:00Zjunk", "tomorrow", "2026-01-31T12:00:00."] {
            #expect(AnthropicRateLimitHeaders.parseTimestamp(bad) == nil, "\(bad)")
        }
        #expect(AnthropicRateLimitHeaders.parseInteger(" 42 ") == 42)
        #expect(AnthropicRateLimitHeaders.parseInteger("4 2") == nil)
        #expect(AnthropicRateLimitHeaders.parseInteger("-1") == nil)
    }

    func reading(requests remaining: Int64, limit: Int64 = 100, resetIn: Int64 = 5_000) -> HeadroomReading {
        var reading = HeadroomReading()
        reading.requests = HeadroomReport(limit: limit, remaining: remaining, resetWallMs: wall0 + resetIn)
        return reading
    }

    @Test func aShareBelowMinRemainingSkipsUntilTheReset() {
        var headroom = Headroom()
        headroom.merge(reading(requests: 3), now: t0, wallNowMs: wall0)
        #expect(headroom.skipUntil(now: t0, minRemaining: 0.05)?.until == t0 + .seconds(5))
        #expect(headroom.skipUntil(now: t0, minRemaining: 0.03) == nil, "3 of 100 is not below 3%")
        #expect(headroom.skipUntil(now: t0 + .seconds(5), minRemaining: 0.05) == nil, "the reset has passed")
        #expect(headroom.skipUntil(now: t0, minRemaining: 0) == nil)
        #expect(headroom.lowestShare(now: t0) == 0.03)
    }

    @Test func aKindWithoutAResetNeverSkips() {
        var headroom = Headroom()
        var reading = HeadroomReading()
        reading.tokens = HeadroomReport(limit: 100, remaining: 0, resetWallMs: nil)
        headroom.merge(reading, now: t0, wallNowMs: wall0)
        #expect(headroom.skipUntil(now: t0, minRemaining: 0.05) == nil)
    }

    @Test func aResetFarAwayIsCappedLikeARetryAfter() {
        var headroom = Headroom()
        headroom.merge(reading(requests: 0, resetIn: 86_400_000), now: t0, wallNowMs: wall0)
        #expect(headroom.skipUntil(now: t0, minRemaining: 0.05)?.until == t0 + Headroom.longestSkip)
    }

    @Test func theNewestAnswerReplacesWhatEarlierAnswersSaid() {
        var headroom = Headroom()
        headroom.merge(reading(requests: 999, limit: 1000, resetIn: 60_000), now: t0, wallNowMs: wall0)
        // A new limit with an earlier reset (a key moved to a smaller tier, a bucket drained).
        let merged1 = headroom.merge(reading(requests: 3, resetIn: 5_000), now: t0, wallNowMs: wall0)
        #expect(merged1 != 0)
        #expect(headroom.skipUntil(now: t0, minRemaining: 0.05)?.until == t0 + .seconds(5))
        let merged2 = headroom.merge(reading(requests: 3, resetIn: 5_000), now: t0, wallNowMs: wall0)
        #expect(merged2 == 0, "the same reading twice")
    }

    func peer(_ remaining: Int64, resetIn: Int64 = 5_000, now: MonotonicInstant? = nil, wall: Int64? = nil) -> Headroom.Bucket {
        Headroom.bucket(
            HeadroomReport(limit: 100, remaining: remaining, resetWallMs: (wall ?? wall0) + resetIn), now: now ?? t0, wallNowMs: wall ?? wall0, peer: "b"
        )
    }

    @Test func aPeersReportMergesByLaterResetThenLowerCount() {
        var headroom = Headroom()
        let merged3 = headroom.merge(.requests, peer(10), now: t0)
        #expect(merged3)
        let merged4 = headroom.merge(.requests, peer(40), now: t0)
        #expect(!merged4, "same window, more left: stale")
        let merged5 = headroom.merge(.requests, peer(4), now: t0)
        #expect(merged5)
        let merged6 = headroom.merge(.requests, peer(90, resetIn: 3_000), now: t0)
        #expect(!merged6, "an earlier reset loses")
        let merged7 = headroom.merge(.requests, peer(90, resetIn: 65_000), now: t0)
        #expect(merged7, "a later one (a new window) wins")
        #expect(headroom[.requests]?.remaining == 90)
        let later = t0 + .seconds(70)
        let merged8 = headroom.merge(.requests, peer(50, resetIn: 1_000, now: later, wall: wall0 + 70_000), now: later)
        #expect(merged8, "a passed reset gives way")
        // This replica's own answer does not undo a peer's low report of the same window.
        var low = Headroom()
        _ = low.merge(.requests, peer(2), now: t0)
        low.merge(reading(requests: 60, resetIn: 4_000), now: t0, wallNowMs: wall0)
        #expect(low.skipUntil(now: t0, minRemaining: 0.05)?.peer == "b")
    }

    func table(minRemaining: String = "5%") throws -> RoutingTable {
        let yaml = """
            version: 1
            providers:
              a: { type: anthropic, base_url: "http://127.0.0.1:1", api_key_env: K }
            models:
              sonnet: { provider: a, model: claude-sonnet-4-5 }
              haiku: { provider: a, model: claude-haiku-4-5 }
            routes:
              default: { models: [sonnet, haiku], headroom: { min_remaining: \(minRemaining) } }
            """
        return RoutingTable(config: try ConfigLoader(environment: ["K": "sk-ant-test-0000000000"]).load(yaml: yaml, source: "test").config)
    }

    func select(_ route: RoutingTable.Route, at now: MonotonicInstant) -> (ModelSelector.Result, [DecisionEntry]) {
        var decisions: [DecisionEntry] = []
        var transitions: [ObservedTransition] = []
        let result = ModelSelector.select(
            route: route, preferred: nil, left: [], now: now, allowForcedProbe: true, decisions: &decisions, transitions: &transitions
        )
        if case .selected(let selection) = result {
            route.models[selection.index].health.withState { state in
                _ = state.finish(selection.ticket, effect: .success, now: now)
            }
        }
        return (result, decisions)
    }

    func selectedIndex(_ result: ModelSelector.Result) -> Int? {
        if case .selected(let selection) = result { return selection.index }
        return nil
    }

    @Test func selectionPassesOverALowModelUntilItsReset() throws {
        let route = try #require(try table().route(named: "default"))
        route.models[0].health.withState { _ = $0.headroom.merge(reading(requests: 3), now: t0, wallNowMs: wall0) }
        let (result, decisions) = select(route, at: t0)
        #expect(selectedIndex(result) == 1)
        #expect(decisions.first == DecisionEntry(model: "sonnet", breaker: .closed, action: .skipped, reason: "headroom"))
        let (afterReset, _) = select(route, at: t0 + .seconds(5))
        #expect(selectedIndex(afterReset) == 0)
    }

    @Test func whenEveryModelIsLowTheFirstNotSpentStillServes() throws {
        let route = try #require(try table().route(named: "default"))
        route.models[0].health.withState { _ = $0.headroom.merge(reading(requests: 0), now: t0, wallNowMs: wall0) }
        route.models[1].health.withState { _ = $0.headroom.merge(reading(requests: 2), now: t0, wallNowMs: wall0) }
        let (result, decisions) = select(route, at: t0)
        #expect(selectedIndex(result) == 1)
        #expect(decisions.last == DecisionEntry(model: "haiku", breaker: .closed, action: .sent, reason: "headroom_fallback"))
        route.models[1].health.withState { _ = $0.headroom.merge(reading(requests: 0), now: t0, wallNowMs: wall0) }
        let (spent, _) = select(route, at: t0)
        guard case .unavailable(let retryAfter) = spent else {
            Issue.record("expected no model available, got \(spent)")
            return
        }
        #expect(retryAfter == .seconds(5))
    }

    @Test func minRemainingZeroTurnsHeadroomOff() throws {
        let route = try #require(try table(minRemaining: "0").route(named: "default"))
        route.models[0].health.withState { _ = $0.headroom.merge(reading(requests: 1), now: t0, wallNowMs: wall0) }
        #expect(selectedIndex(select(route, at: t0).0) == 0)
    }
}
