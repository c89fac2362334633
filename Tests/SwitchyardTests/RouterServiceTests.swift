import Foundation
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import SwitchyardCore

@Suite("Router service: one stop for the server and its companions")
struct RouterServiceTests {
    /// Stands in for the batch service: told to stop, it takes a while to hand its work back,
    /// noting what the audit log held when it began and writing a line when it is done.
    final class SlowToStop: Service {
        let audit: AuditLog
        let stopTakes: Duration
        let sawDraining = Mutex<Bool?>(nil)

        init(audit: AuditLog, stopTakes: Duration) {
            self.audit = audit
            self.stopTakes = stopTakes
        }

        func run() async throws {
            try? await gracefulShutdown()
            try? await Task.sleep(for: stopTakes)
            await audit.flush()
            sawDraining.withLock { $0 = audit.memoryContents.contains("\"server.draining\"") }
            await audit.append(AuditEvent.lifecycle("companion.stopped"))
        }
    }

    /// As services of their own in the group, the batch service stopped first and the server
    /// began to drain only after it, within what was left of `drain_timeout`. Now one stop starts
    /// both; the runtime's clients are shut down (and `server.stopped` written) after both ended.
    @Test func aStopDrainsTheServerWhileItsCompanionsStopAndEndsAfterThem() async throws {
        let path = TestScratch.path("router-service.yaml")
        try """
        version: 1
        server: { listen: 127.0.0.1:0, drain_timeout: 30s }
        providers:
          anthropic: { type: anthropic, base_url: http://127.0.0.1:9, api_key_env: SIM_KEY }
        models:
          sonnet: { provider: anthropic, model: claude-sonnet-4-5-20250929 }
        routes:
          default: { models: [sonnet] }
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try ConfigLoader(environment: ["SIM_KEY": "sk-ant-sim-test-key-0123456789"], mode: .serve).load(path: path)
        let audit = try AuditLog(destination: .memory)
        var logger = Logger(label: "router-service-test")
        logger.logLevel = .critical
        let runtime = RouterRuntime(config: loaded.config, audit: audit, logger: logger, configPath: path, environment: { ["SIM_KEY": "sk-ant-sim-test-key-0123456789"] })
        let companion = SlowToStop(audit: audit, stopTakes: .milliseconds(500))
        let bound = PortBox()
        let service = RouterService(
            runtime: runtime, configPath: path, listen: HostPort(host: "127.0.0.1", port: 0), companions: [companion],
            onRunning: { bound.set($0) }
        )
        let clock = ContinuousClock()
        var took = Duration.zero
        try await testGracefulShutdown { trigger in
            let running = Task { try await service.run() }
            _ = try await bound.wait()
            let stopped = clock.now
            trigger.triggerGracefulShutdown()
            try await running.value
            took = clock.now - stopped
        }
        await audit.close()
        let events = audit.memoryContents.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["event"] as? String
        }
        #expect(companion.sawDraining.withLock { $0 } == true, "the server was draining while its companion stopped")
        #expect(events == ["server.started", "server.draining", "companion.stopped", "server.stopped"])
        // At least the companion's 500 ms; far below drain_timeout (30 s), which a stop that waited
        // for something that never ends would reach. Not tighter: with the whole suite running
        // on two cores this has taken over 5 s.
        #expect(took >= .milliseconds(500) && took < .seconds(15), "took \(took)")
    }
}
