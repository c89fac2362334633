import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// Headroom routing through real HTTP: upstream-sim reports Anthropic's rate-limit headers, the
/// router reads them and moves traffic before the upstream ever answers 429.
@Suite("Headroom routing")
struct HeadroomRoutingTests {
    @Test func remainingRequestsAtThreePercentMoveTrafficBeforeAny429AndItReturnsAfterTheReset() async throws {
        // The second answer of sim a says 3 of 100 requests remain for the next 5 s; taking them
        // all would end in a 429 from sim a.
        try await RouterHarness.with(sims: ["a": "ok,drain(requests=3,limit=100,reset=5s),ok*", "b": "ok*"], yaml: TestConfigs.twoModels()) { harness in
            let clock = try #require(harness.clock)
            #expect(try await harness.message().header("x-switchyard-model") == "sonnet")
            let drained = try await harness.message()
            #expect(drained.header("x-switchyard-model") == "sonnet")
            #expect(drained.header("anthropic-ratelimit-requests-remaining") == "3")
            for _ in 0..<6 {
                let reply = try await harness.message()
                #expect(reply.status == 200)
                #expect(reply.header("x-switchyard-model") == "haiku")
            }
            #expect(harness.sim("a").requestCount == 2, "sim a saw no request after its headroom fell low")

            let lines = try await harness.requestLines(8)
            let decision = try #require(lines.last?["decision"] as? [[String: Any]])
            #expect(decision.first?["model"] as? String == "sonnet")
            #expect(decision.first?["action"] as? String == "skipped")
            #expect(decision.first?["reason"] as? String == "headroom")
            // The audit keeps the reading that started the skip (for `switchyard replay`), and
            // only that one: the first answer's reading changed nothing.
            func kept(_ line: [String: Any]) -> [String: Any]? {
                ((line["attempts"] as? [[String: Any]])?.first?["headroom"] as? [String: Any])?["requests"] as? [String: Any]
            }
            #expect(kept(lines[0]) == nil)
            // Microsecond times beside the millisecond ones, for replay's ordering.
            let first = lines[0]
            let arrivalUs = try #require((first["ts_us"] as? NSNumber)?.int64Value)
            #expect(CredentialTimestamp.unixMilliseconds(try #require(first["ts"] as? String)) == arrivalUs / 1000)
            let attempt = try #require((first["attempts"] as? [[String: Any]])?.first)
            let durationUs = try #require((attempt["duration_us"] as? NSNumber)?.int64Value)
            #expect(durationUs / 1000 == (attempt["duration_ms"] as? NSNumber)?.int64Value)
            #expect(((attempt["start_us"] as? NSNumber)?.int64Value ?? -1) >= 0)
            #expect(((attempt["ttfb_us"] as? NSNumber)?.int64Value ?? .max) <= durationUs)
            let reading = try #require(kept(lines[1]), "the draining answer's reading is in its attempt")
            #expect(reading["remaining"] as? Int == 3 && reading["limit"] as? Int == 100 && reading["reset"] is String)

            let state = try await harness.send(.GET, "/admin/state").json
            let models = try #require(state["models"] as? [[String: Any]])
            let sonnet = try #require(models.first { $0["name"] as? String == "sonnet" })
            let headroom = try #require(sonnet["headroom"] as? [String: Any])
            let requests = try #require(headroom["requests"] as? [String: Any])
            #expect(requests["remaining"] as? Int == 3)
            #expect(requests["remaining_ratio"] as? Double == 0.03)
            #expect(sonnet["headroom_skipped_until"] is String)

            let metrics = try await harness.metricsText()
            #expect(metrics.contains(#"switchyard_headroom_remaining_ratio{model="sonnet",kind="requests"} 0.03"#))
            #expect(metrics.contains(#"switchyard_selection_skips_total{model="sonnet",reason="headroom"} 6"#))

            // The reset passes (the router's clock; the sim's bucket is whole again by then too).
            clock.advance(by: .seconds(6))
            try await Task.sleep(for: .seconds(5))
            #expect(try await harness.message().header("x-switchyard-model") == "sonnet")
            #expect(harness.sim("a").rateLimits.remaining(.requests) >= 99)
        }
    }

    @Test func theSimAnswers429OnceItsRequestsAreSpent() async throws {
        // Without the router: what the headroom rule spares callers.
        let sim = UpstreamSimulator(name: "a", script: try FaultScript.parse("drain(requests=1,limit=10,reset=30s),ok*"))
        let port = try await sim.start()
        defer { Task { await sim.stop() } }
        var statuses: [Int] = []
        for _ in 0..<3 {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/messages")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: RouterHarness.messages(model: "claude-sonnet-4-5")))
            let response = try await RouterHarness.client.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            statuses.append(Int(response.status.code))
        }
        #expect(statuses == [200, 200, 429])
    }
}
