import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1

/// The Message Batches API (README, "Non-urgent work: Message Batches"), in Anthropic's exact shapes, so the SDK's
/// `client.messages.batches.*` works unmodified. A client (with `clients:` configured) sees,
/// cancels and reads only its own batches; another's answer 404 as if they did not exist.
struct BatchEndpoints: Sendable {
    let configuration: LiveConfiguration
    let batches: BatchMachinery
    let observability: Observability
    /// Unix milliseconds.
    let wallClock: @Sendable () -> Int64
    let io: EndpointIO

    /// What an endpoint answers, decided before anything is written (the writer is written once).
    private enum Reply {
        case json(ByteBuffer)
        case error(RouterError)
        case results(batchID: String, store: any BatchStore)
    }

    /// What every batch endpoint works with once the caller is let in.
    private struct Context {
        var settings: BatchSettings
        var store: any BatchStore
        var client: ClientCredential?
        var table: RoutingTable
    }

    func create(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        try await serve(request, writer) { context in
            .json(try await create(request.request, settings: context.settings, store: context.store, client: context.client, table: context.table))
        }
    }

    func list(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        try await serve(request, writer) { context in
            .json(BatchJSON.page(try await list(request.request, store: context.store, client: context.client), resultsBase: Self.resultsBase(request.request)))
        }
    }

    func retrieve(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        try await serve(request, writer) { context in
            .json(BatchJSON.object(try await owned(request.parameters[0], context), resultsBase: Self.resultsBase(request.request)))
        }
    }

    func cancel(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        try await serve(request, writer) { context in
            let id = request.parameters[0]
            _ = try await owned(id, context)
            guard let batch = try await context.store.cancel(id: id, nowMs: wallClock()) else { throw Self.notFound(id) }
            if batch.endedAtMs != nil { await observability.batchEnded(batch) }
            batches.doorbell.ring()
            return .json(BatchJSON.object(batch, resultsBase: Self.resultsBase(request.request)))
        }
    }

    func delete(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        try await serve(request, writer) { context in
            let id = request.parameters[0]
            _ = try await owned(id, context)
            switch try await context.store.delete(id: id) {
            case .deleted: return .json(BatchJSON.deleted(id: id))
            case .notFound: throw Self.notFound(id)
            case .notEnded: throw RouterError.invalidRequest("batch \(id) has not ended; cancel it and wait for it to end before deleting it")
            }
        }
    }

    func results(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        try await serve(request, writer) { context in
            let batch = try await owned(request.parameters[0], context)
            guard batch.endedAtMs != nil else {
                throw RouterError.invalidRequest("batch \(batch.id) has not ended yet; its results are available once processing_status is ended")
            }
            return .results(batchID: batch.id, store: context.store)
        }
    }

    /// Lets the caller in (batches on, a valid key, the store open), decides the reply, writes it.
    private func serve(_ request: EndpointRequest, _ writer: consuming ResponseWriter, _ decide: (Context) async throws -> Reply) async throws {
        let requestID = io.requestID(for: request.request)
        let reply: Reply
        do {
            reply = try await decide(try context(for: request.request))
        } catch let error as RouterError {
            reply = .error(error)
        } catch let error as BatchStoreError {
            let status = error.kind == .readOnly ? 507 : 503
            reply = .error(RouterError(status: status, type: "api_error", message: "\(error)", outcome: .rejected, retryAfter: .seconds(5)))
        }
        switch reply {
        case .json(let body):
            try await io.writeJSON(status: 200, body: body, to: writer, requestID: requestID)
        case .error(let error):
            try await io.writeError(error, requestID: requestID, to: writer, channel: request.channel)
        case .results(let id, let store):
            try await streamResults(of: id, store: store, writer: writer, requestID: requestID)
        }
    }

    private func context(for request: Request) throws -> Context {
        let table = configuration.table
        guard let settings = table.config.batches else {
            throw RouterError.notFound("Message Batches are not enabled on this Switchyard (routes.yaml has no batches: section)")
        }
        let client = try io.authenticate(request, table: table).get()
        guard let store = batches.currentStore else {
            throw RouterError(
                status: 503, type: "api_error", message: "the batch store is not open yet (\(settings.storeDescription))", outcome: .rejected,
                retryAfter: .seconds(5)
            )
        }
        return Context(settings: settings, store: store, client: client, table: table)
    }

    /// Validates the whole batch, commits it with every request, and only then answers.
    private func create(
        _ request: Request, settings: BatchSettings, store: any BatchStore, client: ClientCredential?, table: RoutingTable
    ) async throws -> ByteBuffer {
        let buffer = try await io.readBody(request, limit: BatchCreateBody.maxBytes)
        let parsed = try BatchCreateBody.parse(buffer)
        var requests: [NewBatchRequest] = []
        requests.reserveCapacity(parsed.count)
        var checkedRoutes: [String: String] = [:]  // model → route
        for (index, item) in parsed.enumerated() {
            let routeName: String
            if let known = checkedRoutes[item.model] {
                routeName = known
            } else {
                guard let route = table.route(named: item.model) else {
                    throw RouterError.invalidRequest(
                        "requests[\(index)].params.model: '\(item.model)' is not a route or alias of this Switchyard (routes: \(table.routeNames.joined(separator: ", ")))"
                    )
                }
                if let client, !client.mayUse(route: route.name) {
                    throw RouterError.permission("requests[\(index)]: client '\(client.name)' may not use route '\(route.name)'")
                }
                if let passThrough = route.models.first(where: { $0.provider.settings.passesCallerCredentials }) {
                    throw RouterError.invalidRequest(
                        "requests[\(index)]: route '\(route.name)' cannot run batch requests: provider '\(passThrough.provider.name)' uses callers' "
                            + "own keys, and a batch request runs later, without its caller"
                    )
                }
                routeName = route.name
                checkedRoutes[item.model] = routeName
            }
            // mode: upstream: a route with no Anthropic model has no Message Batches API to go to.
            let direct = settings.mode == .upstream && UpstreamBatches.anthropicModel(of: table.route(named: routeName)!) == nil
            requests.append(
                NewBatchRequest(customID: item.customID, route: routeName, params: item.params, upstreamBatchID: direct ? BatchLeaseKind.directMarker : nil)
            )
        }
        let now = wallClock()
        let batch = NewBatch(id: BatchJSON.newBatchID(), client: client?.name, createdAtMs: now, expiresAtMs: now + settings.expiresAfter.milliseconds)
        try await store.create(batch, requests: requests)
        await observability.audit.append(
            AuditEvent.lifecycle(
                "batch.created",
                fields: [("batch_id", .string(batch.id)), ("requests", .int(requests.count))] + (client.map { [("client", .string($0.name))] } ?? [])
            )
        )
        batches.doorbell.ring()
        let record = BatchRecord(
            id: batch.id, client: batch.client, createdAtMs: now, expiresAtMs: batch.expiresAtMs, endedAtMs: nil, cancelInitiatedAtMs: nil,
            counts: BatchRequestCounts(processing: requests.count)
        )
        return BatchJSON.object(record, resultsBase: Self.resultsBase(request))
    }

    private func list(_ request: Request, store: any BatchStore, client: ClientCredential?) async throws -> BatchPage {
        let query = request.uri.queryParameters
        var limit = 20
        if let text = query["limit"] {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw RouterError.invalidRequest("limit: Input should be a whole number between 1 and 1000")
            }
            limit = value
        }
        let after = query["after_id"].map(String.init)
        let before = query["before_id"].map(String.init)
        if after != nil, before != nil { throw RouterError.invalidRequest("give after_id or before_id, not both") }
        return try await store.list(client: client?.name, limit: limit, afterID: after, beforeID: before)
    }

    /// The batch, when it exists and belongs to this caller.
    private func owned(_ id: String, _ context: Context) async throws -> BatchRecord {
        guard BatchCreateBody.isValidBatchID(id), let batch = try await context.store.batch(id: id) else { throw Self.notFound(id) }
        if let client = context.client, batch.client != client.name { throw Self.notFound(id) }
        return batch
    }

    /// JSONL read from the store page by page: never the whole file in memory.
    private func streamResults(of id: String, store: any BatchStore, writer: consuming ResponseWriter, requestID: String) async throws {
        var first = try await store.results(batchID: id, afterPosition: -1, limit: 1000)
        let headers: HTTPHeaders = ["content-type": "application/x-jsonl", "request-id": requestID, HeaderPolicy.requestIDName: requestID]
        var body = try await writer.writeHead(status: 200, headers: headers)
        while !first.isEmpty {
            var buffer = ByteBuffer()
            for row in first { BatchJSON.resultLine(customID: row.customID, result: row.result, into: &buffer) }
            try await body.write(buffer)
            guard let last = first.last, first.count == 1000 else { break }
            first = try await store.results(batchID: id, afterPosition: last.position, limit: 1000)
        }
        try await body.finish(nil)
    }

    static func notFound(_ id: String) -> RouterError {
        .notFound("no message batch '\(id.prefix(80))'")
    }

    /// `http://host:port` as the caller reached this router (`x-forwarded-proto` honoured), for `results_url`.
    static func resultsBase(_ request: Request) -> String {
        let scheme = request.headers[HTTPField.Name("x-forwarded-proto")!] == "https" ? "https" : "http"
        let host = request.head.authority ?? request.headers[HTTPField.Name("host")!] ?? "localhost"
        return "\(scheme)://\(host)"
    }
}

extension BatchCreateBody {
    static func isValidBatchID(_ text: String) -> Bool {
        text.hasPrefix("msgbatch_") && text.utf8.count <= 64 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 95 }
    }
}
