import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The router's live state: the current configuration generation, one pooled client per
/// provider, the audit log, and the clock and randomness every decision uses.
public final class RouterRuntime: Sendable {
    public let clock: any RouterClock
    public let audit: AuditLog
    public let metrics = RouterMetrics()
    /// Where `reload()` reads the configuration from; nil: reload is not available.
    public let configPath: String?
    let environment: @Sendable () -> [String: String]
    public let logger: Logger
    let randomSource: @Sendable () -> UInt64
    /// Unix milliseconds for credential expiry and request signing (tests move it).
    let wallClock: @Sendable () -> Int64
    let eventLoopGroup: any EventLoopGroup

    /// Token endpoints, STS, container and metadata servers: never the hot path.
    let credentialClients: CredentialClients
    /// Wakes the batch runner: breaker transitions, new batches, finished batch requests.
    let batchDoorbell = Doorbell()
    /// The batch store once ``BatchService`` opened it; nil while batches are off or opening.
    let batchStore = Mutex<(any BatchStore)?>(nil)
    private let state: ReadMostly<State>

    private struct State {
        var table: RoutingTable
        var endpoints: [String: ProviderEndpoint]
    }

    /// Responses larger than this (non-streaming) are treated as a broken upstream.
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
        self.audit = audit
        self.logger = logger
        self.randomSource = random
        self.eventLoopGroup = eventLoopGroup
        credentialClients = CredentialClients(eventLoopGroup: eventLoopGroup, environment: environment())
        let table = RoutingTable(config: config)
        let services = ProviderServices(credentialClients: credentialClients, environment: environment(), logger: logger, wallClock: wallClock)
        var endpoints: [String: ProviderEndpoint] = [:]
        for provider in config.providers {
            endpoints[provider.name] = Self.endpoint(for: provider, services: services, eventLoopGroup: eventLoopGroup)
        }
        state = ReadMostly(State(table: table, endpoints: endpoints))
        publishBreakerStates(table)
    }

    private static func endpoint(for spec: ProviderSpec, services: ProviderServices, eventLoopGroup: any EventLoopGroup) -> ProviderEndpoint {
        let provider = Platforms.makeProvider(spec: spec, services: services)
        return ProviderEndpoint(
            fingerprint: spec.fingerprint, provider: provider,
            client: UpstreamClient(provider: spec, presetLines: provider.presetHeaderLines, eventLoopGroup: eventLoopGroup)
        )
    }

    private var services: ProviderServices {
        ProviderServices(credentialClients: credentialClients, environment: environment(), logger: logger, wallClock: wallClock)
    }

    /// The configuration generation new requests use.
    public var table: RoutingTable { state.value.table }

    func endpoint(for provider: ProviderSpec) -> ProviderEndpoint? {
        state.value.endpoints[provider.name]
    }

    /// Installs a new configuration atomically. Requests in flight finish on the table they hold;
    /// clients of changed or removed providers are shut down once those requests can have ended.
    public func install(_ config: SwitchyardConfig) {
        let services = services
        let retired: [UpstreamClient] = state.update { state in
            let table = RoutingTable(config: config, previous: state.table)
            var endpoints: [String: ProviderEndpoint] = [:]
            var retired: [UpstreamClient] = []
            for provider in config.providers {
                if let existing = state.endpoints[provider.name], existing.fingerprint == provider.fingerprint {
                    endpoints[provider.name] = existing
                } else {
                    endpoints[provider.name] = Self.endpoint(for: provider, services: services, eventLoopGroup: eventLoopGroup)
                    if let existing = state.endpoints[provider.name] { retired.append(existing.client) }
                }
            }
            for (name, existing) in state.endpoints where endpoints[name] == nil {
                retired.append(existing.client)
            }
            state.table = table
            state.endpoints = endpoints
            return retired
        }
        publishBreakerStates(table)
        guard !retired.isEmpty else { return }
        let grace = config.server.requestTimeout
        Task {
            try? await Task.sleep(for: grace)
            for client in retired { await client.shutdown() }
        }
    }

    public func shutdown() async {
        let clients = state.value.endpoints.values.map(\.client)
        for client in clients { await client.shutdown() }
        await credentialClients.shutdown()
    }

    /// The metrics text, with the upstream pools' gauges read now.
    public func renderMetrics() -> [UInt8] {
        for (name, endpoint) in state.value.endpoints {
            guard let statistics = endpoint.client.statistics else { continue }
            metrics.setUpstreamPool(provider: name, active: statistics.active, idle: statistics.idle, waiting: statistics.waiting)
        }
        return metrics.render()
    }

    /// What the attempt engine needs of the router.
    var engine: EngineContext {
        EngineContext(
            clock: clock, random: randomSource, logger: logger, maxUpstreamResponse: maxUpstreamResponse,
            endpoint: { [self] spec in endpoint(for: spec) }, recordTransitions: { [self] transitions in await record(transitions) }
        )
    }

    /// A request is over: its metrics and its audit line.
    func finish(_ record: RequestAuditRecord) async {
        metrics.requestFinished(record)
        await audit.append(record)
    }

    func record(_ transitions: [ObservedTransition]) async {
        if !transitions.isEmpty { batchDoorbell.ring() }
        for observed in transitions {
            metrics.breakerTransition(model: observed.model, to: observed.transition.to)
            await audit.append(AuditEvent.breaker(model: observed.model, transition: observed.transition))
            logger.notice(
                "breaker \(observed.model): \(observed.transition.from.rawValue) -> \(observed.transition.to.rawValue)",
                metadata: ["reason": .string(observed.transition.reason)]
            )
        }
    }

    /// A batch ended (all its requests have a result): its audit line.
    func batchEnded(_ batch: BatchRecord) async {
        let counts = batch.counts
        await audit.append(
            AuditEvent.lifecycle(
                "batch.ended",
                fields: [
                    ("batch_id", .string(batch.id)), ("client", .string(batch.client ?? "")), ("succeeded", .int(counts.succeeded)),
                    ("errored", .int(counts.errored)), ("canceled", .int(counts.canceled)), ("expired", .int(counts.expired)),
                ]
            )
        )
    }

    private func publishBreakerStates(_ table: RoutingTable) {
        let now = clock.now()
        for model in table.models {
            metrics.setBreakerState(model: model.name, model.health.snapshot.breaker.effectiveState(now: now))
        }
    }
}

