import NIOCore

/// The continuation half of stream recovery (README, "Stream recovery"): after a stream failed past
/// its commit point, the request's walk through its route goes on with the partial answer as
/// prefill. The continuation is an attempt like any other — same selection, attempt budget,
/// backoff, outcome table and audit — except that it never forces a probe.
extension ProxyExchange {
    struct ResumedStream {
        var model: RoutingTable.Model
        var ticket: CircuitBreaker.Ticket
        var attemptIndex: Int
        var attemptStart: MonotonicInstant
        /// The continuation's events up to its own commit point, to be spliced.
        var prelude: ByteBuffer
        var continuation: StreamRelay.Continuation
        var request: ContinuationRequest
    }

    enum ResumeResult {
        case resumed(ResumedStream)
        case failed(RecoveryResult)
    }

    /// - Parameter failure: how the stream failed, for the attempt budget (an overloaded model is
    ///   left at once, a reset may be retried on the same model after backoff).
    func resumeStream(after failure: AttemptOutcome, partial: PartialAnswer) async -> ResumeResult {
        let continuation = ContinuationRequest(partial: partial)
        guard let buffer = continuation.body(original: request.body.buffer),
            let body = try? InboundBody.parse(buffer, requireMessages: true)
        else { return .failed(.unavailable) }
        var failedIndex = planner.current
        var step = planner.next(after: AttemptVerdict.classify(failure), now: runtime.clock.now(), using: &random)
        var transitions: [ObservedTransition] = []
        while true {
            var preferred: Int?
            var backoff: Duration?
            switch step {
            case .stop:
                return .failed(.unavailable)
            case .moveOn:
                break
            case .retrySameModel(let delay):
                preferred = planner.current
                backoff = delay
                do {
                    try await runtime.clock.sleep(for: delay)
                } catch {
                    return .failed(.cancelled)
                }
            }
            let now = runtime.clock.now()
            guard now < deadline else { return .failed(.unavailable) }
            var selection = ModelSelector.select(
                route: route, preferred: preferred, left: planner.left, now: now, allowForcedProbe: false, probeGrace: probeGrace, decisions: &record.decision,
                transitions: &transitions
            )
            // "The route's next admitting model, or the same one if it admits": when no other
            // model takes the continuation, the model whose stream failed may, if its breaker
            // still admits it.
            if case .moveOn = step, case .unavailable = selection, let failed = failedIndex {
                selection = ModelSelector.select(
                    route: route, preferred: failed, left: planner.left.subtracting([failed]), now: now, allowForcedProbe: false, probeGrace: probeGrace,
                    decisions: &record.decision, transitions: &transitions
                )
            }
            if !transitions.isEmpty {
                await runtime.record(transitions)
                transitions.removeAll()
            }
            guard case .selected(let selected) = selection else { return .failed(.unavailable) }
            planner.willAttempt(modelAt: selected.index)
            let model = route.models[selected.index]
            var attempt = AttemptRecord(model: model.name)
            attempt.backoffMs = backoff?.milliseconds
            attempt.continuation = true
            let attemptStart = runtime.clock.now()
            let (outcome, delivery) = await perform(model: model, attempt: &attempt, body: body)
            attempt.durationMs = (runtime.clock.now() - attemptStart).milliseconds
            if Task.isCancelled {
                await finishAttempt(model: model, ticket: selected.ticket, effect: .neutral, attempt: attempt)
                record.attempts.append(attempt)
                return .failed(.cancelled)
            }
            if case .stream(_, _, let prelude, let resumed) = delivery {
                record.attempts.append(attempt)
                served(by: model, selectedIndex: selected.index, upstreamRequestID: attempt.upstreamRequestID)
                return .resumed(
                    ResumedStream(
                        model: model, ticket: selected.ticket, attemptIndex: record.attempts.count - 1, attemptStart: attemptStart,
                        prelude: prelude, continuation: resumed, request: continuation
                    )
                )
            }
            let verdict = AttemptVerdict.classify(outcome)
            attempt.retryAfterMs = verdict.retryAfter?.milliseconds
            await finishAttempt(model: model, ticket: selected.ticket, effect: verdict.breaker, attempt: attempt, rateLimitFor: verdict.rateLimitFor)
            record.attempts.append(attempt)
            failedIndex = planner.current
            step = planner.next(after: verdict, now: runtime.clock.now(), using: &random)
            // A continuation answered with a client error was refused (a model that takes no prefill).
            if case .stop(.answered) = step { return .failed(.refused) }
        }
    }
}
