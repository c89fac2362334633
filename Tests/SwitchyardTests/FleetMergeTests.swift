import Testing

@testable import SwitchyardCore

/// The fleet's messages and merge rule as pure functions: what a replica tells, how a peer's
/// event changes a model's state (a later deadline wins), and what the audit says of it.
@Suite("Fleet merge")
struct FleetMergeTests {
    let t0 = MonotonicInstant(nanoseconds: 1_000_000_000_000)
    let wall0: Int64 = 1_769_860_800_000
    let policy = BreakerPolicy(failureThreshold: 3, openFor: .seconds(30), maxOpenFor: .seconds(300), halfOpenProbes: 1, failureRate: nil)

    @Test func eventsRoundTripAndStayUnderPostgresNotifyLimit() throws {
        let changes: [FleetEvent.Change] = [
            .breakerOpened(untilMs: wall0 + 30_000, reason: "3 consecutive failures (500, 500, 529)"),
            .breakerClosed(reason: "probe succeeded"),
            .rateLimited(untilMs: wall0 + 10_000),
            .headroom(kind: .requests, report: HeadroomReport(limit: 100, remaining: 3, resetWallMs: wall0 + 5_000)),
        ]
        for change in changes {
            let event = FleetEvent(replica: "replica-a", instance: "k3j", model: "sonnet", upstreamModel: "claude-sonnet-4-5", change: change)
            let payload = try #require(event.encoded())
            #expect(FleetEvent.decode(payload) == event)
        }
        let long = FleetEvent(
            replica: "a", instance: "i", model: "sonnet", upstreamModel: "m", change: .breakerOpened(untilMs: wall0, reason: String(repeating: "é", count: 20_000))
        )
        let payload = try #require(long.encoded())
        #expect(payload.utf8.count < 8000)
        #expect(FleetEvent.decode(#"{"v":2,"replica":"a"}"#) == nil)
        #expect(FleetEvent.decode("not json") == nil)
    }

    func openedState(until: MonotonicInstant) -> ModelState {
        var state = ModelState(policy: policy)
        _ = state.apply(.breakerOpened(untilMs: wall0 + (until - t0).milliseconds, reason: "x"), from: "b", now: t0, wallNowMs: wall0)
        return state
    }

    @Test func aPeersOpenBreakerOpensThisOneUntilTheSameDeadline() throws {
        var state = ModelState(policy: policy)
        let applied = state.apply(
            .breakerOpened(untilMs: wall0 + 30_000, reason: "3 consecutive failures (500, 500, 500)"), from: "replica-a", now: t0, wallNowMs: wall0
        )
        let transition = try #require(applied.transition)
        #expect(transition.from == .closed && transition.to == .open)
        #expect(transition.reason == "from replica replica-a: 3 consecutive failures (500, 500, 500)")
        #expect(state.breaker.openUntil == t0 + .seconds(30))
        let (admission, _) = state.tryAdmit(now: t0 + .seconds(1))
        #expect(admission == .skipped(.breakerOpen, availableAt: t0 + .seconds(30), peer: "replica-a"))
    }

    @Test func aLaterDeadlineWinsAndAnEarlierOneChangesNothing() {
        var state = openedState(until: t0 + .seconds(30))
        #expect(state.apply(.breakerOpened(untilMs: wall0 + 10_000, reason: "x"), from: "c", now: t0, wallNowMs: wall0) == .nothing)
        #expect(state.breaker.openUntil == t0 + .seconds(30))
        let later = state.apply(.breakerOpened(untilMs: wall0 + 45_000, reason: "x"), from: "c", now: t0, wallNowMs: wall0)
        #expect(later.changed && later.transition == nil, "a longer open period is no new transition")
        #expect(state.breaker.openUntil == t0 + .seconds(45))
        #expect(state.openPeer == "c")
        // Expired on arrival: nothing.
        var fresh = ModelState(policy: policy)
        #expect(fresh.apply(.breakerOpened(untilMs: wall0 - 1, reason: "x"), from: "c", now: t0, wallNowMs: wall0) == .nothing)
        #expect(fresh.breaker.state == .closed)
    }

    @Test func aPeersDeadlineIsCappedByThisReplicasMaxOpenFor() {
        var state = ModelState(policy: policy)
        _ = state.apply(.breakerOpened(untilMs: wall0 + 86_400_000, reason: "x"), from: "skewed", now: t0, wallNowMs: wall0)
        #expect(state.breaker.openUntil == t0 + .seconds(300))
    }

    @Test func aPeersProbeSuccessClosesOnlyABreakerWhoseOpenPeriodIsOver() {
        var open = openedState(until: t0 + .seconds(30))
        #expect(open.apply(.breakerClosed(reason: "probe succeeded"), from: "a", now: t0 + .seconds(10), wallNowMs: wall0 + 10_000) == .nothing)
        #expect(open.breaker.state == .open)
        let closed = open.apply(.breakerClosed(reason: "probe succeeded"), from: "a", now: t0 + .seconds(31), wallNowMs: wall0 + 31_000)
        #expect(closed.transition?.to == .closed)
        #expect(open.breaker.state == .closed)
    }

    @Test func rateLimitsAndHeadroomMergeByTheSameRule() {
        var state = ModelState(policy: policy)
        #expect(state.apply(.rateLimited(untilMs: wall0 + 10_000), from: "a", now: t0, wallNowMs: wall0).changed)
        #expect(!state.apply(.rateLimited(untilMs: wall0 + 5_000), from: "b", now: t0, wallNowMs: wall0).changed)
        #expect(state.tryAdmit(now: t0).0 == .skipped(.rateLimited, availableAt: t0 + .seconds(10), peer: "a"))
        let report = HeadroomReport(limit: 100, remaining: 2, resetWallMs: wall0 + 5_000)
        #expect(state.apply(.headroom(kind: .requests, report: report), from: "a", now: t0, wallNowMs: wall0).changed)
        #expect(state.headroom.skipUntil(now: t0, minRemaining: 0.05)?.peer == "a")
        #expect(!state.apply(.headroom(kind: .requests, report: report), from: "a", now: t0, wallNowMs: wall0).changed, "the same news twice")
    }

    @Test func aReplicaTellsOpensClosesLaterRateLimitsAndLowHeadroom() throws {
        var state = ModelState(policy: policy)
        var transition: CircuitBreaker.Transition?
        for _ in 0..<3 {
            guard case .admitted(let ticket) = state.tryAdmit(now: t0).0 else { break }
            transition = state.finish(ticket, effect: .failure(cause: "500"), now: t0) ?? transition
        }
        let opened = state.announcements(transition: transition, rateLimitedBefore: nil, headroomSkipBefore: nil, floor: 0, now: t0, wallNowMs: wall0)
        #expect(opened == [.breakerOpened(untilMs: wall0 + 30_000, reason: "3 consecutive failures (500, 500, 500)")])

        var limited = ModelState(policy: policy)
        limited.rateLimitedUntil = t0 + .seconds(10)
        #expect(
            limited.announcements(transition: nil, rateLimitedBefore: nil, headroomSkipBefore: nil, floor: 0, now: t0, wallNowMs: wall0)
                == [.rateLimited(untilMs: wall0 + 10_000)]
        )
        #expect(
            limited.announcements(transition: nil, rateLimitedBefore: t0 + .seconds(10), headroomSkipBefore: nil, floor: 0, now: t0, wallNowMs: wall0)
                .isEmpty, "no news: the deadline did not move"
        )

        var low = ModelState(policy: policy)
        var reading = HeadroomReading()
        reading.requests = HeadroomReport(limit: 100, remaining: 3, resetWallMs: wall0 + 5_000)
        low.headroom.merge(reading, now: t0, wallNowMs: wall0)
        #expect(
            low.announcements(transition: nil, rateLimitedBefore: nil, headroomSkipBefore: nil, floor: 0.05, now: t0, wallNowMs: wall0)
                == [.headroom(kind: .requests, report: HeadroomReport(limit: 100, remaining: 3, resetWallMs: wall0 + 5_000))]
        )
        #expect(low.announcements(transition: nil, rateLimitedBefore: nil, headroomSkipBefore: nil, floor: 0.02, now: t0, wallNowMs: wall0).isEmpty)
        // What a peer said is not told again.
        var relayed = ModelState(policy: policy)
        _ = relayed.apply(.rateLimited(untilMs: wall0 + 10_000), from: "a", now: t0, wallNowMs: wall0)
        #expect(relayed.announcements(transition: nil, rateLimitedBefore: nil, headroomSkipBefore: nil, floor: 0, now: t0, wallNowMs: wall0).isEmpty)
    }

    @Test func theOutboxIsBoundedAndDropsStaleEvents() throws {
        let outbox = FleetOutbox(replica: "a", capacity: 2)
        let table = RoutingTable(
            config: try ConfigLoader(environment: ["K": "sk-ant-test-0000000000"]).load(
                yaml: """
                    version: 1
                    providers: { a: { type: anthropic, base_url: "http://127.0.0.1:1", api_key_env: K } }
                    models: { sonnet: { provider: a, model: m } }
                    routes: { default: { models: [sonnet] } }
                    """, source: "test"
            ).config
        )
        let model = try #require(table.model(named: "sonnet"))
        outbox.post([.rateLimited(untilMs: 1), .rateLimited(untilMs: 2), .rateLimited(untilMs: 3)], model: model, wallNowMs: wall0)
        let (events, dropped) = outbox.take(wallNowMs: wall0)
        #expect(events.map(\.event.change) == [.rateLimited(untilMs: 2), .rateLimited(untilMs: 3)])
        #expect(dropped == 1)
        outbox.post([.rateLimited(untilMs: 4)], model: model, wallNowMs: wall0)
        let stale = outbox.take(wallNowMs: wall0 + FleetOutbox.maxAge.milliseconds + 1)
        #expect(stale.events.isEmpty && stale.dropped == 1)
    }
}
