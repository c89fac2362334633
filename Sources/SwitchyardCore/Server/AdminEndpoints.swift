import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// `/admin/*`: state, drain a model by hand, reload. With `admin_token_env` set, calls need
/// `Authorization: Bearer <token>`; without it, they are served to loopback callers only.
struct AdminEndpoints: Sendable {
    let configuration: LiveConfiguration
    let observability: Observability
    let clock: any RouterClock
    let configPath: String?
    /// The fleet's outbox, for its state; nil without `fleet:`.
    var fleet: FleetOutbox? = nil
    let reload: @Sendable (_ trigger: String) async -> ReloadResult
    let io: EndpointIO

    /// Who made an admin call, for the logs.
    struct Actor {
        var name: String
        var address: String

        var description: String { "\(name)@\(address)" }
    }

    func state(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        guard case .success = authorize(request.request, channel: request.channel) else { return try await refuse(request, writer) }
        try await io.writeJSON(status: 200, body: AdminState.body(table: configuration.table, now: clock.now(), configPath: configPath, fleet: fleet), to: writer)
    }

    func disable(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        try await drain(request, writer: writer, disable: true)
    }

    func enable(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        try await drain(request, writer: writer, disable: false)
    }

    /// Drains (`disable`) or undrains a model by hand; audited with who did it.
    private func drain(_ request: EndpointRequest, writer: consuming ResponseWriter, disable: Bool) async throws {
        guard case .success(let actor) = authorize(request.request, channel: request.channel) else { return try await refuse(request, writer) }
        let name = request.parameters[0]
        guard let model = configuration.table.model(named: name) else {
            let known = configuration.table.models.map(\.name).joined(separator: ", ")
            try await io.writeError(
                .notFound("no model named '\(name.prefix(80))' (models: \(known))"), requestID: io.requestID(for: request.request), to: writer,
                channel: request.channel
            )
            return
        }
        model.health.withState { $0.disabledBy = disable ? actor.description : nil }
        await observability.audit.append(
            AuditEvent.lifecycle(
                disable ? "admin.model_disabled" : "admin.model_enabled",
                fields: [("model", .string(model.name)), ("by", .string(actor.name)), ("address", .string(actor.address))]
            )
        )
        observability.logger.notice("model \(model.name) \(disable ? "disabled" : "enabled") by \(actor.description)")
        var json = JSONWriter(capacity: 128)
        json.beginObject()
        json.field("model", model.name)
        json.field("disabled", disable)
        json.field("by", actor.description)
        json.endObject()
        try await io.writeJSON(status: 200, body: ByteBuffer(bytes: json.bytes), to: writer)
    }

    func reload(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        guard case .success(let actor) = authorize(request.request, channel: request.channel) else { return try await refuse(request, writer) }
        observability.logger.notice("reload requested by \(actor.description)")
        let result = await reload( "admin by \(actor.description)")
        var json = JSONWriter(capacity: 512)
        json.beginObject()
        let status: Int
        switch result {
        case .reloaded(let routes, let kept, let notes):
            status = 200
            json.field("status", "reloaded")
            json.key("routes")
            json.beginArray()
            for route in routes { json.string(route) }
            json.endArray()
            json.key("breakers_kept")
            json.beginArray()
            for name in kept { json.string(name) }
            json.endArray()
            json.key("notes")
            json.beginArray()
            for note in notes { json.string(note) }
            json.endArray()
        case .failed(let problems):
            status = 422
            json.field("status", "reload_failed")
            json.key("errors")
            json.beginArray()
            for problem in problems { json.string(problem.description) }
            json.endArray()
        case .unavailable(let reason):
            status = 409
            json.field("status", "unavailable")
            json.field("reason", reason)
        }
        json.endObject()
        try await io.writeJSON(status: status, body: ByteBuffer(bytes: json.bytes), to: writer)
    }

    /// The refusal of a caller ``authorize(_:channel:)`` did not let in.
    func refuse(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        guard case .failure(let error) = authorize(request.request, channel: request.channel) else { return }
        try await io.writeError(error, requestID: io.requestID(for: request.request), to: writer, channel: request.channel)
    }

    func authorize(_ request: Request, channel: any Channel) -> Result<Actor, RouterError> {
        let address = Self.describe(channel.remoteAddress)
        if let token = configuration.table.config.server.adminToken {
            guard let presented = ClientAuthenticator.bearerToken(HTTPHeaders(request.headers)) else {
                return .failure(.authentication("admin calls need Authorization: Bearer <token>"))
            }
            guard ConstantTime.equal(presented, token) else {
                observability.logger.warning("admin call with a wrong token from \(address)")
                return .failure(.authentication("invalid admin token"))
            }
            return .success(Actor(name: "token:\(configuration.table.config.server.adminTokenEnv ?? "admin")", address: address))
        }
        guard Self.isLoopback(channel.remoteAddress) else {
            return .failure(.permission("admin calls are served to loopback callers only when no admin token is configured"))
        }
        return .success(Actor(name: "loopback", address: address))
    }

    static func isLoopback(_ address: SocketAddress?) -> Bool {
        switch address {
        case .v4(let v4): return v4.address.sin_addr.s_addr.bigEndian >> 24 == 127
        case .v6:
            guard let ip = address?.ipAddress else { return false }
            return ip == "::1" || ip.hasPrefix("::ffff:127.")
        case .unixDomainSocket: return true
        case nil: return false
        }
    }

    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown" }
        if let ip = address.ipAddress, let port = address.port { return "\(ip):\(port)" }
        return "\(address)"
    }
}
