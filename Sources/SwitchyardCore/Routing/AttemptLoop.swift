/// The decisions of one request's walk through its route: select a model, and after each attempt's
/// verdict, answer, stop, move on, or wait and retry. Pure: the caller performs the attempts, applies
/// their verdicts to the models' health (``ModelState/settle(_:effect:rateLimitFor:now:)``) and
/// carries out the step; the live engine (`RouteWalk`) and `switchyard replay` drive the same loop,
/// so a replay decides what the server would have.
public struct AttemptLoop: Sendable {
    public enum Selection: Sendable {
        /// Send an attempt to the model at `selected.index`, holding `selected.ticket`.
        case attempt(ModelSelector.Selection)
        /// Nothing admitted the request before its first attempt.
        case noModelAvailable(retryAfter: Duration?)
        /// The walk is over without an answer to relay (after at least one attempt, or at the deadline).
        case stopped(RetryPlanner.StopReason)
    }

    public enum Step: Sendable, Equatable {
        /// The attempt's answer goes to the caller (a success or a non-retryable error).
        case answer
        case stopped(RetryPlanner.StopReason)
        /// Select again at once: the request moves on to another model.
        case selectAgain
        /// Wait this long, then select again, preferring the same model.
        case wait(Duration)
    }

    public let route: RoutingTable.Route
    public let deadline: MonotonicInstant
    /// Set for batch work: it comes second (never forces a probe, waits `probe_grace` for a free
    /// half-open slot).
    public let probeGrace: Duration?
    /// The attempt budget; stream resumption (`RouteWalk+Stream`) spends from it too.
    public var planner: RetryPlanner
    /// The wait that came before the attempt selected last (nil: none, it moved on or was first).
    public private(set) var backoff: Duration?
    private var preferred: Int?

    public init(route: RoutingTable.Route, deadline: MonotonicInstant, probeGrace: Duration? = nil) {
        self.route = route
        self.deadline = deadline
        self.probeGrace = probeGrace
        planner = RetryPlanner(policy: route.spec.retry, modelCount: route.models.count, deadline: deadline)
    }

    /// Chooses the model of the next attempt and records it in the budget. `decisions` gets one
    /// entry per model considered; `transitions` the breaker transitions that admission caused.
    public mutating func select(now: MonotonicInstant, decisions: inout [DecisionEntry], transitions: inout [ObservedTransition]) -> Selection {
        guard now < deadline else { return .stopped(.deadline) }
        let first = planner.attempts == 0
        let result = ModelSelector.select(
            route: route, preferred: preferred, left: planner.left, now: now, allowForcedProbe: first, probeGrace: probeGrace,
            decisions: &decisions, transitions: &transitions
        )
        switch result {
        case .selected(let selected):
            planner.willAttempt(modelAt: selected.index)
            return .attempt(selected)
        case .unavailable(let retryAfter):
            return first ? .noModelAvailable(retryAfter: retryAfter) : .stopped(.exhausted)
        }
    }

    /// What follows an attempt whose verdict has been applied to its model's health.
    public mutating func next(after verdict: AttemptVerdict, now: MonotonicInstant, using random: inout some RandomNumberGenerator) -> Step {
        let current = planner.current
        switch planner.next(after: verdict, now: now, using: &random) {
        case .stop(.answered):
            return .answer
        case .stop(let reason):
            return .stopped(reason)
        case .moveOn:
            preferred = nil
            backoff = nil
            return .selectAgain
        case .retrySameModel(let delay):
            // The failure just recorded may have opened this model's breaker (or a 429
            // rate-limited it): then the retry would be skipped anyway, so move on now
            // rather than wait for nothing.
            let stillAdmits = current.map { index in
                route.models[index].health.withState { state in
                    state.disabledBy == nil && state.breaker.wouldAdmit(now: now)
                }
            } ?? false
            guard stillAdmits else {
                planner.leaveCurrent()
                preferred = nil
                backoff = nil
                return .selectAgain
            }
            preferred = current
            backoff = delay
            return .wait(delay)
        }
    }
}
