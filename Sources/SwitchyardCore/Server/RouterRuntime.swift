import Foundation
import Logging
import NIOCore
import NIOPosix

/// The running router, assembled: its live configuration, where it reports, the batch machinery,
/// and the clock and randomness every decision uses. The composition root: each part is handed
/// the pieces it needs (the engine an ``EngineContext``, the endpoints the configuration and the
/// sinks), not this.
public final class RouterRuntime: Sendable {
    public let clock: any RouterClock
    public let configuration: LiveConfiguration
    public let observability: Observability
    public let batches: BatchMachinery
    /// Events for the other replicas (`fleet:`); nil when the fleet is off. Fixed at start: a
    /// reload that adds or removes `fleet:` applies at the next restart.
    public let fleet: FleetOutbox?
    /// Where `reload()` reads the configuration from; nil: reload is not available.
    public let configPath: String?
    let environment: @Sendable () -> [String: String]
    let randomSource: @Sendable () -> UInt64
    /// Unix milliseconds for credential expiry and request signing (tests move it).
    let wallClock: @Sendable () -> Int64
    let eventLoopGroup: any EventLoopGroup
    /// Token endpoints, STS, container and metadata servers: never the hot path.
    let credentialClients: CredentialClients
    /// `telemetry:`'s tracer and exporter, made at start (a reload does not change them).
    public let tracing: TracingBackend?

    /// Non-streaming responses larger than this are treated as a broken upstream.
    public let maxUpstreamResponse = 64 << 20

    public init(
        config: SwitchyardConfig,
        audit: AuditLog,
        logger: Logger,
        configPath: String? = nil,
        environment: @escaping @Sendable () -> [String: String] = { ProcessInfo.processInfo.environment },
        clock: any RouterClock = SystemClock(),
        random: @escaping @Sendable () -> UInt64 = { UInt64.random(in: .min ... .max) },
        wallClock: @escaping @Sendable () -> Int64 = { WallClock.nowMilliseconds() },
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.wallClock = wallClock
        self.clock = clock
        self.configPath = configPath
        self.environment = environment
        self.randomSource = random
        self.eventLoopGroup = eventLoopGroup
        observability = Observability(audit: audit, metrics: RouterMetrics(), logger: logger)
        batches = BatchMachinery()
        fleet = config.fleet.map { FleetOutbox(replica: $0.replica) }
        let credentialClients = CredentialClients(eventLoopGroup: eventLoopGroup, environment: environment())
        self.credentialClients = credentialClients
        configuration = LiveConfiguration(
            config: config,
            services: { ProviderServices(credentialClients: credentialClients, environment: environment(), logger: logger, wallClock: wallClock) },
            eventLoopGroup: eventLoopGroup
        )
        if let telemetry = config.telemetry {
            do {
                tracing = try TracingBackend(settings: telemetry, logger: logger)
            } catch {
                logger.error("telemetry is off: the OTLP exporter for \(telemetry.tracesURL) could not be made: \(error)")
                tracing = nil
            }
        } else {
            tracing = nil
        }
        publishBreakerStates(configuration.table)
    }

    // Read by the command line, the demo and tests.
    public var table: RoutingTable { configuration.table }
    public var audit: AuditLog { observability.audit }
    public var metrics: RouterMetrics { observability.metrics }
    public var logger: Logger { observability.logger }

    /// Installs a new configuration atomically (``LiveConfiguration/install(_:)``).
    public func install(_ config: SwitchyardConfig) {
        configuration.install(config)
        publishBreakerStates(configuration.table)
    }

    public func shutdown() async {
        await configuration.shutdown()
        await credentialClients.shutdown()
    }

    /// What the attempt engine needs of the router.
    var engine: EngineContext {
        let configuration = configuration
        return EngineContext(
            clock: clock, random: randomSource, logger: logger, maxUpstreamResponse: maxUpstreamResponse,
            endpoint: { spec in configuration.endpoint(for: spec) }, recordTransitions: { [self] transitions in await record(transitions) },
            tracer: tracing?.tracer,
            wallClock: wallClock, fleet: fleet
        )
    }

    /// The metrics text, with the upstream pools' gauges read now.
    public func renderMetrics() -> [UInt8] {
        for (name, endpoint) in configuration.endpoints {
            guard let statistics = endpoint.client.statistics else { continue }
            metrics.setUpstreamPool(provider: name, active: statistics.active, idle: statistics.idle, waiting: statistics.waiting)
        }
        let now = clock.now()
        for model in configuration.table.models {
            metrics.setHeadroom(model: model.name, model.health.withState { $0.headroom }, now: now)
        }
        return metrics.render()
    }

    /// Breaker transitions: reported, and the batch runner woken (a route may admit work again).
    func record(_ transitions: [ObservedTransition]) async {
        guard !transitions.isEmpty else { return }
        batches.doorbell.ring()
        await observability.record(transitions)
    }

    private func publishBreakerStates(_ table: RoutingTable) {
        let now = clock.now()
        for model in table.models {
            metrics.setBreakerState(model: model.name, model.health.snapshot.breaker.effectiveState(now: now))
        }
    }
}
