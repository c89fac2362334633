/// One line of a request's routing decision, as the audit log shows it.
public struct DecisionEntry: Sendable, Equatable {
    public enum Action: String, Sendable {
        case sent
        case skipped
    }

    public var model: String
    public var breaker: CircuitBreaker.State
    public var action: Action
    /// Why it was skipped; `forced_probe` when sent although no model admitted the request,
    /// `headroom_fallback` when sent with low headroom because nothing else admitted it.
    public var reason: String?
    /// The replica whose report the skip rests on (a breaker it opened, a 429 or a low headroom
    /// it saw), when it was another replica's: the audit line's `from_peer`.
    public var fromPeer: String?

    public init(model: String, breaker: CircuitBreaker.State, action: Action, reason: String?, fromPeer: String? = nil) {
        self.model = model
        self.breaker = breaker
        self.action = action
        self.reason = reason
        self.fromPeer = fromPeer
    }
}

/// A breaker transition observed while routing, to be logged and counted by the caller.
public struct ObservedTransition: Sendable {
    public var model: String
    public var transition: CircuitBreaker.Transition
    /// The replica whose event caused it (README, "Shared health across replicas"); nil: this one's own.
    public var fromPeer: String? = nil
}

/// Priority selection: walk the route's models in order and take the first that admits the
/// request. If none does, a model skipped only for its headroom (and not spent) takes it, the
/// first in route order: low headroom is a reason to prefer another model, not to refuse a
/// request one could still serve. Failing that, the route's `when_all_unavailable` policy.
public enum ModelSelector {
    public struct Selection: Sendable {
        /// Position in the route's model list.
        public var index: Int
        public var ticket: CircuitBreaker.Ticket
    }

    public enum Result: Sendable {
        case selected(Selection)
        /// Nothing admitted; `retryAfter` is the shortest wait until a model may admit again.
        case unavailable(retryAfter: Duration?)
    }

    /// - Parameters:
    ///   - preferred: try this position first (a retry on the same model); it is not marked
    ///     left when it refuses, the caller decides that.
    ///   - left: positions the request must not return to.
    ///   - allowForcedProbe: whether `when_all_unavailable: probe` may apply (only before the
    ///     first attempt: a request that already failed somewhere ends with that failure instead).
    public static func select(
        route: RoutingTable.Route,
        preferred: Int?,
        left: Set<Int>,
        now: MonotonicInstant,
        allowForcedProbe: Bool,
        probeGrace: Duration? = nil,
        decisions: inout [DecisionEntry],
        transitions: inout [ObservedTransition]
    ) -> Result {
        var earliestOpen: (index: Int, until: MonotonicInstant)?
        var earliestAvailable: MonotonicInstant?
        var lowHeadroom: [Int] = []
        let minRemaining = route.spec.headroom.minRemaining

        func consider(_ index: Int) -> CircuitBreaker.Ticket? {
            let model = route.models[index]
            let (admission, transition, state) = model.health.withState { state in
                let (admission, transition) = state.tryAdmit(now: now, probeGrace: probeGrace, minRemaining: minRemaining)
                return (admission, transition, state.breaker.state)
            }
            if let transition { transitions.append(ObservedTransition(model: model.name, transition: transition)) }
            switch admission {
            case .admitted(let ticket):
                decisions.append(DecisionEntry(model: model.name, breaker: state, action: .sent, reason: nil))
                return ticket
            case .skipped(let reason, let availableAt, let peer):
                decisions.append(DecisionEntry(model: model.name, breaker: state, action: .skipped, reason: reason.rawValue, fromPeer: peer))
                if reason == .headroom { lowHeadroom.append(index) }
                if let availableAt {
                    earliestAvailable = min(earliestAvailable ?? availableAt, availableAt)
                    if reason == .breakerOpen, availableAt < (earliestOpen?.until ?? MonotonicInstant(nanoseconds: .max)) {
                        earliestOpen = (index, availableAt)
                    }
                }
                return nil
            }
        }

        if let preferred, let ticket = consider(preferred) {
            return .selected(Selection(index: preferred, ticket: ticket))
        }
        for index in route.models.indices where index != preferred && !left.contains(index) {
            if let ticket = consider(index) {
                return .selected(Selection(index: index, ticket: ticket))
            }
        }
        for index in lowHeadroom {
            let model = route.models[index]
            let (admission, transition, state) = model.health.withState { state -> (ModelState.Admission, CircuitBreaker.Transition?, CircuitBreaker.State) in
                guard !state.headroom.isSpent(now: now) else { return (.skipped(.headroom, availableAt: nil), nil, state.breaker.state) }
                let (admission, transition) = state.tryAdmit(now: now, probeGrace: probeGrace, minRemaining: nil)
                return (admission, transition, state.breaker.state)
            }
            if let transition { transitions.append(ObservedTransition(model: model.name, transition: transition)) }
            if case .admitted(let ticket) = admission {
                decisions.append(DecisionEntry(model: model.name, breaker: state, action: .sent, reason: "headroom_fallback"))
                return .selected(Selection(index: index, ticket: ticket))
            }
        }
        if allowForcedProbe, probeGrace == nil, route.spec.whenAllUnavailable == .probe, let (index, _) = earliestOpen {
            let model = route.models[index]
            let reason = "no model of route '\(route.name)' admitted a request; sending it as a probe"
            let (ticket, transition) = model.health.withState { $0.forceProbe(now: now, reason: reason) }
            if let transition { transitions.append(ObservedTransition(model: model.name, transition: transition)) }
            decisions.append(DecisionEntry(model: model.name, breaker: .halfOpen, action: .sent, reason: "forced_probe"))
            return .selected(Selection(index: index, ticket: ticket))
        }
        return .unavailable(retryAfter: earliestAvailable.map { $0 - now })
    }
}
