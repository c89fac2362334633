import Logging
import NIOCore
import Synchronization

/// Runs batch requests (`mode: direct`, README, "Non-urgent work: Message Batches"): each through its route with the
/// same breakers, outcome table and audit as interactive traffic, but patiently and second —
/// only while a model of the route admits it (a half-open probe slot only after it stood free
/// for `probe_grace`), at most `concurrency` at a time, retried with backoff up to `max_backoff`
/// until it succeeds, fails with a caller error, or its batch expires. Work waiting for a model
/// is woken by breaker transitions (the doorbell), not only by its timer.
final class BatchRunner: Sendable {
    let runtime: RouterRuntime
    let store: any BatchStore
    /// This replica's name on its leases.
    let owner: String
    let committer: BatchCommitter
    private let inFlight = Mutex<Set<BatchRequestKey>>([])
    private let lastExpiry = Mutex<Int64>(0)

    /// How often the loop looks at the store when nothing rings.
    static let pollInterval = Duration.seconds(1)

    init(runtime: RouterRuntime, store: any BatchStore, owner: String) {
        self.runtime = runtime
        self.store = store
        self.owner = owner
        self.committer = BatchCommitter(store: store, owner: owner, runtime: runtime)
    }

    /// Runs until cancelled.
    func run() async {
        // The committer outlives the requests: those cancelled at shutdown give their leases back through it.
        let committing = Task { await committer.run() }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.renewLeases() }
            var failures = 0
            while !Task.isCancelled {
                do {
                    let wait = try await step(group: &group)
                    failures = 0
                    await runtime.batches.doorbell.wait(timeout: wait)
                } catch {
                    // The store is away: interactive traffic is not affected; batch work waits.
                    failures += 1
                    runtime.logger.warning("batch runner: \(error)")
                    try? await Task.sleep(for: .milliseconds(min(30_000, 250 << min(failures, 7))))
                }
            }
            group.cancelAll()
        }
        committer.stop()
        await committing.value
    }

    /// Leases and starts what can run now; returns how long to wait before looking again.
    private func step(group: inout DiscardingTaskGroup) async throws(BatchStoreError) -> Duration {
        guard let settings = runtime.table.config.batches else { return Self.pollInterval }
        let nowMs = runtime.wallClock()
        if nowMs - lastExpiry.withLock({ $0 }) >= 1000 {
            lastExpiry.withLock { $0 = nowMs }
            for batch in try await store.expire(nowMs: nowMs) { await runtime.observability.batchEnded(batch) }
        }
        let (routes, nextChange) = admittingRoutes(probeGrace: settings.probeGrace)
        let free = settings.concurrency - inFlight.withLock { $0.count }
        var wait = Self.pollInterval
        if let nextChange { wait = min(wait, max(.milliseconds(1), nextChange)) }
        guard free > 0, !routes.isEmpty else { return wait }
        let leased = try await store.lease(
            limit: free, owner: owner, nowMs: nowMs, leaseUntilMs: nowMs + BatchSettings.leaseDuration.milliseconds, routes: routes,
            kind: settings.mode == .upstream ? .direct : .any
        )
        for request in leased {
            inFlight.withLock { _ = $0.insert(request.key) }
            group.addTask {
                await self.execute(request, settings: settings)
                self.inFlight.withLock { _ = $0.remove(request.key) }
                self.runtime.batches.doorbell.ring()
            }
        }
        // A full lease means more is due right away.
        return leased.count == free ? .zero : wait
    }

    /// Routes with a model that admits batch work now, and how soon that could change.
    private func admittingRoutes(probeGrace: Duration) -> ([String], Duration?) {
        let now = runtime.clock.now()
        var names: [String] = []
        var soonest: MonotonicInstant?
        for route in runtime.table.routes {
            var admits = false
            for model in route.models {
                let (ok, next) = model.health.withState { $0.availability(now: now, probeGrace: probeGrace) }
                if ok {
                    admits = true
                    break
                }
                if let next { soonest = min(soonest ?? next, next) }
            }
            if admits { names.append(route.name) }
        }
        return (names, soonest.map { $0 - now })
    }

    /// One try of one request, through its route; the outcome goes to the committer.
    private func execute(_ request: LeasedBatchRequest, settings: BatchSettings) async {
        let execution = BatchExecution(runtime: runtime, request: request, probeGrace: settings.probeGrace)
        let verdict = await execution.run()
        let nowMs = runtime.wallClock()
        switch verdict {
        case .final(let state, let result):
            await committer.complete(BatchRequestOutcome(key: request.key, state: state, result: result))
        case .retry(let waitForModel):
            if nowMs >= request.expiresAtMs {
                await committer.complete(BatchRequestOutcome(key: request.key, state: .expired, result: BatchJSON.expired))
                return
            }
            // Waiting for a model needs no timer (admission gates it and transitions wake it);
            // a request that keeps failing on models that admit it backs off.
            let delay = waitForModel ? .zero : Self.backoff(attempt: request.attempts, max: settings.maxBackoff)
            await committer.release(BatchRetry(key: request.key, nextAttemptAtMs: nowMs + delay.milliseconds))
        case .abandoned:
            await committer.release(BatchRetry(key: request.key, nextAttemptAtMs: nowMs))
        }
    }

    /// 1 s, doubling per try, capped at `max_backoff`, with equal jitter.
    static func backoff(attempt: Int, max maximum: Duration) -> Duration {
        let base = min(Double(maximum.milliseconds), 1000 * Double(1 << min(max(0, attempt - 1), 20)))
        return .milliseconds(Int64(base / 2 + Double.random(in: 0...(base / 2))))
    }

    /// Keeps the leases of running requests alive (a request may take up to request_timeout).
    private func renewLeases() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: BatchSettings.leaseDuration / 3)
            let keys = Array(inFlight.withLock { $0 })
            guard !keys.isEmpty else { continue }
            let until = runtime.wallClock() + BatchSettings.leaseDuration.milliseconds
            do {
                try await store.renew(keys, owner: owner, leaseUntilMs: until)
            } catch {
                runtime.logger.warning("batch runner: leases not renewed: \(error)")
            }
        }
    }
}
