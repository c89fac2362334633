/// One recorded request walked again through a candidate's route, on the recorded clock. The same
/// decisions as the server's `RouteWalk` (``AttemptLoop``, ``AttemptVerdict``,
/// ``ModelState/settle(_:effect:rateLimitFor:now:)``, ``ExhaustedRoute``); where the server sends
/// an attempt upstream, this takes the recorded answer:
/// - while the walk makes the recording's choices (attempt k goes to the model the recording's
///   attempt k went to, every earlier one did too), the request's own recorded attempt;
/// - once it leaves them, what ``OutcomeTimeline`` says the model answered at that moment.
struct ReplayWalk {
    enum Next {
        /// The attempt sent runs until then; its answer's rate-limit reading, if the recording
        /// kept one, is noted at `headroomAt` (when its head came).
        case attemptEnds(MonotonicInstant, headroomAt: MonotonicInstant?)
        /// A backoff: select again then.
        case waitEnds(MonotonicInstant)
        case finished(RequestResult)
    }

    private struct InFlight {
        var index: Int
        var ticket: CircuitBreaker.Ticket
        var outcome: RecordedOutcome
        var headroom: HeadroomReading?
    }

    let request: RecordedRequest
    let route: RoutingTable.Route
    let requestTimeout: Duration
    private var loop: AttemptLoop
    private var decisions: [DecisionEntry] = []
    private var attempts: [AttemptRecord] = []
    private var durations: [Duration] = []
    private var inFlight: InFlight?
    /// Every attempt so far was the recording's own.
    private(set) var onRecordedPath = true

    init(request: RecordedRequest, route: RoutingTable.Route, requestTimeout: Duration) {
        self.request = request
        self.route = route
        self.requestTimeout = requestTimeout
        loop = AttemptLoop(route: route, deadline: request.arrival + requestTimeout)
    }

    mutating func select(at now: MonotonicInstant, timeline: OutcomeTimeline, transitions: inout [ObservedTransition]) -> Next {
        switch loop.select(now: now, decisions: &decisions, transitions: &transitions) {
        case .attempt(let selected):
            let model = route.models[selected.index]
            let recorded = ownAttempt(model: model.name)
            let answer =
                recorded.map { OutcomeTimeline.Entry(start: now, outcome: $0.outcome, duration: $0.duration, ttfb: $0.ttfb, headroom: $0.headroom) }
                ?? timeline.entry(model: model.name, at: now, stream: request.stream)
            guard let answer else {
                // Nothing is known of this model: the request's fate is not guessed, and its
                // admission is given back without a verdict.
                _ = model.health.withState { $0.settle(selected.ticket, effect: .neutral, rateLimitFor: nil, now: now) }
                return .finished(result(status: 0, outcome: RequestResult.unknownOutcome, servedBy: nil, unknownModel: model.name))
            }
            let (outcome, duration) = (answer.outcome, answer.duration)
            var attempt = AttemptRecord(model: model.name)
            outcome.describe(&attempt)
            if let refused = recorded?.refusedStatus {
                attempt.credentialsRefused = true
                attempt.platformStatus = refused
            }
            attempt.durationMs = duration.milliseconds
            attempt.backoffMs = loop.backoff?.milliseconds
            attempts.append(attempt)
            durations.append(duration)
            inFlight = InFlight(index: selected.index, ticket: selected.ticket, outcome: outcome, headroom: answer.headroom)
            let headAt = answer.headroom.map { _ in now + min(answer.ttfb ?? duration, duration) }
            return .attemptEnds(now + duration, headroomAt: headAt)
        case .noModelAvailable(let retryAfter):
            let error = RouterError.noModelAvailable(route: route.name, retryAfter: retryAfter, detail: "")
            return .finished(result(status: error.status, outcome: error.outcome.rawValue, servedBy: nil))
        case .stopped(let reason):
            return .finished(exhausted(reason))
        }
    }

    /// The answer of the attempt in flight has its head: its rate-limit reading goes into the
    /// model's headroom, as the server's `RouteWalk.noteHeadroom` does. `originMs` is the recorded
    /// clock's zero in Unix milliseconds (resets are wall-clock times).
    func noteHeadroom(at now: MonotonicInstant, originMs: Int64) {
        guard let flight = inFlight, let reading = flight.headroom else { return }
        let wallNow = originMs + now.nanoseconds / 1_000_000
        route.models[flight.index].health.withState { _ = $0.headroom.merge(reading, now: now, wallNowMs: wallNow) }
    }

    /// The attempt sent last has ended: its verdict goes to the model's health, then the loop decides.
    mutating func attemptEnded(
        at now: MonotonicInstant, timeline: OutcomeTimeline, random: inout some RandomNumberGenerator, transitions: inout [ObservedTransition]
    ) -> Next {
        guard let flight = inFlight else { return .finished(exhausted(.exhausted)) }
        inFlight = nil
        let model = route.models[flight.index]
        func settle(_ effect: BreakerEffect, rateLimitFor: Duration? = nil) {
            let transition = model.health.withState { $0.settle(flight.ticket, effect: effect, rateLimitFor: rateLimitFor, now: now) }
            if let transition { transitions.append(ObservedTransition(model: model.name, transition: transition)) }
        }
        switch flight.outcome {
        case .answer(let outcome):
            let verdict = AttemptVerdict.classify(outcome)
            attempts[attempts.count - 1].retryAfterMs = verdict.retryAfter?.milliseconds
            settle(verdict.breaker, rateLimitFor: verdict.rateLimitFor)
            switch loop.next(after: verdict, now: now, using: &random) {
            case .answer:
                let status = attempts[attempts.count - 1].status ?? 502
                let outcome: RequestOutcome = (200..<300).contains(status) ? .ok : .clientError
                return .finished(result(status: status, outcome: outcome.rawValue, servedBy: flight.index))
            case .stopped(let reason):
                return .finished(exhausted(reason))
            case .selectAgain:
                // On the recording's path the next choice is made when the server made it (after
                // writing a transition this attempt caused, say), which other walks may meet.
                if let resume = recordedResume(after: now, waited: false) { return .waitEnds(resume) }
                return select(at: now, timeline: timeline, transitions: &transitions)
            case .wait(let delay):
                // On the recording's path the wait is the recorded one (its jitter is known).
                return .waitEnds(recordedResume(after: now, waited: true) ?? now + delay)
            }
        case .streamFailedAfterCommit(let cause):
            settle(.failure(cause: cause))
            return .finished(result(status: 200, outcome: RequestOutcome.streamError.rawValue, servedBy: flight.index))
        case .cancelled(let status):
            settle(.neutral)
            return .finished(result(status: status ?? request.status, outcome: RequestOutcome.cancelled.rawValue, servedBy: nil))
        }
    }

    /// When the recording chose the model of its next attempt (after a wait or not, as `waited`
    /// says), while the walk is on its path and the log has microsecond starts.
    private func recordedResume(after now: MonotonicInstant, waited: Bool) -> MonotonicInstant? {
        let index = attempts.count
        guard onRecordedPath, index < request.attempts.count, (request.attempts[index].backoff != nil) == waited,
            request.attempts[index].recordedStart != nil, request.attempts[index].start >= now
        else { return nil }
        return request.attempts[index].start
    }

    /// The recorded attempt this one is, while the walk is still on the recording's path.
    private mutating func ownAttempt(model: String) -> RecordedAttempt? {
        let index = attempts.count
        guard onRecordedPath, index < request.attempts.count, !request.attempts[index].resumesStream, request.attempts[index].model == model else {
            onRecordedPath = false
            return nil
        }
        return request.attempts[index]
    }

    private func exhausted(_ reason: RetryPlanner.StopReason) -> RequestResult {
        let error = ExhaustedRoute.error(route: route, attempts: attempts, decisions: decisions, reason: reason, requestTimeout: requestTimeout)
        return result(status: error.status, outcome: error.outcome.rawValue, servedBy: nil)
    }

    private func result(status: Int, outcome: String, servedBy index: Int?, unknownModel: String? = nil) -> RequestResult {
        RequestResult(
            status: status, outcome: outcome, model: index.map { route.models[$0].name }, downgraded: (index ?? 0) > 0,
            attempts: zip(attempts, durations).map { RequestResult.Attempt(model: $0.model, duration: $1) }, unknownModel: unknownModel
        )
    }
}
