import AWSWire
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
    var seconds = 25

    @Option(name: .long, help: "Concurrent callers.")
    var callers = 4

    @Option(name: .long, help: "Write the audit log here (default: a file in the temporary directory).")
    var audit: String?

    @Flag(name: .long, help: "Print the demo's configuration and exit (for `switchyard replay --config`; the upstream ports are chosen at run time).")
    var printConfig = false

    /// The script, in seconds from the start: the Anthropic platform goes down (every model on it
    /// answers 529), Bedrock throttles for a while so Vertex takes over, then both recover.
    static let outageStart = 5
    static let throttleStart = 9
    static let throttleEnd = 11
    static let outageEnd = 13
    /// Then the Anthropic key's requests run low: 3 % left until a reset 4 s later.
    static let headroomStart = 16
    static let headroomReset = 4

    func run() async throws {
        if printConfig {
            print(Self.embeddedConfig(anthropicPort: 18_001, bedrockPort: 18_002, vertexPort: 18_003))
            return
        }
        LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        let demoKeys = AWSCredentials(accessKeyID: "AKIADEMO000000000001", secretAccessKey: "demo-secret-not-a-real-key")
        let anthropic = UpstreamSimulator(name: "anthropic", script: try FaultScript.parse("slow(30ms)*"))
        let bedrock = UpstreamSimulator(
            name: "bedrock", script: try FaultScript.parse("slow(45ms)*"), platform: .bedrock, options: SimPlatformOptions(awsCredentials: [demoKeys])
        )
        let vertex = UpstreamSimulator(name: "vertex", script: try FaultScript.parse("slow(60ms)*"), platform: .vertex)
        let sims = [anthropic, bedrock, vertex]
        var ports: [Int] = []
        for sim in sims { ports.append(try await sim.start()) }

        let auditPath = audit ?? FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-demo-audit.jsonl").path
        try? FileManager.default.removeItem(atPath: auditPath)
        let auditLog = try AuditLog(destination: .file(auditPath))
        let yaml = Self.embeddedConfig(anthropicPort: ports[0], bedrockPort: ports[1], vertexPort: ports[2])
        // Demo credentials: SigV4 keys the Bedrock sim checks, and Vertex tokens from the sim's metadata server.
        let environment = [
            "DEMO_KEY": "demo-key-not-a-secret", "AWS_ACCESS_KEY_ID": demoKeys.accessKeyID, "AWS_SECRET_ACCESS_KEY": demoKeys.secretAccessKey,
            "GCE_METADATA_HOST": "127.0.0.1:\(ports[2])", "HOME": "/nonexistent",
        ]
        let config = try ConfigLoader(environment: environment).load(yaml: yaml, source: "embedded demo").config
        var logger = Logger(label: "switchyard-demo")
        logger.logLevel = .critical
        let runtime = RouterRuntime(config: config, audit: auditLog, logger: logger, environment: { environment })
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
            Switchyard demo: route 'default' = [sonnet, haiku, sonnet-bedrock, sonnet-vertex] across three platforms,
            each a fake upstream on loopback speaking that platform's own protocol.
              router    http://127.0.0.1:\(routerPort)    (try: curl -s http://127.0.0.1:\(routerPort)/admin/state)
              anthropic upstream-sim :\(ports[0]) (Anthropic API) serves sonnet and haiku, 30 ms
              bedrock   upstream-sim :\(ports[1]) (AWS Bedrock: SigV4 checked, event-stream frames), 45 ms
              vertex    upstream-sim :\(ports[2]) (Vertex AI: OAuth2 tokens from its metadata server), 60 ms
              breaker   opens after 3 consecutive failures, open 3 s (doubling up to 6 s), 1 probe
            Script: at \(Self.outageStart) s the whole Anthropic platform answers 529 overloaded_error; at \(Self.throttleStart) s Bedrock
            throttles (ThrottlingException) until \(Self.throttleEnd) s; at \(Self.outageEnd) s Anthropic recovers. At \(Self.headroomStart) s
            the Anthropic key reports 3 % of its requests left (anthropic-ratelimit-requests-remaining) until a reset
            \(Self.headroomReset) s later: traffic moves to another platform before any 429, and comes back after the reset.
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
        let events: [(second: Int, sim: UpstreamSimulator, script: String, note: String)] = [
            (Self.outageStart, anthropic, "529*", "the Anthropic platform is overloaded: sonnet and haiku both answer 529"),
            (Self.throttleStart, bedrock, "error(ThrottlingException,429)*", "Bedrock throttles: each request moves on to Vertex at once"),
            (Self.throttleEnd, bedrock, "slow(45ms)*", "Bedrock is back"),
            (Self.outageEnd, anthropic, "slow(30ms)*", "Anthropic is healthy again; its breakers let a probe through when their open periods end"),
            (
                Self.headroomStart, anthropic, "drain(requests=3%,reset=\(Self.headroomReset)s),slow(30ms)*",
                "the Anthropic key has 3% of its requests left for \(Self.headroomReset) s: below headroom.min_remaining (5%), so another platform serves, and no 429"
            ),
        ]
        var next = 0
        for second in 1...max(1, seconds) {
            try? await Task.sleep(until: start + .seconds(second))
            if interrupted.isSet { break }
            while next < events.count, second >= events[next].second {
                events[next].sim.setScript(try FaultScript.parse(events[next].script))
                view.note(events[next].note)
                next += 1
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
        await auditLog.close()
        for sim in sims { await sim.stop() }
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

    static func embeddedConfig(anthropicPort: Int, bedrockPort: Int, vertexPort: Int) -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0, request_timeout: 30s }
        providers:
          anthropic: { type: anthropic, base_url: "http://127.0.0.1:\(anthropicPort)", api_key_env: DEMO_KEY }
          bedrock: { type: bedrock, region: us-east-1, base_url: "http://127.0.0.1:\(bedrockPort)" }
          vertex: { type: vertex, project: demo-project, region: us-east5, base_url: "http://127.0.0.1:\(vertexPort)" }
        models:
          sonnet: { provider: anthropic, model: claude-sonnet-4-5-20250929 }
          haiku: { provider: anthropic, model: claude-haiku-4-5-20251001 }
          sonnet-bedrock: { provider: bedrock, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0" }
          sonnet-vertex: { provider: vertex, model: "claude-sonnet-4-5@20250929" }
        defaults:
          breaker: { failure_threshold: 3, open_for: 3s, max_open_for: 6s, half_open_probes: 1 }
          retry: { max_attempts: 5, per_model: 2, backoff: { initial: 50ms, multiplier: 2, max: 400ms, jitter: full } }
        routes:
          default:
            models: [sonnet, haiku, sonnet-bedrock, sonnet-vertex]
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
