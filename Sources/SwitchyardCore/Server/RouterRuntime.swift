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
    let eventLoopGroup: any EventLoopGroup
    private let state: Mutex<State>

    private struct State {
        var table: RoutingTable
        var clients: [String: (fingerprint: String, client: UpstreamClient)]
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
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.clock = clock
        self.configPath = configPath
        self.environment = environment
        self.audit = audit
        self.logger = logger
        self.randomSource = random
        self.eventLoopGroup = eventLoopGroup
        let table = RoutingTable(config: config)
        var clients: [String: (String, UpstreamClient)] = [:]
        for provider in config.providers {
            clients[provider.name] = (Self.fingerprint(provider), UpstreamClient(provider: provider, eventLoopGroup: eventLoopGroup))
        }
        state = Mutex(State(table: table, clients: clients))
        publishBreakerStates(table)
    }

    /// The configuration generation new requests use.
    public var table: RoutingTable { state.withLock { $0.table } }

    func client(for provider: ProviderSpec) -> UpstreamClient? {
        state.withLock { $0.clients[provider.name]?.client }
    }

    /// Installs a new configuration atomically. Requests in flight finish on the table they hold;
    /// clients of changed or removed providers are shut down once those requests can have ended.
    public func install(_ config: SwitchyardConfig) {
        let retired: [UpstreamClient] = state.withLock { state in
            let table = RoutingTable(config: config, previous: state.table)
            var clients: [String: (fingerprint: String, client: UpstreamClient)] = [:]
            var retired: [UpstreamClient] = []
            for provider in config.providers {
                let fingerprint = Self.fingerprint(provider)
                if let existing = state.clients[provider.name], existing.fingerprint == fingerprint {
                    clients[provider.name] = existing
                } else {
                    clients[provider.name] = (fingerprint, UpstreamClient(provider: provider, eventLoopGroup: eventLoopGroup))
                    if let existing = state.clients[provider.name] { retired.append(existing.client) }
                }
            }
            for (name, existing) in state.clients where clients[name] == nil {
                retired.append(existing.client)
            }
            state.table = table
            state.clients = clients
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
        let clients = state.withLock { $0.clients.values.map(\.client) }
        for client in clients { await client.shutdown() }
    }

    /// A request is over: its metrics and its audit line.
    func finish(_ record: RequestAuditRecord) async {
        metrics.requestFinished(record)
        await audit.append(record.encoded())
    }

    func record(_ transitions: [ObservedTransition]) async {
        for observed in transitions {
            metrics.breakerTransition(model: observed.model, to: observed.transition.to)
            await audit.append(AuditEvent.breaker(model: observed.model, transition: observed.transition))
            logger.notice(
                "breaker \(observed.model): \(observed.transition.from.rawValue) -> \(observed.transition.to.rawValue)",
                metadata: ["reason": .string(observed.transition.reason)]
            )
        }
    }

    private func publishBreakerStates(_ table: RoutingTable) {
        let now = clock.now()
        for model in table.models {
            metrics.setBreakerState(model: model.name, model.health.snapshot.breaker.effectiveState(now: now))
        }
    }

    private static func fingerprint(_ provider: ProviderSpec) -> String {
        let t = provider.timeouts
        return "\(provider.baseURL)|\(provider.apiKey ?? "")|\(t.connect)|\(t.firstByte)|\(t.idle)|\(provider.maxConnections)"
    }
}

/// Adapts the injected random source to Swift's generator protocol.
struct InjectedRandom: RandomNumberGenerator {
    let source: @Sendable () -> UInt64
    mutating func next() -> UInt64 { source() }
}
