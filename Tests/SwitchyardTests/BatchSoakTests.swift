import Foundation
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// One large batch through the built router, with random upstream faults on the first model of its
/// route: every request ends with exactly one result, memory stays flat, and the store's size is
/// reported. CI runs 10,000 requests; `BATCH_SOAK_REQUESTS` and `BATCH_SOAK_CONCURRENCY` change it.
@Suite("Batch soak", .serialized)
struct BatchSoakTests {
    static func rssKB(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    @Test func aTenThousandRequestBatchWithRandomFaultsEndsWithOneResultEach() async throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["BATCH_SOAK_REQUESTS"].flatMap(Int.init) ?? 10_000
        let concurrency = environment["BATCH_SOAK_CONCURRENCY"].flatMap(Int.init) ?? 8
        let faulty = UpstreamSimulator(name: "a", script: try FaultScript.parse(SoakTests.chaosScript(seed: 11, steps: count * 2)), keep: 10)
        let healthy = UpstreamSimulator(name: "b", script: try FaultScript.parse("ok*"), keep: 10)
        let ports = [try await faulty.start(), try await healthy.start()]
        defer {
            Task {
                await faulty.stop()
                await healthy.stop()
            }
        }
        let storePath = PlatformFixtures.temporaryPath("soak.db")
        let config = """
            version: 1
            server: { listen: 127.0.0.1:0, drain_timeout: 2s }
            providers:
              a: { type: anthropic, base_url: "http://127.0.0.1:\(ports[0])", api_key_env: SIM_KEY, max_connections: 128 }
              b: { type: anthropic, base_url: "http://127.0.0.1:\(ports[1])", api_key_env: SIM_KEY, max_connections: 128 }
            models:
              sonnet: { provider: a, model: claude-sonnet-4-20250514 }
              haiku: { provider: b, model: claude-3-5-haiku-20241022 }
            defaults:
              breaker: { failure_threshold: 50, open_for: 1s, max_open_for: 2s }
              retry: { max_attempts: 3, per_model: 1 }
            routes:
              default: { models: [sonnet, haiku] }
            batches: { store: "sqlite:\(storePath)", concurrency: \(concurrency), max_backoff: 200ms }
            """
        let router = try ProcessTests.RouterProcess(config: config, environment: BatchDurabilityTests.environment)
        defer { if router.process.isRunning { router.process.terminate() } }
        let port = try await router.port()
        let startRSS = Self.rssKB(router.process.processIdentifier)
        let started = ContinuousClock.now
        let id = try await BatchDurabilityTests.create(port: port, body: BatchFixtures.createBody(count: count))
        var samples: [Int] = []
        var ended: [String: Any] = [:]
        while true {
            ended = BatchDurabilityTests.json(try await BatchDurabilityTests.send(.GET, port: port, path: "/v1/messages/batches/\(id)").body)
            samples.append(Self.rssKB(router.process.processIdentifier))
            if ended["processing_status"] as? String == "ended" { break }
            if ContinuousClock.now - started > .seconds(600) { throw HarnessError("the soak batch did not end: \(ended)") }
            try await Task.sleep(for: .milliseconds(250))
        }
        let elapsed = ContinuousClock.now - started
        let counts = try #require(ended["request_counts"] as? [String: Any])
        #expect(counts["succeeded"] as? Int == count, "every request succeeded in the end: \(counts)")
        let results = try await BatchDurabilityTests.results(port: port, id: id)
        #expect(results.count == count)
        let middle = samples[samples.count / 2]
        let peak = samples.max() ?? 0
        let end = samples.last ?? 0
        let storeBytes = (try? FileManager.default.attributesOfItem(atPath: storePath)[.size] as? Int) ?? 0
        let walBytes = (try? FileManager.default.attributesOfItem(atPath: storePath + "-wal")[.size] as? Int) ?? 0
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(
            "batch soak: \(count) requests, concurrency \(concurrency), \(String(format: "%.1f", seconds)) s "
                + "(\(String(format: "%.0f", Double(count) / seconds)) requests/s, debug build), "
                + "RSS start \(startRSS / 1024) MB, middle \(middle / 1024) MB, end \(end / 1024) MB, peak \(peak / 1024) MB; "
                + "store \(storeBytes / 1024) KiB + WAL \(walBytes / 1024) KiB = \((storeBytes + walBytes) * 1000 / count / 1024) KiB per 1,000 requests"
        )
        // Flat: the second half of the run grows by less than a third of what the first half did
        // (results go to the store, not to memory).
        #expect(end - middle < max(8 * 1024, (middle - startRSS) / 3 + 4 * 1024), "RSS start \(startRSS) middle \(middle) end \(end) kB")
        router.process.terminate()
        _ = try await router.waitForExit(within: .seconds(10))
    }
}
