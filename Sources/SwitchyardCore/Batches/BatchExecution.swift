import NIOHTTP1
import NIOCore

/// One try of one batch request: a whole walk through its route (the usual selection, attempts,
/// outcome table and audit line, with `batch_id` and `custom_id`), and what it means for the
/// batch: a final result, or a retry.
struct BatchExecution {
    enum Verdict: Sendable {
        /// `succeeded` or `errored` (a caller error: 4xx other than 408/409/429, never retried).
        case final(BatchRequestState, [UInt8])
        /// Try again later; `waitForModel`: nothing admitted it (wait for a breaker to let it).
        case retry(waitForModel: Bool)
        /// The router is stopping: give the request back untouched.
        case abandoned
    }

    let runtime: RouterRuntime
    let request: LeasedBatchRequest
    let probeGrace: Duration

    /// Batch requests have no caller headers: the API version the router speaks, JSON.
    static let headers: HTTPHeaders = ["anthropic-version": "2023-06-01", "content-type": "application/json"]

    func run() async -> Verdict {
        let table = runtime.table
        guard let route = table.route(named: request.route) else {
            // A reload removed the route since the batch was created.
            let error = RouterError.notFound("route '\(request.route)' of this batch request no longer exists")
            return .final(.errored, BatchJSON.errored(envelope: error.body(requestID: RequestID.generate()), status: error.status))
        }
        let body: InboundBody
        do {
            body = try InboundBody.parse(ByteBuffer(bytes: request.params), requireMessages: true)
        } catch {
            return .final(.errored, BatchJSON.errored(envelope: error.body(requestID: RequestID.generate()), status: error.status))
        }
        let startedAt = runtime.clock.now()
        let requestID = RequestID.generate()
        var record = RequestAuditRecord(timestampMs: runtime.wallClock(), requestID: requestID, api: "messages")
        record.client = request.client
        record.batchID = request.key.batchID
        record.customID = request.key.customID
        record.route = route.name
        record.requestedModel = body.model
        let proxyRequest = ProxyRequest(requestID: requestID, idempotencyKey: requestID, api: .messages, body: body, inboundHeaders: Self.headers, query: nil)
        let walk = RouteWalk(
            context: runtime.engine, route: route, request: proxyRequest, record: record, startedAt: startedAt,
            requestTimeout: table.config.server.requestTimeout, probeGrace: probeGrace
        )
        let inFlight = runtime.metrics.requestStarted(route: route.name)
        let outcome = await walk.run()
        let verdict = self.verdict(outcome, outcome: walk.record.outcome, route: route)
        switch outcome {
        case .complete:
            break
        case .stream:
            // Batch requests never stream (their params are checked at create): a stream here is
            // nobody's to read.
            await walk.abandonStream()
            walk.callerLeft(status: 499)
        case .cancelled:
            walk.callerLeft(status: 499)
        }
        if case .retry = verdict { walk.markEvent("batch.retry") }
        inFlight.ended()
        await runtime.observability.finish(walk.finished(at: runtime.clock.now()))
        return verdict
    }

    private func verdict(_ walked: RouteWalk.Outcome, outcome: RequestOutcome, route: RoutingTable.Route) -> Verdict {
        guard case .complete(let status, _, let responseBody) = walked else { return .abandoned }
        switch outcome {
        case .ok:
            return .final(.succeeded, BatchJSON.succeeded(message: responseBody))
        case .clientError, .rejected:
            return .final(.errored, BatchJSON.errored(envelope: responseBody, status: status))
        case .noModelAvailable:
            return .retry(waitForModel: true)
        case .cancelled:
            return .abandoned
        case .upstreamError, .streamError:
            // If the failures closed the route (no model admits batch work any more), admission
            // gates the retry and a breaker transition wakes it; otherwise back off.
            let now = runtime.clock.now()
            let stillAdmits = route.models.contains { $0.health.withState { $0.availability(now: now, probeGrace: probeGrace).admits } }
            return .retry(waitForModel: !stillAdmits)
        }
    }
}
