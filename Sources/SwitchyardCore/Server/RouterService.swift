import Logging
import ServiceLifecycle

/// The whole router as one lifecycle service: the HTTP server plus the audit lines that frame
/// its life (`server.started`, `server.draining`, `server.stopped`).
public struct RouterService: Service {
    public let runtime: RouterRuntime
    let configPath: String
    let listen: HostPort?
    let onRunning: @Sendable (Int) async -> Void

    public init(runtime: RouterRuntime, configPath: String, listen: HostPort? = nil, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.runtime = runtime
        self.configPath = configPath
        self.listen = listen
        self.onRunning = onRunning
    }

    public func run() async throws {
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
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: {
            Task {
                await runtime.audit.append(AuditEvent.lifecycle("server.draining"))
            }
            runtime.logger.info("draining: no new connections; requests in flight may finish")
        }
        await runtime.audit.append(AuditEvent.lifecycle("server.stopped"))
        await runtime.shutdown()
        await runtime.audit.flush()
    }
}
