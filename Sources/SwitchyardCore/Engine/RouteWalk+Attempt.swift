import NIOCore
import NIOHTTP1
import Tracing

/// The result of one attempt, as far as delivering it goes. `headers` are the upstream's as the
/// caller should see them (the platform chose which), before Switchyard adds its own.
enum AttemptDelivery {
    /// `usage` as read from a 2xx message answer when its body was checked.
    case complete(status: Int, headers: HTTPHeaders, body: ByteBuffer, usage: TokenUsage? = nil)
    case stream(status: Int, headers: HTTPHeaders, prelude: ByteBuffer, stream: CommittedStream)
}

extension RouteWalk {
    /// One attempt on `model`, with the caller's body or (for a stream resumption) another.
    /// - Parameter span: set to the attempt's client span when the request is traced; the caller ends it.
    nonisolated(nonsending) func perform(
        model: RoutingTable.Model, attempt: inout AttemptRecord, span: inout (any Span)?, body callBody: InboundBody? = nil
    ) async -> (AttemptOutcome, AttemptDelivery?) {
        let callBody = callBody ?? request.body
        attempt.provider = model.provider.name
        attempt.platform = model.provider.platform.rawValue
        guard let endpoint = context.endpoint(model.provider) else {
            attempt.error = "connect"
            return (.transport(.connect), nil)
        }
        let provider = endpoint.provider
        let started = context.clock.now()
        let stream = callBody.stream
        let budget = NIODeadline.now() + .nanoseconds(max(0, (deadline - started).nanoseconds))
        // Getting a credential (a slow token endpoint) is bounded by `first_byte` too.
        let credentialDeadline = min(budget, NIODeadline.now() + TimeAmount(model.provider.timeouts.firstByte))
        var upstreamRequest: UpstreamRequest
        do {
            let call = UpstreamCall(api: request.api, body: callBody, inboundHeaders: request.inboundHeaders, query: request.query, stream: stream)
            upstreamRequest = try await provider.makeRequest(call, model: model, deadline: credentialDeadline)
        } catch {
            switch error {
            case .credential(let error):
                attempt.error = "auth"
                attempt.detail = error.description
                return (.auth, nil)
            case .refused(let refusal):
                attempt.status = refusal.status
                attempt.errorType = refusal.type
                attempt.detail = refusal.message
                let outcome = AttemptOutcome.response(status: refusal.status, errorType: refusal.type, retryAfter: nil, shouldRetry: nil, row: refusal.row)
                let body = AnthropicErrorEnvelope.body(type: refusal.type, message: refusal.message ?? "request refused", requestID: nil)
                return (outcome, .complete(status: refusal.status, headers: ["content-type": "application/json"], body: body))
            }
        }
        answersTranslated = provider.translatesAnswers
        upstreamRequest.budget = budget
        // The same key on every attempt of the request: an upstream that honours it runs the
        // request once however often it is sent.
        upstreamRequest.headers.add(name: HeaderPolicy.idempotencyKeyName, value: request.idempotencyKey)
        if let trace {
            let breaker = record.decision.last { $0.model == model.name && $0.action == .sent }?.breaker.rawValue
            span = trace.startAttempt(model: model, breaker: breaker, headers: &upstreamRequest.headers)
        }
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
        attempt.setTTFB(context.clock.now() - started)
        attempt.upstreamRequestID = provider.requestID(in: response.headers)
        if let reading = provider.headroom(in: response.headers), noteHeadroom(reading, model: model) { attempt.headroom = reading }
        let shouldRetry = response.headers.first(name: "x-should-retry").map { $0 != "false" }

        if stream, (200..<300).contains(response.status) {
            attempt.status = response.status
            let body = provider.streamBody(response.body)
            switch await StreamCommit.read(body, provider: provider) {
            case .committed(let committed, let prelude):
                return (
                    .response(status: response.status, errorType: nil, retryAfter: nil, shouldRetry: nil),
                    .stream(status: response.status, headers: provider.relayedHeaders(response.headers, stream: true), prelude: prelude, stream: committed)
                )
            case .failed(let failure):
                attempt.error = failure.error
                attempt.errorType = failure.errorType
                attempt.detail = failure.detail
                if let (code, status) = failure.platformError {
                    attempt.platformError = code
                    if let status { attempt.platformStatus = status }
                }
                if let malformed = failure.malformed {
                    context.logger.debug("malformed upstream stream", metadata: ["model": "\(attempt.model)", "reason": "\(malformed)"])
                }
                return (failure.outcome, nil)
            }
        }
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: context.maxUpstreamResponse)
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
}
