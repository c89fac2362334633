import Synchronization

/// Wakes waiting loops: a new batch, a breaker transition, a finished request. Every waiter is
/// woken by a ring; a ring while nobody waits is kept (once), so a wake-up is never lost between
/// two waits.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    func ring() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.waiters.isEmpty else {
                state.rung = true
                return []
            }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when rung (now or earlier), after `timeout`, or on cancellation.
    func wait(timeout: Duration) async {
        if state.withLock({ state in defer { state.rung = false }; return state.rung }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in await waitForRing() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForRing() async {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.rung || Task.isCancelled {
                        state.rung = false
                        return true
                    }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}
