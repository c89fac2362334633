import Foundation
import NIOCore
import Synchronization
import Testing

@testable import SwitchyardCore

/// The upstream transport against upstreams that misbehave at the byte level (``RawUpstream``),
/// through the router on real sockets: one answer per request, no silent resend, the connection
/// limit exact, and local saturation kept apart from upstream failure.
@Suite("Upstream transport", .serialized)
struct UpstreamTransportTests {
    /// One model, `m0`, on the raw upstream; a second route adds `m1` on another.
    static func config(
        primary: String, secondary: String? = nil, maxConnections: Int? = nil, timeouts: String = "{ connect: 1s, first_byte: 5s, idle: 5s }",
        retry: String = "max_attempts: 4, per_model: 2, backoff: { initial: 10ms, multiplier: 2, max: 50ms }", providerExtra: String = ""
    ) -> String {
        let limit = maxConnections.map { ", max_connections: \($0)" } ?? ""
        var yaml = """
            version: 1
            server: { listen: 127.0.0.1:0 }
            providers:
              p0: { type: anthropic, base_url: "\(primary)", api_key_env: SIM_KEY, timeouts: \(timeouts)\(limit)\(providerExtra) }

            """
        if let secondary {
            yaml += "  p1: { type: anthropic, base_url: \"\(secondary)\", api_key_env: SIM_KEY, timeouts: \(timeouts) }\n"
        }
        yaml += """
            models:
              m0: { provider: p0, model: claude-raw-0 }

            """
        if secondary != nil { yaml += "  m1: { provider: p1, model: claude-raw-1 }\n" }
        yaml += """
            defaults:
              breaker: { failure_threshold: 3, open_for: 30s }
              retry: { \(retry) }
            routes:
              only: { models: [m0] }

            """
        if secondary != nil { yaml += "  both: { models: [m0, m1] }\n" }
        return yaml
    }

    /// The answer text a caller got (the marker of the request it answers).
    static func answerText(_ reply: RouterHarness.Reply) -> String? {
        ((reply.json["content"] as? [[String: Any]])?.first)?["text"] as? String
    }

    /// `total` requests `concurrency` at a time on `route`, each with its own marker; returns
    /// (marker, reply) pairs.
    static func fire(
        _ harness: RouterHarness, route: String, total: Int, concurrency: Int, prefix: String, stream: Bool = false
    ) async throws -> [(String, RouterHarness.Reply)] {
        try await withThrowingTaskGroup(of: [(String, RouterHarness.Reply)].self) { group in
            let next = TicketCounter()
            for _ in 0..<concurrency {
                group.addTask {
                    var replies: [(String, RouterHarness.Reply)] = []
                    while true {
                        let index = next.take()
                        guard index < total else { return replies }
                        let marker = "\(prefix)-\(index)"
                        let reply = try await harness.send(
                            body: RouterHarness.messages(model: route, stream: stream, text: marker), client: RouterHarness.wideClient
                        )
                        replies.append((marker, reply))
                    }
                }
            }
            var all: [(String, RouterHarness.Reply)] = []
            for try await replies in group { all += replies }
            return all
        }
    }

    // MARK: 1. One answer per request

    @Test(arguments: ["content-length", "chunked"])
    func anExtraAnswerInTheSameSegmentNeverReachesAnotherCaller(framing: String) async throws {
        let upstream = try await RawUpstream.start { request in
            let answer = framing == "chunked" ? RawUpstream.chunkedAnswer : RawUpstream.lengthAnswer
            // The real answer and a stray one (another caller's text) in one write.
            return [.write(answer(request.marker, nil) + answer("stray-of-\(request.marker)", nil))]
        }
        // Twelve callers share one connection: on a loaded machine the queue can pass the default
        // queue_timeout, which would be a 529, not the misdelivery this test is about.
        let yaml = Self.config(primary: upstream.baseURL, maxConnections: 1, providerExtra: ", queue_timeout: 60s")
        try await RouterHarness.with(sims: [:], yaml: yaml) { harness in
            for round in 0..<20 {
                let replies = try await Self.fire(harness, route: "only", total: 64, concurrency: 12, prefix: "r\(round)")
                var misdelivered: [String] = []
                for (marker, reply) in replies where reply.status != 200 || Self.answerText(reply) != marker {
                    misdelivered.append("\(marker): \(reply.status) \(Self.answerText(reply) ?? reply.body.prefix(120).description)")
                }
                #expect(misdelivered.isEmpty, "round \(round), \(framing): \(misdelivered.count) of 64 misdelivered: \(misdelivered.prefix(5))")
                if !misdelivered.isEmpty { break }
            }
            let breaker = try #require(harness.runtime.table.model(named: "m0")).health.snapshot.breaker
            #expect(breaker.consecutiveFailures == 0)
            #expect(breaker.state == .closed)
        }
        await upstream.stop()
    }

    // MARK: 2. Stray bytes after an answer

    @Test(arguments: [0, 30])
    func aPartialHeadAfterAnAnswerClosesTheConnectionAndChargesNoOne(delayMs: Int) async throws {
        let upstream = try await RawUpstream.start { request in
            var steps: [RawUpstream.Step] = [.write(RawUpstream.lengthAnswer(request.marker))]
            if delayMs > 0 { steps.append(.pause(.milliseconds(delayMs))) }
            steps.append(.write(Array("HTTP/1.1 2".utf8)))
            return steps
        }
        try await RouterHarness.with(sims: [:], yaml: Self.config(primary: upstream.baseURL, retry: "max_attempts: 1, per_model: 1")) { harness in
            for index in 0..<6 {
                let reply = try await harness.send(body: RouterHarness.messages(model: "only", text: "partial-\(index)"))
                #expect(reply.status == 200, "request \(index): \(reply.body)")
                #expect(Self.answerText(reply) == "partial-\(index)")
                // The stray bytes arrive while the connection waits in the pool.
                try await Task.sleep(for: .milliseconds(delayMs + 40))
            }
            let lines = try await harness.requestLines(6)
            for line in lines {
                let attempts = line["attempts"] as? [[String: Any]] ?? []
                #expect(attempts.count == 1)
                #expect(attempts.first?["error"] == nil, "\(attempts)")
            }
            #expect(try #require(harness.runtime.table.model(named: "m0")).health.snapshot.breaker.consecutiveFailures == 0)
        }
        await upstream.stop()
    }

    // MARK: 3. No silent resend

    @Test func aPostTheUpstreamReadAndWorkedOnIsNeverSentAgainUnseen() async throws {
        // A reused connection: the upstream reads the request, works, then resets.
        let upstream = try await RawUpstream.start { request in
            request.index == 0 ? [.write(RawUpstream.lengthAnswer(request.marker))] : [.pause(.milliseconds(300)), .reset]
        }
        try await RouterHarness.with(sims: [:], yaml: Self.config(primary: upstream.baseURL, retry: "max_attempts: 1, per_model: 1")) { harness in
            let first = try await harness.send(body: RouterHarness.messages(model: "only", text: "warm"))
            #expect(first.status == 200)
            let second = try await harness.send(
                body: RouterHarness.messages(model: "only", text: "worked-on"), headers: [("idempotency-key", "caller-key-1")]
            )
            #expect(second.status == 502)
            let lines = try await harness.requestLines(2)
            let attempts = try #require(lines.last?["attempts"] as? [[String: Any]])
            let sent = upstream.requests.filter { $0.marker == "worked-on" }
            #expect(sent.count == 1, "the POST went upstream \(sent.count) times")
            #expect(attempts.count == sent.count, "every request the upstream received is an audited attempt")
            #expect(attempts.first?["error"] as? String == "reset")
            #expect(sent.allSatisfy { $0.header("idempotency-key") == "caller-key-1" })
        }
        await upstream.stop()
    }

    @Test func everyUpstreamAttemptCarriesTheRequestsIdempotencyKey() async throws {
        // Two attempts of one request (a 500, then a success) share one generated key; another
        // request gets another.
        let upstream = try await RawUpstream.start { request in
            if request.marker == "twice", request.index == 0 {
                let body = #"{"type":"error","error":{"type":"api_error","message":"boom"}}"#
                return [.write(Array("HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)".utf8))]
            }
            return [.write(RawUpstream.lengthAnswer(request.marker))]
        }
        try await RouterHarness.with(sims: [:], yaml: Self.config(primary: upstream.baseURL)) { harness in
            let first = try await harness.send(body: RouterHarness.messages(model: "only", text: "twice"))
            let second = try await harness.send(body: RouterHarness.messages(model: "only", text: "once"))
            #expect(first.status == 200)
            #expect(second.status == 200)
            let twice = upstream.requests.filter { $0.marker == "twice" }.compactMap { $0.header("idempotency-key") }
            let once = upstream.requests.filter { $0.marker == "once" }.compactMap { $0.header("idempotency-key") }
            #expect(twice.count == 2)
            #expect(Set(twice).count == 1)
            #expect(once.count == 1)
            #expect(!twice.isEmpty && !once.isEmpty && once[0] != twice[0])
        }
        await upstream.stop()
    }

    // MARK: 4. The connection limit is exact

    @Test(arguments: [1, 2, 3])
    func maxConnectionsIsTheExactBoundAcrossEventLoops(limit: Int) async throws {
        let upstream = try await RawUpstream.start { request in
            [.pause(.milliseconds(40)), .write(RawUpstream.lengthAnswer(request.marker))]
        }
        try await RouterHarness.with(sims: [:], yaml: Self.config(primary: upstream.baseURL, maxConnections: limit)) { harness in
            let replies = try await Self.fire(harness, route: "only", total: 48, concurrency: 16, prefix: "limit")
            #expect(replies.allSatisfy { $0.1.status == 200 && Self.answerText($0.1) == $0.0 })
        }
        #expect(upstream.maxOpen == limit, "at most \(limit) connections open at once, and the limit was used")
        await upstream.stop()
    }

    // MARK: 5. Local saturation is not an upstream failure

    @Test func aRequestThatFindsNoFreeConnectionMovesOnAsCapacityAndTheBreakerIsUntouched() async throws {
        let slow = try await RawUpstream.start { request in RawUpstream.streamSteps(request.marker, events: 6, interval: .milliseconds(200)) }
        let spare = try await RawUpstream.start { request in RawUpstream.streamSteps(request.marker, events: 1, interval: .milliseconds(10)) }
        // first_byte is shorter than the wait for a connection: the wait must not count as it.
        let yaml = Self.config(
            primary: slow.baseURL, secondary: spare.baseURL, maxConnections: 2, timeouts: "{ connect: 1s, first_byte: 300ms, idle: 5s }",
            providerExtra: ", queue_timeout: 400ms"
        )
        try await RouterHarness.with(sims: [:], yaml: yaml) { harness in
            let replies = try await Self.fire(harness, route: "both", total: 8, concurrency: 8, prefix: "sat", stream: true)
            #expect(replies.allSatisfy { $0.1.status == 200 })
            let servedBy = replies.map { $0.1.header("x-switchyard-model") ?? "" }
            #expect(servedBy.filter { $0 == "m0" }.count == 2)
            #expect(servedBy.filter { $0 == "m1" }.count == 6)
            let lines = try await harness.requestLines(8)
            let capacity = lines.flatMap { ($0["attempts"] as? [[String: Any]]) ?? [] }.filter { $0["error"] as? String == "capacity" }
            #expect(capacity.count == 6)
            #expect(capacity.allSatisfy { ($0["queued_ms"] as? Int ?? 0) >= 350 })
            let m0 = try #require(harness.runtime.table.model(named: "m0")).health.snapshot.breaker
            #expect(m0.consecutiveFailures == 0)
            #expect(m0.state == .closed)
            let transitions = try await harness.auditLines(requests: 8).filter { $0["event"] as? String == "breaker" }
            #expect(transitions.isEmpty)
            let metrics = try await harness.metricsText()
            #expect(metrics.contains(#"switchyard_capacity_rejections_total{provider="p0"} 6"#))
            #expect(metrics.contains(#"switchyard_upstream_queue_depth{provider="p0"}"#))
            #expect(metrics.contains(#"switchyard_upstream_connections{provider="p0",state="idle"}"#))
        }
        await slow.stop()
        await spare.stop()
    }

    @Test func withNoModelLeftCapacityIsA529TheCallerMayRetry() async throws {
        let slow = try await RawUpstream.start { request in RawUpstream.streamSteps(request.marker, events: 4, interval: .milliseconds(200)) }
        let yaml = Self.config(primary: slow.baseURL, maxConnections: 2, providerExtra: ", queue_timeout: 300ms")
        try await RouterHarness.with(sims: [:], yaml: yaml) { harness in
            let replies = try await Self.fire(harness, route: "only", total: 6, concurrency: 6, prefix: "full", stream: true)
            let refused = replies.filter { $0.1.status == 529 }
            #expect(replies.filter { $0.1.status == 200 }.count == 2)
            #expect(refused.count == 4)
            for (_, reply) in refused {
                #expect(reply.errorType == "overloaded_error")
                #expect(reply.header("x-should-retry") == "true")
                #expect(reply.header("retry-after") != nil)
            }
            #expect(try #require(harness.runtime.table.model(named: "m0")).health.snapshot.breaker.consecutiveFailures == 0)
        }
        await slow.stop()
    }

    @Test func theDefaultLimitTakesMoreLongStreamsThanTheOldDefaultOf64() async throws {
        // 80 concurrent streams of ~1 s with default settings: no wait for a connection at all.
        let upstream = try await RawUpstream.start { request in RawUpstream.streamSteps(request.marker, events: 5, interval: .milliseconds(200)) }
        try await RouterHarness.with(sims: [:], yaml: Self.config(primary: upstream.baseURL, timeouts: "{ connect: 1s, first_byte: 500ms, idle: 5s }")) {
            harness in
            let replies = try await Self.fire(harness, route: "only", total: 80, concurrency: 80, prefix: "many", stream: true)
            #expect(replies.allSatisfy { $0.1.status == 200 })
            let lines = try await harness.requestLines(80)
            #expect(lines.allSatisfy { ($0["attempts"] as? [[String: Any]])?.count == 1 })
        }
        #expect(upstream.maxOpen == 80)
        await upstream.stop()
    }

    // MARK: 6. An idle close by the upstream

    /// As a load balancer's idle timeout does: each connection closes 50 ms after its answer.
    /// `racing`: the close comes even when a request has just arrived (it crossed the close on the
    /// wire): the genuine keep-alive race, replayed on a fresh connection.
    @Test(arguments: [false, true])
    func anUpstreamThatClosesIdleConnectionsNeverFailsACaller(racing: Bool) async throws {
        let upstream = try await RawUpstream.start(closeIdleAfter: .milliseconds(50), closeIgnoresArrivals: racing) { request in
            [.pause(.milliseconds(2)), .write(RawUpstream.lengthAnswer(request.marker))]
        }
        try await RouterHarness.with(sims: [:], yaml: Self.config(primary: upstream.baseURL, retry: "max_attempts: 1, per_model: 1")) { harness in
            try await withThrowingTaskGroup(of: [String].self) { group in
                for caller in 0..<16 {
                    group.addTask {
                        var failures: [String] = []
                        for index in 0..<25 {
                            let marker = "idle-\(caller)-\(index)"
                            let reply = try await harness.send(body: RouterHarness.messages(model: "only", text: marker))
                            if reply.status != 200 || Self.answerText(reply) != marker { failures.append("\(marker): \(reply.status) \(reply.body)") }
                            // Around the upstream's idle limit, so reuse races the close.
                            try await Task.sleep(for: .milliseconds(40 + (caller * 7 + index * 3) % 20))
                        }
                        return failures
                    }
                }
                var failures: [String] = []
                for try await some in group { failures += some }
                #expect(failures.isEmpty, "\(failures.count) callers failed: \(failures.prefix(3))")
            }
            #expect(try #require(harness.runtime.table.model(named: "m0")).health.snapshot.breaker.consecutiveFailures == 0)
        }
        await upstream.stop()
    }
}

/// Hands out 0, 1, 2, … to concurrent callers.
final class TicketCounter: Sendable {
    private let value = Mutex(0)

    func take() -> Int {
        value.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}
