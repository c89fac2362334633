import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// Batches across process deaths and replicas, with the built binary as child processes:
/// `kill -9` mid-batch and a restart on the same SQLite file; two replicas sharing one batch on
/// one PostgreSQL database. Every request ends with exactly one result.
@Suite("Batch durability", .serialized)
struct BatchDurabilityTests {
    static func config(simPort: Int, store: String, concurrency: Int = 8, extra: String = "") -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0, drain_timeout: 2s }
        providers:
          a: { type: anthropic, base_url: "http://127.0.0.1:\(simPort)", api_key_env: SIM_KEY }
        models:
          sonnet: { provider: a, model: claude-sonnet-4-20250514 }
        routes:
          default: { models: [sonnet] }
        batches: { store: "\(store)", concurrency: \(concurrency), max_backoff: 200ms \(extra) }
        """
    }

    static let environment = ["SIM_KEY": "sk-ant-sim-test-key-0123456789", "HOME": "/nonexistent"]

    static func send(_ method: HTTPMethod, port: Int, path: String, body: String? = nil) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            request.headers.add(name: "content-type", value: "application/json")
        }
        let response = try await RouterHarness.client.execute(request, timeout: .seconds(60))
        let collected = try await response.body.collect(upTo: 256 << 20)
        return (Int(response.status.code), String(buffer: collected))
    }

    /// Creates a batch, waiting while the router is still opening its store (503).
    static func create(port: Int, body: String) async throws -> String {
        for _ in 0..<200 {
            let reply = try await send(.POST, port: port, path: "/v1/messages/batches", body: body)
            if reply.status == 503 {
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            guard reply.status == 200, let id = json(reply.body)["id"] as? String else { throw HarnessError("create answered \(reply.status): \(reply.body)") }
            return id
        }
        throw HarnessError("the batch store did not open")
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    static func waitUntilEnded(port: Int, id: String, timeout: Duration = .seconds(120)) async throws -> [String: Any] {
        let start = ContinuousClock.now
        while true {
            let batch = json(try await send(.GET, port: port, path: "/v1/messages/batches/\(id)").body)
            if batch["processing_status"] as? String == "ended" { return batch }
            if ContinuousClock.now - start > timeout { throw HarnessError("batch \(id) did not end: \(batch)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Result lines by custom_id; fails the test on any custom_id that appears twice.
    static func results(port: Int, id: String) async throws -> [String: String] {
        let text = try await send(.GET, port: port, path: "/v1/messages/batches/\(id)/results").body
        var byID: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let object = json(String(line))
            let customID = object["custom_id"] as? String ?? "?"
            #expect(byID[customID] == nil, "custom_id \(customID) has two results")
            byID[customID] = (object["result"] as? [String: Any])?["type"] as? String
        }
        return byID
    }

    @Test func killMinus9MidBatchThenARestartOnTheSameFileEndsWithExactlyOneResultEach() async throws {
        let sim = UpstreamSimulator(name: "a", script: try FaultScript.parse("slow(40ms)*"), keep: 100_000)
        let simPort = try await sim.start()
        defer { Task { await sim.stop() } }
        let store = "sqlite:\(PlatformFixtures.temporaryPath("kill9.db"))"
        let config = Self.config(simPort: simPort, store: store)
        let count = 300
        let first = try ProcessTests.RouterProcess(config: config, environment: Self.environment)
        defer { if first.process.isRunning { first.process.terminate() } }
        let port = try await first.port()
        let id = try await Self.create(port: port, body: BatchFixtures.createBody(count: count))
        // Let it get going, then kill it without warning.
        while sim.requestCount < 60 { try await Task.sleep(for: .milliseconds(20)) }
        kill(first.process.processIdentifier, SIGKILL)
        _ = try await first.waitForExit(within: .seconds(10))
        let beforeRestart = sim.requestCount

        let second = try ProcessTests.RouterProcess(config: config, environment: Self.environment)
        defer { if second.process.isRunning { second.process.terminate() } }
        let secondPort = try await second.port()
        let ended = try await Self.waitUntilEnded(port: secondPort, id: id)
        #expect((ended["request_counts"] as? [String: Any])?["succeeded"] as? Int == count)
        let results = try await Self.results(port: secondPort, id: id)
        #expect(results.count == count, "every custom_id has a result")
        #expect(Set(results.keys) == Set((0..<count).map { "r\($0)" }))
        #expect(results.values.allSatisfy { $0 == "succeeded" })
        // At-least-once upstream: what was in flight at the kill ran again.
        print("kill -9: \(beforeRestart) upstream calls before the kill, \(sim.requestCount) in all for \(count) requests; \(results.count) results, none twice")
        #expect(sim.requestCount >= count)
        second.process.terminate()
        _ = try await second.waitForExit(within: .seconds(10))
    }

    @Test func twoReplicasOnOnePostgreSQLShareABatchAndAnswerEachRequestOnce() async throws {
        guard let url = PostgresTestCluster.urlWithOwnSchema("two replicas on PostgreSQL") else { return }
        let sim = UpstreamSimulator(name: "a", script: try FaultScript.parse("slow(20ms)*"), keep: 100_000)
        let simPort = try await sim.start()
        defer { Task { await sim.stop() } }
        let config = Self.config(simPort: simPort, store: url, concurrency: 4)
        let replicas = [
            try ProcessTests.RouterProcess(config: config, environment: Self.environment),
            try ProcessTests.RouterProcess(config: config, environment: Self.environment),
        ]
        defer { for replica in replicas where replica.process.isRunning { replica.process.terminate() } }
        let ports = [try await replicas[0].port(), try await replicas[1].port()]
        let count = 200
        let id = try await Self.create(port: ports[0], body: BatchFixtures.createBody(count: count))
        // Either replica answers for it.
        #expect(Self.json(try await Self.send(.GET, port: ports[1], path: "/v1/messages/batches/\(id)").body)["id"] as? String == id)
        let ended = try await Self.waitUntilEnded(port: ports[1], id: id)
        #expect((ended["request_counts"] as? [String: Any])?["succeeded"] as? Int == count)
        let results = try await Self.results(port: ports[0], id: id)
        #expect(results.count == count)
        let executed = replicas.map { replica in
            replica.auditLines.filter { $0["event"] as? String == "request" && $0["batch_id"] as? String == id }.compactMap { $0["custom_id"] as? String }
        }
        print("two replicas: \(executed[0].count) and \(executed[1].count) requests executed")
        #expect(executed[0].count > 0 && executed[1].count > 0, "both replicas took part")
        #expect(executed[0].count + executed[1].count == count, "each request executed once")
        #expect(Set(executed[0]).isDisjoint(with: Set(executed[1])))
        for replica in replicas { replica.process.terminate() }
        for replica in replicas { _ = try await replica.waitForExit(within: .seconds(10)) }
    }
}
