import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import SwitchyardCore

/// Metrics, the admin API, hot reload, callers' keys and slow callers, through real HTTP.
@Suite("Operations", .serialized)
struct OperationsTests {
    /// The value of one exact series line of the Prometheus text, or nil.
    func value(_ metrics: String, _ series: String) -> Double? {
        for line in metrics.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func metricsFollowRequestsAndBreakers() async throws {
        try await RouterHarness.with(
            sims: ["a": "500*", "b": ""], yaml: TestConfigs.twoModels(breaker: "failure_threshold: 2, open_for: 30s")
        ) { harness in
            let before = try await harness.metricsText()
            #expect(value(before, #"switchyard_breaker_state{model="sonnet"}"#) == 0)
            #expect(value(before, #"switchyard_requests_total{route="default",model="haiku",status="200",outcome="ok"}"#) == nil)

            _ = try await harness.message()  // sonnet 500, 500 (opens), haiku 200
            _ = try await harness.message()  // sonnet skipped, haiku 200
            _ = try await harness.requestLines(2)
            let after = try await harness.metricsText()
            #expect(value(after, #"switchyard_requests_total{route="default",model="haiku",status="200",outcome="ok"}"#) == 2)
            #expect(value(after, #"switchyard_attempts_total{model="sonnet",result="500"}"#) == 2)
            #expect(value(after, #"switchyard_attempts_total{model="haiku",result="200"}"#) == 2)
            #expect(value(after, #"switchyard_failovers_total{route="default",from="sonnet",to="haiku"}"#) == 1)
            #expect(value(after, #"switchyard_breaker_state{model="sonnet"}"#) == 2)
            #expect(value(after, #"switchyard_breaker_transitions_total{model="sonnet",to="open"}"#) == 1)
            #expect(value(after, #"switchyard_request_duration_seconds_count{route="default"}"#) == 2)
            #expect(value(after, #"switchyard_upstream_ttfb_seconds_count{model="sonnet"}"#) == 2)
            // The second request had one attempt: counted through the one-lookup path, the same series.
            #expect(value(after, #"switchyard_upstream_ttfb_seconds_count{model="haiku"}"#) == 2)
            #expect(value(after, #"switchyard_platform_attempts_total{platform="anthropic",result="200"}"#) == 2)
            #expect(value(after, #"switchyard_platform_attempts_total{platform="anthropic",result="500"}"#) == 2)
            // 12 each: the failover request's, counted series by series, and the one-attempt
            // request's, through its bundle.
            #expect(value(after, #"switchyard_tokens_total{model="haiku",kind="input"}"#) == 24)
            #expect(value(after, #"switchyard_in_flight_requests{route="default"}"#) == 0)
            #expect(after.contains(#"switchyard_request_duration_seconds_bucket{route="default",le="600.0"}"#))
            #expect(after.contains(#"le="0.01""#), "buckets start at 10 ms")

            harness.clock!.advance(by: .seconds(30))
            _ = try await harness.message()  // probe fails: open again
            _ = try await harness.requestLines(3)
            let reopened = try await harness.metricsText()
            #expect(value(reopened, #"switchyard_breaker_transitions_total{model="sonnet",to="half_open"}"#) == 1)
            #expect(value(reopened, #"switchyard_breaker_transitions_total{model="sonnet",to="open"}"#) == 2)
        }
    }

    // MARK: Admin

    @Test func adminNeedsTheTokenWhenOneIsConfigured() async throws {
        let env = ["SIM_KEY": "sk-ant-sim-test-key-0123456789", "ADMIN_TOKEN": "admin-secret-token-42"]
        try await RouterHarness.with(
            sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels(server: "admin_token_env: ADMIN_TOKEN"), environment: env
        ) { harness in
            let none = try await harness.send(.GET, "/admin/state")
            #expect(none.status == 401)
            #expect(none.errorType == "authentication_error")
            let wrong = try await harness.send(.GET, "/admin/state", headers: [("authorization", "Bearer admin-secret-token-43")])
            #expect(wrong.status == 401)
            let right = try await harness.send(.GET, "/admin/state", headers: [("authorization", "Bearer admin-secret-token-42")])
            #expect(right.status == 200)
            #expect(!right.body.contains("admin-secret-token"), "the token is never shown")
            #expect(!right.body.contains("sk-ant-sim-test-key"), "nor any provider key")
            let models = try #require(right.json["models"] as? [[String: Any]])
            #expect(models.map { $0["name"] as? String } == ["sonnet", "haiku"])
            #expect(models[0]["breaker"] as? String == "closed")
            let disable = try await harness.send(.POST, "/admin/models/sonnet/disable", headers: [("authorization", "Bearer wrong")])
            #expect(disable.status == 401)
            #expect(harness.runtime.table.model(named: "sonnet")?.health.snapshot.disabledBy == nil)
        }
    }

    @Test func adminWithoutATokenIsForLoopbackCallersOnly() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let local = try await harness.send(.GET, "/admin/state")
            #expect(local.status == 200)
            #expect(local.json["ready"] as? Bool == true)
        }
        // From a non-loopback address: bind on every interface and call through this host's own
        // non-loopback address, so the router sees a non-loopback peer.
        if let outside = Self.nonLoopbackIPv4() {
            try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels(listen: "0.0.0.0:0")) { harness in
                var request = HTTPClientRequest(url: "http://\(outside):\(harness.port)/admin/state")
                request.method = .GET
                let response = try await RouterHarness.client.execute(request, timeout: .seconds(10))
                #expect(response.status.code == 403)
                let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
                #expect(body.contains("permission_error"))
            }
        }
        #expect(AdminEndpoints.isLoopback(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(AdminEndpoints.isLoopback(try SocketAddress(ipAddress: "::1", port: 1)))
        #expect(!AdminEndpoints.isLoopback(try SocketAddress(ipAddress: "10.1.2.3", port: 1)))
        #expect(!AdminEndpoints.isLoopback(try SocketAddress(ipAddress: "fd00::2", port: 1)))
    }

    static func nonLoopbackIPv4() -> String? {
        let devices = (try? System.enumerateDevices()) ?? []
        for device in devices {
            if case .v4 = device.address, let ip = device.address?.ipAddress, !ip.hasPrefix("127.") { return ip }
        }
        return nil
    }

    @Test func disablingAModelRoutesAroundItUntilEnabled() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let disable = try await harness.send(.POST, "/admin/models/sonnet/disable")
            #expect(disable.status == 200)
            let routed = try await harness.message()
            #expect(routed.header("x-switchyard-model") == "haiku")
            #expect(harness.sim("a").requestCount == 0)
            let state = try await harness.send(.GET, "/admin/state")
            let sonnet = try #require((state.json["models"] as? [[String: Any]])?.first)
            #expect(sonnet["disabled"] as? Bool == true)
            #expect((sonnet["disabled_by"] as? String)?.hasPrefix("loopback@127.0.0.1:") == true)

            let enable = try await harness.send(.POST, "/admin/models/sonnet/enable")
            #expect(enable.status == 200)
            let back = try await harness.message()
            #expect(back.header("x-switchyard-model") == "sonnet")

            let unknown = try await harness.send(.POST, "/admin/models/..%2F..%2Fetc%2Fpasswd/disable")
            #expect(unknown.status == 404)
            let traversal = try await harness.send(.POST, "/admin/models/../../disable")
            #expect(traversal.status == 404)

            let lines = try await harness.auditLines(requests: 2)
            let adminLines = lines.filter { ($0["event"] as? String)?.hasPrefix("admin.") == true }
            #expect(adminLines.map { $0["event"] as? String } == ["admin.model_disabled", "admin.model_enabled"])
            #expect(adminLines[0]["by"] as? String == "loopback")
            #expect((adminLines[0]["address"] as? String)?.hasPrefix("127.0.0.1:") == true)
            let decision = try #require(lines.first { $0["event"] as? String == "request" }?["decision"] as? [[String: Any]])
            #expect(decision[0]["reason"] as? String == "disabled")
        }
    }

    // MARK: Reload

    @Test func reloadWhileAStreamIsInFlight() async throws {
        let yaml = TestConfigs.twoModels(breaker: "failure_threshold: 1, open_for: 30s")
        try await RouterHarness.with(sims: ["a": "ok(events=8,interval=100ms)*", "b": "500,ok*"], yaml: yaml) { harness in
            _ = try await harness.message(model: "fast")  // haiku: 500 opens its breaker, then ok
            #expect(harness.runtime.table.model(named: "haiku")?.health.snapshot.breaker.state == .open)

            // A slow stream on sonnet, in flight across both reloads.
            let stream = Task { try await harness.message(stream: true) }
            try await Task.sleep(for: .milliseconds(150))

            // Valid: a new route appears; haiku's breaker state survives (unchanged identity).
            try harness.rewriteConfig(yaml + "\n  extra:\n    models: [sonnet]\n")
            let reloaded = try await harness.send(.POST, "/admin/reload")
            #expect(reloaded.status == 200)
            #expect((reloaded.json["breakers_kept"] as? [String])?.contains("haiku") == true)
            let extra = try await harness.message(model: "extra")
            #expect(extra.status == 200)
            #expect(harness.runtime.table.model(named: "haiku")?.health.snapshot.breaker.state == .open)

            // Invalid: nothing changes, every error is reported.
            try harness.rewriteConfig(yaml + "\n  broken:\n    models: [nope]\n    colour: red\n")
            let failed = try await harness.send(.POST, "/admin/reload")
            #expect(failed.status == 422)
            let errors = try #require(failed.json["errors"] as? [String])
            #expect(errors.count == 2)
            #expect(errors.contains { $0.contains("routes.broken.models[0]: unknown model 'nope'") })
            #expect(errors.contains { $0.contains("routes.broken.colour: unknown key") })
            #expect(try await harness.message(model: "extra").status == 200, "the last good configuration still serves")
            #expect(try await harness.message(model: "broken").status == 404)

            let streamed = try await stream.value
            let events = try SSE.parse(streamed.body)
            #expect(events.filter { $0.name == .contentBlockDelta }.count == 8, "the stream completed on the old configuration")
            #expect(events.last?.name == .messageStop)

            let lines = try await harness.auditLines(requests: 5)
            let events2 = lines.compactMap { $0["event"] as? String }
            #expect(events2.contains("config.reloaded"))
            let failure = try #require(lines.first { $0["event"] as? String == "config.reload_failed" })
            #expect((failure["errors"] as? [String])?.count == 2)
        }
    }

    // MARK: Callers' keys

    @Test func clientKeysGateRoutesAndNeverReachUpstream() async throws {
        let env = ["SIM_KEY": "sk-ant-sim-test-key-0123456789", "TEAM_A_KEY": "sy-team-a-key-1111", "TEAM_B_KEY": "sy-team-b-key-2222"]
        let clients = """
            clients:
              - { name: team-a, key_env: TEAM_A_KEY }
              - { name: team-b, key_env: TEAM_B_KEY, routes: [fast] }
            """
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels(extra: clients), environment: env) { harness in
            let missing = try await harness.message()
            #expect(missing.status == 401)
            #expect(missing.errorType == "authentication_error")
            let wrong = try await harness.message(headers: [("x-api-key", "sy-team-a-key-1112")])
            #expect(wrong.status == 401)
            let prefix = try await harness.message(headers: [("x-api-key", "sy-team-a-key-111")])
            #expect(prefix.status == 401)
            let viaHeader = try await harness.message(headers: [("x-api-key", "sy-team-a-key-1111")])
            #expect(viaHeader.status == 200)
            let viaBearer = try await harness.message(headers: [("authorization", "Bearer sy-team-a-key-1111")])
            #expect(viaBearer.status == 200)
            let forbidden = try await harness.message(headers: [("x-api-key", "sy-team-b-key-2222")])
            #expect(forbidden.status == 403)
            #expect(forbidden.errorType == "permission_error")
            let allowed = try await harness.message(model: "fast", headers: [("x-api-key", "sy-team-b-key-2222")])
            #expect(allowed.status == 200)
            let models = try await harness.send(.GET, "/v1/models")
            #expect(models.status == 401, "the listing needs a key too")

            #expect(harness.sim("a").requestCount + harness.sim("b").requestCount == 3)
            for received in harness.sim("a").receivedRequests + harness.sim("b").receivedRequests {
                #expect(received.header("x-api-key") == "sk-ant-sim-test-key-0123456789")
                #expect(received.header("authorization") == nil)
                #expect(!received.headers.contains { $0.1.contains("sy-team-") }, "a client key reached the upstream")
            }
            let lines = try await harness.requestLines(7)
            #expect(lines.map { $0["client"] as? String } == [nil, nil, nil, "team-a", "team-a", "team-b", "team-b"])
            #expect(lines.map { $0["status"] as? Int } == [401, 401, 401, 200, 200, 403, 200])
            #expect(!harness.audit.memoryContents.contains("sy-team-"))
        }
    }

    @Test func passThroughForwardsTheCallersOwnCredential() async throws {
        let yaml = """
            version: 1
            providers:
              a: { type: anthropic, base_url: "{{a}}" }
            models:
              sonnet: { provider: a, model: claude-sonnet-4-20250514 }
            routes:
              default: { models: [sonnet] }
            """
        try await RouterHarness.with(sims: ["a": ""], yaml: yaml) { harness in
            _ = try await harness.message(headers: [("authorization", "Bearer sk-ant-oauth-caller")])
            _ = try await harness.message(headers: [("x-api-key", "sk-ant-api-caller")])
            let received = harness.sim("a").receivedRequests
            #expect(received[0].header("authorization") == "Bearer sk-ant-oauth-caller")
            #expect(received[1].header("x-api-key") == "sk-ant-api-caller")
            #expect(!harness.audit.memoryContents.contains("sk-ant-"))
        }
    }

    // MARK: Slow callers

    @Test func aSlowLorisCallerIsCutOffAndOthersAreServed() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels(server: "client_timeout: 500ms")) { harness in
            let started = ContinuousClock.now
            // Half a request head, then silence.
            let loris = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: harness.port).get()
            try await loris.writeAndFlush(ByteBuffer(string: "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"model\":")).get()
            // Meanwhile other callers are served normally.
            for _ in 0..<3 {
                #expect(try await harness.message().status == 200)
            }
            try await withTimeout(.seconds(5)) { try await loris.closeFuture.get() }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .milliseconds(400), "cut at client_timeout, not before")
            #expect(elapsed < .seconds(4))
            #expect(harness.sim("a").requestCount == 3, "the stalled request never went upstream")
        }
    }
}
