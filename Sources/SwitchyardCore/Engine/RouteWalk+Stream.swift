import HummingbirdCore
import NIOCore
import Tracing

/// A committed stream, relayed to its end: how it stopped decides the attempt's breaker verdict,
/// the request's outcome, and (with `stream_recovery` on a route) whether the request's walk goes
/// on with the partial answer as prefill (README, "Stream recovery"). A resumption is an attempt
/// like any other — same selection, attempt budget, backoff, outcome table and audit — except
/// that it never forces a probe.
extension RouteWalk {
    /// How the relay ended.
    enum StreamEnd {
        case completed
        /// The upstream failed after the commit point; the caller got an `event: error`.
        case upstreamFailed
        case callerGone
    }

    /// Relays the committed stream into `writer` and finishes it; records the outcome and the
    /// attempts' breaker verdicts.
    @discardableResult
    func relay(into writer: inout some ResponseBodyWriter) async -> StreamEnd {
        guard var current = streaming else { return .callerGone }
        defer { streaming = current }
        while true {
            switch await current.relay.pump(into: &writer) {
            case .completed:
                return await ended(.completed, &current)
            case .callerGone:
                return await ended(.callerGone, &current)
            case .failed(let failure):
                if let (code, status) = failure.platformError {
                    record.attempts[current.index].platformError = code
                    if let status { record.attempts[current.index].platformStatus = status }
                }
                if current.relay.wasWhole {
                    // What broke after the answer was whole — a reset, a stall, a stray error
                    // event — takes nothing from the caller and is neither resumed nor surfaced.
                    return await ended(await current.relay.finishWhole(into: &writer) ? .completed : .callerGone, &current)
                }
                switch await resume(after: failure, &current, writer: &writer) {
                case .resumed: continue
                case .callerGone: return await ended(.callerGone, &current)
                case .surface:
                    let made = madeErrorEvent(failure, model: current.model, upstreamRequestID: record.attempts[current.index].upstreamRequestID)
                    guard await current.relay.surface(failure, made: made, into: &writer) else { return await ended(.callerGone, &current) }
                    return await ended(.upstreamFailed, &current, failure: failure)
                }
            }
        }
    }

    /// The head could not be written (the caller is gone): release the model without a verdict.
    nonisolated(nonsending) func abandonStream() async {
        guard var current = streaming else { return }
        record.outcome = .cancelled
        endSpan(&current)
        streaming = current
        await finishAttempt(model: current.model, ticket: current.ticket, effect: .neutral, attempt: record.attempts[current.index])
    }

    nonisolated(nonsending) private func ended(_ end: StreamEnd, _ current: inout StreamingAttempt, failure: StreamRelay.Failure? = nil) async -> StreamEnd {
        let usage = current.relay.stream.usage
        record.usage = usage.isEmpty ? nil : usage
        switch end {
        case .completed:
            record.outcome = .ok
            if current.resumes > 0 { record.recovery = .recovered }
        case .upstreamFailed:
            record.outcome = .streamError
        case .callerGone:
            record.outcome = .cancelled
            if record.recovery != nil, record.recovery != .recovered, current.finished { record.recovery = .cancelled }
        }
        guard !current.finished else { return end }
        defer { endSpan(&current) }
        var attempt = record.attempts[current.index]
        attempt.setDuration(context.clock.now() - current.started)
        let effect: BreakerEffect
        switch end {
        case .completed:
            effect = .success
        case .upstreamFailed:
            let cause = failure?.cause ?? "stream_error"
            effect = .failure(cause: cause)
            Self.markFailed(&attempt, cause: cause, detail: failure?.detail)
        case .callerGone:
            effect = .neutral
        }
        record.attempts[current.index] = attempt
        current.finished = true
        await finishAttempt(model: current.model, ticket: current.ticket, effect: effect, attempt: attempt)
        return end
    }

    /// The streaming attempt's span, with what the attempt came to.
    private func endSpan(_ current: inout StreamingAttempt) {
        guard let span = current.span else { return }
        current.span = nil
        RequestTrace.finish(span, record: record.attempts[current.index], usage: current.relay.stream.usage.isEmpty ? nil : current.relay.stream.usage)
    }

    private static func markFailed(_ attempt: inout AttemptRecord, cause: String, detail: String?) {
        attempt.error = "stream_error"
        attempt.detail = detail
        if attempt.errorType == nil, cause.hasSuffix("_error") { attempt.errorType = cause }
    }

    /// A well-formed Anthropic `event: error` for a failure the upstream sent none for.
    private func madeErrorEvent(_ failure: StreamRelay.Failure, model: RoutingTable.Model, upstreamRequestID: String?) -> ByteBuffer {
        let detail = failure.detail ?? failure.cause
        let error = RouterError(
            status: 502, type: failure.cause == "timeout" ? "timeout_error" : "api_error",
            message: "upstream stream of model '\(model.name)' failed after it started: \(failure.cause): \(detail)\(upstreamRequestID.map { " (\($0))" } ?? "")",
            outcome: .streamError
        )
        var event = ByteBuffer(string: "event: error\ndata: ")
        var body = error.body(requestID: request.requestID)
        event.writeBuffer(&body)
        event.writeString("\n\n")
        return event
    }

    // MARK: Resumption

    private enum Resumption {
        case resumed
        case surface
        case callerGone
    }

    /// Stream recovery: when the route has it on and the caller so far has plain text, a
    /// resumption on the route's next admitting model is spliced in.
    private func resume(after failure: StreamRelay.Failure, _ current: inout StreamingAttempt, writer: inout some ResponseBodyWriter) async -> Resumption {
        guard let policy = route.spec.streamRecovery, let partial = current.relay.partial else { return .surface }
        guard partial.isRecoverable else {
            record.recovery = .unrecoverable
            return .surface
        }
        guard current.resumes < policy.maxResumes else {
            record.recovery = .unavailable
            return .surface
        }
        // The failed stream counts against its model like any failure, before the next choice.
        var attempt = record.attempts[current.index]
        attempt.setDuration(context.clock.now() - current.started)
        Self.markFailed(&attempt, cause: failure.cause, detail: failure.detail)
        record.attempts[current.index] = attempt
        await finishAttempt(model: current.model, ticket: current.ticket, effect: .failure(cause: failure.cause), attempt: attempt)
        current.finished = true
        endSpan(&current)

        switch await resumeStream(after: failure.outcome, partial: partial) {
        case .failed(let result):
            record.recovery = result
            return .surface
        case .resumed(let resumed):
            current.model = resumed.model
            current.ticket = resumed.ticket
            current.index = resumed.attemptIndex
            current.started = resumed.attemptStart
            current.finished = false
            current.span = resumed.span
            current.resumes += 1
            let provider = context.endpoint(resumed.model.provider)?.provider
            let spliced = await current.relay.splice(resumed.stream, prelude: resumed.prelude, request: resumed.request, provider: provider, into: &writer)
            return spliced ? .resumed : .callerGone
        }
    }

    private struct ResumedStream {
        var model: RoutingTable.Model
        var ticket: CircuitBreaker.Ticket
        var attemptIndex: Int
        var attemptStart: MonotonicInstant
        /// The resumed stream's events up to its own commit point, to be spliced.
        var prelude: ByteBuffer
        var stream: CommittedStream
        var request: ResumeRequest
        var span: (any Span)?
    }

    private enum ResumeResult {
        case resumed(ResumedStream)
        case failed(RecoveryResult)
    }

    /// - Parameter failure: how the stream failed, for the attempt budget (an overloaded model is
    ///   left at once, a reset may be retried on the same model after backoff).
    nonisolated(nonsending) private func resumeStream(after failure: AttemptOutcome, partial: PartialResponse) async -> ResumeResult {
        let resumeRequest = ResumeRequest(partial: partial)
        guard let buffer = resumeRequest.body(original: request.body.buffer),
            let body = try? InboundBody.parse(buffer, requireMessages: true)
        else { return .failed(.unavailable) }
        var failedIndex = loop.planner.current
        var step = loop.planner.next(after: AttemptVerdict.classify(failure), now: context.clock.now(), using: &random)
        var transitions: [ObservedTransition] = []
        while true {
            var preferred: Int?
            var backoff: Duration?
            switch step {
            case .stop:
                return .failed(.unavailable)
            case .moveOn:
                guard grantRetry() else { return .failed(.unavailable) }
            case .retrySameModel(let delay):
                guard grantRetry() else { return .failed(.unavailable) }
                preferred = loop.planner.current
                backoff = delay
                do {
                    try await context.clock.sleep(for: delay)
                } catch {
                    return .failed(.cancelled)
                }
            }
            let now = context.clock.now()
            guard now < deadline else { return .failed(.unavailable) }
            var selection = ModelSelector.select(
                route: route, preferred: preferred, left: loop.planner.left, now: now, allowForcedProbe: false, probeGrace: probeGrace, decisions: &record.decision,
                transitions: &transitions
            )
            // "The route's next admitting model, or the same one if it admits": when no other
            // model takes the resumption, the model whose stream failed may, if its breaker
            // still admits it.
            if case .moveOn = step, case .unavailable = selection, let failed = failedIndex {
                selection = ModelSelector.select(
                    route: route, preferred: failed, left: loop.planner.left.subtracting([failed]), now: now, allowForcedProbe: false, probeGrace: probeGrace,
                    decisions: &record.decision, transitions: &transitions
                )
            }
            if !transitions.isEmpty {
                await context.recordTransitions(transitions)
                transitions.removeAll()
            }
            guard case .selected(let selected) = selection else {
                releaseRetry()
                return .failed(.unavailable)
            }
            loop.planner.willAttempt(modelAt: selected.index)
            let model = route.models[selected.index]
            var attempt = AttemptRecord(model: model.name)
            attempt.backoffMs = backoff?.milliseconds
            attempt.resumesStream = true
            let attemptStart = context.clock.now()
            var span: (any Span)?
            let (outcome, delivery) = await perform(model: model, attempt: &attempt, span: &span, body: body)
            attempt.setDuration(context.clock.now() - attemptStart)
            releaseRetry()
            if Task.isCancelled {
                await abandon(attempt, model: model, ticket: selected.ticket, span: span)
                return .failed(.cancelled)
            }
            if case .stream(_, _, let prelude, let resumed) = delivery {
                record.attempts.append(attempt)
                served(by: model, selectedIndex: selected.index, upstreamRequestID: attempt.upstreamRequestID)
                return .resumed(
                    ResumedStream(
                        model: model, ticket: selected.ticket, attemptIndex: record.attempts.count - 1, attemptStart: attemptStart, prelude: prelude,
                        stream: resumed, request: resumeRequest, span: span
                    )
                )
            }
            let verdict = await settle(&attempt, model: model, ticket: selected.ticket, outcome: outcome, delivery: delivery, span: span)
            failedIndex = loop.planner.current
            step = loop.planner.next(after: verdict, now: context.clock.now(), using: &random)
            // A resumption answered with a client error was refused (a model that takes no prefill).
            if case .stop(.answered) = step { return .failed(.refused) }
        }
    }
}
