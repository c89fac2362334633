import Logging
import ServiceLifecycle

/// The whole router as one lifecycle service: the HTTP server plus the audit lines that frame
/// its life (`server.started`, `server.draining`, `server.stopped`), and the services that use
/// its upstream clients (the batch service).
public struct RouterService: Service {
    public let runtime: RouterRuntime
    let configPath: String
    let listen: HostPort?
    /// Run beside the server and told to stop at the same moment, so that a stop drains
    /// interactive requests and hands batch work back at once, each within the whole
    /// `drain_timeout` (as services of their own in the group, they stopped one after the other
    /// and the first one's time came out of the second's). The runtime's clients are shut down
    /// once they have all ended.
    let companions: [any Service]
    let onRunning: @Sendable (Int) async -> Void

    public init(
        runtime: RouterRuntime, configPath: String, listen: HostPort? = nil, companions: [any Service] = [],
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.runtime = runtime
        self.configPath = configPath
        self.listen = listen
        self.companions = companions
        self.onRunning = onRunning
    }

    public func run() async throws {
        let configuration = runtime.configuration
        try await withThrowingTaskGroup(of: Void.self) { owned in
            // Clients retired by reloads are shut down by this child, once their grace has
            // passed; it stops with the router, and the runtime's shutdown takes what is left.
            owned.addTask { await configuration.runRetirements() }
            // Spans are exported by swift-otel's service; graceful shutdown flushes them.
            if let tracing = runtime.tracing {
                owned.addTask { try? await tracing.service.run() }
            }
            // A companion that fails takes the router down with it, as it did as a service of the
            // group; the graceful-shutdown signal reaches every child task.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for companion in companions {
                    group.addTask { try await companion.run() }
                }
                group.addTask { try await self.serve() }
                while let _ = try await group.next() {}
            }
            owned.cancelAll()
        }
        await runtime.audit.append(AuditEvent.lifecycle("server.stopped"))
        await runtime.shutdown()
        await runtime.audit.flush()
    }

    private func serve() async throws {
        let runtime = runtime
        let configPath = configPath
        let onRunning = onRunning
        let server = SwitchyardServer(runtime: runtime, listen: listen) { port in
            let table = runtime.table
            let address = HostPort(host: (listen ?? table.config.server.listen).host, port: port)
            await runtime.audit.append(
                AuditEvent.lifecycle(
                    "server.started",
                    fields: [("listen", .string(address.description)), ("config", .string(configPath)), ("routes", .strings(table.routeNames))]
                )
            )
            runtime.logger.info("switchyard listening on \(address) with \(configPath) (routes: \(table.routeNames.joined(separator: ", ")))")
            await onRunning(port)
        }
        let drainTimeout = runtime.table.config.server.drainTimeout
        do {
            try await withGracefulShutdownHandler {
                try await server.run()
            } onGracefulShutdown: {
                runtime.audit.enqueue(AuditEvent.lifecycle("server.draining", fields: [("drain_timeout_ms", .int(Int(drainTimeout.milliseconds)))]))
                runtime.logger.info("draining: no new connections; requests in flight may finish within \(drainTimeout.configNotation)")
            }
        } catch is CancellationError {
            // The drain timeout passed and the service group cancelled what was still running.
            runtime.logger.warning("drain timeout reached; requests still in flight were cancelled")
        }
    }
}

/// Reloads the configuration on SIGHUP until graceful shutdown.
public struct HangupReloader: Service {
    let runtime: RouterRuntime
    let signals: AsyncStream<Void>

    /// - Parameter signals: one element per SIGHUP.
    public init(runtime: RouterRuntime, signals: AsyncStream<Void>) {
        self.runtime = runtime
        self.signals = signals
    }

    public func run() async throws {
        let sequence = signals
        let runtime = runtime
        try await cancelWhenGracefulShutdown {
            for try await _ in sequence {
                await runtime.reload(trigger: "SIGHUP")
            }
        }
    }
}
