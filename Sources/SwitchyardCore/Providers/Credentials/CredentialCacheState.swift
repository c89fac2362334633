/// The decisions behind ``RefreshingCredential``: when a cached credential is served, when it is
/// refreshed, who waits and for how long a failing endpoint is left alone. No I/O and no clock:
/// time comes in as unix milliseconds, and the caller carries out the returned actions, so every
/// rule is tested by feeding events.
///
/// `Waiter` is what a caller parks on (a continuation in production, anything in tests).
struct CredentialCacheState<Value: Sendable, Waiter> {
    struct Cached {
        var value: Value
        var expiresAtMs: Int64
        /// From here on the value is still served, but a refresh is started.
        var refreshAtMs: Int64
        /// From here on the value is no longer served, even if no new one could be had: a request
        /// signed with it could reach the platform after it expired (a slow upload, a clock a
        /// little behind). botocore's margins are 15 min advisory, 10 min mandatory.
        var usableUntilMs: Int64
    }

    /// The longest refresh-ahead window; shorter-lived values use a quarter of their lifetime.
    static var maxRefreshAheadMs: Int64 { 5 * 60 * 1000 }
    /// The longest mandatory margin before expiry; shorter-lived values use an eighth of their
    /// lifetime (always inside the refresh-ahead window, so a refresh was tried first).
    static var maxExpiryMarginMs: Int64 { 60 * 1000 }
    static var firstBackoffMs: Int64 { 1000 }
    static var maxBackoffMs: Int64 { 30 * 1000 }

    let source: String
    private(set) var cached: Cached?
    /// The id of the fetch in flight; its result is the only one accepted.
    private(set) var fetchInFlight: UInt64?
    private var lastFetchID: UInt64 = 0
    private var waiters: [UInt64: Waiter] = [:]
    private(set) var consecutiveFailures = 0
    /// After a failed fetch, no new fetch starts before this time.
    private(set) var retryNotBeforeMs: Int64?
    private var lastFailure: CredentialError?

    init(source: String) {
        self.source = source
    }

    enum RequestAction {
        /// Hand `Result` to the waiter now; start fetch `startFetch` when it is set.
        case resume(Waiter, Result<Value, CredentialError>, startFetch: UInt64?)
        /// The waiter is parked until the fetch in flight ends.
        case wait(startFetch: UInt64?)
    }

    struct Completion {
        var waiters: [Waiter]
        var result: Result<Value, CredentialError>
        /// Set when a value is still served although the refresh failed.
        var keptValueUntilMs: Int64?
        var error: CredentialError?
    }

    var waiterCount: Int { waiters.count }

    /// The cached value when nothing needs doing: it is valid and no refresh is due (or one is
    /// already under way, or the endpoint is in back-off). The lock-only path of every request.
    func freshValue(now: Int64) -> Value? {
        guard let cached, now < cached.usableUntilMs else { return nil }
        if now < cached.refreshAtMs || fetchInFlight != nil || inBackoff(now: now) { return cached.value }
        return nil
    }

    mutating func request(now: Int64, waiterID: UInt64, waiter: Waiter, cancelled: Bool) -> RequestAction {
        if cancelled { return .resume(waiter, .failure(cancelledError()), startFetch: nil) }
        if let cached, now < cached.usableUntilMs {
            let refreshDue = now >= cached.refreshAtMs && fetchInFlight == nil && !inBackoff(now: now)
            return .resume(waiter, .success(cached.value), startFetch: refreshDue ? beginFetch() : nil)
        }
        cached = nil
        if fetchInFlight != nil {
            waiters[waiterID] = waiter
            return .wait(startFetch: nil)
        }
        if inBackoff(now: now), let lastFailure, let retryNotBeforeMs {
            var error = lastFailure
            error.message += "; not asked again for \(Self.seconds(retryNotBeforeMs - now))"
            return .resume(waiter, .failure(error), startFetch: nil)
        }
        waiters[waiterID] = waiter
        return .wait(startFetch: beginFetch())
    }

    /// A parked caller gave up; the returned waiter must be resumed (with a cancellation error).
    mutating func cancel(waiterID: UInt64) -> Waiter? {
        waiters.removeValue(forKey: waiterID)
    }

    /// The fetch `id` produced a value; nil when `id` is no longer the fetch in flight (it timed out).
    mutating func fetchSucceeded(id: UInt64, value: Value, expiresAtMs: Int64, now: Int64) -> Completion? {
        guard fetchInFlight == id else { return nil }
        let lifetime = expiresAtMs - now
        guard lifetime > 0 else {
            let error = CredentialError(
                .invalidResponse, source: source,
                message: "the credential it gave had already expired (\(Self.seconds(-lifetime)) ago); check this machine's clock"
            )
            return fetchFailed(id: id, error: error, now: now)
        }
        fetchInFlight = nil
        consecutiveFailures = 0
        retryNotBeforeMs = nil
        lastFailure = nil
        let window = min(Self.maxRefreshAheadMs, lifetime / 4)
        let margin = min(Self.maxExpiryMarginMs, lifetime / 8)
        cached = Cached(value: value, expiresAtMs: expiresAtMs, refreshAtMs: expiresAtMs - window, usableUntilMs: expiresAtMs - margin)
        return Completion(waiters: takeWaiters(), result: .success(value))
    }

    /// The fetch `id` failed; nil when `id` is no longer the fetch in flight.
    mutating func fetchFailed(id: UInt64, error: CredentialError, now: Int64) -> Completion? {
        guard fetchInFlight == id else { return nil }
        fetchInFlight = nil
        consecutiveFailures += 1
        let backoff = min(Self.maxBackoffMs, Self.firstBackoffMs << min(consecutiveFailures - 1, 16))
        retryNotBeforeMs = now + backoff
        lastFailure = error
        if let cached, now < cached.usableUntilMs {
            return Completion(waiters: takeWaiters(), result: .success(cached.value), keptValueUntilMs: cached.usableUntilMs, error: error)
        }
        cached = nil
        return Completion(waiters: takeWaiters(), result: .failure(error), error: error)
    }

    /// Drops the cached value (the platform said it is no longer good). A fetch in flight goes on
    /// and its result is used; a back-off in force stays in force.
    mutating func invalidate() {
        cached = nil
    }

    private func inBackoff(now: Int64) -> Bool {
        guard let retryNotBeforeMs else { return false }
        return now < retryNotBeforeMs
    }

    private mutating func beginFetch() -> UInt64 {
        lastFetchID += 1
        fetchInFlight = lastFetchID
        return lastFetchID
    }

    private mutating func takeWaiters() -> [Waiter] {
        defer { waiters.removeAll() }
        return Array(waiters.values)
    }

    func cancelledError() -> CredentialError {
        CredentialError(.cancelled, source: source, message: "the request ended before a credential was available")
    }

    static func seconds(_ ms: Int64) -> String {
        ms % 1000 == 0 ? "\(ms / 1000) s" : "\(Double(ms) / 1000) s"
    }
}
