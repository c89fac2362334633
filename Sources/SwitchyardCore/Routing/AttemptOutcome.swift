/// What one upstream attempt produced, as far as routing cares.
public enum AttemptOutcome: Sendable, Equatable {
    /// The upstream answered with a status (for streams: before the commit point, a non-2xx head).
    /// `row` is the outcome-table row when the platform says more than the status does (Bedrock
    /// answers a quota error with 400); nil: the row the status names.
    case response(status: Int, errorType: String?, retryAfter: Duration?, shouldRetry: Bool?, row: OutcomeRow? = nil)
    /// Switchyard's own platform credentials could not be had (token endpoint down) or were
    /// refused (expired, wrong, clock skew): every request to that model would fail the same way.
    case auth
    /// No usable answer: connect/TLS failure, reset before headers, timeouts.
    case transport(TransportFailure)
    /// A 2xx stream that failed before its commit point: an `event: error`, or the connection
    /// ending or stalling before the first content event.
    case streamFailedBeforeCommit(errorType: String?, failure: TransportFailure?)
    /// A 2xx whose body could not be used (not JSON, oversized).
    case invalidResponse(reason: String)
}

/// The rows of the outcome table (README, "Routing, retries and failover") a status or platform error falls in.
public enum OutcomeRow: Sendable, Equatable {
    /// 2xx.
    case success
    /// 400, 401, 403, 404, 413, 422 and other 4xx: returned to the caller as is.
    case clientError
    /// 408, 409: retry, same model allowed.
    case retrySameModel
    /// 429: next model at once; the model is skipped for `retry-after`.
    case rateLimited
    /// 500, 502, 503, 504 and other 5xx: retry, breaker failure.
    case serverError
    /// 529 (and a platform's "service unavailable"): next model at once, breaker failure.
    case overloaded
    /// The account behind the model's key is out of credit (OpenAI's `insufficient_quota`): no
    /// `retry-after` cures it, so the model is skipped for the longest rate-limit period and the
    /// request moves on at once, or stops when no model is left.
    case quotaExhausted
    /// This model cannot serve this API (count_tokens where the platform has none): next model,
    /// breaker untouched.
    case unsupported

    public init(status: Int) {
        switch status {
        case 200..<300: self = .success
        case 408, 409: self = .retrySameModel
        case 429: self = .rateLimited
        case 529: self = .overloaded
        case 500..<600: self = .serverError
        default: self = .clientError
        }
    }
}

public enum TransportFailure: String, Sendable, Equatable {
    case connect
    case tls
    case reset
    case timeout
    /// No connection to the upstream was free within `queue_timeout`: the router's own limit,
    /// not the upstream's failure.
    case capacity
}

/// The routing verdict on one attempt: the attempt-outcome table of README, "Routing, retries and failover".
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
        /// The next model at once, or stop when none is left: waiting on this one again would
        /// only wait for the same thing (the router's own connection limit).
        case nextModelOnly
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
        case .response(let status, _, let retryAfter, let shouldRetry, let row):
            var verdict = classify(row: row ?? OutcomeRow(status: status), status: status, retryAfter: retryAfter)
            if shouldRetry == false, verdict.next != .done {
                verdict.next = .returnAsIs
                verdict.rateLimitFor = nil
            }
            return verdict
        case .transport(.capacity):
            // Local saturation: another model at once, and nothing against this one's health.
            return AttemptVerdict(next: .nextModelOnly, breaker: .neutral)
        case .transport(let failure):
            return AttemptVerdict(next: .retrySameModel, breaker: .failure(cause: failure.rawValue))
        case .auth:
            return AttemptVerdict(next: .nextModel, breaker: .failure(cause: "auth"))
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

    static func classify(row: OutcomeRow, status: Int, retryAfter: Duration?) -> AttemptVerdict {
        switch row {
        case .success:
            return AttemptVerdict(next: .done, breaker: .success)
        case .retrySameModel:
            return AttemptVerdict(next: .retrySameModel, breaker: .neutral, retryAfter: retryAfter)
        case .rateLimited:
            let skip = min(retryAfter ?? defaultRateLimit, maxRateLimit)
            return AttemptVerdict(next: .nextModel, breaker: .neutral, retryAfter: retryAfter, rateLimitFor: skip)
        case .overloaded:
            return AttemptVerdict(next: .nextModel, breaker: .failure(cause: String(status)), retryAfter: retryAfter)
        case .serverError:
            return AttemptVerdict(next: .retrySameModel, breaker: .failure(cause: String(status)), retryAfter: retryAfter)
        case .unsupported:
            return AttemptVerdict(next: .nextModel, breaker: .neutral)
        case .quotaExhausted:
            return AttemptVerdict(next: .nextModelOnly, breaker: .neutral, rateLimitFor: maxRateLimit)
        case .clientError:
            return AttemptVerdict(next: .returnAsIs, breaker: .neutral)
        }
    }
}
