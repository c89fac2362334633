extension HTTPFront {
    /// Every endpoint of the router, in one place.
    static func endpoints(runtime: RouterRuntime, io: EndpointIO, startedAtMs: Int64) -> EndpointTable {
        let info = InfoEndpoints(
            configuration: runtime.configuration, clock: runtime.clock, renderMetrics: { runtime.renderMetrics() }, io: io, startedAtMs: startedAtMs
        )
        let batches = BatchEndpoints(
            configuration: runtime.configuration, batches: runtime.batches, observability: runtime.observability, wallClock: runtime.wallClock, io: io
        )
        let admin = AdminEndpoints(
            configuration: runtime.configuration, observability: runtime.observability, clock: runtime.clock, configPath: runtime.configPath,
            fleet: runtime.fleet, reload: { trigger in await runtime.reload(trigger: trigger) }, io: io
        )
        let dashboard = DashboardEndpoints(
            configuration: runtime.configuration, observability: runtime.observability, batches: runtime.batches, clock: runtime.clock,
            wallClock: runtime.wallClock, admin: admin, io: io
        )
        return EndpointTable([
            .init(method: .post, pattern: "/v1/messages", handler: .proxy(.messages)),
            .init(method: .post, pattern: "/v1/messages/count_tokens", handler: .proxy(.countTokens)),
            .init(method: .post, pattern: "/v1/chat/completions", handler: .proxy(.chatCompletions)),
            .init(method: .get, pattern: "/v1/models", handler: .handler(info.models)),
            .init(method: .get, pattern: "/healthz", handler: .handler(info.health)),
            .init(method: .get, pattern: "/readyz", handler: .handler(info.readiness)),
            .init(method: .get, pattern: "/metrics", handler: .handler(info.metrics)),
            .init(method: .post, pattern: "/v1/messages/batches", handler: .handler(batches.create)),
            .init(method: .get, pattern: "/v1/messages/batches", handler: .handler(batches.list)),
            .init(method: .get, pattern: "/v1/messages/batches/{id}", handler: .handler(batches.retrieve)),
            .init(method: .delete, pattern: "/v1/messages/batches/{id}", handler: .handler(batches.delete)),
            .init(method: .post, pattern: "/v1/messages/batches/{id}/cancel", handler: .handler(batches.cancel)),
            .init(method: .get, pattern: "/v1/messages/batches/{id}/results", handler: .handler(batches.results)),
            .init(method: .get, pattern: "/admin", handler: .handler(dashboard.page)),
            .init(method: .get, pattern: "/admin/events", handler: .handler(dashboard.events)),
            .init(method: .get, pattern: "/admin/state", handler: .handler(admin.state)),
            .init(method: .post, pattern: "/admin/models/{name}/disable", handler: .handler(admin.disable)),
            .init(method: .post, pattern: "/admin/models/{name}/enable", handler: .handler(admin.enable)),
            .init(method: .post, pattern: "/admin/reload", handler: .handler(admin.reload)),
        ])
    }
}
