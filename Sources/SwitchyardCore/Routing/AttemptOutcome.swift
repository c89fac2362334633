/// What one upstream attempt produced, as far as routing cares.
public enum AttemptOutcome: Sendable, Equatable {
    /// The upstream answered with a status (for streams: before the commit point, a non-2xx head).
    case response(status: Int, errorType: String?, retryAfter: Duration?, shouldRetry: Bool?)
    /// No usable answer: connect/TLS failure, reset before headers, timeouts.
    case transport(TransportFailure)
    /// A 2xx stream that failed before its commit point: an `event: error`, or the connection
    /// ending or stalling before the first content event.
    case streamFailedBeforeCommit(errorType: String?, failure: TransportFailure?)
    /// A 2xx whose body could not be used (not JSON, oversized).
    case invalidResponse(reason: String)
}

public enum TransportFailure: String, Sendable, Equatable {
    case connect
    case tls
    case reset
    case timeout
}

/// The routing verdict on one attempt: the attempt-outcome table of PRODUCT.md section 4.
public struct AttemptVerdict: Sendable, Equatable {
    public enum Next: Sendable, Equatable {
        /// 2xx: the response goes to the caller.
        case done
        /// Not retryable: the upstream's answer goes to the caller unchanged.
        case returnAsIs
        /// Retry; the same model may take it again after backoff.
        case retrySameModel
        /// Retry on the next model at once.
        case nextModel
    }

    public var next: Next
    public var breaker: BreakerEffect
    /// Minimum wait before this model is tried again (`retry-after`).
    public var retryAfter: Duration?
    /// Skip this model for every request until this much time has passed (429).
    public var rateLimitFor: Duration?

    public init(next: Next, breaker: BreakerEffect, retryAfter: Duration? = nil, rateLimitFor: Duration? = nil) {
        self.next = next
        self.breaker = breaker
        self.retryAfter = retryAfter
        self.rateLimitFor = rateLimitFor
    }

    public static let defaultRateLimit = Duration.seconds(10)
    public static let maxRateLimit = Duration.seconds(300)

    public static func classify(_ outcome: AttemptOutcome) -> AttemptVerdict {
        switch outcome {
        case .response(let status, _, let retryAfter, let shouldRetry):
            var verdict = classify(status: status, retryAfter: retryAfter)
            if shouldRetry == false, verdict.next != .done {
                verdict.next = .returnAsIs
                verdict.rateLimitFor = nil
            }
            return verdict
        case .transport(let failure):
            return AttemptVerdict(next: .retrySameModel, breaker: .failure(cause: failure.rawValue))
        case .streamFailedBeforeCommit(let errorType, let failure):
            if errorType == "rate_limit_error" {
                return AttemptVerdict(next: .nextModel, breaker: .neutral, rateLimitFor: defaultRateLimit)
            }
            let cause = errorType ?? failure?.rawValue ?? "stream_error"
            return AttemptVerdict(next: .nextModel, breaker: .failure(cause: cause))
        case .invalidResponse:
            return AttemptVerdict(next: .retrySameModel, breaker: .failure(cause: "invalid_response"))
        }
    }

    static func classify(status: Int, retryAfter: Duration?) -> AttemptVerdict {
        switch status {
        case 200..<300:
            return AttemptVerdict(next: .done, breaker: .success)
        case 408, 409:
            return AttemptVerdict(next: .retrySameModel, breaker: .neutral, retryAfter: retryAfter)
        case 429:
            let skip = min(retryAfter ?? defaultRateLimit, maxRateLimit)
            return AttemptVerdict(next: .nextModel, breaker: .neutral, retryAfter: retryAfter, rateLimitFor: skip)
        case 529:
            return AttemptVerdict(next: .nextModel, breaker: .failure(cause: "529"), retryAfter: retryAfter)
        case 500..<600:
            return AttemptVerdict(next: .retrySameModel, breaker: .failure(cause: String(status)), retryAfter: retryAfter)
        default:
            return AttemptVerdict(next: .returnAsIs, breaker: .neutral)
        }
    }
}
