import NIOCore

/// A Messages stream past its commit point: where its reading stands, for ``StreamRelay``.
struct CommittedStream {
    var iterator: UpstreamBody.AsyncIterator
    var parser: SSEEventParser
    var usage: TokenUsage
    var sawMessageStop: Bool
}

/// Reads a 2xx Messages stream up to its commit point (the first event after
/// `message_start`/`ping`), holding the events back, so that a failure before it can still be
/// retried on another model and the caller never notices.
enum StreamCommit {
    enum Result {
        /// The stream committed: `prelude` holds the events read so far, for the caller.
        case committed(CommittedStream, prelude: ByteBuffer)
        case failed(Failure)
    }

    /// How the stream failed before its commit point, as the attempt's audit entry and the
    /// outcome table see it.
    struct Failure {
        var outcome: AttemptOutcome
        /// The attempt's `error`: `stream_error`, or the transport failure.
        var error: String
        var errorType: String?
        var detail: String?
        /// A platform's exception behind an `event: error` (Bedrock's modelStreamErrorException).
        var platformError: (code: String, status: Int?)?
        /// Set for a stream that is not Anthropic's framing at all: why, for the debug log.
        var malformed: String?
    }

    nonisolated(nonsending) static func read(_ body: UpstreamBody, provider: any UpstreamProvider) async -> Result {
        var iterator = body.makeAsyncIterator()
        var parser = SSEEventParser()
        var usage = TokenUsage()
        var sawMessageStart = false
        func malformed(_ reason: String) -> Result {
            .failed(
                Failure(outcome: .streamFailedBeforeCommit(errorType: nil, failure: nil), error: "stream_error", errorType: "malformed_stream", malformed: reason)
            )
        }
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await iterator.next()
            } catch {
                return .failed(
                    Failure(outcome: .streamFailedBeforeCommit(errorType: nil, failure: error.failure), error: error.failure.rawValue, detail: error.detail)
                )
            }
            guard let chunk else {
                return .failed(Failure(outcome: .streamFailedBeforeCommit(errorType: nil, failure: .reset), error: "stream_error"))
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
                        return .failed(
                            Failure(
                                outcome: .streamFailedBeforeCommit(errorType: errorType, failure: nil), error: "stream_error", errorType: errorType,
                                platformError: provider.platformError(inStreamError: event.data)
                            )
                        )
                    default:
                        if event.name == .messageDelta, let delta = AnthropicPayload.usage(inMessageDelta: event.data) { usage.merge(delta) }
                        let prelude = parser.takeParsedBytes() ?? ByteBuffer()
                        let committed = CommittedStream(iterator: iterator, parser: parser, usage: usage, sawMessageStop: event.name == .messageStop)
                        return .committed(committed, prelude: prelude)
                    }
                }
            } catch {
                return .failed(Failure(outcome: .streamFailedBeforeCommit(errorType: nil, failure: .reset), error: "stream_error"))
            }
        }
    }
}
