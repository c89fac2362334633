import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// A router and its upstream simulators, in this process, on ephemeral loopback ports.
/// Everything goes through real HTTP: the test talks to the router with AsyncHTTPClient,
/// the router talks to the simulators over TCP.
final class RouterHarness: Sendable {
    let sims: [String: UpstreamSimulator]
    let runtime: RouterRuntime
    let audit: AuditLog
    let port: Int
    let clock: ManualClock?
    private let serverTask: Task<Void, any Error>
    /// The batch service, when the configuration has `batches:`.
    private let batchTask: Task<Void, any Error>?

    static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(timeout: .init(connect: .seconds(5), read: .seconds(30))))
    /// For tests with many concurrent callers: as many connections to the router as callers.
    static let wideClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: .seconds(30)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// - Parameters:
    ///   - sims: simulator name → fault script; each gets a port, available to `yaml` as `{{NAME}}`.
    ///   - yaml: the configuration, with `{{NAME}}` replaced by `http://127.0.0.1:PORT` of that sim.
    ///   - manualClock: breaker and backoff time only moves when the test says so (backoff
    ///     sleeps advance it at once).
    ///   - platforms: simulator name → the platform it speaks (default Anthropic) and its options.
    ///   - files: path → content, written once the simulators have ports (`{{NAME}}` filled in), for
    ///     credential files that name a simulator's token endpoint.
    ///   - wallClock: Unix milliseconds for credential expiry and signing (default: real time).
    static func start(
        sims scripts: [String: String],
        platforms: [String: (SimPlatform, SimPlatformOptions)] = [:],
        yaml: String,
        environment: [String: String] = ["SIM_KEY": "sk-ant-sim-test-key-0123456789"],
        files: [String: String] = [:],
        manualClock: Bool = true,
        wallClock: (@Sendable () -> Int64)? = nil
    ) async throws -> RouterHarness {
        var sims: [String: UpstreamSimulator] = [:]
        var text = yaml
        var environment = environment
        var files = files
        for (name, script) in scripts {
            let (platform, options) = platforms[name] ?? (.anthropic, SimPlatformOptions())
            let sim = UpstreamSimulator(name: name, script: try FaultScript.parse(script), platform: platform, options: options)
            let port = try await sim.start()
            sims[name] = sim
            let url = "http://127.0.0.1:\(port)"
            text = text.replacingOccurrences(of: "{{\(name)}}", with: url)
            environment = environment.mapValues { $0.replacingOccurrences(of: "{{\(name)}}", with: url) }
            files = files.mapValues { $0.replacingOccurrences(of: "{{\(name)}}", with: url) }
        }
        for (path, content) in files {
            try content.write(toFile: path, atomically: true, encoding: .utf8)
        }
        // On disk too, so that reload tests can rewrite it.
        let configPath = TestScratch.path("switchyard.yaml")
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        let loaded = try ConfigLoader(environment: environment, mode: .serve).load(path: configPath)
        let audit = try AuditLog(destination: .memory)
        var logger = Logger(label: "switchyard-test")
        logger.logLevel = ProcessInfo.processInfo.environment["SWITCHYARD_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        let clock: ManualClock? = manualClock ? ManualClock() : nil
        let seeded = Mutex(SeededRandom(state: 2026))
        let environmentCopy = environment
        let runtime = RouterRuntime(
            config: loaded.config, audit: audit, logger: logger, configPath: configPath, environment: { environmentCopy },
            clock: clock ?? SystemClock() as any RouterClock, random: { seeded.withLock { $0.next() } },
            wallClock: wallClock ?? { WallClock.nowMilliseconds() }
        )
        let bound = PortBox()
        let server = SwitchyardServer(runtime: runtime, listen: HostPort(host: loaded.config.server.listen.host, port: 0)) { port in
            bound.set(port)
        }
        let task = Task { try await server.run() }
        let port = try await bound.wait()
        let batchTask = loaded.config.batches == nil ? nil : Task { try await BatchService(runtime: runtime).run() }
        if batchTask != nil {
            // Callers may create batches as soon as the store is open.
            for _ in 0..<2000 where runtime.batches.store.withLock({ $0 == nil }) { try await Task.sleep(for: .milliseconds(5)) }
        }
        return RouterHarness(sims: sims, runtime: runtime, audit: audit, port: port, clock: clock, serverTask: task, batchTask: batchTask)
    }

    private init(
        sims: [String: UpstreamSimulator], runtime: RouterRuntime, audit: AuditLog, port: Int, clock: ManualClock?, serverTask: Task<Void, any Error>,
        batchTask: Task<Void, any Error>?
    ) {
        self.batchTask = batchTask
        self.sims = sims
        self.runtime = runtime
        self.audit = audit
        self.port = port
        self.clock = clock
        self.serverTask = serverTask
    }

    func sim(_ name: String) -> UpstreamSimulator { sims[name]! }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    func stop() async {
        batchTask?.cancel()
        _ = try? await batchTask?.value
        serverTask.cancel()
        _ = try? await serverTask.value
        await runtime.shutdown()
        for sim in sims.values { await sim.stop() }
        await audit.close()
    }

    // MARK: Requests

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: String

        func header(_ name: String) -> String? { headers.first(name: name) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var errorType: String? { (json["error"] as? [String: Any])?["type"] as? String }
        var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
    }

    func send(
        _ method: HTTPMethod = .POST, _ path: String = "/v1/messages", body: String? = nil, headers: [(String, String)] = [],
        client: HTTPClient = RouterHarness.client
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            request.headers.add(name: "content-type", value: "application/json")
        }
        request.headers.add(name: "anthropic-version", value: "2023-06-01")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: collected))
    }

    /// Rewrites the configuration file (with `{{NAME}}` placeholders filled in).
    func rewriteConfig(_ yaml: String) throws {
        var text = yaml
        for (name, sim) in sims {
            text = text.replacingOccurrences(of: "{{\(name)}}", with: "http://127.0.0.1:\(sim.port ?? 0)")
        }
        try text.write(toFile: runtime.configPath!, atomically: true, encoding: .utf8)
    }

    /// The current /metrics text.
    func metricsText() async throws -> String {
        try await send(.GET, "/metrics").body
    }

    /// A Messages request body for `model`.
    static func messages(model: String = "default", stream: Bool = false, text: String = "hello") -> String {
        #"{"model":"\#(model)","max_tokens":64,"stream":\#(stream),"messages":[{"role":"user","content":"\#(text)"}]}"#
    }

    func message(model: String = "default", stream: Bool = false, headers: [(String, String)] = []) async throws -> Reply {
        try await send(body: Self.messages(model: model, stream: stream), headers: headers)
    }

    // MARK: Audit

    /// Waits until the audit log holds `count` request lines (they are written after the last
    /// byte, so slightly after the caller has its response), then returns every line.
    func auditLines(requests count: Int, timeout: Duration = .seconds(10)) async throws -> [[String: Any]] {
        let start = ContinuousClock.now
        while true {
            await audit.flush()
            let lines = Self.parse(audit.memoryContents)
            if lines.filter({ $0["event"] as? String == "request" }).count >= count { return lines }
            if ContinuousClock.now - start > timeout {
                Issue.record("audit log has \(lines.count) lines, waited for \(count) request lines")
                return lines
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func requestLines(_ count: Int) async throws -> [[String: Any]] {
        try await auditLines(requests: count).filter { $0["event"] as? String == "request" }
    }

    static func parse(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").map { line in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8))
            if object == nil { Issue.record("audit line is not JSON: \(line)") }
            return object as? [String: Any] ?? [:]
        }
    }
}

/// Hands the bound port from the server's `onRunning` to the test.
final class PortBox: Sendable {
    private let port = Mutex<Int?>(nil)

    func set(_ value: Int) { port.withLock { $0 = value } }

    func wait() async throws -> Int {
        for _ in 0..<2000 {
            if let value = port.withLock({ $0 }) { return value }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw HarnessError("router did not start within 10 s")
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The usual two-model configuration: route `default` = [sonnet on sim `a`, haiku on sim `b`].
enum TestConfigs {
    static func twoModels(
        breaker: String = "failure_threshold: 3, open_for: 30s, max_open_for: 5m, half_open_probes: 1",
        retry: String = "max_attempts: 4, per_model: 2, backoff: { initial: 100ms, multiplier: 2, max: 2s }",
        server: String = "max_body: 1MiB",
        listen: String = "127.0.0.1:0",
        whenAllUnavailable: String = "probe",
        extra: String = "",
        timeouts: String = "{ connect: 1s, first_byte: 2s, idle: 2s }"
    ) -> String {
        """
        version: 1
        server: { listen: \(listen), \(server) }
        providers:
          a: { type: anthropic, base_url: "{{a}}", api_key_env: SIM_KEY, timeouts: \(timeouts) }
          b: { type: anthropic, base_url: "{{b}}", api_key_env: SIM_KEY, timeouts: \(timeouts) }
        models:
          sonnet: { provider: a, model: claude-sonnet-4-20250514 }
          haiku: { provider: b, model: claude-3-5-haiku-20241022 }
        defaults:
          breaker: { \(breaker) }
          retry: { \(retry) }
        routes:
          default:
            models: [sonnet, haiku]
            aliases: [claude-sonnet-4-20250514, claude-sonnet-4-0]
            when_all_unavailable: \(whenAllUnavailable)
          fast:
            models: [haiku]
        \(extra)
        """
    }
}

extension RouterHarness {
    /// Starts a harness, runs `body`, and stops everything whether or not `body` threw.
    static func with(
        sims: [String: String],
        platforms: [String: (SimPlatform, SimPlatformOptions)] = [:],
        yaml: String,
        environment: [String: String] = ["SIM_KEY": "sk-ant-sim-test-key-0123456789"],
        files: [String: String] = [:],
        manualClock: Bool = true,
        wallClock: (@Sendable () -> Int64)? = nil,
        _ body: (RouterHarness) async throws -> Void
    ) async throws {
        let harness = try await start(
            sims: sims, platforms: platforms, yaml: yaml, environment: environment, files: files, manualClock: manualClock, wallClock: wallClock
        )
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}
