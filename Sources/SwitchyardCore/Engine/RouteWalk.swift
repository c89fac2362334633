import NIOCore
import NIOHTTP1
import Tracing

/// One request's walk through its route: selection, attempts, backoff, the stream it commits to,
/// and the audit record of all of it. The one owner of the request's audit record and of the
/// breaker ticket of its attempt in flight: what a stream does after its commit point comes back
/// here as events of ``StreamRelay`` (``RouteWalk+Stream``). Decisions come from the pure types
/// (``AttemptLoop`` over ``ModelSelector`` and ``RetryPlanner``, ``AttemptVerdict``); this type
/// carries them out.
final class RouteWalk {
    /// How the walk ended, for the HTTP layer to write.
    enum Outcome {
        case complete(status: Int, headers: HTTPHeaders, body: ByteBuffer)
        /// A stream past its commit point: write the head and `prelude`, then relay the rest with
        /// ``relay(into:)``.
        case stream(status: Int, headers: HTTPHeaders, prelude: ByteBuffer)
        /// The caller went away; nothing can be written.
        case cancelled
    }

    let context: EngineContext
    let route: RoutingTable.Route
    let request: ProxyRequest
    let startedAt: MonotonicInstant
    /// `request_timeout` of the table the request was routed with (a reload does not change it).
    let requestTimeout: Duration
    let deadline: MonotonicInstant
    /// Written by the walk (and its extensions) only; the HTTP layer reports through
    /// ``responseStarted(at:)``, ``callerLeft(status:)`` and ``finished(at:)``.
    var record: RequestAuditRecord
    var random: InjectedRandom
    /// Selection and the attempt budget; the budget is shared by the first walk through the route
    /// and any stream resumption.
    var loop: AttemptLoop
    /// Set for a batch request: it comes second (never forces a probe, waits `probe_grace` for a
    /// free half-open slot).
    var probeGrace: Duration? { loop.probeGrace }
    /// The attempt whose stream is being relayed, once the walk committed to one.
    var streaming: StreamingAttempt?
    /// The request's spans, with `telemetry:` on.
    let trace: RequestTrace?
    /// A retry granted by the route's `retry_budget` and not yet given back (its attempt has
    /// not answered yet).
    var holdsRetry = false
    /// The last attempt's platform translates answers from another API (``UpstreamProvider/translatesAnswers``).
    var answersTranslated = false

    /// The attempt a committed stream belongs to: what finishing it needs.
    struct StreamingAttempt {
        var model: RoutingTable.Model
        var ticket: CircuitBreaker.Ticket
        var index: Int
        var started: MonotonicInstant
        var relay: StreamRelay
        /// Its breaker verdict is recorded already (a resumption was tried after it failed).
        var finished = false
        var resumes = 0
        /// Its client span, ended with the stream.
        var span: (any Span)?
    }

    init(
        context: EngineContext, route: RoutingTable.Route, request: ProxyRequest, record: RequestAuditRecord, startedAt: MonotonicInstant,
        requestTimeout: Duration, probeGrace: Duration? = nil, trace: RequestTrace? = nil
    ) {
        self.trace = trace
        self.context = context
        self.route = route
        self.request = request
        self.record = record
        self.startedAt = startedAt
        self.requestTimeout = requestTimeout
        let deadline = startedAt + requestTimeout
        self.deadline = deadline
        random = InjectedRandom(source: context.random)
        loop = AttemptLoop(route: route, deadline: deadline, probeGrace: probeGrace)
        route.retryBudget?.withBudget { $0.requestStarted() }
    }

    // The walk is the request, for the retry budget: active from here to its last reference,
    // which also covers a walk that ends by an error thrown past its caller.
    deinit {
        releaseRetry()
        route.retryBudget?.withBudget { $0.requestEnded() }
    }

    nonisolated(nonsending) func run() async -> Outcome {
        var transitions: [ObservedTransition] = []
        while true {
            // The attempt's times count from its choice of model, which is the instant
            // `switchyard replay` makes the same choice at (`start_us`).
            let selectedAt = context.clock.now()
            let selection = loop.select(now: selectedAt, decisions: &record.decision, transitions: &transitions)
            if !transitions.isEmpty {
                await context.recordTransitions(transitions)
                transitions.removeAll()
            }
            let selected: ModelSelector.Selection
            switch selection {
            case .attempt(let chosen):
                selected = chosen
            case .noModelAvailable(let retryAfter):
                releaseRetry()
                return error(RouterError.noModelAvailable(route: route.name, retryAfter: retryAfter, detail: skippedSummary()))
            case .stopped(let reason):
                releaseRetry()
                return finalError(reason: reason)
            }
            let model = route.models[selected.index]
            var attempt = AttemptRecord(model: model.name)
            attempt.backoffMs = loop.backoff?.milliseconds
            let attemptStart = selectedAt
            attempt.startUs = (attemptStart - startedAt).microseconds
            var span: (any Span)?
            let (outcome, delivery) = await perform(model: model, attempt: &attempt, span: &span)
            attempt.setDuration(context.clock.now() - attemptStart)
            releaseRetry()

            if Task.isCancelled {
                await abandon(attempt, model: model, ticket: selected.ticket, span: span)
                return .cancelled
            }
            if case .stream(let status, let headers, let prelude, let committed) = delivery {
                if let span { span.attributes["gen_ai.response.id"] = AnthropicPayload.messageID(inStreamPrelude: prelude) }
                // Past the commit point: the breaker learns the outcome when the stream ends.
                record.attempts.append(attempt)
                served(by: model, selectedIndex: selected.index, upstreamRequestID: attempt.upstreamRequestID)
                record.status = status
                streaming = StreamingAttempt(
                    model: model, ticket: selected.ticket, index: record.attempts.count - 1, started: attemptStart,
                    relay: StreamRelay(
                        stream: committed, provider: context.endpoint(model.provider)?.provider, observesPartial: route.spec.streamRecovery != nil,
                        prelude: prelude, clock: context.clock, deadline: deadline
                    ), span: span
                )
                return .stream(status: status, headers: responseHeaders(headers, upstreamRequestID: attempt.upstreamRequestID, model: model), prelude: prelude)
            }

            let verdict = await settle(&attempt, model: model, ticket: selected.ticket, outcome: outcome, delivery: delivery, span: span)

            switch loop.next(after: verdict, now: context.clock.now(), using: &random) {
            case .answer:
                // Consumed, so that the relayed headers are this code's alone and take Switchyard's
                // in place (a copy of the list otherwise).
                guard case .complete(let status, let headers, let body, let usage) = consume delivery else { return finalError(reason: .exhausted) }
                served(by: model, selectedIndex: selected.index, upstreamRequestID: attempt.upstreamRequestID)
                if (200..<300).contains(status), request.api == .messages {
                    record.usage = usage
                }
                record.status = status
                record.outcome = (200..<300).contains(status) ? .ok : .clientError
                return .complete(status: status, headers: responseHeaders(consume headers, upstreamRequestID: attempt.upstreamRequestID, model: model), body: body)
            case .stopped(let reason):
                return finalError(reason: reason)
            case .selectAgain:
                guard grantRetry() else { return finalError(reason: .retryBudget) }
                continue
            case .wait(let delay):
                guard grantRetry() else { return finalError(reason: .retryBudget) }
                do {
                    try await context.clock.sleep(for: delay)
                } catch {
                    return .cancelled
                }
            }
        }
    }

    // MARK: The record, as the HTTP layer finishes the request

    /// The first byte of the answer went to the caller.
    func responseStarted(at now: MonotonicInstant) {
        record.ttfbMs = (now - startedAt).milliseconds
    }

    /// The answer could not be written: the caller went away.
    func callerLeft(status: Int? = nil) {
        if let status { record.status = status }
        record.outcome = .cancelled
    }

    /// The request is over: its audit record.
    func finished(at now: MonotonicInstant) -> RequestAuditRecord {
        record.durationMs = (now - startedAt).milliseconds
        return record
    }

    /// For a batch request: the record's event name (`batch.retry` for a try that does not end it).
    func markEvent(_ event: String) {
        record.event = event
    }

    /// An attempt's client span, with the message id and usage of a 2xx answer.
    func finishSpan(_ span: any Span, attempt: AttemptRecord, delivery: AttemptDelivery?) {
        guard case .complete(let status, _, let body, let usage) = delivery, (200..<300).contains(status) else {
            return RequestTrace.finish(span, record: attempt)
        }
        RequestTrace.finish(span, record: attempt, responseID: AnthropicPayload.topLevelString("id", in: body), usage: usage)
    }

    // MARK: Retry budget

    /// Asks the route's `retry_budget` for the next attempt; false (and `error: retry_budget` on
    /// the record) when it refuses. Granted retries are given back by ``releaseRetry()``.
    func grantRetry() -> Bool {
        guard let budget = route.retryBudget else { return true }
        releaseRetry()
        let now = context.clock.now()
        guard budget.withBudget({ $0.grant(now: now) }) != .refused else {
            record.error = "retry_budget"
            return false
        }
        holdsRetry = true
        return true
    }

    /// The granted retry's attempt answered (or none was made): it is no longer active.
    func releaseRetry() {
        guard holdsRetry else { return }
        holdsRetry = false
        route.retryBudget?.withBudget { $0.retryEnded() }
    }

    // MARK: Attempts that end here

    /// An attempt the caller's going away cut short: no verdict on the model, but its span, its
    /// breaker ticket and its audit entry are closed as for any other.
    nonisolated(nonsending) func abandon(_ attempt: AttemptRecord, model: RoutingTable.Model, ticket: CircuitBreaker.Ticket, span: (any Span)?) async {
        if let span { RequestTrace.finish(span, record: attempt) }
        await finishAttempt(model: model, ticket: ticket, effect: .neutral, attempt: attempt)
        record.attempts.append(attempt)
    }

    /// An answered attempt that is not relayed as a stream: its verdict, recorded on its span, the
    /// model's breaker and rate limit, and the audit record, for the walk (or a resumption) to act on.
    nonisolated(nonsending) func settle(
        _ attempt: inout AttemptRecord, model: RoutingTable.Model, ticket: CircuitBreaker.Ticket, outcome: AttemptOutcome, delivery: AttemptDelivery?,
        span: (any Span)?
    ) async -> AttemptVerdict {
        let verdict = AttemptVerdict.classify(outcome)
        attempt.retryAfterMs = verdict.retryAfter?.milliseconds
        if let span { finishSpan(span, attempt: attempt, delivery: delivery) }
        await finishAttempt(model: model, ticket: ticket, effect: verdict.breaker, attempt: attempt, rateLimitFor: verdict.rateLimitFor)
        record.attempts.append(attempt)
        return verdict
    }

    // MARK: Breakers

    /// Applies an attempt's verdict to the model's shared health, and posts what changed for the
    /// other replicas when there is a fleet.
    nonisolated(nonsending) func finishAttempt(
        model: RoutingTable.Model, ticket: CircuitBreaker.Ticket, effect: BreakerEffect, attempt: AttemptRecord, rateLimitFor: Duration? = nil
    ) async {
        let now = context.clock.now()
        let fleet = context.fleet
        let wallNow = fleet == nil ? 0 : context.wallClock()
        let (transition, announced) = model.health.withState { state -> (CircuitBreaker.Transition?, [FleetEvent.Change]) in
            let rateLimitedBefore = state.rateLimitedUntil
            let transition = state.settle(ticket, effect: effect, rateLimitFor: rateLimitFor, now: now)
            if case .failure = effect {
                state.lastError = ModelState.LastError(
                    description: attempt.summary, upstreamRequestID: attempt.upstreamRequestID, wallMilliseconds: WallClock.nowMilliseconds()
                )
            }
            if rateLimitFor != nil {
                state.lastError = ModelState.LastError(
                    description: attempt.summary, upstreamRequestID: attempt.upstreamRequestID, wallMilliseconds: WallClock.nowMilliseconds()
                )
            }
            if attempt.status != nil {
                state.recordLatency(milliseconds: Double(attempt.durationMs))
            }
            guard fleet != nil else { return (transition, []) }
            let announced = state.announcements(
                transition: transition, rateLimitedBefore: rateLimitedBefore, headroomSkipBefore: nil, floor: 0, now: now, wallNowMs: wallNow
            )
            return (transition, announced)
        }
        fleet?.post(announced, model: model, wallNowMs: wallNow)
        if let transition {
            await context.recordTransitions([ObservedTransition(model: model.name, transition: transition)])
        }
    }

    /// An answer's rate-limit headers: merged into the model's headroom (skips start with the
    /// next selection), and told to the fleet when they pushed the model below its floor.
    /// Returns whether the reading started, kept or ended a headroom skip: then the attempt's
    /// audit entry keeps it, so that `switchyard replay` skips as the server did (readings that
    /// changed nothing are left out of the audit line).
    func noteHeadroom(_ reading: HeadroomReading, model: RoutingTable.Model) -> Bool {
        let now = context.clock.now()
        let wallNow = context.wallClock()
        let fleet = context.fleet
        let floor = model.headroomFloor
        let (announced, skipping) = model.health.withState { state -> ([FleetEvent.Change], Bool) in
            let before = state.headroom.skipUntil(now: now, minRemaining: floor)?.until
            state.headroom.merge(reading, now: now, wallNowMs: wallNow)
            let skipping = before != nil || state.headroom.skipUntil(now: now, minRemaining: floor) != nil
            guard fleet != nil else { return ([], skipping) }
            let announced = state.announcements(
                transition: nil, rateLimitedBefore: state.rateLimitedUntil, headroomSkipBefore: before, floor: floor, now: now, wallNowMs: wallNow
            )
            return (announced, skipping)
        }
        fleet?.post(announced, model: model, wallNowMs: wallNow)
        return skipping
    }

    // MARK: Answers

    func served(by model: RoutingTable.Model, selectedIndex: Int, upstreamRequestID: String?) {
        record.model = model.name
        record.upstreamModel = model.spec.upstreamModel
        record.upstreamRequestID = upstreamRequestID
        record.downgraded = selectedIndex > 0
        record.translated = answersTranslated
    }

    /// The upstream's relayed headers plus `request-id` (the upstream's id, or Switchyard's own when
    /// the upstream gave none) and Switchyard's headers.
    func responseHeaders(_ relayed: consuming HTTPHeaders, upstreamRequestID: String?, model: RoutingTable.Model?) -> HTTPHeaders {
        // Added, not replaced: no provider relays the upstream's own `request-id` header.
        relayed.add(name: "request-id", value: upstreamRequestID ?? request.requestID)
        addSwitchyardHeaders(&relayed, model: model)
        return relayed
    }

    /// Added, not replaced: relayed headers never hold these names (``HeaderPolicy``).
    func addSwitchyardHeaders(_ headers: inout HTTPHeaders, model: RoutingTable.Model?) {
        // One append of a list: `HTTPHeaders.add` checks every name is ASCII, and these are constants.
        var own = [
            (HeaderPolicy.requestIDName, request.requestID), (SwitchyardHeaders.route, route.name),
            (SwitchyardHeaders.attempts, String(record.attempts.count)),
        ]
        if let model { own.insert((SwitchyardHeaders.model, model.name), at: 2) }
        headers.add(contentsOf: HTTPHeaders(own))
    }

    private func error(_ error: RouterError) -> Outcome {
        record.status = error.status
        record.outcome = error.outcome
        record.message = error.message
        var headers = error.answerHeaders(requestID: request.requestID)
        addSwitchyardHeaders(&headers, model: nil)
        return .complete(status: error.status, headers: headers, body: error.body(requestID: request.requestID))
    }

    /// Every attempt failed (or the budget ran out): the caller's error, from ``ExhaustedRoute``.
    private func finalError(reason: RetryPlanner.StopReason) -> Outcome {
        error(ExhaustedRoute.error(route: route, attempts: record.attempts, decisions: record.decision, reason: reason, requestTimeout: requestTimeout))
    }

    private func skippedSummary() -> String {
        ExhaustedRoute.skippedSummary(record.decision, excluding: [])
    }
}

/// Adapts the injected random source to Swift's generator protocol.
struct InjectedRandom: RandomNumberGenerator {
    let source: @Sendable () -> UInt64
    mutating func next() -> UInt64 { source() }
}
