import NIOCore
import NIOHTTP1

/// The upstream API a request is for.
public enum UpstreamAPI: Sendable, CaseIterable {
    case messages
    case countTokens

    /// The API a caller's request path names; nil for any other path.
    init?(path: Substring) {
        guard let api = Self.allCases.first(where: { $0.path == path }) else { return nil }
        self = api
    }

    var path: String {
        switch self {
        case .messages: "/v1/messages"
        case .countTokens: "/v1/messages/count_tokens"
        }
    }

    var auditName: String {
        switch self {
        case .messages: "messages"
        case .countTokens: "count_tokens"
        }
    }
}

/// A validated caller request, ready to be routed.
struct ProxyRequest: Sendable {
    var requestID: String
    /// Sent upstream as `idempotency-key` on every attempt: the caller's own, or the request id.
    var idempotencyKey: String
    var api: UpstreamAPI
    var body: InboundBody
    var inboundHeaders: HTTPHeaders
    /// The query string, without `?` (the SDK's beta calls add `beta=true`).
    var query: Substring?
}

/// What the HTTP layer writes back.
enum ProxyAnswer {
    case complete(status: Int, headers: HTTPHeaders, body: ByteBuffer)
    /// A stream past its commit point: write the head and `prelude`, then let `relay` pump the rest.
    case stream(status: Int, headers: HTTPHeaders, prelude: ByteBuffer, relay: StreamRelay)
    /// The caller went away; nothing can be written.
    case cancelled
}

/// The result of one attempt, as far as delivering it goes. `headers` are the upstream's as the
/// caller should see them (the platform chose which), before Switchyard adds its own.
enum AttemptDelivery {
    /// `usage` as read from a 2xx message answer when its body was checked.
    case complete(status: Int, headers: HTTPHeaders, body: ByteBuffer, usage: TokenUsage? = nil)
    case stream(status: Int, headers: HTTPHeaders, prelude: ByteBuffer, continuation: StreamRelay.Continuation)
}

/// One request's walk through its route: selection, attempts, backoff, and the audit record of
/// all of it. Decisions come from the pure types (``ModelSelector``, ``AttemptVerdict``,
/// ``RetryPlanner``); this type carries them out.
final class ProxyExchange {
    let runtime: RouterRuntime
    let route: RoutingTable.Route
    let request: ProxyRequest
    let startedAt: MonotonicInstant
    /// `request_timeout` of the table the request was routed with (a reload does not change it).
    let requestTimeout: Duration
    let deadline: MonotonicInstant
    var record: RequestAuditRecord
    var random: InjectedRandom
    /// The attempt budget, shared by the first walk through the route and any stream continuation.
    var planner: RetryPlanner
    /// Set for a batch request: it comes second (never forces a probe, waits `probe_grace` for a
    /// free half-open slot).
    let probeGrace: Duration?

    init(
        runtime: RouterRuntime, route: RoutingTable.Route, request: ProxyRequest, record: RequestAuditRecord, startedAt: MonotonicInstant,
        requestTimeout: Duration, probeGrace: Duration? = nil
    ) {
        self.probeGrace = probeGrace
        self.runtime = runtime
        self.route = route
        self.request = request
        self.record = record
        self.startedAt = startedAt
        self.requestTimeout = requestTimeout
        let deadline = startedAt + requestTimeout
        self.deadline = deadline
        self.random = InjectedRandom(source: runtime.randomSource)
        self.planner = RetryPlanner(policy: route.spec.retry, modelCount: route.models.count, deadline: deadline)
    }

    func run() async -> ProxyAnswer {
        var preferred: Int?
        var backoff: Duration?
        var transitions: [ObservedTransition] = []
        while true {
            let now = runtime.clock.now()
            guard now < deadline else { return finalError(reason: .deadline) }
            let selection = ModelSelector.select(
                route: route, preferred: preferred, left: planner.left, now: now, allowForcedProbe: record.attempts.isEmpty,
                probeGrace: probeGrace, decisions: &record.decision, transitions: &transitions
            )
            if !transitions.isEmpty {
                await runtime.record(transitions)
                transitions.removeAll()
            }
            guard case .selected(let selected) = selection else {
                if record.attempts.isEmpty, case .unavailable(let retryAfter) = selection {
                    return error(RouterError.noModelAvailable(route: route.name, retryAfter: retryAfter, detail: skippedSummary()))
                }
                return finalError(reason: .exhausted)
            }
            planner.willAttempt(modelAt: selected.index)
            let model = route.models[selected.index]
            var attempt = AttemptRecord(model: model.name)
            attempt.backoffMs = backoff?.milliseconds
            let attemptStart = runtime.clock.now()
            let (outcome, delivery) = await perform(model: model, attempt: &attempt)
            attempt.durationMs = (runtime.clock.now() - attemptStart).milliseconds

            if Task.isCancelled {
                await finishAttempt(model: model, ticket: selected.ticket, effect: .neutral, attempt: attempt)
                record.attempts.append(attempt)
                return .cancelled
            }
            if case .stream(let status, let headers, let prelude, let continuation) = delivery {
                // Past the commit point: the breaker learns the outcome when the stream ends.
                record.attempts.append(attempt)
                served(by: model, selectedIndex: selected.index, upstreamRequestID: attempt.upstreamRequestID)
                let relay = StreamRelay(
                    exchange: self, model: model, ticket: selected.ticket, attemptIndex: record.attempts.count - 1,
                    attemptStart: attemptStart, continuation: continuation, prelude: prelude
                )
                return .stream(
                    status: status, headers: responseHeaders(headers, upstreamRequestID: attempt.upstreamRequestID, model: model), prelude: prelude,
                    relay: relay
                )
            }

            let verdict = AttemptVerdict.classify(outcome)
            attempt.retryAfterMs = verdict.retryAfter?.milliseconds
            await finishAttempt(model: model, ticket: selected.ticket, effect: verdict.breaker, attempt: attempt, rateLimitFor: verdict.rateLimitFor)
            record.attempts.append(attempt)

            switch planner.next(after: verdict, now: runtime.clock.now(), using: &random) {
            case .stop(.answered):
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
            case .stop(let reason):
                return finalError(reason: reason)
            case .moveOn:
                preferred = nil
                backoff = nil
            case .retrySameModel(let delay):
                // The failure just recorded may have opened this model's breaker (or a 429
                // rate-limited it): then the retry would be skipped anyway, so move on now
                // rather than wait for nothing.
                let stillAdmits = model.health.withState { state in
                    state.disabledBy == nil && state.breaker.wouldAdmit(now: runtime.clock.now())
                }
                guard stillAdmits else {
                    planner.leaveCurrent()
                    preferred = nil
                    backoff = nil
                    continue
                }
                preferred = selected.index
                backoff = delay
                do {
                    try await runtime.clock.sleep(for: delay)
                } catch {
                    return .cancelled
                }
            }
        }
    }

    // MARK: One attempt

    /// One attempt on `model`, with the caller's body or (for a stream continuation) another.
    func perform(model: RoutingTable.Model, attempt: inout AttemptRecord, body callBody: InboundBody? = nil) async -> (AttemptOutcome, AttemptDelivery?) {
        let callBody = callBody ?? request.body
        attempt.provider = model.provider.name
        attempt.platform = model.provider.platform.rawValue
        guard let endpoint = runtime.endpoint(for: model.provider) else {
            attempt.error = "connect"
            return (.transport(.connect), nil)
        }
        let provider = endpoint.provider
        let started = runtime.clock.now()
        let stream = callBody.stream
        let budget = NIODeadline.now() + .nanoseconds(max(0, (deadline - started).nanoseconds))
        // Getting a credential (a slow token endpoint) is bounded by `first_byte` too.
        let credentialDeadline = min(budget, NIODeadline.now() + TimeAmount(model.provider.timeouts.firstByte))
        var upstreamRequest: UpstreamRequest
        do {
            let call = UpstreamCall(api: request.api, body: callBody, inboundHeaders: request.inboundHeaders, query: request.query, stream: stream)
            upstreamRequest = try await provider.makeRequest(call, model: model, deadline: credentialDeadline)
        } catch {
            attempt.error = "auth"
            attempt.detail = error.description
            return (.auth, nil)
        }
        upstreamRequest.budget = budget
        // The same key on every attempt of the request: an upstream that honours it runs the
        // request once however often it is sent.
        upstreamRequest.headers.add(name: HeaderPolicy.idempotencyKeyName, value: request.idempotencyKey)
        let response: UpstreamResponse
        do {
            response = try await endpoint.client.send(consume upstreamRequest)
        } catch {
            attempt.error = error.failure.rawValue
            attempt.detail = error.detail
            if let queued = error.queued { attempt.queuedMs = queued.milliseconds }
            return (.transport(error.failure), nil)
        }
        if response.queued >= .milliseconds(1) { attempt.queuedMs = response.queued.milliseconds }
        attempt.ttfbMs = (runtime.clock.now() - started).milliseconds
        attempt.upstreamRequestID = provider.requestID(in: response.headers)
        let shouldRetry = response.headers.first(name: "x-should-retry").map { $0 != "false" }

        if stream, (200..<300).contains(response.status) {
            attempt.status = response.status
            let translated = UpstreamResponse(status: response.status, headers: response.headers, body: provider.streamBody(response.body))
            return await StreamRelay.advanceToCommit(
                response: translated, relayedHeaders: provider.relayedHeaders(response.headers, stream: true), provider: provider, attempt: &attempt,
                exchange: self
            )
        }
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: runtime.maxUpstreamResponse)
        } catch {
            attempt.status = response.status
            attempt.error = error.failure.rawValue
            attempt.detail = error.detail
            return (.transport(error.failure), nil)
        }
        if (200..<300).contains(response.status) {
            attempt.status = response.status
            guard let usable = provider.readSuccess(api: request.api, body: body) else {
                attempt.error = "invalid_response"
                attempt.detail = "a 2xx body that is not \(request.api == .messages ? "a message" : "a token count")"
                return (.invalidResponse(reason: "2xx body is not a usable answer"), nil)
            }
            let headers = provider.relayedHeaders(response.headers, stream: false)
            return (
                .response(status: response.status, errorType: nil, retryAfter: nil, shouldRetry: shouldRetry),
                .complete(status: response.status, headers: headers, body: usable.body, usage: usable.usage)
            )
        }
        let error = provider.readError(status: response.status, headers: response.headers, body: body, api: request.api)
        // Read only for an error: a success never waits.
        let retryAfter = RetryAfter.parse(response.headers, now: WallClock.nowMilliseconds())
        attempt.errorType = error.type
        attempt.platformError = error.platformCode
        attempt.platformStatus = error.platformStatus
        if let problem = error.credentialProblem {
            // Switchyard's own credentials were refused: the caller's request is not at fault,
            // and every request to this model would fail the same way.
            provider.credentialsRejected(problem)
            attempt.platformStatus = response.status
            attempt.credentialsRefused = true
            attempt.error = "auth"
            attempt.detail = Self.describe(problem, message: error.message)
            return (.auth, nil)
        }
        attempt.status = error.status
        if error.platformCode != nil, let message = error.message { attempt.detail = String(message.prefix(300)) }
        let outcome = AttemptOutcome.response(status: error.status, errorType: error.type, retryAfter: retryAfter, shouldRetry: shouldRetry, row: error.row)
        let relayedBody = provider.errorBody(error, upstreamRequestID: attempt.upstreamRequestID) ?? body
        return (outcome, .complete(status: error.status, headers: provider.relayedHeaders(response.headers, stream: false), body: relayedBody))
    }

    private static func describe(_ problem: CredentialProblem, message: String?) -> String {
        let said = message.map { ": \($0.prefix(200))" } ?? ""
        switch problem {
        case .rejected: return "the platform refused Switchyard's credentials\(said)"
        case .expired: return "the platform says Switchyard's credentials expired; they are fetched again\(said)"
        case .clockSkew(let seconds):
            return "the request's signature time was \(abs(seconds)) s \(seconds > 0 ? "behind" : "ahead of") the platform's clock; later requests are signed with the correction\(said)"
        }
    }

    /// Applies an attempt's verdict to the model's shared health.
    func finishAttempt(
        model: RoutingTable.Model, ticket: CircuitBreaker.Ticket, effect: BreakerEffect, attempt: AttemptRecord, rateLimitFor: Duration? = nil
    ) async {
        let now = runtime.clock.now()
        let transition = model.health.withState { state -> CircuitBreaker.Transition? in
            let transition = state.finish(ticket, effect: effect, now: now)
            if let rateLimitFor {
                state.rateLimitedUntil = max(state.rateLimitedUntil ?? now, now + rateLimitFor)
            }
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
            return transition
        }
        if let transition {
            await runtime.record([ObservedTransition(model: model.name, transition: transition)])
        }
    }

    // MARK: Answers

    func served(by model: RoutingTable.Model, selectedIndex: Int, upstreamRequestID: String?) {
        record.model = model.name
        record.upstreamModel = model.spec.upstreamModel
        record.upstreamRequestID = upstreamRequestID
        record.downgraded = selectedIndex > 0
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

    private func error(_ error: RouterError) -> ProxyAnswer {
        record.status = error.status
        record.outcome = error.outcome
        record.message = error.message
        var headers = error.answerHeaders(requestID: request.requestID)
        addSwitchyardHeaders(&headers, model: nil)
        return .complete(status: error.status, headers: headers, body: error.body(requestID: request.requestID))
    }

    /// Every attempt failed (or the budget ran out): answer with the last upstream error's status
    /// and type, and a message naming every model tried.
    private func finalError(reason: RetryPlanner.StopReason) -> ProxyAnswer {
        let attempts = record.attempts
        let triedModels = attempts.reduce(into: [String]()) { if !$0.contains($1.model) { $0.append($1.model) } }
        var message: String
        if attempts.isEmpty {
            message = "route '\(route.name)' sent no attempt"
        } else if triedModels.count == route.models.count {
            message = "all \(triedModels.count) models of route '\(route.name)' failed: "
        } else {
            message = "\(attempts.count) attempt\(attempts.count == 1 ? "" : "s") on route '\(route.name)' failed: "
        }
        message += attempts.map(\.summary).joined(separator: "; ")
        let skipped = skippedSummary(excluding: Set(triedModels))
        if !skipped.isEmpty { message += "; not tried: \(skipped)" }
        if reason == .deadline { message += "; request_timeout of \(requestTimeout.configNotation) reached" }

        var routerError: RouterError
        // An upstream error status is passed on; a 2xx that could not be used (invalid body,
        // broken stream) is not an answer and must never reach the caller as a success status.
        if let refused = attempts.last, refused.credentialsRefused, let platformStatus = refused.platformStatus {
            // The last word was a platform refusing Switchyard's own credentials: the caller
            // learns it as Anthropic's authentication or permission error, not as a bare 502.
            let (status, type) = platformStatus == 403 ? (403, "permission_error") : (401, "authentication_error")
            let platform = refused.platform.map { "\($0) " } ?? ""
            let refusal = "the \(platform)platform refused Switchyard's credentials for provider '\(refused.provider ?? refused.model)' "
                + "(\(refused.platformError.map { "\($0), " } ?? "")HTTP \(platformStatus)); "
            routerError = RouterError(status: status, type: type, message: refusal + message, outcome: .upstreamError)
        } else if attempts.allSatisfy({ $0.status == nil }), attempts.contains(where: { $0.error == TransportFailure.capacity.rawValue }) {
            // No upstream answered and the router's own connection limit stood in the way: the
            // caller may come back shortly, which is not so after an upstream's failure.
            return error(RouterError.capacityExhausted(route: route.name, detail: message))
        } else if let answered = attempts.last(where: { ($0.status ?? 0) >= 300 }), let status = answered.status {
            routerError = RouterError(
                status: status, type: answered.errorType ?? Self.defaultErrorType(status: status), message: message, outcome: .upstreamError
            )
        } else if attempts.last?.error == TransportFailure.timeout.rawValue || (reason == .deadline && attempts.last?.status == nil) {
            routerError = RouterError(status: 504, type: "timeout_error", message: message, outcome: .upstreamError)
        } else {
            routerError = RouterError(status: 502, type: "api_error", message: message, outcome: .upstreamError)
        }
        routerError.shouldRetry = false
        return error(routerError)
    }

    private func skippedSummary(excluding tried: Set<String> = []) -> String {
        var seen: Set<String> = tried
        var parts: [String] = []
        for entry in record.decision where entry.action == .skipped && !seen.contains(entry.model) {
            seen.insert(entry.model)
            parts.append("\(entry.model) (\(entry.reason ?? "skipped"))")
        }
        return parts.joined(separator: ", ")
    }

    static func defaultErrorType(status: Int) -> String {
        switch status {
        case 400: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 504: "timeout_error"
        case 529: "overloaded_error"
        default: "api_error"
        }
    }
}

enum SwitchyardHeaders {
    static let route = "x-switchyard-route"
    static let model = "x-switchyard-model"
    static let attempts = "x-switchyard-attempts"
}

/// `retry-after-ms`, or `retry-after` in seconds or as an HTTP date.
enum RetryAfter {
    static func parse(_ headers: HTTPHeaders, now wallMilliseconds: Int64) -> Duration? {
        if let text = headers.first(name: "retry-after-ms"), let ms = Double(text.trimmingWhitespace()), ms >= 0, ms.isFinite {
            return .milliseconds(Int64(min(ms, 86_400_000)))
        }
        guard let text = headers.first(name: "retry-after") else { return nil }
        let trimmed = text.trimmingWhitespace()
        if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite {
            return .milliseconds(Int64(min(seconds, 86_400) * 1000))
        }
        if let date = HTTPDate.parse(String(trimmed)) {
            return .milliseconds(max(0, date - wallMilliseconds))
        }
        return nil
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix milliseconds.
enum HTTPDate {
    static func parse(_ text: String) -> Int64? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let year = Int(parts[3]) else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let monthIndex = months.firstIndex(of: String(parts[2])) else { return nil }
        let time = parts[4].split(separator: ":").compactMap { Int($0) }
        guard time.count == 3 else { return nil }
        let month = monthIndex + 1
        // Days from civil (Howard Hinnant).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Int64(days * 86_400 + time[0] * 3600 + time[1] * 60 + time[2]) * 1000
    }
}
