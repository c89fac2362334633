import HummingbirdCore
import NIOCore

/// Relays a committed Messages stream to the caller, whole events at a time, and splices a
/// resumed stream into it (stream recovery). It reports how the stream stopped and knows nothing
/// of breakers, attempts or the audit record: ``RouteWalk`` decides what a stop means.
struct StreamRelay {
    /// Why ``pump(into:)`` returned.
    enum Stop {
        /// The stream ended with its `message_stop`, and the caller's stream is finished.
        case completed
        /// The upstream failed; nothing of the failure reached the caller yet.
        case failed(Failure)
        case callerGone
    }

    /// How a committed stream failed.
    struct Failure {
        /// The upstream's error type, or the transport failure (`reset`, `timeout`, `stream_error`).
        var cause: String
        var detail: String?
        /// The upstream's own `event: error`, forwarded when the failure reaches the caller.
        var upstreamEvent: ByteBuffer?
        /// The failure as the outcome table sees it, for the attempt budget of a resumption.
        var outcome: AttemptOutcome
        /// A platform's exception behind an `event: error`.
        var platformError: (code: String, status: Int?)?
    }

    private(set) var stream: CommittedStream
    /// The provider of the stream being read, which reads platform errors in its `event: error`.
    private var provider: (any UpstreamProvider)?
    /// With `stream_recovery` on: what the caller has received (its text only); nil otherwise.
    private(set) var partial: PartialResponse?
    /// Set once a resumed stream is being spliced in.
    private var splicer: StreamSplicer?
    private let clock: any RouterClock
    private let deadline: MonotonicInstant

    init(
        stream: CommittedStream, provider: (any UpstreamProvider)?, observesPartial: Bool, prelude: ByteBuffer, clock: any RouterClock,
        deadline: MonotonicInstant
    ) {
        self.stream = stream
        self.provider = provider
        self.clock = clock
        self.deadline = deadline
        if observesPartial {
            // The events before the commit point went out as one prelude: the caller has them.
            var partial = PartialResponse()
            var parser = SSEEventParser()
            parser.append(prelude)
            while let event = try? parser.next() { partial.observe(name: event.name, data: event.data) }
            self.partial = partial
        }
    }

    /// The answer was already whole when it failed (its `message_stop` went out, or, with recovery
    /// on, its stop reason): what broke afterwards takes nothing from the caller.
    var wasWhole: Bool { stream.sawMessageStop || partial?.sawStopReason == true }

    /// Relays events until the stream ends, fails or the caller leaves.
    mutating func pump(into writer: inout some ResponseBodyWriter) async -> Stop {
        while true {
            var failure: Failure?
            var output: ByteBuffer?
            do {
                while true {
                    let mark = stream.parser.parsedByteCount
                    guard let event = try stream.parser.next() else { break }
                    if event.name == .error {
                        // Held back: stream recovery may hide it; otherwise it is forwarded as is.
                        Self.append(stream.parser.takeParsedBytes(prefix: mark), to: &output)
                        let type = AnthropicPayload.error(in: event.data).type ?? "api_error"
                        failure = Failure(
                            cause: type, detail: nil, upstreamEvent: StreamEventFields.event("error", data: event.data),
                            outcome: Self.outcome(forErrorType: type), platformError: provider?.platformError(inStreamError: event.data)
                        )
                        break
                    }
                    if splicer != nil {
                        splice(event, raw: stream.parser.takeParsedBytes(), into: &output)
                    } else {
                        observe(event.name, event.data)
                    }
                }
            } catch {
                failure = Failure(
                    cause: "stream_error", detail: "an event exceeded \(error.limit) bytes", outcome: .streamFailedBeforeCommit(errorType: nil, failure: .reset)
                )
            }
            if failure == nil, splicer == nil { Self.append(stream.parser.takeParsedBytes(), to: &output) }
            if let output {
                do {
                    try await writer.write(output)
                } catch {
                    return .callerGone
                }
            }
            if let failure { return .failed(failure) }
            if Task.isCancelled { return .callerGone }
            do {
                if let chunk = try await stream.iterator.next() {
                    stream.parser.append(chunk)
                    if clock.now() >= deadline {
                        return .failed(Failure(cause: "timeout", detail: "request_timeout reached", outcome: .transport(.timeout)))
                    }
                } else if stream.sawMessageStop && !stream.parser.hasUnparsedBytes {
                    do {
                        try await writer.finish(nil)
                    } catch {
                        return .callerGone
                    }
                    return .completed
                } else {
                    return .failed(Failure(cause: "reset", detail: "upstream stream ended before message_stop", outcome: .transport(.reset)))
                }
            } catch {
                if Task.isCancelled { return .callerGone }
                return .failed(Failure(cause: error.failure.rawValue, detail: error.detail, outcome: .transport(error.failure)))
            }
        }
    }

    /// Ends a stream whose answer was already whole: the `message_stop` the caller may lack, then
    /// the end. False when the caller is gone.
    func finishWhole(into writer: inout some ResponseBodyWriter) async -> Bool {
        do {
            if !stream.sawMessageStop { try await writer.write(Self.messageStop) }
            try await writer.finish(nil)
            return true
        } catch {
            return false
        }
    }

    /// Splices `resumed` in: from now on its events are read, renumbered as the caller's stream
    /// continues (``StreamSplicer``); its events up to its commit point go out at once. False when
    /// the caller is gone.
    mutating func splice(
        _ resumed: CommittedStream, prelude: ByteBuffer, request: ResumeRequest, provider: (any UpstreamProvider)?,
        into writer: inout some ResponseBodyWriter
    ) async -> Bool {
        guard let partial else { return true }
        // The usage so far stays; the resumed stream's message_delta carries the summed count.
        let usage = stream.usage
        stream = resumed
        stream.usage = usage
        stream.sawMessageStop = false
        self.provider = provider
        splicer = StreamSplicer(partial: partial, request: request)
        var output: ByteBuffer?
        var parser = SSEEventParser()
        parser.append(prelude)
        while let event = try? parser.next() {
            splice(event, raw: parser.takeParsedBytes(), into: &output)
        }
        guard let output else { return true }
        do {
            try await writer.write(output)
            return true
        } catch {
            return false
        }
    }

    /// The failure reaches the caller as a well-formed stream end: the upstream's own
    /// `event: error`, or `made` when it sent none. False when the caller is gone.
    func surface(_ failure: Failure, made: @autoclosure () -> ByteBuffer, into writer: inout some ResponseBodyWriter) async -> Bool {
        do {
            try await writer.write(failure.upstreamEvent ?? made())
            try await writer.finish(nil)
            return true
        } catch {
            return false
        }
    }

    // MARK: Events

    /// One event of a resumed stream through the splicer, to the caller.
    private mutating func splice(_ event: SSEEvent, raw: ByteBuffer?, into output: inout ByteBuffer?) {
        guard var active = splicer else { return }
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
    }

    /// One event as the caller received it: usage, the end of the message, and (with recovery)
    /// the partial answer.
    private mutating func observe(_ name: SSEEventName, _ data: ByteBuffer) {
        switch name {
        case .messageDelta:
            if let delta = AnthropicPayload.usage(inMessageDelta: data) { stream.usage.merge(delta) }
        case .messageStop:
            stream.sawMessageStop = true
        default:
            break
        }
        partial?.observe(name: name, data: data)
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
}
