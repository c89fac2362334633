import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Where background fetches run: one of NIO's loops, like the requests that wait for them. Where
/// NIO's loops are not Swift's global executor (the test process, an app embedding the router) a
/// plain `Task` runs on the cooperative pool; under load there a fetch waited behind every other
/// job for seconds, while the requests needing it, on the loops, ran out their deadlines (seen in
/// CI). The singleton group's loops never shut down, which ``LoopTaskExecutor`` requires.
private let credentialFetchExecutor = LoopTaskExecutor(loop: MultiThreadedEventLoopGroup.singleton.next())

/// One credential (AWS keys, a Google access token) with an expiry, fetched by one task and
/// served from memory to every request.
///
/// - Many concurrent callers with nothing cached: one fetch, everyone gets its result.
/// - A value in its refresh-ahead window (the last `min(5 min, lifetime / 4)`) is still served
///   while one background fetch replaces it.
/// - A value in its last `min(60 s, lifetime / 8)` is never served: nothing is signed with a
///   credential that could expire while the request is on its way.
/// - A failed refresh keeps a still-valid value; a failed fetch with nothing valid fails the
///   callers, and the endpoint is not asked again for a back-off (1 s doubling to 30 s).
/// - A fetch that outlasts `fetchTimeout` fails; a caller's own `deadline` bounds its wait.
///
/// A `Mutex` rather than an actor: the common path is a lock, a comparison and a return, with no
/// hop to another executor on every upstream request.
public final class RefreshingCredential<Value: Sendable>: Sendable {
    /// A fetched value and the unix millisecond at which it stops being valid.
    public struct Expiring: Sendable {
        public var value: Value
        public var expiresAtMs: Int64

        public init(value: Value, expiresAtMs: Int64) {
            self.value = value
            self.expiresAtMs = expiresAtMs
        }
    }

    /// Fetches a fresh value; the deadline is when `fetchTimeout` runs out, for the HTTP client.
    public typealias Fetch = @Sendable (_ deadline: NIODeadline) async throws(CredentialError) -> Expiring

    private typealias Waiter = CheckedContinuation<Result<Value, CredentialError>, Never>

    private let state: Mutex<CredentialCacheState<Value, Waiter>>
    private let nextWaiterID = Atomic<UInt64>(0)
    private let source: String
    private let fetchTimeout: Duration
    private let now: @Sendable () -> Int64
    private let logger: Logger
    private let fetch: Fetch

    /// - Parameters:
    ///   - source: Names where the value comes from in errors and logs, e.g. `aws web identity (STS sts.us-east-1.amazonaws.com)`.
    ///   - fetchTimeout: How long one fetch may take before it fails and its waiters with it.
    ///   - now: Unix milliseconds; tests move it by hand.
    public init(
        source: String,
        fetchTimeout: Duration = .seconds(10),
        now: @escaping @Sendable () -> Int64,
        logger: Logger = Logger(label: "switchyard.credentials"),
        fetch: @escaping Fetch
    ) {
        self.state = Mutex(CredentialCacheState(source: source))
        self.source = source
        self.fetchTimeout = fetchTimeout
        self.now = now
        self.logger = logger
        self.fetch = fetch
    }

    /// The current value, fetching it first when nothing valid is cached.
    ///
    /// - Parameter deadline: When the caller stops waiting for a fetch in flight (its request's
    ///   own deadline); the fetch goes on for the callers after it. Passing it is an `.unreachable`
    ///   error; the caller's task being cancelled is a `.cancelled` one.
    public func value(deadline: NIODeadline? = nil) async throws(CredentialError) -> Value {
        let startedAt = now()
        if let value = state.withLock({ $0.freshValue(now: startedAt) }) { return value }
        guard let deadline else { return try await parkedRequest().get() }
        let source = self.source
        return try await withTaskGroup(of: Result<Value, CredentialError>.self) { group in
            group.addTask { await self.parkedRequest() }
            group.addTask {
                let remaining = deadline.uptimeNanoseconds.subtractingReportingOverflow(NIODeadline.now().uptimeNanoseconds)
                if !remaining.overflow && remaining.partialValue > 0 {
                    try? await Task.sleep(nanoseconds: remaining.partialValue)
                }
                // Cancelled: the caller went away, which says nothing about the endpoint. Not
                // cancelled: the endpoint is too slow for this request, which is its failure.
                if Task.isCancelled {
                    return .failure(CredentialError(.cancelled, source: source, message: "the request ended before a credential was available"))
                }
                return .failure(
                    CredentialError(
                        .unreachable, source: source, message: "no credential before the request's deadline; the endpoint is slow to answer"
                    )
                )
            }
            let first = await group.next() ?? .failure(CredentialError(.cancelled, source: source, message: "the request ended"))
            group.cancelAll()
            return first
        }.get()
    }

    /// Drops the cached value, e.g. after the platform answered that the credential expired or
    /// was revoked; the next caller fetches a new one.
    public func invalidate() {
        state.withLock { $0.invalidate() }
    }

    /// Parks on the state machine: served at once, or when the fetch in flight ends.
    private func parkedRequest() async -> Result<Value, CredentialError> {
        let id = nextWaiterID.add(1, ordering: .relaxed).newValue
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: Waiter) in
                let at = now()
                let action = state.withLock {
                    $0.request(now: at, waiterID: id, waiter: waiter, cancelled: Task.isCancelled)
                }
                switch action {
                case .resume(let waiter, let result, let fetchID):
                    if let fetchID { startFetch(id: fetchID) }
                    waiter.resume(returning: result)
                case .wait(let fetchID):
                    if let fetchID { startFetch(id: fetchID) }
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.cancel(waiterID: id) }
            waiter?.resume(returning: .failure(state.withLock { $0.cancelledError() }))
        }
    }

    /// Runs fetch `id` in a task of its own: it serves every caller, so it must not end when the
    /// caller that happened to start it goes away. The fetch races `fetchTimeout`; whichever
    /// finishes first reports, so a fetch stuck past its cancellation still releases the waiters.
    private func startFetch(id: UInt64) {
        Task(executorPreference: credentialFetchExecutor) { [self] in
            let (seconds, attoseconds) = fetchTimeout.components
            let deadline = NIODeadline.now() + .seconds(seconds) + .nanoseconds(attoseconds / 1_000_000_000)
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do throws(CredentialError) {
                        let fetched = try await self.fetch(deadline)
                        self.finish(id: id, .success(fetched))
                    } catch {
                        self.finish(id: id, .failure(error))
                    }
                }
                group.addTask {
                    do { try await Task.sleep(for: self.fetchTimeout) } catch { return }
                    let error = CredentialError(
                        .unreachable, source: self.source,
                        message: "no answer within \(self.fetchTimeout); check that the endpoint is reachable from this machine"
                    )
                    self.finish(id: id, .failure(error))
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    private func finish(id: UInt64, _ result: Result<Expiring, CredentialError>) {
        let at = now()
        let completion = state.withLock { state in
            switch result {
            case .success(let fetched): state.fetchSucceeded(id: id, value: fetched.value, expiresAtMs: fetched.expiresAtMs, now: at)
            case .failure(let error): state.fetchFailed(id: id, error: error, now: at)
            }
        }
        guard let completion else { return }
        if let error = completion.error {
            if let until = completion.keptValueUntilMs {
                logger.warning(
                    "credential refresh failed; the current one is used until shortly before it expires",
                    metadata: ["source": "\(source)", "error": "\(error)", "expires_in_ms": "\(until - at)"]
                )
            } else {
                logger.warning("credential fetch failed", metadata: ["source": "\(source)", "error": "\(error)"])
            }
        } else if case .success(let fetched) = result {
            logger.debug("credential fetched", metadata: ["source": "\(source)", "expires_in_ms": "\(fetched.expiresAtMs - at)"])
        }
        for waiter in completion.waiters { waiter.resume(returning: completion.result) }
    }
}
