import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// `mode: upstream` (README, "Non-urgent work: Message Batches"): requests go as Message Batches to their route's
/// Anthropic provider (half the price), which is polled with backoff; results are copied into the
/// store. A refused submission is retried; results `errored` with `api_error` or
/// `overloaded_error`, and requests the upstream canceled or expired, are marked to run
/// directly (through the route, other platforms included) and run by the ``BatchRunner``.
/// The upstream batch's id is stored on its requests, so a replica that takes them over polls
/// it instead of submitting again.
final class UpstreamBatches: Sendable {
    let runtime: RouterRuntime
    let store: any BatchStore
    let owner: String
    /// Upstream batches being polled: id → its requests and when to look next.
    private let polling = Mutex<[String: Polled]>([:])

    struct Polled: Sendable {
        var provider: ProviderSpec
        var keys: [BatchRequestKey]
        var nextPollMs: Int64
        var interval: Duration
    }

    static let maxPerSubmission = 10_000
    static let firstPoll = Duration.seconds(2)
    /// Submissions refused this many times run directly instead.
    static let maxRefusals = 3

    init(runtime: RouterRuntime, store: any BatchStore, owner: String) {
        self.runtime = runtime
        self.store = store
        self.owner = owner
    }

    /// The route's first model on an Anthropic provider: where its upstream batches go.
    static func anthropicModel(of route: RoutingTable.Route) -> RoutingTable.Model? {
        route.models.first { $0.provider.platform == .anthropic }
    }

    func run() async {
        while !Task.isCancelled {
            do {
                try await submitDue()
                try await pollDue()
                try await renewLeases()
            } catch {
                runtime.logger.warning("upstream batches: \(error)")
            }
            await runtime.batches.doorbell.wait(timeout: .seconds(1))
        }
    }

    // MARK: Submitting

    private func submitDue() async throws(BatchStoreError) {
        let table = runtime.table
        let routes = table.routes.filter { Self.anthropicModel(of: $0) != nil }.map(\.name)
        guard !routes.isEmpty else { return }
        let nowMs = runtime.wallClock()
        let leased = try await store.lease(
            limit: Self.maxPerSubmission, owner: owner, nowMs: nowMs, leaseUntilMs: nowMs + BatchSettings.leaseDuration.milliseconds, routes: routes,
            kind: .upstream
        )
        guard !leased.isEmpty else { return }
        // Taken over from a replica that died: poll the batch it submitted.
        var fresh: [String: [LeasedBatchRequest]] = [:]
        for request in leased {
            if let upstream = request.upstreamBatchID, let route = table.route(named: request.route), let model = Self.anthropicModel(of: route) {
                polling.withLock { polls in
                    polls[upstream, default: Polled(provider: model.provider, keys: [], nextPollMs: nowMs, interval: Self.firstPoll)].keys.append(request.key)
                }
            } else {
                fresh["\(request.key.batchID)|\(request.route)", default: []].append(request)
            }
        }
        for group in fresh.values { try await submit(group) }
    }

    private func submit(_ requests: [LeasedBatchRequest]) async throws(BatchStoreError) {
        guard let first = requests.first, let route = runtime.table.route(named: first.route), let model = Self.anthropicModel(of: route),
            let endpoint = runtime.configuration.endpoint(for: model.provider)
        else { return }
        var body = ByteBuffer(string: #"{"requests":["#)
        for (index, request) in requests.enumerated() {
            if index > 0 { body.writeString(",") }
            body.writeString(#"{"custom_id":"#)
            body.writeBytes(JSONWriter.encodedString(request.key.customID))
            body.writeString(#","params":"#)
            let params = (try? InboundBody.parse(ByteBuffer(bytes: request.params), requireMessages: true))?.withModel(model.encodedUpstreamModel)
            body.writeImmutableBuffer(params ?? ByteBuffer(bytes: request.params))
            body.writeString("}")
        }
        body.writeString("]}")
        let nowMs = runtime.wallClock()
        let keys = requests.map(\.key)
        do {
            let answer = try await call(endpoint, method: .POST, path: "/v1/messages/batches", body: body)
            guard (200..<300).contains(answer.status), let id = AnthropicPayload.topLevelString("id", in: answer.body) else {
                throw UpstreamError(failure: .reset, detail: "the upstream refused the batch: \(answer.status) \(AnthropicPayload.error(in: answer.body).type ?? "")")
            }
            try await store.setUpstreamBatch(keys, upstreamBatchID: id, owner: owner)
            polling.withLock { $0[id] = Polled(provider: model.provider, keys: keys, nextPollMs: nowMs + Self.firstPoll.milliseconds, interval: Self.firstPoll) }
            runtime.logger.info("batch \(first.key.batchID): \(keys.count) requests submitted to \(model.provider.name) as \(id)")
        } catch let error as BatchStoreError {
            throw error
        } catch {
            // Refused (5xx, 529, unreachable): try again later, and after a few refusals run them directly.
            let refusals = first.attempts
            runtime.logger.warning("batch \(first.key.batchID): submission to \(model.provider.name) failed (\(refusals)): \(error)")
            if refusals >= Self.maxRefusals {
                try await store.setUpstreamBatch(keys, upstreamBatchID: BatchLeaseKind.directMarker, owner: owner)
            }
            let settings = runtime.table.config.batches ?? .defaults
            let retries = keys.map { BatchRetry(key: $0, nextAttemptAtMs: nowMs + BatchRunner.backoff(attempt: refusals, max: settings.maxBackoff).milliseconds) }
            for batch in try await store.release(retries, owner: owner, nowMs: nowMs) { await runtime.observability.batchEnded(batch) }
            runtime.batches.doorbell.ring()
        }
    }

    // MARK: Polling

    private func pollDue() async throws(BatchStoreError) {
        let nowMs = runtime.wallClock()
        let due = polling.withLock { $0.filter { $0.value.nextPollMs <= nowMs } }
        for (id, polled) in due {
            guard let endpoint = runtime.configuration.endpoint(for: polled.provider),
                let batch = await fetch(id, path: "/v1/messages/batches/\(id)", from: endpoint)
            else { continue }
            if AnthropicPayload.topLevelString("processing_status", in: batch) == "ended" {
                try await collect(id, polled: polled, endpoint: endpoint)
            } else {
                if try await anyCanceling(polled.keys) {
                    _ = try? await call(endpoint, method: .POST, path: "/v1/messages/batches/\(id)/cancel", body: ByteBuffer())
                }
                reschedule(id)
            }
        }
    }

    /// A GET of the upstream batch `id`'s `path`; nil (and the next poll scheduled) unless it
    /// answered 200.
    private func fetch(_ id: String, path: String, from endpoint: ProviderEndpoint) async -> ByteBuffer? {
        guard let answer = try? await call(endpoint, method: .GET, path: path, body: nil), answer.status == 200 else {
            reschedule(id)
            return nil
        }
        return answer.body
    }

    private func reschedule(_ id: String) {
        let maxInterval = min(runtime.table.config.batches?.maxBackoff ?? .seconds(60), .seconds(60))
        polling.withLock { polls in
            guard var polled = polls[id] else { return }
            polled.interval = min(polled.interval * 2, maxInterval)
            polled.nextPollMs = runtime.wallClock() + polled.interval.milliseconds
            polls[id] = polled
        }
    }

    private func anyCanceling(_ keys: [BatchRequestKey]) async throws(BatchStoreError) -> Bool {
        for batchID in Set(keys.map(\.batchID)) {
            if try await store.batch(id: batchID)?.cancelInitiatedAtMs != nil { return true }
        }
        return false
    }

    /// Copies an ended upstream batch's results into the store.
    private func collect(_ id: String, polled: Polled, endpoint: ProviderEndpoint) async throws(BatchStoreError) {
        guard let results = await fetch(id, path: "/v1/messages/batches/\(id)/results", from: endpoint) else { return }
        let byCustomID = Dictionary(polled.keys.map { ($0.customID, $0) }, uniquingKeysWith: { first, _ in first })
        var outcomes: [BatchRequestOutcome] = []
        var again: [BatchRequestKey] = []
        var seen: Set<String> = []
        for line in String(buffer: results).split(separator: "\n") where !line.isEmpty {
            let lineBuffer = ByteBuffer(string: String(line))
            guard let customID = AnthropicPayload.topLevelString("custom_id", in: lineBuffer), let key = byCustomID[customID],
                let result = Self.member("result", in: lineBuffer)
            else { continue }
            seen.insert(customID)
            switch AnthropicPayload.topLevelString("type", in: result) {
            case "succeeded":
                outcomes.append(BatchRequestOutcome(key: key, state: .succeeded, result: Array(result.readableBytesView)))
            case "errored":
                let inner = Self.member("error", in: result).map { AnthropicPayload.error(in: $0).type } ?? nil
                if inner == "api_error" || inner == "overloaded_error" {
                    again.append(key)
                } else {
                    outcomes.append(BatchRequestOutcome(key: key, state: .errored, result: Array(result.readableBytesView)))
                }
            default:
                // canceled or expired upstream: run directly (a canceling local batch cancels it).
                again.append(key)
            }
        }
        again += polled.keys.filter { !seen.contains($0.customID) }
        let nowMs = runtime.wallClock()
        if !outcomes.isEmpty {
            let completion = try await store.complete(outcomes, owner: owner, nowMs: nowMs)
            runtime.metrics.batchResults(outcomes.filter { completion.written.contains($0.key) }.map(\.state))
            for batch in completion.endedBatches { await runtime.observability.batchEnded(batch) }
        }
        if !again.isEmpty {
            try await store.setUpstreamBatch(again, upstreamBatchID: BatchLeaseKind.directMarker, owner: owner)
            for batch in try await store.release(again.map { BatchRetry(key: $0, nextAttemptAtMs: nowMs) }, owner: owner, nowMs: nowMs) {
                await runtime.observability.batchEnded(batch)
            }
            runtime.batches.doorbell.ring()
        }
        polling.withLock { _ = $0.removeValue(forKey: id) }
    }

    private func renewLeases() async throws(BatchStoreError) {
        let keys = polling.withLock { $0.values.flatMap(\.keys) }
        guard !keys.isEmpty else { return }
        try await store.renew(keys, owner: owner, leaseUntilMs: runtime.wallClock() + BatchSettings.leaseDuration.milliseconds)
    }

    // MARK: HTTP

    private func call(
        _ endpoint: ProviderEndpoint, method: HTTPMethod, path: String, body: ByteBuffer?
    ) async throws -> (status: Int, body: ByteBuffer) {
        var headers = HTTPHeaders()
        headers.add(name: "anthropic-version", value: "2023-06-01")
        headers.add(name: "content-type", value: "application/json")
        // The key usually goes as the client's preset line; only one no line can carry is added here.
        if case .providerKey(let key) = (endpoint.provider as? AnthropicProvider)?.credential { headers.add(name: "x-api-key", value: key) }
        var request = UpstreamRequest(
            pathAndQuery: path, headers: headers, body: body ?? ByteBuffer(), isStreaming: false, budget: .now() + .seconds(60)
        )
        request.method = method
        let response = try await endpoint.client.send(request)
        let collected = try await response.body.collect(upTo: 512 << 20)
        return (response.status, collected)
    }

    /// A top-level member's raw value.
    static func member(_ key: StaticString, in buffer: ByteBuffer) -> ByteBuffer? {
        buffer.withUnsafeReadableBytes { bytes in
            guard let skim = try? JSONSkimmer.skim(bytes), let member = JSONSkimmer.member(key, in: skim, bytes: bytes) else { return nil }
            return ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[member.value]))
        }
    }
}
