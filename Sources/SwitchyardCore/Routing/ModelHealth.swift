import Synchronization

/// Why a model did not take a request.
public enum SkipReason: String, Sendable, Equatable {
    case breakerOpen = "breaker_open"
    case probesBusy = "half_open_busy"
    case rateLimited = "rate_limited"
    /// A rate limit's remaining share is below the route's `headroom.min_remaining`.
    case headroom
    case disabled
    /// The request already left this model (it spent its attempts there, or got a 429/529).
    case alreadyTried = "already_tried"
}

/// The health record of one configured model: pure state, mutated under the owning
/// ``ModelHealth``'s lock. Everything here is a decision; nothing here does I/O.
public struct ModelState: Sendable {
    public var breaker: CircuitBreaker
    public var rateLimitedUntil: MonotonicInstant?
    /// Set by an operator (`/admin/models/{name}/disable`): who, for the state page.
    public var disabledBy: String?
    public var inFlight = 0
    public var lastError: LastError?
    /// Exponentially weighted moving average of attempt latency, in milliseconds.
    public var latencyEWMA: Double?
    /// The rate-limit headroom the upstream's answers (or peers) reported.
    public var headroom = Headroom()
    /// The breaker's open period came from this peer (valid while it is open until `until`).
    public var breakerPeer: PeerMark?
    /// `rateLimitedUntil` came from this peer (valid while it is still that instant).
    public var rateLimitPeer: PeerMark?

    /// Which replica of the fleet set a deadline (``FleetEvent``), for the audit's `from_peer`.
    public struct PeerMark: Sendable, Equatable {
        public var replica: String
        public var until: MonotonicInstant
    }

    public struct LastError: Sendable {
        public var description: String
        public var upstreamRequestID: String?
        public var wallMilliseconds: Int64
    }

    public enum Admission: Sendable, Equatable {
        case admitted(CircuitBreaker.Ticket)
        /// `peer`: the replica whose report the skip rests on, when another replica's.
        case skipped(SkipReason, availableAt: MonotonicInstant?, peer: String? = nil)
    }

    public init(policy: BreakerPolicy) {
        breaker = CircuitBreaker(policy: policy)
    }

    /// - Parameters:
    ///   - probeGrace: set for batch work (it comes second: see
    ///     ``CircuitBreaker/admitDeferring(now:grace:)``); nil for interactive requests.
    ///   - minRemaining: the route's `headroom.min_remaining`; nil: headroom is not looked at.
    public mutating func tryAdmit(
        now: MonotonicInstant, probeGrace: Duration? = nil, minRemaining: Double? = nil
    ) -> (Admission, CircuitBreaker.Transition?) {
        if disabledBy != nil { return (.skipped(.disabled, availableAt: nil), nil) }
        if let until = rateLimitedUntil {
            if now < until { return (.skipped(.rateLimited, availableAt: until, peer: rateLimitPeer?.until == until ? rateLimitPeer?.replica : nil), nil) }
            rateLimitedUntil = nil
            rateLimitPeer = nil
        }
        if let minRemaining, let skip = headroom.skipUntil(now: now, minRemaining: minRemaining) {
            return (.skipped(.headroom, availableAt: skip.until, peer: skip.peer), nil)
        }
        let (admission, transition) = probeGrace.map { breaker.admitDeferring(now: now, grace: $0) } ?? breaker.admit(now: now)
        switch admission {
        case .admitted(let ticket):
            inFlight += 1
            return (.admitted(ticket), transition)
        case .open(let until):
            return (.skipped(.breakerOpen, availableAt: until, peer: openPeer), transition)
        case .probesBusy:
            return (.skipped(.probesBusy, availableAt: nil), transition)
        }
    }

    /// Whether a request would be admitted now, without taking anything, and otherwise when it
    /// could be next (nil: only an event can tell, such as a probe finishing).
    public func availability(now: MonotonicInstant, probeGrace: Duration?) -> (admits: Bool, next: MonotonicInstant?) {
        if disabledBy != nil { return (false, nil) }
        if let until = rateLimitedUntil, now < until { return (false, until) }
        let grace = probeGrace ?? .zero
        switch breaker.state {
        case .closed:
            return (true, nil)
        case .open:
            let free = breaker.openUntil + grace
            return now >= free ? (true, nil) : (false, free)
        case .halfOpen:
            guard breaker.probesInFlight < breaker.policy.halfOpenProbes else { return (false, nil) }
            guard let since = breaker.probeSlotFreeSince else { return (true, nil) }
            return now >= since + grace ? (true, nil) : (false, since + grace)
        }
    }

    /// The peer whose report opened the breaker, while that open period lasts.
    public var openPeer: String? {
        guard breaker.state == .open, let mark = breakerPeer, mark.until == breaker.openUntil else { return nil }
        return mark.replica
    }

    public mutating func forceProbe(now: MonotonicInstant, reason: String) -> (CircuitBreaker.Ticket, CircuitBreaker.Transition?) {
        inFlight += 1
        return breaker.forceProbe(now: now, reason: reason)
    }

    public mutating func finish(_ ticket: CircuitBreaker.Ticket, effect: BreakerEffect, now: MonotonicInstant) -> CircuitBreaker.Transition? {
        inFlight = max(0, inFlight - 1)
        switch effect {
        case .success: return breaker.recordSuccess(ticket, now: now)
        case .failure(let cause): return breaker.recordFailure(ticket, cause: cause, now: now)
        case .neutral:
            breaker.release(ticket, now: now)
            return nil
        }
    }

    /// An attempt's verdict applied to the model: the breaker learns its effect, and a 429 keeps
    /// the model skipped for `rateLimitFor` (never shortening a skip already in force).
    public mutating func settle(
        _ ticket: CircuitBreaker.Ticket, effect: BreakerEffect, rateLimitFor: Duration?, now: MonotonicInstant
    ) -> CircuitBreaker.Transition? {
        let transition = finish(ticket, effect: effect, now: now)
        if let rateLimitFor {
            rateLimitedUntil = max(rateLimitedUntil ?? now, now + rateLimitFor)
        }
        return transition
    }

    public mutating func recordLatency(milliseconds: Double) {
        if let current = latencyEWMA {
            latencyEWMA = current * 0.8 + milliseconds * 0.2
        } else {
            latencyEWMA = milliseconds
        }
    }
}

/// What an attempt's outcome does to the model's breaker.
public enum BreakerEffect: Sendable, Equatable {
    case success
    case failure(cause: String)
    /// Says nothing about the model's health (4xx, 429, cancellation).
    case neutral
}

/// One model's shared, lockable health; shared by every route that uses the model and kept
/// across reloads while the model's upstream identity is unchanged.
public final class ModelHealth: Sendable {
    public let name: String
    /// Provider, base URL and upstream model: a reload keeps the record only when this is unchanged.
    public let identity: String
    private let state: Mutex<ModelState>

    public init(name: String, identity: String, policy: BreakerPolicy) {
        self.name = name
        self.identity = identity
        self.state = Mutex(ModelState(policy: policy))
    }

    public func withState<T>(_ body: (inout ModelState) -> T) -> T {
        state.withLock { body(&$0) }
    }

    public var snapshot: ModelState { state.withLock { $0 } }
}
