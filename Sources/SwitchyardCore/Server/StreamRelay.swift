import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1

/// Relays a Messages SSE stream. Before the commit point (the first event after
/// `message_start`/`ping`) events are held back so that a failure there can still be retried on
/// another model; after it, events are forwarded as they arrive, whole events at a time.
struct StreamRelay {
    /// Where the stream stands at the commit point.
    struct Continuation {
        var iterator: UpstreamBody.AsyncIterator
        var parser: SSEEventParser
        var usage: TokenUsage
        var sawMessageStop: Bool
    }

    let exchange: ProxyExchange
    let model: RoutingTable.Model
    let ticket: CircuitBreaker.Ticket
    let attemptIndex: Int
    let attemptStart: MonotonicInstant
    var continuation: Continuation

    /// Reads a 2xx stream up to its commit point. Returns a failure outcome (to be retried) or
    /// the committed stream.
    static func advanceToCommit(
        response: UpstreamResponse, relayedHeaders: HTTPFields, attempt: inout AttemptRecord, exchange: ProxyExchange
    ) async -> (AttemptOutcome, AttemptDelivery?) {
        var iterator = response.body.makeAsyncIterator()
        var parser = SSEEventParser()
        var usage = TokenUsage()
        var sawMessageStart = false
        func malformed(_ reason: String) -> (AttemptOutcome, AttemptDelivery?) {
            attempt.error = "stream_error"
            attempt.errorType = "malformed_stream"
            exchange.runtime.logger.debug("malformed upstream stream", metadata: ["model": "\(attempt.model)", "reason": "\(reason)"])
            return (.streamFailedBeforeCommit(errorType: nil, failure: nil), nil)
        }
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await iterator.next()
            } catch {
                attempt.error = error.failure.rawValue
                attempt.detail = error.detail
                return (.streamFailedBeforeCommit(errorType: nil, failure: error.failure), nil)
            }
            guard let chunk else {
                attempt.error = "stream_error"
                return (.streamFailedBeforeCommit(errorType: nil, failure: .reset), nil)
            }
            parser.append(chunk)
            do {
                while let event = try parser.next() {
                    // Until the commit point the stream can still be replaced by another
                    // model's, so a malformed one (not Anthropic's framing, data that is not
                    // JSON) is a failed attempt rather than something to relay.
                    if event.name != .ping, !AnthropicPayload.isJSONObject(event.data) {
                        return malformed("event data is not a JSON object")
                    }
                    if !sawMessageStart, event.name != .messageStart, event.name != .ping, event.name != .error {
                        return malformed("the stream does not begin with message_start")
                    }
                    switch event.name {
                    case .messageStart:
                        sawMessageStart = true
                        if let start = AnthropicPayload.usage(inMessageStart: event.data) { usage.merge(start) }
                    case .ping:
                        continue
                    case .error:
                        let errorType = AnthropicPayload.error(in: event.data).type
                        attempt.error = "stream_error"
                        attempt.errorType = errorType
                        return (.streamFailedBeforeCommit(errorType: errorType, failure: nil), nil)
                    default:
                        if event.name == .messageDelta, let delta = AnthropicPayload.usage(inMessageDelta: event.data) { usage.merge(delta) }
                        let prelude = parser.takeParsedBytes() ?? ByteBuffer()
                        let continuation = Continuation(iterator: iterator, parser: parser, usage: usage, sawMessageStop: event.name == .messageStop)
                        return (
                            .response(status: response.status, errorType: nil, retryAfter: nil, shouldRetry: nil),
                            .stream(status: response.status, headers: relayedHeaders, prelude: prelude, continuation: continuation)
                        )
                    }
                }
            } catch {
                attempt.error = "stream_error"
                return (.streamFailedBeforeCommit(errorType: nil, failure: .reset), nil)
            }
        }
    }

    /// How the relay ended.
    enum End {
        case completed
        /// The upstream failed after the commit point; the caller got an `event: error`.
        case upstreamFailed(cause: String, detail: String?)
        case callerGone
    }

    /// Pumps the rest of the stream into `writer` and finishes it. Updates the exchange's record
    /// and the model's breaker.
    mutating func run(into writer: inout some ResponseBodyWriter) async -> End {
        let end = await pump(into: &writer)
        var attempt = exchange.record.attempts[attemptIndex]
        attempt.durationMs = (exchange.runtime.clock.now() - attemptStart).milliseconds
        exchange.record.usage = continuation.usage.isEmpty ? nil : continuation.usage
        let effect: BreakerEffect
        switch end {
        case .completed:
            effect = .success
            exchange.record.outcome = .ok
        case .upstreamFailed(let cause, let detail):
            effect = .failure(cause: cause)
            attempt.error = "stream_error"
            attempt.detail = detail
            if attempt.errorType == nil, cause.hasSuffix("_error") { attempt.errorType = cause }
            exchange.record.outcome = .streamError
        case .callerGone:
            effect = .neutral
            exchange.record.outcome = .cancelled
        }
        exchange.record.attempts[attemptIndex] = attempt
        await exchange.finishAttempt(model: model, ticket: ticket, effect: effect, attempt: attempt)
        return end
    }

    /// The head could not be written (the caller is gone): release the model without a verdict.
    mutating func abandon() async -> End {
        exchange.record.outcome = .cancelled
        await exchange.finishAttempt(model: model, ticket: ticket, effect: .neutral, attempt: exchange.record.attempts[attemptIndex])
        return .callerGone
    }

    private mutating func pump(into writer: inout some ResponseBodyWriter) async -> End {
        let deadline = exchange.deadline
        while true {
            var upstreamError: String?
            do {
                while let event = try continuation.parser.next() {
                    switch event.name {
                    case .messageDelta:
                        if let delta = AnthropicPayload.usage(inMessageDelta: event.data) { continuation.usage.merge(delta) }
                    case .messageStop:
                        continuation.sawMessageStop = true
                    case .error:
                        upstreamError = AnthropicPayload.error(in: event.data).type ?? "api_error"
                    default:
                        break
                    }
                    if upstreamError != nil { break }
                }
            } catch {
                return await fail(cause: "stream_error", detail: "an event exceeded \(error.limit) bytes", writer: &writer)
            }
            if let bytes = continuation.parser.takeParsedBytes() {
                do {
                    try await writer.write(bytes)
                } catch {
                    return .callerGone
                }
            }
            if let upstreamError {
                // The upstream's own `event: error` is well-formed; it has been forwarded as is.
                try? await writer.finish(nil)
                return .upstreamFailed(cause: upstreamError, detail: nil)
            }
            if Task.isCancelled { return .callerGone }
            let chunk: ByteBuffer?
            do {
                chunk = try await continuation.iterator.next()
            } catch {
                if Task.isCancelled { return .callerGone }
                return await fail(cause: error.failure.rawValue, detail: error.detail, writer: &writer)
            }
            guard let chunk else {
                if continuation.sawMessageStop && !continuation.parser.hasUnparsedBytes {
                    do {
                        try await writer.finish(nil)
                    } catch {
                        return .callerGone
                    }
                    return .completed
                }
                return await fail(cause: "reset", detail: "upstream stream ended before message_stop", writer: &writer)
            }
            continuation.parser.append(chunk)
            if exchange.runtime.clock.now() >= deadline {
                return await fail(cause: "timeout", detail: "request_timeout reached", writer: &writer)
            }
        }
    }

    /// Ends the caller's stream with a well-formed Anthropic `event: error`.
    private func fail(cause: String, detail: String, writer: inout some ResponseBodyWriter) async -> End {
        let upstreamID = exchange.record.attempts[attemptIndex].upstreamRequestID.map { " (\($0))" } ?? ""
        let error = RouterError(
            status: 502, type: cause == "timeout" ? "timeout_error" : "api_error",
            message: "upstream stream of model '\(model.name)' failed after it started: \(cause): \(detail)\(upstreamID)",
            outcome: .streamError
        )
        var event = ByteBuffer(string: "event: error\ndata: ")
        var body = error.body(requestID: exchange.request.requestID)
        event.writeBuffer(&body)
        event.writeString("\n\n")
        do {
            try await writer.write(event)
            try await writer.finish(nil)
        } catch {
            return .callerGone
        }
        return .upstreamFailed(cause: cause, detail: detail)
    }
}
