/// The circuit breaker of one model, as a pure state machine: callers pass `now`, it answers with
/// what to do and which transition (if any) happened. It never reads a clock or does I/O.
public struct CircuitBreaker: Sendable {
    public enum State: String, Sendable, Equatable {
        case closed
        case halfOpen = "half_open"
        case open
    }

    /// Proof of admission. Results are applied only when the ticket is of the breaker's current
    /// generation, so a slow request admitted before a trip cannot close or re-open it later.
    public struct Ticket: Sendable, Equatable {
        public let generation: UInt64
        public let isProbe: Bool
    }

    public enum Admission: Sendable, Equatable {
        case admitted(Ticket)
        /// Open: no request until `until`.
        case open(until: MonotonicInstant)
        /// Half-open and every probe slot is taken.
        case probesBusy
    }

    public struct Transition: Sendable, Equatable {
        public var from: State
        public var to: State
        public var reason: String
        /// Set when the transition opens the breaker.
        public var openFor: Duration?
    }

    public var policy: BreakerPolicy {
        didSet {
            if policy.failureRate?.window != oldValue.failureRate?.window {
                window = policy.failureRate.map { FailureWindow(window: $0.window) }
            }
        }
    }
    public private(set) var state: State = .closed
    public private(set) var consecutiveFailures = 0
    /// End of the current open period (meaningful while open).
    public private(set) var openUntil = MonotonicInstant(nanoseconds: 0)
    public private(set) var probesInFlight = 0
    /// Since when a half-open probe slot has stood free (the end of the open period, or the
    /// moment a probe slot was given back): batch work waits `probe_grace` after it.
    public private(set) var probeSlotFreeSince: MonotonicInstant?
    /// Trips since the last probe success; doubles the open period.
    public private(set) var trips = 0
    private var generation: UInt64 = 0
    private var recentCauses: [String] = []
    private var window: FailureWindow?

    public init(policy: BreakerPolicy) {
        self.policy = policy
        self.window = policy.failureRate.map { FailureWindow(window: $0.window) }
    }

    /// The state as of `now`, without changing anything: an open breaker whose period has passed
    /// reads as half-open.
    public func effectiveState(now: MonotonicInstant) -> State {
        if state == .open, now >= openUntil { return .halfOpen }
        return state
    }

    /// Whether a request would be admitted now (for readiness and previews; does not take a slot).
    public func wouldAdmit(now: MonotonicInstant) -> Bool {
        switch effectiveState(now: now) {
        case .closed: return true
        case .halfOpen: return state == .open || probesInFlight < policy.halfOpenProbes
        case .open: return false
        }
    }

    public mutating func admit(now: MonotonicInstant) -> (Admission, Transition?) {
        var transition: Transition?
        if state == .open, now >= openUntil {
            transition = move(to: .halfOpen, reason: "open period of \(currentOpenPeriod.configNotation) ended")
            probeSlotFreeSince = openUntil
        }
        switch state {
        case .closed:
            return (.admitted(Ticket(generation: generation, isProbe: false)), transition)
        case .open:
            return (.open(until: openUntil), transition)
        case .halfOpen:
            guard probesInFlight < policy.halfOpenProbes else { return (.probesBusy, transition) }
            probesInFlight += 1
            return (.admitted(Ticket(generation: generation, isProbe: true)), transition)
        }
    }

    /// Admission for work that comes second (batch requests, README, "Non-urgent work: Message Batches"): never a probe
    /// on an open breaker, and a free half-open probe slot only once it has stood free for
    /// `grace`, so interactive traffic gets the probe first. A router with only batch work still
    /// probes, `grace` after the open period ends.
    public mutating func admitDeferring(now: MonotonicInstant, grace: Duration) -> (Admission, Transition?) {
        switch state {
        case .closed:
            break
        case .open:
            // The slot that opens at the end of the period stands free from then on.
            if now >= openUntil, now < openUntil + grace { return (.open(until: openUntil + grace), nil) }
        case .halfOpen:
            if probesInFlight < policy.halfOpenProbes, let since = probeSlotFreeSince, now < since + grace {
                return (.open(until: since + grace), nil)
            }
        }
        return admit(now: now)
    }

    /// Admits a probe while open, before the period ends: the route has no other model to try.
    public mutating func forceProbe(now: MonotonicInstant, reason: String) -> (Ticket, Transition?) {
        var transition: Transition?
        if state == .open {
            transition = move(to: .halfOpen, reason: reason)
        }
        if state == .closed {
            return (Ticket(generation: generation, isProbe: false), transition)
        }
        probesInFlight += 1
        return (Ticket(generation: generation, isProbe: true), transition)
    }

    public mutating func recordSuccess(_ ticket: Ticket, now: MonotonicInstant) -> Transition? {
        window?.record(failed: false, now: now)
        guard ticket.generation == generation else { return nil }
        switch state {
        case .closed:
            consecutiveFailures = 0
            recentCauses.removeAll(keepingCapacity: true)
            return nil
        case .halfOpen where ticket.isProbe:
            probesInFlight -= 1
            trips = 0
            return move(to: .closed, reason: "probe succeeded")
        case .halfOpen, .open:
            return nil
        }
    }

    /// - Parameter cause: short label of what failed (`500`, `529`, `timeout`), for the reason text.
    public mutating func recordFailure(_ ticket: Ticket, cause: String, now: MonotonicInstant) -> Transition? {
        window?.record(failed: true, now: now)
        guard ticket.generation == generation else { return nil }
        switch state {
        case .closed:
            consecutiveFailures += 1
            recentCauses.append(cause)
            if recentCauses.count > policy.failureThreshold { recentCauses.removeFirst() }
            if consecutiveFailures >= policy.failureThreshold {
                return trip(now: now, reason: "\(consecutiveFailures) consecutive failures (\(recentCauses.joined(separator: ", ")))")
            }
            if let rate = policy.failureRate, let window {
                let (failed, total) = window.counts(now: now)
                if total >= rate.minRequests, Double(failed) >= rate.threshold * Double(total) {
                    let percent = Int((Double(failed) * 100 / Double(total)).rounded())
                    return trip(
                        now: now,
                        reason: "failure rate \(percent)% over \(rate.window.configNotation) (\(failed) of \(total) requests)"
                    )
                }
            }
            return nil
        case .halfOpen where ticket.isProbe:
            probesInFlight -= 1
            return trip(now: now, reason: "probe failed (\(cause))")
        case .halfOpen, .open:
            return nil
        }
    }

    /// A probe ended with an outcome that says nothing about health (a 4xx, a cancellation):
    /// give its slot back.
    public mutating func release(_ ticket: Ticket, now: MonotonicInstant) {
        guard ticket.isProbe, ticket.generation == generation, state == .halfOpen else { return }
        probesInFlight = max(0, probesInFlight - 1)
        probeSlotFreeSince = now
    }

    /// Another replica's breaker for this model opened until `until`: open this one until then
    /// too, unless it is already open as long or longer (a later deadline wins). A transition
    /// only when it was not open; an open period that grows says nothing new to the audit log.
    public mutating func adoptOpen(until: MonotonicInstant, now: MonotonicInstant, reason: String) -> (changed: Bool, transition: Transition?) {
        guard until > now else { return (false, nil) }
        if state == .open {
            guard until > openUntil else { return (false, nil) }
            openUntil = until
            return (true, nil)
        }
        trips += 1
        openUntil = until
        var transition = move(to: .open, reason: reason)
        transition.openFor = until - now
        return (true, transition)
    }

    /// Another replica's probe succeeded: close this breaker too when its own open period is
    /// over (half-open, or open past its deadline). A breaker still open here has a later
    /// deadline than the peer's success, and keeps it.
    public mutating func adoptClose(now: MonotonicInstant, reason: String) -> Transition? {
        guard effectiveState(now: now) == .halfOpen else { return nil }
        trips = 0
        return move(to: .closed, reason: reason)
    }

    /// The open period the next trip would use, or the current one while open.
    public var currentOpenPeriod: Duration {
        let exponent = max(0, trips - 1)
        var period = policy.openFor
        for _ in 0..<exponent {
            period = period * 2
            if period >= policy.maxOpenFor { return policy.maxOpenFor }
        }
        return min(period, policy.maxOpenFor)
    }

    private mutating func trip(now: MonotonicInstant, reason: String) -> Transition {
        trips += 1
        let period = currentOpenPeriod
        openUntil = now + period
        var transition = move(to: .open, reason: reason)
        transition.openFor = period
        return transition
    }

    private mutating func move(to next: State, reason: String) -> Transition {
        let transition = Transition(from: state, to: next, reason: reason, openFor: nil)
        state = next
        generation &+= 1
        consecutiveFailures = 0
        probesInFlight = 0
        probeSlotFreeSince = nil
        recentCauses.removeAll(keepingCapacity: true)
        if next != .halfOpen { window?.reset() }
        return transition
    }
}
