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
    private(set) var model: RoutingTable.Model
    private(set) var ticket: CircuitBreaker.Ticket
    private(set) var attemptIndex: Int
    private(set) var attemptStart: MonotonicInstant
    var continuation: Continuation
    /// With `stream_recovery` on: what the caller has received (its text only); nil otherwise.
    private var partial: PartialAnswer?
    /// Set once a continuation is being spliced in.
    private var splicer: StreamSplicer?
    private var resumes = 0
    /// The current attempt's breaker verdict is already recorded (a recovery was tried after it).
    private var attemptFinished = false

    init(
        exchange: ProxyExchange, model: RoutingTable.Model, ticket: CircuitBreaker.Ticket, attemptIndex: Int, attemptStart: MonotonicInstant,
        continuation: Continuation, prelude: ByteBuffer
    ) {
        self.exchange = exchange
        self.model = model
        self.ticket = ticket
        self.attemptIndex = attemptIndex
        self.attemptStart = attemptStart
        self.continuation = continuation
        if exchange.route.spec.streamRecovery != nil {
            // The events before the commit point went out as one prelude: the caller has them.
            var partial = PartialAnswer()
            var parser = SSEEventParser()
            parser.append(prelude)
            while let event = try? parser.next() { partial.observe(name: event.name, data: event.data) }
            self.partial = partial
        }
    }

    /// Reads a 2xx stream up to its commit point. Returns a failure outcome (to be retried) or
    /// the committed stream.
    static func advanceToCommit(
        response: UpstreamResponse, relayedHeaders: HTTPHeaders, provider: any UpstreamProvider, attempt: inout AttemptRecord, exchange: ProxyExchange
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
                        Self.notePlatformError(in: event.data, provider: provider, attempt: &attempt)
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

    /// How a committed stream failed.
    struct Failure {
        /// The upstream's error type, or the transport failure (`reset`, `timeout`, `stream_error`).
        var cause: String
        var detail: String?
        /// The upstream's own `event: error`, forwarded when the failure reaches the caller.
        var upstreamEvent: ByteBuffer?
        /// The failure as the outcome table sees it, for the attempt budget of a continuation.
        var outcome: AttemptOutcome
    }

    /// Pumps the rest of the stream into `writer` and finishes it. Updates the exchange's record
    /// and the model's breaker.
    mutating func run(into writer: inout some ResponseBodyWriter) async -> End {
        let end = await pump(into: &writer)
        exchange.record.usage = continuation.usage.isEmpty ? nil : continuation.usage
        switch end {
        case .completed:
            exchange.record.outcome = .ok
            if resumes > 0 { exchange.record.recovery = .recovered }
        case .upstreamFailed:
            exchange.record.outcome = .streamError
        case .callerGone:
            exchange.record.outcome = .cancelled
            if exchange.record.recovery != nil, exchange.record.recovery != .recovered, attemptFinished { exchange.record.recovery = .cancelled }
        }
        guard !attemptFinished else { return end }
        var attempt = exchange.record.attempts[attemptIndex]
        attempt.durationMs = (exchange.runtime.clock.now() - attemptStart).milliseconds
        let effect: BreakerEffect
        switch end {
        case .completed:
            effect = .success
        case .upstreamFailed(let cause, let detail):
            effect = .failure(cause: cause)
            Self.markFailed(&attempt, cause: cause, detail: detail)
        case .callerGone:
            effect = .neutral
        }
        exchange.record.attempts[attemptIndex] = attempt
        await exchange.finishAttempt(model: model, ticket: ticket, effect: effect, attempt: attempt)
        return end
    }

    /// A platform's exception behind an `event: error` (Bedrock's modelStreamErrorException) goes
    /// on the attempt as `platform_error`, and its status as `platform_status`, as for an HTTP error.
    private static func notePlatformError(in data: ByteBuffer, provider: any UpstreamProvider, attempt: inout AttemptRecord) {
        guard let (code, status) = provider.platformError(inStreamError: data) else { return }
        attempt.platformError = code
        if let status { attempt.platformStatus = status }
    }

    private static func markFailed(_ attempt: inout AttemptRecord, cause: String, detail: String?) {
        attempt.error = "stream_error"
        attempt.detail = detail
        if attempt.errorType == nil, cause.hasSuffix("_error") { attempt.errorType = cause }
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
            var failure: Failure?
            var output: ByteBuffer?
            do {
                while true {
                    let mark = continuation.parser.parsedByteCount
                    guard let event = try continuation.parser.next() else { break }
                    if event.name == .error {
                        // Held back: stream recovery may hide it; otherwise it is forwarded as is.
                        Self.append(continuation.parser.takeParsedBytes(prefix: mark), to: &output)
                        let type = AnthropicPayload.error(in: event.data).type ?? "api_error"
                        if let provider = exchange.runtime.endpoint(for: model.provider)?.provider {
                            Self.notePlatformError(in: event.data, provider: provider, attempt: &exchange.record.attempts[attemptIndex])
                        }
                        failure = Failure(
                            cause: type, detail: nil, upstreamEvent: StreamEventFields.event("error", data: event.data),
                            outcome: Self.outcome(forErrorType: type)
                        )
                        break
                    }
                    if var active = splicer {
                        let raw = continuation.parser.takeParsedBytes()
                        switch active.splice(name: event.name, data: event.data) {
                        case .forward:
                            Self.append(raw, to: &output)
                            observe(event.name, event.data)
                        case .drop:
                            break
                        case .replace(let data):
                            Self.append(StreamEventFields.event(event.name.wireName ?? "message", data: data), to: &output)
                            observe(event.name, data)
                        }
                        splicer = active
                    } else {
                        observe(event.name, event.data)
                    }
                }
            } catch {
                failure = Failure(
                    cause: "stream_error", detail: "an event exceeded \(error.limit) bytes", outcome: .streamFailedBeforeCommit(errorType: nil, failure: .reset)
                )
            }
            if failure == nil, splicer == nil { Self.append(continuation.parser.takeParsedBytes(), to: &output) }
            if let output {
                do {
                    try await writer.write(output)
                } catch {
                    return .callerGone
                }
            }
            if failure == nil {
                if Task.isCancelled { return .callerGone }
                do {
                    if let chunk = try await continuation.iterator.next() {
                        continuation.parser.append(chunk)
                        if exchange.runtime.clock.now() >= deadline {
                            failure = Failure(cause: "timeout", detail: "request_timeout reached", outcome: .transport(.timeout))
                        }
                    } else if continuation.sawMessageStop && !continuation.parser.hasUnparsedBytes {
                        do {
                            try await writer.finish(nil)
                        } catch {
                            return .callerGone
                        }
                        return .completed
                    } else {
                        failure = Failure(cause: "reset", detail: "upstream stream ended before message_stop", outcome: .transport(.reset))
                    }
                } catch {
                    if Task.isCancelled { return .callerGone }
                    failure = Failure(cause: error.failure.rawValue, detail: error.detail, outcome: .transport(error.failure))
                }
            }
            guard let failure else { continue }
            // The answer was already whole (its message_stop went out, or, with recovery on, its
            // stop reason): what broke afterwards — a reset, a stall, a stray error event — takes
            // nothing from the caller and is neither resumed nor surfaced.
            if continuation.sawMessageStop || partial?.sawStopReason == true {
                do {
                    if !continuation.sawMessageStop { try await writer.write(Self.messageStop) }
                    try await writer.finish(nil)
                } catch {
                    return .callerGone
                }
                return .completed
            }
            switch await recover(from: failure, writer: &writer) {
            case .resumed: continue
            case .callerGone: return .callerGone
            case .surface: return await surface(failure, writer: &writer)
            }
        }
    }

    static let messageStop = ByteBuffer(string: "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")

    /// An upstream's `event: error` as the outcome table reads it: overloaded and rate-limited
    /// move on to the next model, anything else may retry the same one.
    static func outcome(forErrorType type: String) -> AttemptOutcome {
        switch type {
        case "overloaded_error": .response(status: 529, errorType: type, retryAfter: nil, shouldRetry: nil)
        case "rate_limit_error": .response(status: 429, errorType: type, retryAfter: nil, shouldRetry: nil)
        case "timeout_error": .transport(.timeout)
        default: .response(status: 500, errorType: type, retryAfter: nil, shouldRetry: nil)
        }
    }

    private static func append(_ bytes: ByteBuffer?, to output: inout ByteBuffer?) {
        guard let bytes, bytes.readableBytes > 0 else { return }
        if output == nil {
            output = bytes
        } else {
            output!.writeImmutableBuffer(bytes)
        }
    }

    /// One event as the caller received it: usage, the end of the message, and (with recovery)
    /// the partial answer.
    private mutating func observe(_ name: SSEEventName, _ data: ByteBuffer) {
        switch name {
        case .messageDelta:
            if let delta = AnthropicPayload.usage(inMessageDelta: data) { continuation.usage.merge(delta) }
        case .messageStop:
            continuation.sawMessageStop = true
        default:
            break
        }
        partial?.observe(name: name, data: data)
    }

    private enum Recovery {
        case resumed
        case surface
        case callerGone
    }

    /// Stream recovery (README, "Stream recovery"): when the route has it on and the caller so far
    /// has plain text, a continuation on the route's next admitting model is spliced in.
    private mutating func recover(from failure: Failure, writer: inout some ResponseBodyWriter) async -> Recovery {
        guard let policy = exchange.route.spec.streamRecovery, let partial else { return .surface }
        guard partial.isRecoverable else {
            exchange.record.recovery = .unrecoverable
            return .surface
        }
        guard resumes < policy.maxResumes else {
            exchange.record.recovery = .unavailable
            return .surface
        }
        // The failed stream counts against its model like any failure, before the next choice.
        var attempt = exchange.record.attempts[attemptIndex]
        attempt.durationMs = (exchange.runtime.clock.now() - attemptStart).milliseconds
        Self.markFailed(&attempt, cause: failure.cause, detail: failure.detail)
        exchange.record.attempts[attemptIndex] = attempt
        await exchange.finishAttempt(model: model, ticket: ticket, effect: .failure(cause: failure.cause), attempt: attempt)
        attemptFinished = true

        switch await exchange.resumeStream(after: failure.outcome, partial: partial) {
        case .failed(let result):
            exchange.record.recovery = result
            return .surface
        case .resumed(let resumed):
            model = resumed.model
            ticket = resumed.ticket
            attemptIndex = resumed.attemptIndex
            attemptStart = resumed.attemptStart
            attemptFinished = false
            resumes += 1
            // The usage so far stays; the continuation's message_delta carries the summed count.
            let usage = continuation.usage
            continuation = resumed.continuation
            continuation.usage = usage
            continuation.sawMessageStop = false
            var active = StreamSplicer(partial: partial, request: resumed.request)
            var output: ByteBuffer?
            var parser = SSEEventParser()
            parser.append(resumed.prelude)
            while let event = try? parser.next() {
                let raw = parser.takeParsedBytes()
                switch active.splice(name: event.name, data: event.data) {
                case .forward:
                    Self.append(raw, to: &output)
                    observe(event.name, event.data)
                case .drop:
                    break
                case .replace(let data):
                    Self.append(StreamEventFields.event(event.name.wireName ?? "message", data: data), to: &output)
                    observe(event.name, data)
                }
            }
            splicer = active
            if let output {
                do {
                    try await writer.write(output)
                } catch {
                    return .callerGone
                }
            }
            return .resumed
        }
    }

    /// The failure reaches the caller as §5 says: the upstream's own `event: error`, or one made here.
    private func surface(_ failure: Failure, writer: inout some ResponseBodyWriter) async -> End {
        guard let event = failure.upstreamEvent else {
            return await fail(cause: failure.cause, detail: failure.detail ?? failure.cause, writer: &writer)
        }
        do {
            try await writer.write(event)
            try await writer.finish(nil)
        } catch {
            return .callerGone
        }
        return .upstreamFailed(cause: failure.cause, detail: failure.detail)
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
