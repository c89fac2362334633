/// What one recorded attempt tells about its upstream, as the outcome table reads it.
public enum RecordedOutcome: Sendable, Equatable {
    /// The upstream's answer, rebuilt from the attempt's `status`, `error`, `error_type` and
    /// `retry_after_ms`. (`x-should-retry` is not in the audit line: an answer is read as if it
    /// had none.)
    case answer(AttemptOutcome)
    /// A stream that passed its commit point and failed later: the caller had its head already,
    /// so the request ends with `stream_error`; the breaker counts a failure.
    case streamFailedAfterCommit(cause: String)
    /// The caller left while the attempt ran: the breaker learned nothing. `status` is what the
    /// upstream had answered by then, if anything.
    case cancelled(status: Int?)

    /// Rebuilds the outcome of one attempt of a request.
    /// - Parameters:
    ///   - stream: whether the request streamed (a 2xx with a transport error is then a stream that
    ///     failed before its commit point, not a body that broke off).
    ///   - committedFailure: the attempt is the request's committed stream and it failed after the
    ///     commit point (the last attempt of a `stream_error` request, or one followed by a resumption).
    ///   - cancelled: the attempt is the last of a request the caller left.
    public init(
        status: Int?, error: String?, errorType: String?, retryAfter: Duration?, stream: Bool, committedFailure: Bool, cancelled: Bool
    ) {
        if cancelled {
            self = .cancelled(status: status)
            return
        }
        if committedFailure {
            self = .streamFailedAfterCommit(cause: errorType ?? error ?? "stream_error")
            return
        }
        let success = status.map { (200..<300).contains($0) } ?? false
        switch error {
        case nil:
            guard let status else {
                // Neither a status nor an error: the attempt never got an answer.
                self = .cancelled(status: nil)
                return
            }
            self = .answer(.response(status: status, errorType: errorType, retryAfter: retryAfter, shouldRetry: nil))
        case "auth":
            self = .answer(.auth)
        case "invalid_response":
            self = .answer(.invalidResponse(reason: "recorded"))
        case "stream_error":
            self = .answer(.streamFailedBeforeCommit(errorType: errorType, failure: nil))
        case let name?:
            let failure = TransportFailure(rawValue: name) ?? .reset
            if stream, success, failure != .capacity {
                self = .answer(.streamFailedBeforeCommit(errorType: errorType, failure: failure))
            } else {
                self = .answer(.transport(failure))
            }
        }
    }

    /// The outcome an attempt of another request would meet at about the same time: what the
    /// upstream answered, adjusted for whether that request streams. Nil when this attempt says
    /// nothing about the upstream (the caller left before an answer; the router's own connection
    /// limit, `error: capacity`).
    public func answer(forStream stream: Bool) -> RecordedOutcome? {
        switch self {
        case .answer(.transport(.capacity)):
            return nil
        case .answer(.streamFailedBeforeCommit(let errorType, let failure)) where !stream:
            // A request that does not stream meets the same failure as a broken answer.
            if errorType == "rate_limit_error" { return .answer(.response(status: 429, errorType: errorType, retryAfter: nil, shouldRetry: nil)) }
            if errorType == "overloaded_error" { return .answer(.response(status: 529, errorType: errorType, retryAfter: nil, shouldRetry: nil)) }
            return .answer(.transport(failure ?? .reset))
        case .answer:
            return self
        case .streamFailedAfterCommit:
            // Another stream would have committed and broken the same way; an answer that does
            // not stream breaks off before it is whole.
            return stream ? self : .answer(.transport(.reset))
        case .cancelled(let status?) where (200..<300).contains(status):
            return .answer(.response(status: status, errorType: nil, retryAfter: nil, shouldRetry: nil))
        case .cancelled:
            return nil
        }
    }

    /// The attempt's `status`, `error` and `error_type` as the audit line would have them, for the
    /// error the caller gets when the walk ends without an answer (``ExhaustedRoute``).
    func describe(_ attempt: inout AttemptRecord) {
        switch self {
        case .answer(.response(let status, let errorType, _, _, _)):
            attempt.status = status
            attempt.errorType = errorType
        case .answer(.auth):
            attempt.error = "auth"
        case .answer(.transport(let failure)):
            attempt.error = failure.rawValue
        case .answer(.streamFailedBeforeCommit(let errorType, let failure)):
            attempt.status = 200
            attempt.error = failure?.rawValue ?? "stream_error"
            attempt.errorType = errorType
        case .answer(.invalidResponse):
            attempt.status = 200
            attempt.error = "invalid_response"
        case .streamFailedAfterCommit:
            attempt.status = 200
            attempt.error = "stream_error"
        case .cancelled(let status):
            attempt.status = status
        }
    }
}
