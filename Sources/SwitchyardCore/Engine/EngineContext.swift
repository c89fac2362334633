import Logging
import Tracing

/// What the attempt engine needs from the running router, and nothing else: time and randomness
/// for its decisions, the providers' clients, and where breaker transitions go.
struct EngineContext: Sendable {
    let clock: any RouterClock
    let random: @Sendable () -> UInt64
    let logger: Logger
    /// Non-streaming responses larger than this are a broken upstream.
    let maxUpstreamResponse: Int
    /// A provider's platform adapter and client, of the current configuration generation.
    let endpoint: @Sendable (ProviderSpec) -> ProviderEndpoint?
    /// Breaker transitions: their audit lines, metrics, logs, and the batch runner's wake-up.
    let recordTransitions: @Sendable ([ObservedTransition]) async -> Void
    /// `telemetry:`'s tracer; nil: no spans (and no cost).
    let tracer: (any Tracer)?
    /// Unix milliseconds: rate-limit reset times and fleet deadlines are on the wall clock.
    var wallClock: @Sendable () -> Int64 = { WallClock.nowMilliseconds() }
    /// Where changes to a model's health go for the other replicas; nil: no `fleet:`.
    var fleet: FleetOutbox? = nil
}

/// A provider's platform adapter and its pooled client, kept across reloads while the provider's
/// definition is unchanged (so are its cached credentials).
struct ProviderEndpoint: Sendable {
    var fingerprint: String
    var provider: any UpstreamProvider
    var client: UpstreamClient
}
