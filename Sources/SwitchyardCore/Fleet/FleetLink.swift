import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import ServiceLifecycle

/// The replica's line to the rest of the fleet (`fleet: { store: postgres }`): one PostgreSQL
/// connection of its own (not one of the batch store's pool, which a LISTEN would hold), on which
/// it LISTENs for the other replicas' events and NOTIFYs its own from the ``FleetOutbox``.
///
/// Requests never wait for it: they post to the outbox and read their models' health locally.
/// When PostgreSQL is away the link says so once, keeps the newest events (bounded), and
/// reconnects by itself with backoff; each replica goes on deciding from what it sees itself.
public struct FleetLink: Service {
    let runtime: RouterRuntime
    let settings: FleetSettings
    let outbox: FleetOutbox

    /// A quiet connection is checked this often, so a link that died without a word is noticed.
    static let heartbeat = Duration.seconds(5)
    static let maxReconnectDelay = Duration.seconds(5)

    public init(runtime: RouterRuntime, settings: FleetSettings, outbox: FleetOutbox) {
        self.runtime = runtime
        self.settings = settings
        self.outbox = outbox
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await loop() }
    }

    private func loop() async {
        let logger = runtime.logger
        var failures = 0
        var reportedDown = false
        while !Task.isCancelled {
            var connection: PostgresConnection?
            do {
                let (configuration, channel) = try Self.configuration(url: settings.url, password: settings.password)
                let opened = try await PostgresConnection.connect(
                    on: runtime.eventLoopGroup.any(), configuration: configuration, id: 1, logger: Self.quiet(logger)
                )
                connection = opened
                try await serve(opened, channel: channel) {
                    runtime.metrics.setFleetConnected(true)
                    outbox.linkUp.store(true, ordering: .relaxed)
                    logger.info("fleet: listening for the other replicas' health on PostgreSQL (replica \(settings.replica))")
                    failures = 0
                    reportedDown = false
                }
            } catch {
                if !Task.isCancelled, !reportedDown {
                    logger.warning("fleet: PostgreSQL link lost or unavailable (\(Self.describe(error))); deciding locally, reconnecting")
                    reportedDown = true
                }
            }
            runtime.metrics.setFleetConnected(false)
            outbox.linkUp.store(false, ordering: .relaxed)
            try? await connection?.close()
            // 100 ms after the first failure, doubling to 5 s.
            let delay = min(Self.maxReconnectDelay, .milliseconds(100 << min(failures, 6)))
            failures += 1
            try? await Task.sleep(for: delay)
        }
    }

    /// LISTENs and NOTIFYs on one connection until it fails or the task is cancelled.
    /// `listening` runs once PostgreSQL has confirmed the LISTEN: the link is reported up only
    /// then, since a peer's NOTIFY sent before it would never arrive here.
    private func serve(_ connection: PostgresConnection, channel: String, listening: () -> Void) async throws {
        let logger = Self.quiet(runtime.logger)
        try await connection.listen(on: channel) { notifications in
            listening()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await notification in notifications {
                        await runtime.applyFleetPayload(notification.payload, ownInstance: outbox.instance)
                    }
                    throw FleetLinkClosed()
                }
                group.addTask {
                    var lastSent = ContinuousClock.now
                    while !Task.isCancelled {
                        await outbox.doorbell.wait(timeout: .seconds(1))
                        let (events, dropped) = outbox.take(wallNowMs: runtime.wallClock())
                        if dropped > 0 { runtime.metrics.fleetEvents(.dropped, count: dropped) }
                        for (index, entry) in events.enumerated() {
                            guard let payload = entry.event.encoded() else {
                                runtime.metrics.fleetEvents(.dropped, count: 1)
                                continue
                            }
                            do {
                                _ = try await connection.rows(
                                    "SELECT pg_notify($1, $2)", { $0.append(channel); $0.append(payload) }, logger: logger)
                            } catch {
                                outbox.putBack(Array(events[index...]))
                                throw error
                            }
                            runtime.metrics.fleetEvents(.published, count: 1)
                            lastSent = .now
                        }
                        if ContinuousClock.now - lastSent >= Self.heartbeat {
                            _ = try await connection.rows("SELECT 1", logger: logger)
                            lastSent = .now
                        }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// The connection settings and channel name from the batch store's URL: the channel carries
    /// the schema, so that deployments sharing one database in schemas of their own stay apart.
    static func configuration(url: String, password: String?) throws -> (PostgresConnection.Configuration, String) {
        guard case .postgres(let host, let port, let username, let database, let schema, let tls) = try BatchStores.parse(url) else {
            throw BatchStoreError(.failed, "fleet.store: postgres needs batches.store to be a postgres:// URL")
        }
        var mode = PostgresConnection.Configuration.TLS.disable
        if case let (settings, optional)? = tls.clientTLS {
            let context = try NIOSSLContext(configuration: settings)
            mode = optional ? .prefer(context) : .require(context)
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: mode)
        configuration.options.connectTimeout = .seconds(5)
        return (configuration, channelName(schema: schema))
    }

    static func channelName(schema: String?) -> String {
        "switchyard_fleet" + (schema.map { "_\($0)" } ?? "")
    }

    /// PostgresNIO's own chatter only at error level: the link reports its state itself.
    static func quiet(_ logger: Logger) -> Logger {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .error)
        return quiet
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError { return "\(error.code)" }
        return "\(type(of: error))"
    }
}

/// The notification stream ended: the connection is gone.
struct FleetLinkClosed: Error {}
