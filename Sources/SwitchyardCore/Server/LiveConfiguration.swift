import Foundation
import NIOCore

/// The configuration generation new requests use, with one platform adapter and pooled client per
/// provider. A reload installs a new generation atomically: requests in flight finish on the one
/// they hold, and clients of changed or removed providers are retired — shut down once those
/// requests can have ended (`request_timeout` later), by ``runRetirements()``, owned by the
/// service that runs the router; whatever is still waiting is shut down with the router.
public final class LiveConfiguration: Sendable {
    private struct State {
        var table: RoutingTable
        var endpoints: [String: ProviderEndpoint]
    }

    private struct Retirement: Sendable {
        var clients: [UpstreamClient]
        var after: Duration
    }

    private let state: ReadMostly<State>
    private let services: @Sendable () -> ProviderServices
    private let eventLoopGroup: any EventLoopGroup
    private let retirements: AsyncStream<Retirement>
    private let retire: AsyncStream<Retirement>.Continuation
    /// Retired clients not shut down yet (``shutdown()`` takes them).
    private let pending = ReadMostly<[ObjectIdentifier: UpstreamClient]>([:])

    init(config: SwitchyardConfig, services: @escaping @Sendable () -> ProviderServices, eventLoopGroup: any EventLoopGroup) {
        self.services = services
        self.eventLoopGroup = eventLoopGroup
        let made = services()
        var endpoints: [String: ProviderEndpoint] = [:]
        for provider in config.providers {
            endpoints[provider.name] = Self.endpoint(for: provider, services: made, eventLoopGroup: eventLoopGroup)
        }
        state = ReadMostly(State(table: RoutingTable(config: config), endpoints: endpoints))
        (retirements, retire) = AsyncStream.makeStream(of: Retirement.self)
    }

    private static func endpoint(for spec: ProviderSpec, services: ProviderServices, eventLoopGroup: any EventLoopGroup) -> ProviderEndpoint {
        let provider = Platforms.makeProvider(spec: spec, services: services)
        return ProviderEndpoint(
            fingerprint: spec.fingerprint, provider: provider,
            client: UpstreamClient(provider: spec, presetLines: provider.presetHeaderLines, eventLoopGroup: eventLoopGroup)
        )
    }

    /// The configuration generation new requests use.
    public var table: RoutingTable { state.value.table }

    func endpoint(for provider: ProviderSpec) -> ProviderEndpoint? {
        state.value.endpoints[provider.name]
    }

    var endpoints: [String: ProviderEndpoint] { state.value.endpoints }

    /// Installs a new configuration atomically; keeps the clients (and cached credentials) of
    /// providers whose definition is unchanged, retires the others.
    func install(_ config: SwitchyardConfig) {
        let services = services()
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
        guard !retired.isEmpty else { return }
        pending.update { pending in
            for client in retired { pending[ObjectIdentifier(client)] = client }
        }
        retire.yield(Retirement(clients: retired, after: config.server.requestTimeout))
    }

    /// Shuts retired clients down once their grace has passed, until cancelled; then returns.
    public func runRetirements() async {
        await withTaskCancellationHandler {
            for await retirement in retirements {
                try? await Task.sleep(for: retirement.after)
                for client in retirement.clients { await shutDown(client) }
                if Task.isCancelled { return }
            }
        } onCancel: {
            retire.finish()
        }
    }

    private func shutDown(_ client: UpstreamClient) async {
        let waiting = pending.update { $0.removeValue(forKey: ObjectIdentifier(client)) != nil }
        if waiting { await client.shutdown() }
    }

    /// Shuts down every client: the current ones and those still retiring.
    func shutdown() async {
        retire.finish()
        let retired = pending.update { pending in
            defer { pending.removeAll() }
            return Array(pending.values)
        }
        for client in state.value.endpoints.values.map(\.client) + retired { await client.shutdown() }
    }
}
