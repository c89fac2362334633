import Synchronization

/// Writes batch request outcomes to the store in groups: every request that finishes while a
/// commit is on its way joins the next one, so 64 requests in flight cost a few transactions,
/// not 64 (each commit is a synchronous disk write). A caller waits until its outcome is
/// committed; when the store is away, outcomes wait in memory and are written once it is back
/// (a process that dies meanwhile runs those requests again: at-least-once upstream, exactly one
/// result).
final class BatchCommitter: Sendable {
    private enum Item {
        case complete(BatchRequestOutcome)
        case release(BatchRetry)
    }

    private struct State {
        var queue: [(Item, CheckedContinuation<Void, Never>)] = []
        var waiter: CheckedContinuation<Void, Never>?
        var stopping = false
    }

    private let state = Mutex(State())
    let store: any BatchStore
    let owner: String
    let runtime: RouterRuntime

    init(store: any BatchStore, owner: String, runtime: RouterRuntime) {
        self.store = store
        self.owner = owner
        self.runtime = runtime
    }

    func complete(_ outcome: BatchRequestOutcome) async { await enqueue(.complete(outcome)) }

    func release(_ retry: BatchRetry) async { await enqueue(.release(retry)) }

    private func enqueue(_ item: Item) async {
        await withCheckedContinuation { continuation in
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.queue.append((item, continuation))
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    /// Asks ``run()`` to write what is queued and return.
    func stop() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.stopping = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Commits until ``stop()``. Not tied to task cancellation: requests being cancelled at
    /// shutdown still hand their leases back through it.
    func run() async {
        var failures = 0
        while true {
            let (batch, stopping) = state.withLock { state -> ([(Item, CheckedContinuation<Void, Never>)], Bool) in
                defer { state.queue.removeAll(keepingCapacity: true) }
                return (state.queue, state.stopping)
            }
            if batch.isEmpty {
                if stopping { return }
                await withCheckedContinuation { continuation in
                    let now = state.withLock { state -> Bool in
                        if !state.queue.isEmpty || state.stopping { return true }
                        state.waiter = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
                continue
            }
            do {
                try await write(batch.map(\.0))
                failures = 0
                for (_, continuation) in batch { continuation.resume() }
            } catch {
                failures += 1
                runtime.logger.warning("batch results not written yet (\(batch.count) waiting): \(error)")
                state.withLock { $0.queue.insert(contentsOf: batch, at: 0) }
                if stopping && failures > 3 {
                    // Stopping with the store away: the requests are run again after the restart.
                    let abandoned = state.withLock { state in
                        defer { state.queue.removeAll() }
                        return state.queue
                    }
                    for (_, continuation) in abandoned { continuation.resume() }
                    return
                }
                try? await Task.sleep(for: .milliseconds(min(10_000, 100 << min(failures, 7))))
            }
        }
    }

    private func write(_ items: [Item]) async throws(BatchStoreError) {
        var outcomes: [BatchRequestOutcome] = []
        var retries: [BatchRetry] = []
        for item in items {
            switch item {
            case .complete(let outcome): outcomes.append(outcome)
            case .release(let retry): retries.append(retry)
            }
        }
        let nowMs = runtime.wallClock()
        var ended: [BatchRecord] = []
        if !outcomes.isEmpty {
            let completion = try await store.complete(outcomes, owner: owner, nowMs: nowMs)
            ended += completion.endedBatches
            runtime.metrics.batchResults(outcomes.filter { completion.written.contains($0.key) }.map(\.state))
        }
        if !retries.isEmpty {
            ended += try await store.release(retries, owner: owner, nowMs: nowMs)
        }
        for batch in ended { await runtime.observability.batchEnded(batch) }
    }
}
