import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// The built `switchyard` binary as a child process: signals, exit codes, stdout.
@Suite("switchyard process", .serialized)
struct ProcessTests {
    /// `swift build --build-tests` puts the executable next to the test bundle.
    static var binary: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("switchyard").path
    }

    /// A running `switchyard serve` with its stdout (the audit log) collected.
    final class RouterProcess: Sendable {
        let process: Process
        private let output = Mutex<String>("")
        private let errors = Mutex<String>("")

        init(config: String, environment: [String: String]) throws {
            let path = TestScratch.path("proc.yaml")
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            process = Process()
            process.executableURL = URL(fileURLWithPath: ProcessTests.binary)
            process.arguments = ["serve", "--config", path]
            process.environment = environment
            let stdout = Pipe()
            let stderr = Pipe()
            process.standardOutput = stdout
            process.standardError = stderr
            try process.run()
            collect(stdout.fileHandleForReading, isStdout: true)
            collect(stderr.fileHandleForReading, isStdout: false)
        }

        private func collect(_ handle: FileHandle, isStdout: Bool) {
            Thread.detachNewThread { [self] in
                while true {
                    let data = handle.availableData
                    if data.isEmpty { return }
                    let text = String(decoding: data, as: UTF8.self)
                    if isStdout { output.withLock { $0 += text } } else { errors.withLock { $0 += text } }
                }
            }
        }

        var stdout: String { output.withLock { $0 } }
        var stderr: String { errors.withLock { $0 } }

        var auditLines: [[String: Any]] {
            stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        /// The port from the `server.started` line.
        func port() async throws -> Int {
            for _ in 0..<1000 {
                if let started = auditLines.first(where: { $0["event"] as? String == "server.started" }),
                    let listen = started["listen"] as? String, let port = listen.split(separator: ":").last.flatMap({ Int($0) })
                {
                    return port
                }
                guard process.isRunning else { throw HarnessError("switchyard exited: \(stderr)") }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw HarnessError("no server.started line; stderr: \(stderr)")
        }

        func waitForExit(within limit: Duration) async throws -> Int32 {
            let start = ContinuousClock.now
            while process.isRunning {
                if ContinuousClock.now - start > limit {
                    process.interrupt()
                    // What it logged last says which part of the shutdown it was still waiting for.
                    let events = auditLines.suffix(3).compactMap { $0["event"] as? String }
                    throw HarnessError("switchyard did not exit within \(limit); last audit events \(events); stderr ends: \(stderr.suffix(2000))")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return process.terminationStatus
        }
    }

    static func config(simPort: Int, drainTimeout: String = "10s") -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0, drain_timeout: \(drainTimeout) }
        providers:
          a: { type: anthropic, base_url: "http://127.0.0.1:\(simPort)", api_key_env: SIM_KEY }
        models:
          sonnet: { provider: a, model: claude-sonnet-4-20250514 }
        routes:
          default: { models: [sonnet] }
        """
    }

    @Test func sigtermLetsAStreamInFlightFinishThenExitsZero() async throws {
        // A 5 s stream: the signal must reach the router while it still streams, and this test
        // reads the deltas late when every other suite runs beside it (a 1.5 s stream had ended
        // on the router's side before the test saw its first delta).
        let sim = UpstreamSimulator(name: "a", script: try FaultScript.parse("ok(events=20,interval=250ms)*"))
        let simPort = try await sim.start()
        let router = try RouterProcess(config: Self.config(simPort: simPort), environment: ["SIM_KEY": "sk-ant-proc-test-0000000000"])
        defer { if router.process.isRunning { router.process.terminate() } }
        let port = try await router.port()

        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/messages")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: RouterHarness.messages(stream: true)))
        let response = try await RouterHarness.client.execute(request, timeout: .seconds(30))
        #expect(response.status.code == 200)
        var parser = SSEEventParser()
        var names: [SSEEventName] = []
        var signalled = false
        for try await chunk in response.body {
            parser.append(chunk)
            while let event = try parser.next() { names.append(event.name) }
            if !signalled, names.contains(.contentBlockDelta) {
                router.process.terminate()  // SIGTERM, mid-stream
                signalled = true
                try await Task.sleep(for: .milliseconds(200))
                // Draining: no new connections are accepted.
                var probe = HTTPClientRequest(url: "http://127.0.0.1:\(port)/healthz")
                probe.method = .GET
                let refused = await (try? HTTPClient.shared.execute(probe, timeout: .seconds(2))) == nil
                #expect(refused, "a draining router accepts no new connections")
            }
        }
        #expect(signalled)
        #expect(names.filter { $0 == .contentBlockDelta }.count == 20, "the stream in flight completed")
        #expect(names.last == .messageStop)

        let status = try await router.waitForExit(within: .seconds(15))
        #expect(status == 0)
        let events = router.auditLines.compactMap { $0["event"] as? String }
        #expect(events == ["server.started", "server.draining", "request", "server.stopped"])
        let line = try #require(router.auditLines.first { $0["event"] as? String == "request" })
        #expect(line["outcome"] as? String == "ok")
        await sim.stop()
    }

    @Test func drainTimeoutCutsAStreamThatWillNotEnd() async throws {
        let sim = UpstreamSimulator(name: "a", script: try FaultScript.parse("stall(4)*"))
        let simPort = try await sim.start()
        let router = try RouterProcess(
            config: Self.config(simPort: simPort, drainTimeout: "1s"), environment: ["SIM_KEY": "sk-ant-proc-test-0000000000"]
        )
        defer { if router.process.isRunning { router.process.terminate() } }
        let port = try await router.port()
        let stream = Task {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/messages")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: RouterHarness.messages(stream: true)))
            let response = try await RouterHarness.client.execute(request, timeout: .seconds(30))
            return try await response.body.collect(upTo: 1 << 20)
        }
        // Signalled once the stream is in flight (the upstream has its request), not after a fixed
        // pause: under a full test run the request could reach the router after the signal.
        let waitStarted = ContinuousClock.now
        while sim.requestCount == 0, ContinuousClock.now - waitStarted < .seconds(10) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(sim.requestCount == 1, "the stream reached the upstream before the signal")
        let signalledAt = ContinuousClock.now
        router.process.terminate()
        let status = try await router.waitForExit(within: .seconds(10))
        let took = ContinuousClock.now - signalledAt
        #expect(status == 0)
        #expect(took >= .milliseconds(900) && took < .seconds(8), "stopped after drain_timeout (took \(took))")
        _ = try? await stream.value
        let events = router.auditLines.compactMap { $0["event"] as? String }
        #expect(events.first == "server.started")
        #expect(events.last == "server.stopped")
        #expect(events.filter { $0 == "request" }.count == 1, "the cut stream still has its audit line")
        await sim.stop()
    }

    @Test func serveRefusesAnInvalidFileWithEveryProblem() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        let path = TestScratch.path("bad.yaml")
        try "version: 1\nserver: { listen: nowhere }\nroutes: { default: { models: [ghost] } }\n".write(toFile: path, atomically: true, encoding: .utf8)
        process.arguments = ["serve", "--config", path]
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = Pipe()
        try process.run()
        await process.exited()
        let text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 1)
        #expect(text.contains("\(path):2:19: server.listen"))
        #expect(text.contains("unknown model 'ghost'"))
        #expect(text.contains("providers"), "the missing providers section is reported too")
    }
}
