import Synchronization

/// `retry_budget: { percent: 20, min_per_second: 5 }` of a route.
public struct RetryBudgetPolicy: Sendable, Equatable {
    /// Active retries may be this share of the route's active requests, in [0, 1].
    public var percent: Double
    /// Retries per second always allowed, whatever the share says (a quiet route still retries).
    public var minPerSecond: Double

    public static let defaultPercent = 0.2
    public static let defaultMinPerSecond = 5.0
}

/// A route's retry budget, as a pure value: Envoy's retry budget (a limit on concurrent retries
/// relative to active requests) with a rate floor in place of Envoy's `min_retry_concurrency`.
///
/// The rule: a retry (any attempt after a request's first, on the same model or the next) is
/// made when `activeRetries < ⌊percent × activeRequests⌋` (Envoy's integer limit: one request
/// alone earns no share), or else when a floor token is left; the
/// floor is a bucket of `min_per_second` tokens refilled at `min_per_second` a second. Otherwise
/// the request ends with the answer it has (`error: retry_budget`). A request is active from the
/// start of its walk to its end; a retry is active from the moment it is granted (its backoff
/// included) until its attempt has an answer.
///
/// In an outage where every attempt fails, each request wants its retries at once: the share
/// keeps retries in flight to a fifth of requests in flight, and the floor adds at most
/// `min_per_second` a second, so upstream load stays near the callers' own rate instead of
/// `max_attempts` times it.
public struct RetryBudget: Sendable {
    public enum Grant: Sendable, Equatable {
        /// Within `percent` of active requests.
        case share
        /// Over the share, paid from the per-second floor.
        case floor
        case refused
    }

    public let policy: RetryBudgetPolicy
    public private(set) var activeRequests = 0
    public private(set) var activeRetries = 0
    private var floorTokens: Double
    private var refilledAt: MonotonicInstant?

    public init(policy: RetryBudgetPolicy) {
        self.policy = policy
        floorTokens = policy.minPerSecond
    }

    public mutating func requestStarted() {
        activeRequests += 1
    }

    public mutating func requestEnded() {
        activeRequests = max(0, activeRequests - 1)
    }

    /// Asks for one retry; a granted one is active until ``retryEnded()``.
    public mutating func grant(now: MonotonicInstant) -> Grant {
        refill(now: now)
        if activeRetries < Int((policy.percent * Double(activeRequests)).rounded(.down)) {
            activeRetries += 1
            return .share
        }
        if floorTokens >= 1 {
            floorTokens -= 1
            activeRetries += 1
            return .floor
        }
        return .refused
    }

    public mutating func retryEnded() {
        activeRetries = max(0, activeRetries - 1)
    }

    private mutating func refill(now: MonotonicInstant) {
        defer { refilledAt = now }
        guard let last = refilledAt, now > last else { return }
        let seconds = Double((now - last).nanoseconds) / 1e9
        floorTokens = min(policy.minPerSecond, floorTokens + seconds * policy.minPerSecond)
    }
}

/// The retry budget one route's requests share, behind a lock (held for a few arithmetic steps).
public final class RouteRetryBudget: Sendable {
    public let policy: RetryBudgetPolicy
    private let state: Mutex<RetryBudget>

    public init(policy: RetryBudgetPolicy) {
        self.policy = policy
        state = Mutex(RetryBudget(policy: policy))
    }

    public func withBudget<T>(_ body: (inout RetryBudget) -> T) -> T {
        state.withLock { body(&$0) }
    }
}
