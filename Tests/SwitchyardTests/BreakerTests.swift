import Testing

@testable import SwitchyardCore

@Suite("Circuit breaker transitions")
struct BreakerTests {
    let t0 = MonotonicInstant(nanoseconds: 1_000_000_000_000)

    func policy(threshold: Int = 3, openFor: Duration = .seconds(30), maxOpenFor: Duration = .seconds(300), probes: Int = 1, rate: FailureRatePolicy? = nil) -> BreakerPolicy {
        BreakerPolicy(failureThreshold: threshold, openFor: openFor, maxOpenFor: maxOpenFor, halfOpenProbes: probes, failureRate: rate)
    }

    func admit(_ breaker: inout CircuitBreaker, at now: MonotonicInstant) -> CircuitBreaker.Ticket? {
        if case .admitted(let ticket) = breaker.admit(now: now).0 { return ticket }
        return nil
    }

    func admitted(_ breaker: inout CircuitBreaker, at now: MonotonicInstant) throws -> CircuitBreaker.Ticket {
        guard let ticket = admit(&breaker, at: now) else { throw HarnessError("breaker refused at \(now)") }
        return ticket
    }

    /// Fails `count` requests in a row at `now`; returns the last transition.
    @discardableResult
    func fail(_ breaker: inout CircuitBreaker, times count: Int, at now: MonotonicInstant, cause: String = "500") -> CircuitBreaker.Transition? {
        var last: CircuitBreaker.Transition?
        for _ in 0..<count {
            guard let ticket = admit(&breaker, at: now) else { return last }
            last = breaker.recordFailure(ticket, cause: cause, now: now) ?? last
        }
        return last
    }

    @Test func closedOpensAfterThresholdConsecutiveFailures() throws {
        var breaker = CircuitBreaker(policy: policy())
        #expect(fail(&breaker, times: 2, at: t0) == nil)
        #expect(breaker.state == .closed)
        let ticket = try admitted(&breaker, at: t0)
        let recorded = breaker.recordFailure(ticket, cause: "529", now: t0)
        let transition = try #require(recorded)
        #expect(transition.from == .closed && transition.to == .open)
        #expect(transition.reason == "3 consecutive failures (500, 500, 529)")
        #expect(transition.openFor == .seconds(30))
        #expect(breaker.admit(now: t0 + .seconds(29)).0 == .open(until: t0 + .seconds(30)))
    }

    @Test func successInClosedResetsTheCount() throws {
        var breaker = CircuitBreaker(policy: policy())
        fail(&breaker, times: 2, at: t0)
        let ticket = try admitted(&breaker, at: t0)
        _ = breaker.recordSuccess(ticket, now: t0)
        #expect(breaker.consecutiveFailures == 0)
        fail(&breaker, times: 2, at: t0)
        #expect(breaker.state == .closed, "two more failures are not three in a row")
    }

    @Test func openBecomesHalfOpenWhenThePeriodEndsAndAdmitsLimitedProbes() throws {
        var breaker = CircuitBreaker(policy: policy(probes: 2))
        fail(&breaker, times: 3, at: t0)
        #expect(breaker.effectiveState(now: t0 + .seconds(30)) == .halfOpen)
        let (admission, transition) = breaker.admit(now: t0 + .seconds(30))
        #expect(transition?.from == .open && transition?.to == .halfOpen)
        guard case .admitted(let first) = admission else { Issue.record("first probe refused"); return }
        #expect(first.isProbe)
        let second = try admitted(&breaker, at: t0 + .seconds(30))
        #expect(second.isProbe)
        #expect(breaker.admit(now: t0 + .seconds(30)).0 == .probesBusy, "only half_open_probes at once")
        // A probe that ends without a verdict (4xx, cancellation) gives its slot back.
        breaker.release(second, now: t0 + .seconds(30))
        #expect(admit(&breaker, at: t0 + .seconds(30)) != nil)
    }

    /// Batch work comes second: no probe on an open breaker, and a free half-open slot only after
    /// it has stood free for the grace period (interactive traffic gets it first).
    @Test func deferredAdmissionWaitsOutTheProbeGrace() throws {
        var breaker = CircuitBreaker(policy: policy())
        fail(&breaker, times: 3, at: t0)
        let grace = Duration.seconds(2)
        #expect(breaker.admitDeferring(now: t0 + .seconds(10), grace: grace).0 == .open(until: t0 + .seconds(30)), "never while open")
        #expect(
            breaker.admitDeferring(now: t0 + .seconds(31), grace: grace).0 == .open(until: t0 + .seconds(32)),
            "the slot has stood free only 1 s"
        )
        #expect(breaker.state == .open, "waiting for the grace does not move the breaker")
        // Interactive traffic arrives within the grace and takes the probe.
        guard case .admitted(let interactive) = breaker.admit(now: t0 + .seconds(31)).0 else {
            Issue.record("interactive probe refused")
            return
        }
        #expect(breaker.admitDeferring(now: t0 + .seconds(40), grace: grace).0 == .probesBusy)
        // It ends without a verdict: the slot is free again, from that moment.
        breaker.release(interactive, now: t0 + .seconds(41))
        #expect(breaker.admitDeferring(now: t0 + .seconds(42), grace: grace).0 == .open(until: t0 + .seconds(43)))
        guard case .admitted(let batch) = breaker.admitDeferring(now: t0 + .seconds(43), grace: grace).0 else {
            Issue.record("batch probe refused after the grace")
            return
        }
        #expect(batch.isProbe)
        #expect(breaker.recordSuccess(batch, now: t0 + .seconds(44))?.to == .closed, "a batch probe closes the breaker like any probe")
        guard case .admitted(let closed) = breaker.admitDeferring(now: t0 + .seconds(44), grace: grace).0 else {
            Issue.record("closed breaker refused batch work")
            return
        }
        #expect(!closed.isProbe)
    }

    @Test func withNoInteractiveTrafficBatchWorkProbesAfterTheGrace() throws {
        var breaker = CircuitBreaker(policy: policy())
        fail(&breaker, times: 3, at: t0)
        let (admission, transition) = breaker.admitDeferring(now: t0 + .seconds(32), grace: .seconds(2))
        guard case .admitted(let ticket) = admission else {
            Issue.record("no probe 2 s after the open period")
            return
        }
        #expect(ticket.isProbe)
        #expect(transition?.to == .halfOpen)
    }

    @Test func probeSuccessClosesAndResetsTheDoubling() throws {
        var breaker = CircuitBreaker(policy: policy())
        fail(&breaker, times: 3, at: t0)
        let probe = try admitted(&breaker, at: t0 + .seconds(30))
        let transition = breaker.recordSuccess(probe, now: t0 + .seconds(31))
        #expect(transition?.to == .closed && transition?.reason == "probe succeeded")
        #expect(breaker.trips == 0)
        let retrip = fail(&breaker, times: 3, at: t0 + .seconds(40))
        #expect(retrip?.openFor == .seconds(30), "back to the first period")
    }

    @Test func probeFailureReopensWithADoubledPeriodUpToTheCap() throws {
        var breaker = CircuitBreaker(policy: policy(openFor: .seconds(30), maxOpenFor: .seconds(100)))
        var now = t0
        fail(&breaker, times: 3, at: now)
        var periods: [Duration] = [.seconds(30)]
        for _ in 0..<4 {
            now = breaker.openUntil
            let probe = try admitted(&breaker, at: now)
            let recorded = breaker.recordFailure(probe, cause: "500", now: now)
            let transition = try #require(recorded)
            #expect(transition.from == .halfOpen && transition.to == .open)
            #expect(transition.reason == "probe failed (500)")
            periods.append(try #require(transition.openFor))
        }
        #expect(periods == [.seconds(30), .seconds(60), .seconds(100), .seconds(100), .seconds(100)])
    }

    @Test func lateResultsFromBeforeATripChangeNothing() throws {
        var breaker = CircuitBreaker(policy: policy())
        let slow = try admitted(&breaker, at: t0)
        fail(&breaker, times: 3, at: t0)
        #expect(breaker.state == .open)
        #expect(breaker.recordSuccess(slow, now: t0 + .seconds(1)) == nil)
        #expect(breaker.state == .open, "a success admitted before the trip does not close it")
    }

    @Test func failureRateTripsOnceTheWindowHoldsEnoughRequests() throws {
        let rate = FailureRatePolicy(threshold: 0.5, window: .seconds(60), minRequests: 10)
        var breaker = CircuitBreaker(policy: policy(threshold: 100, rate: rate))
        var now = t0
        // Alternate success and failure: 50 % failed, never 3 in a row.
        var tripped: CircuitBreaker.Transition?
        for index in 0..<10 {
            now = now + .seconds(1)
            let ticket = try admitted(&breaker, at: now)
            if index % 2 == 0 {
                tripped = breaker.recordFailure(ticket, cause: "500", now: now) ?? tripped
            } else {
                _ = breaker.recordSuccess(ticket, now: now)
            }
            if index < 9 { #expect(tripped == nil, "below min_requests at \(index + 1)") }
        }
        // The 10th request is a success; the next failure sees 6 of 11 failed.
        let ticket = try admitted(&breaker, at: now)
        tripped = breaker.recordFailure(ticket, cause: "500", now: now)
        #expect(tripped?.to == .open)
        #expect(tripped?.reason.hasPrefix("failure rate 55% over 1m") == true)
    }

    @Test func failureRateForgetsRequestsOutsideTheWindow() throws {
        let rate = FailureRatePolicy(threshold: 0.5, window: .seconds(10), minRequests: 4)
        func run(laterBy gap: Duration) throws -> CircuitBreaker.Transition? {
            var breaker = CircuitBreaker(policy: policy(threshold: 100, rate: rate))
            // fail, ok, fail, ok: 2 of 4 failed, and no trip (successes never trip).
            for failed in [true, false, true, false] {
                let ticket = try admitted(&breaker, at: t0)
                if failed {
                    #expect(breaker.recordFailure(ticket, cause: "500", now: t0) == nil)
                } else {
                    _ = breaker.recordSuccess(ticket, now: t0)
                }
            }
            let later = t0 + gap
            let ticket = try admitted(&breaker, at: later)
            return breaker.recordFailure(ticket, cause: "500", now: later)
        }
        #expect(try run(laterBy: .seconds(1))?.to == .open, "3 of 5 failed within the window")
        #expect(try run(laterBy: .seconds(60)) == nil, "the old requests left the window: 1 request is below min_requests")
    }

    @Test func forcedProbeOpensTheWayWhileOpen() {
        var breaker = CircuitBreaker(policy: policy())
        fail(&breaker, times: 3, at: t0)
        let (ticket, transition) = breaker.forceProbe(now: t0 + .seconds(1), reason: "nothing else")
        #expect(ticket.isProbe)
        #expect(transition?.to == .halfOpen)
        #expect(breaker.recordSuccess(ticket, now: t0 + .seconds(2))?.to == .closed)
    }
}
