import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// The caller-facing HTTP surface: dispatches each request to its endpoint and writes the answer.
struct HTTPFront: Sendable {
    let runtime: RouterRuntime
    let startedAtMs: Int64

    func respond(to request: Request, writer: consuming ResponseWriter, channel: any Channel, canceller: DisconnectCanceller) async throws {
        let path = request.uri.path
        if request.method == .post, let api = UpstreamAPI(path: Substring(path)) {
            let inbound = ProxyInbound(
                api: api, headers: HTTPHeaders(request.headers), query: request.uri.query.map { Substring($0) }, body: .streamed(request.body)
            )
            return try await proxy(inbound, writer: writer, channel: channel, canceller: canceller)
        }
        switch (request.method, path) {
        case (.get, "/v1/models"), (.head, "/v1/models"):
            let table = runtime.table
            if case .failure(let error) = authenticate(request, table: table) {
                try await writeError(error, requestID: requestID(for: request), to: writer, channel: channel)
                return
            }
            try await writeJSON(status: 200, body: ModelsListing.body(table: table, createdAtMs: startedAtMs), to: writer, requestID: requestID(for: request))
        case (.get, "/metrics"):
            let body = ByteBuffer(bytes: runtime.renderMetrics())
            let headers: HTTPHeaders = ["content-type": "text/plain; version=0.0.4; charset=utf-8", "content-length": String(body.readableBytes)]
            try await writer.writeAnswer(status: 200, headers: headers, body: body)
        case (.get, "/healthz"), (.head, "/healthz"):
            try await writeJSON(status: 200, body: ByteBuffer(string: #"{"status":"ok"}"#), to: writer)
        case (.get, "/readyz"), (.head, "/readyz"):
            let readiness = Readiness.evaluate(table: runtime.table, now: runtime.clock.now())
            try await writeJSON(status: readiness.isReady ? 200 : 503, body: readiness.body, to: writer)
        case (_, _) where path == "/v1/messages/batches" || path.hasPrefix("/v1/messages/batches/"):
            try await BatchEndpoints(runtime: runtime, front: self).respond(to: request, writer: writer, channel: channel)
        case (_, _) where path.hasPrefix("/admin/") || path == "/admin":
            try await AdminEndpoints(runtime: runtime).respond(to: request, writer: writer, channel: channel, front: self)
        default:
            let known = ["/v1/messages", "/v1/messages/count_tokens", "/v1/models", "/healthz", "/readyz", "/metrics"]
            let error: RouterError =
                known.contains(path)
                ? RouterError(status: 405, type: "invalid_request_error", message: "method \(request.method) is not allowed on \(path)", outcome: .rejected)
                : .notFound("no endpoint \(request.method) \(path)")
            try await writeError(error, requestID: requestID(for: request), to: writer, channel: channel)
        }
    }

    // MARK: Proxying

    /// A Messages or count_tokens request as the proxy path reads it, from either front
    /// (Hummingbird's, or ``ProxyFastPath`` with NIO's HTTP/1 types).
    struct ProxyInbound {
        var api: UpstreamAPI
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

    func proxy<Writer: AnswerWriter & ~Copyable>(
        _ inbound: ProxyInbound, writer: consuming Writer, channel: any Channel, canceller: DisconnectCanceller
    ) async throws {
        let api = inbound.api
        let startedAt = runtime.clock.now()
        let requestID = requestID(given: inbound.headers.first(name: HeaderPolicy.requestIDName))
        var record = RequestAuditRecord(timestampMs: WallClock.nowMilliseconds(), requestID: requestID, api: api.auditName)
        let table = runtime.table
        var answer: ProxyAnswer
        var exchange: ProxyExchange?
        var inFlight: RouterMetrics.InFlight?
        var client: ClientCredential?
        do {
            client = try authenticate(inbound.headers, table: table).get()
            record.client = client?.name
            let buffer: ByteBuffer
            switch inbound.body {
            case .whole(let whole): buffer = whole
            case .streamed(let body):
                buffer = try await readBody(body, declaredLength: inbound.headers.first(name: "content-length"), limit: table.config.server.maxBody)
            }
            let body = try InboundBody.parse(buffer, requireMessages: true)
            record.requestedModel = body.model
            record.stream = body.stream && api == .messages
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
                requestID: requestID, idempotencyKey: HeaderPolicy.idempotencyKey(in: inbound.headers, fallback: requestID), api: api, body: body,
                inboundHeaders: inbound.headers, query: inbound.query
            )
            if api == .countTokens { proxyRequest.body = body.forcingNonStreaming() }
            let current = ProxyExchange(
                runtime: runtime, route: route, request: proxyRequest, record: record, startedAt: startedAt,
                requestTimeout: table.config.server.requestTimeout
            )
            exchange = current
            inFlight = runtime.metrics.requestStarted(route: route.name)
            answer = await canceller.whileConnected { await current.run() }
        } catch let error as RouterError {
            record.status = error.status
            record.outcome = error.outcome
            record.message = error.message
            try await writeError(error, requestID: requestID, to: writer, channel: channel)
            record.durationMs = (runtime.clock.now() - startedAt).milliseconds
            await runtime.finish(record)
            return
        }

        guard let exchange else { return }
        // Consumed, so that the headers below are this code's alone and take `content-length`
        // in place (a copy of the answer's headers otherwise).
        switch consume answer {
        case .complete(let status, var headers, let body):
            headers.add(name: "content-length", value: String(body.readableBytes))
            do {
                try await writer.writeAnswer(status: status, headers: headers, body: body)
                exchange.record.ttfbMs = (runtime.clock.now() - startedAt).milliseconds
            } catch {
                exchange.record.outcome = .cancelled
            }
        case .stream(let status, let headers, let prelude, var relay):
            do {
                var bodyWriter = try await writer.writeHead(status: status, headers: headers)
                exchange.record.ttfbMs = (runtime.clock.now() - startedAt).milliseconds
                try await bodyWriter.write(prelude)
                exchange.record.status = status
                _ = await canceller.whileConnected { await relay.run(into: &bodyWriter) }
            } catch {
                _ = await relay.abandon()
            }
        case .cancelled:
            exchange.record.status = 499
            exchange.record.outcome = .cancelled
        }
        exchange.record.durationMs = (runtime.clock.now() - startedAt).milliseconds
        inFlight?.ended()
        await runtime.finish(exchange.record)
    }

    /// Reads the body up to `limit`; a larger body is refused without being read further.
    func readBody(_ request: Request, limit: Int) async throws(RouterError) -> ByteBuffer {
        try await readBody(request.body, declaredLength: request.headers[.contentLength], limit: limit)
    }

    func readBody(_ body: RequestBody, declaredLength: String?, limit: Int) async throws(RouterError) -> ByteBuffer {
        if let declared = declaredLength.flatMap({ Int($0) }), declared > limit {
            throw .tooLarge(limit: limit)
        }
        var collected = ByteBuffer()
        do {
            for try await chunk in body {
                if collected.readableBytes + chunk.readableBytes > limit { throw RouterError.tooLarge(limit: limit) }
                if collected.readableBytes == 0 {
                    collected = chunk
                } else {
                    var chunk = chunk
                    collected.writeBuffer(&chunk)
                }
            }
        } catch let error as RouterError {
            throw error
        } catch {
            var failure = RouterError.invalidRequest("could not read the request body: \(error)")
            failure.closeConnection = true
            throw failure
        }
        return collected
    }

    /// The calling client when `clients:` is configured (nil when it is not); 401 otherwise.
    func authenticate(_ request: Request, table: RoutingTable) -> Result<ClientCredential?, RouterError> {
        authenticate(HTTPHeaders(request.headers), table: table)
    }

    func authenticate(_ headers: HTTPHeaders, table: RoutingTable) -> Result<ClientCredential?, RouterError> {
        switch ClientAuthenticator(clients: table.config.clients).authenticate(headers) {
        case .open: .success(nil)
        case .client(let client): .success(client)
        case .missingKey: .failure(.authentication("a Switchyard client key is required (x-api-key or Authorization: Bearer)"))
        case .unknownKey: .failure(.authentication("invalid client key"))
        }
    }

    func requestID(for request: Request) -> String {
        requestID(given: request.headers[HTTPField.Name(HeaderPolicy.requestIDName)!])
    }

    /// The caller's `x-request-id` when it is one Switchyard can carry; a new one otherwise.
    func requestID(given: String?) -> String {
        if let given, RequestID.isAcceptable(Substring(given)) { return given }
        return RequestID.generate()
    }

    // MARK: Writing

    /// `requestID`: set for API answers (Anthropic's `request-id` and Switchyard's `x-request-id`).
    func writeJSON(status: Int, body: ByteBuffer, to writer: consuming ResponseWriter, requestID: String? = nil) async throws {
        var headers: HTTPHeaders = ["content-type": "application/json", "content-length": String(body.readableBytes)]
        if let requestID {
            headers.add(name: "request-id", value: requestID)
            headers.add(name: HeaderPolicy.requestIDName, value: requestID)
        }
        try await writer.writeAnswer(status: status, headers: headers, body: body)
    }

    func writeError<Writer: AnswerWriter & ~Copyable>(_ error: RouterError, requestID: String, to writer: consuming Writer, channel: any Channel) async throws {
        let body = error.body(requestID: requestID)
        var headers = error.answerHeaders(requestID: requestID)
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: HeaderPolicy.requestIDName, value: requestID)
        if error.closeConnection { headers.add(name: "connection", value: "close") }
        try await writer.writeAnswer(status: error.status, headers: headers, body: body)
        if error.closeConnection {
            // The rest of the request was not read; the connection cannot carry another one.
            channel.close(promise: nil)
        }
    }
}

extension InboundBody {
    /// count_tokens has no stream mode; a `stream` field there must not change how it is relayed.
    func forcingNonStreaming() -> InboundBody {
        InboundBody(buffer: buffer, model: model, modelRange: modelRange, stream: false)
    }
}
