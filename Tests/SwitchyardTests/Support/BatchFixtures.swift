import Foundation
import Testing

@testable import SwitchyardCore

/// Configurations and helpers for Message Batches tests.
enum BatchFixtures {
    /// Route `default` = [sonnet (sim a), haiku (sim b)]; route `solo` = [sonnet]; a batch store.
    static func config(
        store: String = "sqlite:\(PlatformFixtures.temporaryPath("batches.db"))",
        batches: String = "concurrency: 4, probe_grace: 2s, max_backoff: 200ms, expires_after: 1h",
        breaker: String = "failure_threshold: 3, open_for: 30s, max_open_for: 5m, half_open_probes: 1",
        retry: String = "max_attempts: 4, per_model: 2, backoff: { initial: 10ms, multiplier: 2, max: 100ms }",
        clients: String = "",
        mode: String = "direct"
    ) -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0 }
        \(clients)
        providers:
          a: { type: anthropic, base_url: "{{a}}", api_key_env: SIM_KEY, timeouts: { connect: 1s, first_byte: 2s, idle: 2s } }
          b: { type: anthropic, base_url: "{{b}}", api_key_env: SIM_KEY, timeouts: { connect: 1s, first_byte: 2s, idle: 2s } }
        models:
          sonnet: { provider: a, model: claude-sonnet-4-20250514 }
          haiku: { provider: b, model: claude-3-5-haiku-20241022 }
        defaults:
          breaker: { \(breaker) }
          retry: { \(retry) }
        routes:
          default: { models: [sonnet, haiku], aliases: [claude-sonnet-4-0] }
          solo: { models: [sonnet] }
        batches: { store: "\(store)", mode: \(mode), \(batches) }
        """
    }

    /// A create body of `count` requests `r0`, `r1`, … on `model`, each with a marker text.
    static func createBody(count: Int, model: String = "default", prefix: String = "r") -> String {
        let requests = (0..<count).map { index in
            #"{"custom_id":"\#(prefix)\#(index)","params":{"model":"\#(model)","max_tokens":32,"messages":[{"role":"user","content":"batch item \#(index)"}]}}"#
        }
        return #"{"requests":[\#(requests.joined(separator: ","))]}"#
    }
}

extension RouterHarness {
    /// Creates a batch; returns its id (and fails the test with the answer otherwise).
    func createBatch(_ body: String, headers: [(String, String)] = []) async throws -> String {
        let reply = try await send(.POST, "/v1/messages/batches", body: body, headers: headers)
        #expect(reply.status == 200, "create answered \(reply.status): \(reply.body)")
        return try #require(reply.json["id"] as? String)
    }

    func batch(_ id: String, headers: [(String, String)] = []) async throws -> [String: Any] {
        try await send(.GET, "/v1/messages/batches/\(id)", headers: headers).json
    }

    /// Polls until the batch has ended (real time), then returns it.
    func waitUntilEnded(
        _ id: String, headers: [(String, String)] = [], timeout: Duration = .seconds(30), whileWaiting: () async throws -> Void = {}
    ) async throws -> [String: Any] {
        let start = ContinuousClock.now
        while true {
            let batch = try await self.batch(id, headers: headers)
            if batch["processing_status"] as? String == "ended" { return batch }
            if ContinuousClock.now - start > timeout {
                Issue.record("batch \(id) did not end within \(timeout): \(batch)")
                return batch
            }
            try await whileWaiting()
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The results file, one decoded line per request.
    func batchResults(_ id: String) async throws -> [[String: Any]] {
        let reply = try await send(.GET, "/v1/messages/batches/\(id)/results")
        #expect(reply.status == 200, "results answered \(reply.status): \(reply.body)")
        return reply.body.split(separator: "\n").map { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
        }
    }
}
