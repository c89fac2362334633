import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// The router's HTTP server as a lifecycle service. Graceful shutdown stops accepting, lets
/// requests in flight (streams too) finish, then returns.
public struct SwitchyardServer: Service {
    public let runtime: RouterRuntime
    let listen: HostPort
    let onRunning: @Sendable (Int) async -> Void

    /// - Parameters:
    ///   - listen: overrides the configuration's `server.listen` (port 0: an ephemeral port).
    ///   - onRunning: called with the bound port once the server accepts connections.
    public init(runtime: RouterRuntime, listen: HostPort? = nil, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.runtime = runtime
        self.listen = listen ?? runtime.table.config.server.listen
        self.onRunning = onRunning
    }

    public func run() async throws {
        let settings = runtime.table.config.server
        let front = HTTPFront(runtime: runtime, startedAtMs: WallClock.nowMilliseconds())
        let channel = SwitchyardHTTP1Channel(
            limits: .init(maxHeaderSize: settings.maxHeaderSize, idleTimeout: settings.idleTimeout, clientTimeout: settings.clientTimeout),
            front: front
        )
        let onRunning = onRunning
        let server = Server(
            childChannelSetup: channel,
            configuration: ServerConfiguration(address: .hostname(listen.host, port: listen.port), backlog: 1024),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            eventLoopGroup: runtime.eventLoopGroup,
            logger: runtime.logger
        )
        try await server.run()
    }
}
