/// One configuration generation, compiled for the request path: routes resolved by name or alias
/// in one hash lookup, models bound to their shared health records and upstream clients.
/// Immutable; a reload builds a new one and requests in flight keep the one they started with.
public final class RoutingTable: Sendable {
    public let config: SwitchyardConfig
    public let routes: [Route]
    /// Every configured model, in file order.
    public let models: [Model]
    private let lookup: [String: Int]

    public final class Route: Sendable {
        public let spec: RouteSpec
        public let models: [Model]
        /// nil: no `retry_budget:`. A reload starts a new one (its counts are of requests in flight).
        public let retryBudget: RouteRetryBudget?
        public var name: String { spec.name }

        init(spec: RouteSpec, models: [Model]) {
            self.spec = spec
            self.models = models
            self.retryBudget = spec.retryBudget.map(RouteRetryBudget.init(policy:))
        }
    }

    public final class Model: Sendable {
        public let spec: ModelSpec
        public let provider: ProviderSpec
        public let health: ModelHealth
        /// The upstream model id as a JSON string literal, ready to splice into a body.
        public let encodedUpstreamModel: [UInt8]
        /// The highest `headroom.min_remaining` of the routes that use this model: below it, some
        /// route skips the model, and the fleet is told.
        public let headroomFloor: Double
        public var name: String { spec.name }

        init(spec: ModelSpec, provider: ProviderSpec, health: ModelHealth, headroomFloor: Double = HeadroomPolicy.defaults.minRemaining) {
            self.spec = spec
            self.provider = provider
            self.health = health
            self.encodedUpstreamModel = JSONWriter.encodedString(spec.upstreamModel)
            self.headroomFloor = headroomFloor
        }
    }

    /// - Parameter previous: the table being replaced; health records of models whose upstream
    ///   identity is unchanged are carried over (breaker state survives a reload).
    public init(config: SwitchyardConfig, previous: RoutingTable? = nil) {
        self.config = config
        var carried: [String: ModelHealth] = [:]
        for model in previous?.models ?? [] {
            carried[model.name] = model.health
        }
        var floors: [String: Double] = [:]
        for route in config.routes {
            for name in route.models { floors[name] = max(floors[name] ?? 0, route.headroom.minRemaining) }
        }
        var models: [Model] = []
        for spec in config.models {
            guard let provider = config.provider(named: spec.provider) else { continue }
            let identity = "\(provider.platform)|\(provider.baseURL)|\(provider.settings.upstreamIdentity)|\(spec.upstreamModel)"
            let health: ModelHealth
            if let old = carried[spec.name], old.identity == identity {
                health = old
                health.withState { $0.breaker.policy = spec.breaker }
            } else {
                health = ModelHealth(name: spec.name, identity: identity, policy: spec.breaker)
            }
            models.append(Model(spec: spec, provider: provider, health: health, headroomFloor: floors[spec.name] ?? 0))
        }
        self.models = models
        var routes: [Route] = []
        var lookup: [String: Int] = [:]
        for spec in config.routes {
            let routeModels = spec.models.compactMap { name in models.first { $0.name == name } }
            lookup[spec.name] = routes.count
            for alias in spec.aliases { lookup[alias] = routes.count }
            routes.append(Route(spec: spec, models: routeModels))
        }
        self.routes = routes
        self.lookup = lookup
    }

    /// The route a request's `model` names, by route name or alias.
    public func route(named name: String) -> Route? {
        lookup[name].map { routes[$0] }
    }

    public func model(named name: String) -> Model? {
        models.first { $0.name == name }
    }

    public var routeNames: [String] { routes.map(\.name) }
}
