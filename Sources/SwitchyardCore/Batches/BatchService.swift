import Foundation
import Logging
import ServiceLifecycle

/// The Message Batches side of the router as a lifecycle service: opens the store (retrying
/// while it is away: the interactive path never waits for it), gives back dead leases, runs the
/// scheduler, publishes the store's counts, and on shutdown hands leases back.
public struct BatchService: Service {
    let runtime: RouterRuntime
    /// This replica's name on its leases: host, process id and a random part.
    let owner: String

    public init(runtime: RouterRuntime) {
        self.runtime = runtime
        let host = ProcessInfo.processInfo.hostName
        self.owner = "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
    }

    public func run() async throws {
        guard let settings = runtime.table.config.batches else {
            // Nothing to do; stay up so the service group keeps running.
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            guard let store = await open(settings) else { return }
            runtime.batches.store.withLock { $0 = store }
            let runner = BatchRunner(runtime: runtime, store: store, owner: owner)
            await withDiscardingTaskGroup { group in
                group.addTask {
                    await runner.run()
                    // Each step of a shutdown says it is done: a replica that does not exit shows
                    // in its log where it waits (the service group cancels it after drain_timeout).
                    runtime.logger.info("batch service: runner stopped, results written")
                }
                group.addTask { await publishCounts(store) }
                if settings.mode == .upstream {
                    group.addTask { await UpstreamBatches(runtime: runtime, store: store, owner: owner).run() }
                }
            }
        }
        if let store = runtime.batches.store.withLock({ state -> (any BatchStore)? in defer { state = nil }; return state }) {
            runtime.logger.info("batch service: closing the store")
            await store.close()
            runtime.logger.info("batch service: store closed")
        }
    }

    /// Opens and prepares the store, retrying with backoff until it works or the service stops.
    private func open(_ settings: BatchSettings) async -> (any BatchStore)? {
        var failures = 0
        while !Task.isCancelled {
            var opened: (any BatchStore)?
            do {
                let store = try await BatchStores.open(
                    url: settings.store, password: settings.storePassword, logger: runtime.logger, eventLoopGroup: runtime.eventLoopGroup
                )
                opened = store
                try await store.prepare()
                try await store.recoverLeases(owner: owner)
                runtime.logger.info("batch store open: \(settings.storeDescription)")
                return store
            } catch {
                // A store opened but not usable (a schema it cannot migrate) is closed before the next try.
                await opened?.close()
                failures += 1
                runtime.logger.error("batch store \(settings.storeDescription) cannot be opened (attempt \(failures)): \(error)")
                try? await Task.sleep(for: .milliseconds(min(30_000, 500 << min(failures, 6))))
            }
        }
        return nil
    }

    private func publishCounts(_ store: any BatchStore) async {
        while !Task.isCancelled {
            if let counts = try? await store.stateCounts() { runtime.metrics.setBatchCounts(counts) }
            try? await Task.sleep(for: .seconds(5))
        }
    }
}
