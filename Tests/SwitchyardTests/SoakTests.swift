import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// The chaos soak: the built router as a child process, three upstream-sims with randomised
/// faults (the third always healthy), many concurrent callers, and a SIGHUP reload every
/// `SOAK_RELOAD_MS`. Short by default (CI); the long run:
///   SOAK_REQUESTS=20000 SOAK_CONCURRENCY=200 swift test --filter SoakTests
@Suite("Chaos soak", .serialized)
struct SoakTests {
    static func setting(_ name: String, _ fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? fallback
    }

    /// A seeded random fault script: mostly ok, with every kind of failure mixed in.
    static func chaosScript(seed: UInt64, steps: Int) -> String {
        var random = SeededRandom(state: seed)
        let menu: [(weight: Int, step: String)] = [
            (62, "ok"), (8, "500"), (6, "529"), (4, "429(retry-after=1)"), (3, "503"), (3, "reset"), (4, "slow(30ms)"),
            (3, "sse-error(2)"), (3, "sse-error(4)"), (2, "cut(5)"), (2, "ok(events=6,interval=5ms)"),
        ]
        let total = menu.reduce(0) { $0 + $1.weight }
        return (0..<steps).map { _ in
            var pick = Int(random.next() % UInt64(total))
            for entry in menu {
                if pick < entry.weight { return entry.step }
                pick -= entry.weight
            }
            return "ok"
        }.joined(separator: ",")
    }

    static func config(ports: [Int], alias: String) -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0, drain_timeout: 20s, request_timeout: 60s }
        providers:
          a: { type: anthropic, base_url: "http://127.0.0.1:\(ports[0])", api_key_env: SIM_KEY, max_connections: 64 }
          b: { type: anthropic, base_url: "http://127.0.0.1:\(ports[1])", api_key_env: SIM_KEY, max_connections: 64 }
          c: { type: anthropic, base_url: "http://127.0.0.1:\(ports[2])", api_key_env: SIM_KEY, max_connections: 64 }
        models:
          alpha: { provider: a, model: claude-sonnet-4-20250514 }
          beta: { provider: b, model: claude-sonnet-4-20250514 }
          gamma: { provider: c, model: claude-3-5-haiku-20241022 }
        defaults:
          breaker: { failure_threshold: 3, open_for: 1s, max_open_for: 4s }
          retry: { max_attempts: 3, per_model: 1, backoff: { initial: 10ms, max: 100ms } }
        routes:
          default:
            models: [alpha, beta, gamma]
            aliases: [\(alias)]
        """
    }

    struct Sample: CustomStringConvertible {
        var rssKB: Int
        var fds: Int
        var description: String { "RSS \(rssKB / 1024) MB, \(fds) fds" }
    }

    static func sample(pid: Int32) -> Sample {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") } ?? 0
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
        return Sample(rssKB: rss, fds: fds)
    }

    @Test func chaosSoakLosesNothing() async throws {
        let requests = Self.setting("SOAK_REQUESTS", 3000)
        let concurrency = Self.setting("SOAK_CONCURRENCY", 100)
        let reloadEvery = Self.setting("SOAK_RELOAD_MS", 1500)
        let steps = requests * 3 + 100
        let sims = [
            UpstreamSimulator(name: "a", script: try FaultScript.parse(Self.chaosScript(seed: 1, steps: steps)), keep: 10),
            UpstreamSimulator(name: "b", script: try FaultScript.parse(Self.chaosScript(seed: 2, steps: steps)), keep: 10),
            UpstreamSimulator(name: "c", script: try FaultScript.parse("ok*"), keep: 10),
        ]
        var ports: [Int] = []
        for sim in sims { ports.append(try await sim.start()) }

        let auditPath = TestScratch.path("soak.jsonl")
        let router = try ProcessTests.RouterProcess(
            config: Self.config(ports: ports, alias: "soak-0") + "\nlogging: { audit: \(auditPath), level: error }\n",
            environment: ["SIM_KEY": "sk-ant-soak-0000000000000000"]
        )
        defer { if router.process.isRunning { router.process.terminate() } }
        // With a file audit log, the started line is not on stdout: find the port in the file.
        let port = try await Self.port(fromAudit: auditPath, router: router)
        let pid = router.process.processIdentifier
        let start = Self.sample(pid: pid)

        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: .seconds(60)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = concurrency
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)

        // SIGHUP every few seconds, alternating the file so each reload is a real change.
        let ledger = SoakLedger()
        let configPath = router.process.arguments![2]
        let reloader = Task {
            var generation = 0
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(reloadEvery))
                generation += 1
                try Self.config(ports: ports, alias: "soak-\(generation)").appending("\nlogging: { audit: \(auditPath), level: error }\n")
                    .write(toFile: configPath, atomically: true, encoding: .utf8)
                kill(pid, SIGHUP)
                ledger.reloads.add(1, ordering: .relaxed)
            }
        }

        let began = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    while true {
                        let index = ledger.next.add(1, ordering: .relaxed).oldValue
                        guard index < requests else { return }
                        if index == requests / 2 { ledger.middle.withLock { $0 = Self.sample(pid: pid) } }
                        let id = "soak-\(index)"
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/messages")
                        request.method = .POST
                        request.headers.add(name: "content-type", value: "application/json")
                        request.headers.add(name: "x-request-id", value: id)
                        request.body = .bytes(ByteBuffer(string: RouterHarness.messages(model: "default", stream: index % 3 == 0)))
                        do {
                            let response = try await client.execute(request, timeout: .seconds(60))
                            _ = try await response.body.collect(upTo: 8 << 20)
                            ledger.statuses.withLock { $0[id] = Int(response.status.code) }
                        } catch {
                            ledger.lost.withLock { $0.append("\(id): \(error)") }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - began
        reloader.cancel()
        // Callers hang up; what remains open is the router's own: listeners, pooled upstream
        // connections (at most max_connections per provider and pool), event loops.
        try await client.shutdown()
        try await Task.sleep(for: .milliseconds(500))
        let end = Self.sample(pid: pid)

        router.process.terminate()
        let exit = try await router.waitForExit(within: .seconds(30))
        #expect(exit == 0)

        // Every request got exactly one response.
        let answered = ledger.statuses.withLock { $0 }
        let lostRequests = ledger.lost.withLock { $0 }
        #expect(lostRequests.isEmpty, "\(lostRequests.count) lost: \(lostRequests.prefix(5))")
        #expect(answered.count == requests)
        // No 5xx: the third model never fails and every request may reach it.
        let serverErrors = answered.filter { $0.value >= 500 }
        #expect(serverErrors.isEmpty, "\(serverErrors.count) 5xx answers although gamma was healthy: \(serverErrors.prefix(5))")

        // The audit log: valid JSON, exactly one request line per request.
        let text = try String(contentsOfFile: auditPath, encoding: .utf8)
        var seen: [String: Int] = [:]
        var invalid = 0
        var breakerLines: [[String: Any]] = []
        var reloaded = 0
        var reloadFailed = 0
        var outcomesSeen: [String: Int] = [:]
        var attemptResults: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            guard let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                invalid += 1
                continue
            }
            switch json["event"] as? String {
            case "request":
                seen[json["request_id"] as? String ?? "?", default: 0] += 1
                outcomesSeen[json["outcome"] as? String ?? "?", default: 0] += 1
                for attempt in json["attempts"] as? [[String: Any]] ?? [] {
                    let result = (attempt["error"] as? String).map { "\(attempt["status"].map { "\($0) " } ?? "")\($0)" }
                        ?? (attempt["status"] as? Int).map(String.init) ?? "?"
                    attemptResults[result, default: 0] += 1
                }
            case "breaker": breakerLines.append(json)
            case "config.reloaded": reloaded += 1
            case "config.reload_failed": reloadFailed += 1
            default: break
            }
        }
        #expect(invalid == 0)
        let missing = answered.keys.filter { seen[$0] == nil }
        let extra = seen.filter { $0.value != 1 || answered[$0.key] == nil }
        #expect(missing.isEmpty, "\(missing.count) requests without an audit line")
        #expect(extra.isEmpty, "\(extra.count) duplicate or unknown audit lines")
        #expect(reloadFailed == 0)
        #expect(reloaded >= 1, "at least one SIGHUP reload happened during the soak")

        // Breaker transitions: only the faulty models, chains that follow on, reasons from the faults.
        var last: [String: String] = [:]
        var chainBroken = 0
        for line in breakerLines {
            let model = line["model"] as? String ?? "?"
            #expect(model != "gamma", "gamma never failed, yet its breaker moved: \(line)")
            if let previous = last[model], previous != line["from"] as? String { chainBroken += 1 }
            last[model] = line["to"] as? String
            if line["to"] as? String == "open", let reason = line["reason"] as? String {
                let known = ["500", "503", "529", "reset", "stream_error", "overloaded_error", "api_error", "invalid_response", "malformed", "probe failed", "consecutive"]
                #expect(known.contains { reason.contains($0) }, "unexpected breaker reason: \(reason)")
            }
        }
        #expect(chainBroken == 0, "breaker transitions of a model must follow on from each other")

        // Resources: no growth beyond a stated bound between the middle and the end of the run.
        let mid = ledger.middle.withLock { $0 } ?? end
        #expect(end.rssKB - mid.rssKB < 64 * 1024, "RSS grew from \(mid) to \(end)")
        // Each provider has two pools (JSON and streaming calls differ in read timeout).
        #expect(end.fds <= start.fds + 2 * 3 * 64 + 16, "fds grew from \(start.fds) to \(end.fds) (bound: pooled upstream connections)")

        let outcomes = answered.values.reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }
        print("""
            soak: \(requests) requests, \(concurrency) concurrent, \(String(format: "%.1f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)) s, \(ledger.reloads.load(ordering: .relaxed)) SIGHUPs (\(reloaded) reloads logged)
            soak: answers by status \(outcomes.sorted { $0.key < $1.key }), lost \(lostRequests.count), audit request lines \(seen.count) (missing \(missing.count), extra \(extra.count)), breaker transitions \(breakerLines.count)
            soak: outcomes \(outcomesSeen.sorted { $0.key < $1.key }); upstream attempts by result (faults injected and served) \(attemptResults.sorted { $0.key < $1.key })
            soak: start \(start), middle \(mid), end \(end)
            """)
        for sim in sims { await sim.stop() }
    }

    static func port(fromAudit path: String, router: ProcessTests.RouterProcess) async throws -> Int {
        for _ in 0..<1000 {
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.contains("server.started") }),
                let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let listen = json["listen"] as? String, let port = listen.split(separator: ":").last.flatMap({ Int($0) })
            {
                return port
            }
            guard router.process.isRunning else { throw HarnessError("switchyard exited: \(router.stderr)") }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw HarnessError("no server.started line in \(path)")
    }
}

/// What the soak's callers saw, shared by the concurrent callers.
final class SoakLedger: Sendable {
    let reloads = Atomic<Int>(0)
    let next = Atomic<Int>(0)
    let statuses = Mutex<[String: Int]>([:])
    let lost = Mutex<[String]>([])
    let middle = Mutex<SoakTests.Sample?>(nil)
}
