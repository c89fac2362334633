import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import SwitchyardCore
import Synchronization
import UnixSignals
import UpstreamSim

/// `switchyard demo`: two fake upstreams on loopback, the router in front, traffic, and a live
/// view of the downgrade when the primary fails and the recovery when it comes back.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Watch Switchyard fail over and recover, with fake upstreams on loopback (no network, no keys)."
    )

    @Option(name: .long, help: "How long to run, in seconds.")
    var seconds = 22

    @Option(name: .long, help: "Concurrent callers.")
    var callers = 4

    /// When the primary starts failing and when it recovers, in seconds from the start.
    static let outageStart = 5
    static let outageEnd = 11

    func run() async throws {
        LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        let primary = UpstreamSimulator(name: "sonnet", script: try FaultScript.parse("slow(30ms)*"))
        let secondary = UpstreamSimulator(name: "haiku", script: try FaultScript.parse("slow(50ms)*"))
        let primaryPort = try await primary.start()
        let secondaryPort = try await secondary.start()

        let auditPath = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-demo-audit.jsonl").path
        try? FileManager.default.removeItem(atPath: auditPath)
        let audit = try AuditLog(destination: .file(auditPath))
        let yaml = Self.embeddedConfig(primaryPort: primaryPort, secondaryPort: secondaryPort)
        let config = try ConfigLoader(environment: ["DEMO_KEY": "demo-key-not-a-secret"]).load(yaml: yaml, source: "embedded demo").config
        var logger = Logger(label: "switchyard-demo")
        logger.logLevel = .critical
        let runtime = RouterRuntime(config: config, audit: audit, logger: logger)
        let bound = DemoPort()
        let server = SwitchyardServer(runtime: runtime, listen: HostPort(host: "127.0.0.1", port: 0)) { port in
            bound.port.store(port, ordering: .relaxed)
        }
        let serverTask = Task { try await server.run() }
        var routerPort = 0
        for _ in 0..<500 {
            let port = bound.port.load(ordering: .relaxed)
            if port > 0 { routerPort = port; break }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard routerPort > 0 else { throw ValidationError("the router did not start") }

        print("""
            Switchyard demo: route 'default' = [sonnet, haiku], both fake Anthropic upstreams on loopback.
              router   http://127.0.0.1:\(routerPort)    (try: curl -s http://127.0.0.1:\(routerPort)/admin/state)
              sonnet   upstream-sim :\(primaryPort), healthy, 30 ms
              haiku    upstream-sim :\(secondaryPort), healthy, 50 ms
              breaker  opens after 3 consecutive failures, open 3 s (doubling up to 6 s), 1 probe
            Script: at \(Self.outageStart) s sonnet starts answering 500 api_error; at \(Self.outageEnd) s it recovers.
            \(callers) callers send requests (every third one streams). Ctrl-C stops early.

            """)
        let stats = DemoStats()
        let stop = DemoFlag()
        let port = routerPort
        let callerCount = callers
        let traffic = Task {
            await withTaskGroup(of: Void.self) { group in
                for caller in 0..<callerCount {
                    group.addTask {
                        var n = caller
                        while !stop.isSet {
                            n += 1
                            await Self.oneRequest(port: port, stream: n % 3 == 0, stats: stats)
                            try? await Task.sleep(for: .milliseconds(40))
                        }
                    }
                }
            }
        }
        let interrupted = DemoFlag()
        let signals = await UnixSignalsSequence(trapping: .sigint)
        let signalTask = Task {
            for await _ in signals {
                interrupted.set()
                return
            }
        }

        let view = DemoView(runtime: runtime, stats: stats, auditPath: auditPath)
        view.printHeader()
        let start = ContinuousClock.now
        var phase = 0
        for second in 1...max(1, seconds) {
            try? await Task.sleep(until: start + .seconds(second))
            if interrupted.isSet { break }
            if phase == 0, second >= Self.outageStart {
                primary.setScript(try FaultScript.parse("500*"))
                view.note("sonnet starts failing: every request gets 500 api_error")
                phase = 1
            } else if phase == 1, second >= Self.outageEnd {
                primary.setScript(try FaultScript.parse("slow(30ms)*"))
                view.note("sonnet is healthy again; its breaker lets a probe through when the open period ends")
                phase = 2
            }
            await view.printSecond(second)
        }
        stop.set()
        await traffic.value
        signalTask.cancel()
        await view.printSummary()
        serverTask.cancel()
        _ = try? await serverTask.value
        await runtime.shutdown()
        await audit.close()
        await primary.stop()
        await secondary.stop()
    }

    static func oneRequest(port: Int, stream: Bool, stats: DemoStats) async {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/messages")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "anthropic-version", value: "2023-06-01")
        request.body = .bytes(
            ByteBuffer(string: #"{"model":"claude-sonnet-4-0","max_tokens":64,"stream":\#(stream),"messages":[{"role":"user","content":"hi"}]}"#)
        )
        let started = ContinuousClock.now
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            let model = response.headers.first(name: "x-switchyard-model") ?? "none"
            let attempts = response.headers.first(name: "x-switchyard-attempts").flatMap { Int($0) } ?? 1
            stats.record(model: model, status: Int(response.status.code), attempts: attempts, latency: ContinuousClock.now - started)
        } catch {
            stats.record(model: "none", status: 0, attempts: 0, latency: ContinuousClock.now - started)
        }
    }

    static func embeddedConfig(primaryPort: Int, secondaryPort: Int) -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0, request_timeout: 30s }
        providers:
          sim-sonnet: { type: anthropic, base_url: "http://127.0.0.1:\(primaryPort)", api_key_env: DEMO_KEY }
          sim-haiku: { type: anthropic, base_url: "http://127.0.0.1:\(secondaryPort)", api_key_env: DEMO_KEY }
        models:
          sonnet: { provider: sim-sonnet, model: claude-sonnet-4-20250514 }
          haiku: { provider: sim-haiku, model: claude-3-5-haiku-20241022 }
        defaults:
          breaker: { failure_threshold: 3, open_for: 3s, max_open_for: 6s, half_open_probes: 1 }
          retry: { max_attempts: 4, per_model: 2, backoff: { initial: 50ms, multiplier: 2, max: 400ms, jitter: full } }
        routes:
          default:
            models: [sonnet, haiku]
            aliases: [claude-sonnet-4-0]
        """
    }
}

final class DemoFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

final class DemoPort: Sendable {
    let port = Atomic<Int>(0)
}
