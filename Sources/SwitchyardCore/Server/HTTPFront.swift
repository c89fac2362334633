import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// The caller-facing HTTP surface: finds each request's endpoint in the ``EndpointTable`` and
/// runs it; the proxy endpoints' path (``proxy(_:writer:channel:)``) is here. A request runs in
/// its connection's scope, which cancels it when the caller goes away.
struct HTTPFront: Sendable {
    let configuration: LiveConfiguration
    let engine: EngineContext
    let observability: Observability
    let io = EndpointIO()
    let endpoints: EndpointTable

    init(runtime: RouterRuntime, startedAtMs: Int64) {
        configuration = runtime.configuration
        engine = runtime.engine
        observability = runtime.observability
        endpoints = Self.endpoints(runtime: runtime, io: io, startedAtMs: startedAtMs)
    }

    func respond(to request: Request, writer: consuming ResponseWriter, channel: any Channel) async throws {
        switch endpoints.match(method: request.method, path: request.uri.path) {
        case .found(let endpoint, let parameters):
            switch endpoint.handler {
            case .proxy(let api):
                let inbound = ProxyInbound(
                    api: api, headers: HTTPHeaders(request.headers), query: request.uri.query.map { Substring($0) }, body: .streamed(request.body)
                )
                try await proxy(inbound, writer: writer, channel: channel)
            case .handler(let handler):
                try await handler(EndpointRequest(request: request, parameters: parameters, channel: channel), writer)
            }
        case .methodNotAllowed(let allowed):
            let error = RouterError(
                status: 405, type: "invalid_request_error", message: "method \(request.method) is not allowed on \(request.uri.path)", outcome: .rejected
            )
            let allow = HTTPHeaders([("allow", allowed.map(\.rawValue).joined(separator: ", "))])
            try await io.writeError(error, requestID: io.requestID(for: request), to: writer, channel: channel, extraHeaders: allow)
        case .notFound:
            try await io.writeError(.notFound("no endpoint \(request.method) \(request.uri.path)"), requestID: io.requestID(for: request), to: writer, channel: channel)
        }
    }

    // MARK: Proxying

    /// A Messages, count_tokens or Chat Completions request as the proxy path reads it, from either front
    /// (Hummingbird's, or ``ProxyFastPath`` with NIO's HTTP/1 types).
    struct ProxyInbound {
        var api: CallerAPI
        var headers: HTTPHeaders
        /// The query string, without `?`.
        var query: Substring?
        var body: Body

        enum Body {
            /// Read already, within `max_body` (the fast path reads declared lengths only).
            case whole(ByteBuffer)
            /// To be read, up to `max_body`.
            case streamed(RequestBody)
        }
    }

    func proxy<Writer: ProxyResponseWriter & ~Copyable>(
        _ inbound: ProxyInbound, writer: consuming Writer, channel: any Channel
    ) async throws {
        let api = inbound.api
        let startedAt = engine.clock.now()
        let requestID = io.requestID(given: inbound.headers.first(name: HeaderPolicy.requestIDName))
        let arrivalUs = WallClock.nowMicroseconds()
        var record = RequestAuditRecord(timestampMs: arrivalUs / 1000, requestID: requestID, api: api.auditName)
        record.timestampUs = arrivalUs
        let trace = engine.tracer.map { RequestTrace(tracer: $0, inbound: inbound.headers, api: api.upstream, path: api.path, requestID: requestID) }
        let table = configuration.table
        var outcome: RouteWalk.Outcome
        var walk: RouteWalk?
        var inFlight: RouterMetrics.InFlight?
        var client: ClientCredential?
        /// Set for a Chat Completions caller once its body is translated.
        var chat: ChatCompletionsFront?
        do {
            client = try io.authenticate(inbound.headers, table: table).get()
            record.client = client?.name
            var buffer: ByteBuffer
            switch inbound.body {
            case .whole(let whole): buffer = whole
            case .streamed(let body):
                buffer = try await io.readBody(body, declaredLength: inbound.headers.first(name: "content-length"), limit: table.config.server.maxBody)
            }
            if api == .chatCompletions {
                let translated = try ChatCompletionsFront.translate(buffer, createdAtMs: record.timestampMs)
                (buffer, chat) = (translated.0, translated.1)
            }
            let body = try InboundBody.parse(buffer, requireMessages: true)
            record.requestedModel = body.model
            record.stream = body.stream && api != .countTokens
            guard let route = table.route(named: body.model) else {
                throw RouterError.notFound(
                    "model '\(body.model)' is not a route or alias of this Switchyard (routes: \(table.routeNames.joined(separator: ", ")))"
                )
            }
            record.route = route.name
            if let client, !client.mayUse(route: route.name) {
                throw RouterError.permission("client '\(client.name)' may not use route '\(route.name)'")
            }
            var proxyRequest = ProxyRequest(
                requestID: requestID, idempotencyKey: HeaderPolicy.idempotencyKey(in: inbound.headers, fallback: requestID), api: api.upstream, body: body,
                inboundHeaders: inbound.headers, query: inbound.query
            )
            if api == .countTokens { proxyRequest.body = body.forcingNonStreaming() }
            let current = RouteWalk(
                context: engine, route: route, request: proxyRequest, record: record, startedAt: startedAt,
                requestTimeout: table.config.server.requestTimeout, trace: trace
            )
            walk = current
            inFlight = observability.metrics.requestStarted(route: route.name)
            outcome = await current.run()
        } catch let error as RouterError {
            record.status = error.status
            record.outcome = error.outcome
            record.message = error.message
            if api == .chatCompletions {
                try await ChatCompletionsFront.writeError(error, requestID: requestID, to: writer, channel: channel)
            } else {
                try await io.writeError(error, requestID: requestID, to: writer, channel: channel)
            }
            record.durationMs = (engine.clock.now() - startedAt).milliseconds
            trace?.finish(record)
            await observability.finish(record)
            return
        }

        guard let walk else { return }
        // Consumed, so that the headers below are this code's alone and take `content-length`
        // in place (a copy of the answer's headers otherwise).
        switch consume outcome {
        case .complete(let status, var headers, var body):
            if let chat { body = chat.answer(status: status, body: body) }
            headers.add(name: "content-length", value: String(body.readableBytes))
            do {
                try await writer.writeResponse(status: status, headers: headers, body: body)
                walk.responseStarted(at: engine.clock.now())
            } catch {
                walk.callerLeft()
            }
        case .stream(let status, let headers, let prelude):
            do {
                var bodyWriter = try await writer.writeHead(status: status, headers: headers)
                walk.responseStarted(at: engine.clock.now())
                if let chat {
                    var translating = chat.streamWriter(bodyWriter)
                    try await translating.write(prelude)
                    await walk.relay(into: &translating)
                } else {
                    try await bodyWriter.write(prelude)
                    await walk.relay(into: &bodyWriter)
                }
            } catch {
                await walk.abandonStream()
            }
        case .cancelled:
            walk.callerLeft(status: 499)
        }
        inFlight?.ended()
        let finished = walk.finished(at: engine.clock.now())
        trace?.finish(finished)
        await observability.finish(finished)
    }
}

extension InboundBody {
    /// count_tokens has no stream mode; a `stream` field there must not change how it is relayed.
    func forcingNonStreaming() -> InboundBody {
        InboundBody(buffer: buffer, model: model, modelRange: modelRange, stream: false)
    }
}
