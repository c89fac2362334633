import HummingbirdCore
import NIOCore
import NIOHTTP1

/// `GET /v1/models`, `/healthz`, `/readyz` and `/metrics`.
struct InfoEndpoints: Sendable {
    let configuration: LiveConfiguration
    let clock: any RouterClock
    let renderMetrics: @Sendable () -> [UInt8]
    let io: EndpointIO
    let startedAtMs: Int64

    func models(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        let table = configuration.table
        let requestID = io.requestID(for: request.request)
        let openAI = ModelsListing.isOpenAICaller(HTTPHeaders(request.request.headers))
        if case .failure(let error) = io.authenticate(request.request, table: table) {
            if openAI {
                try await ChatCompletionsFront.writeError(error, requestID: requestID, to: writer, channel: request.channel)
            } else {
                try await io.writeError(error, requestID: requestID, to: writer, channel: request.channel)
            }
            return
        }
        let body = openAI ? ModelsListing.openAIBody(table: table, createdAtMs: startedAtMs) : ModelsListing.body(table: table, createdAtMs: startedAtMs)
        try await io.writeJSON(status: 200, body: body, to: writer, requestID: requestID)
    }

    func health(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        try await io.writeJSON(status: 200, body: ByteBuffer(string: #"{"status":"ok"}"#), to: writer)
    }

    func readiness(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        let readiness = Readiness.evaluate(table: configuration.table, now: clock.now())
        try await io.writeJSON(status: readiness.isReady ? 200 : 503, body: readiness.body, to: writer)
    }

    func metrics(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        let body = ByteBuffer(bytes: renderMetrics())
        let headers: HTTPHeaders = ["content-type": "text/plain; version=0.0.4; charset=utf-8", "content-length": String(body.readableBytes)]
        try await writer.writeResponse(status: 200, headers: headers, body: body)
    }
}

/// `GET /v1/models`: the routes and their aliases, in Anthropic's list format, so that SDK
/// `models.list()` calls show what callers may put in `model` — or in OpenAI's for an OpenAI
/// caller (``isOpenAICaller(_:)``).
enum ModelsListing {
    /// Anthropic's SDKs always send `anthropic-version`; OpenAI's send `Authorization: Bearer`, a
    /// `User-Agent` of `OpenAI/…` and, when configured, `OpenAI-Organization`/`OpenAI-Project`.
    /// So: no `anthropic-version`, and any one of OpenAI's marks.
    static func isOpenAICaller(_ headers: HTTPHeaders) -> Bool {
        guard !headers.contains(name: "anthropic-version") else { return false }
        if headers.first(name: "user-agent")?.hasPrefix("OpenAI/") == true { return true }
        if headers.contains(name: "openai-organization") || headers.contains(name: "openai-project") { return true }
        return headers.first(name: "authorization")?.lowercased().hasPrefix("bearer ") == true
    }

    /// `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}`, as OpenAI lists.
    static func openAIBody(table: RoutingTable, createdAtMs: Int64) -> ByteBuffer {
        var json = JSONWriter(capacity: 256 + table.routes.count * 120)
        json.beginObject()
        json.field("object", "list")
        json.key("data")
        json.beginArray()
        for route in table.routes {
            for id in [route.name] + route.spec.aliases {
                json.beginObject()
                json.field("id", id)
                json.field("object", "model")
                json.field("created", createdAtMs / 1000)
                json.field("owned_by", "switchyard")
                json.endObject()
            }
        }
        json.endArray()
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }

    static func body(table: RoutingTable, createdAtMs: Int64) -> ByteBuffer {
        var json = JSONWriter(capacity: 256 + table.routes.count * 200)
        let created = ISO8601.format(milliseconds: createdAtMs)
        var ids: [String] = []
        json.beginObject()
        json.key("data")
        json.beginArray()
        for route in table.routes {
            let chain = route.models.map(\.name).joined(separator: " → ")
            for id in [route.name] + route.spec.aliases {
                ids.append(id)
                json.beginObject()
                json.field("type", "model")
                json.field("id", id)
                json.field("display_name", id == route.name ? "route \(route.name): \(chain)" : "alias of route \(route.name): \(chain)")
                json.field("created_at", created)
                json.endObject()
            }
        }
        json.endArray()
        json.field("has_more", false)
        json.key("first_id")
        if let first = ids.first { json.string(first) } else { json.null() }
        json.key("last_id")
        if let last = ids.last { json.string(last) } else { json.null() }
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }
}

/// `GET /readyz`: ready when the configuration is loaded and every route has a model whose
/// breaker is not open (and that an operator has not disabled).
struct Readiness {
    var isReady: Bool
    var body: ByteBuffer

    static func evaluate(table: RoutingTable, now: MonotonicInstant) -> Readiness {
        var json = JSONWriter(capacity: 256)
        var ready = true
        json.beginObject()
        json.key("routes")
        json.beginObject()
        for route in table.routes {
            let available = route.models.filter { model in
                let state = model.health.snapshot
                return state.disabledBy == nil && state.breaker.effectiveState(now: now) != .open
            }
            if available.isEmpty { ready = false }
            json.key(dynamic: route.name)
            json.beginObject()
            json.field("ready", !available.isEmpty)
            json.key("available_models")
            json.beginArray()
            for model in available { json.string(model.name) }
            json.endArray()
            json.endObject()
        }
        json.endObject()
        json.field("status", ready ? "ready" : "not_ready")
        json.endObject()
        return Readiness(isReady: ready, body: ByteBuffer(bytes: json.bytes))
    }
}
