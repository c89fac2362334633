import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import SwitchyardCore

/// SSE through the router: relay order, no buffering, commit point, cancellation.
@Suite("SSE relay", .serialized)
struct StreamingTests {
    static let expectedEvents: [SSEEventName] = [
        .messageStart, .ping, .contentBlockStart, .contentBlockDelta, .contentBlockDelta, .contentBlockDelta, .contentBlockStop,
        .messageDelta, .messageStop,
    ]

    @Test func eventsArriveCompleteAndInOrder() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message(stream: true)
            #expect(reply.status == 200)
            #expect(reply.header("content-type") == "text/event-stream")
            #expect(reply.header("x-switchyard-model") == "sonnet")
            let events = try SSE.parse(reply.body)
            #expect(events.map(\.name) == Self.expectedEvents)
            #expect(events[0].data.contains("claude-sonnet-4-20250514"))
            let deltas = events.filter { $0.name == .contentBlockDelta }.map(\.data)
            #expect(deltas.enumerated().allSatisfy { $0.element.contains("chunk\($0.offset) ") }, "deltas in upstream order")
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["stream"] as? Bool == true)
            #expect(line["outcome"] as? String == "ok")
            let usage = try #require(line["usage"] as? [String: Any])
            #expect(usage["input_tokens"] as? Int == 12)
            #expect(usage["output_tokens"] as? Int == 4, "message_delta's count replaces message_start's")
        }
    }

    /// The upstream sends four events and then stalls forever: the caller still gets the first
    /// content event, so nothing waits for the end of the stream. Then the caller goes away and
    /// the upstream connection is closed at once.
    @Test func firstEventArrivesBeforeUpstreamFinishesAndDisconnectCancelsUpstream() async throws {
        try await RouterHarness.with(
            sims: ["a": "stall(4)", "b": ""], yaml: TestConfigs.twoModels(timeouts: "{ connect: 1s, first_byte: 30s, idle: 30s }")
        ) { harness in
            let reader = Task {
                var request = HTTPClientRequest(url: harness.baseURL + "/v1/messages")
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: RouterHarness.messages(stream: true)))
                let response = try await RouterHarness.client.execute(request, timeout: .seconds(60))
                var parser = SSEEventParser()
                var names: [SSEEventName] = []
                for try await chunk in response.body {
                    parser.append(chunk)
                    while let event = try parser.next() { names.append(event.name) }
                    if names.contains(.contentBlockDelta) { return (names, harness.sim("a").openConnections) }
                }
                return (names, -1)
            }
            let (names, upstreamOpen) = try await withTimeout(.seconds(10)) { try await reader.value }
            #expect(names == [.messageStart, .ping, .contentBlockStart, .contentBlockDelta])
            #expect(upstreamOpen == 1, "the upstream stream was still open when the caller had the first content event")

            // Leaving the loop above dropped the response body: AsyncHTTPClient closes the connection.
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "cancelled")
            try await eventually("upstream connection closed after caller went away") { harness.sim("a").openConnections == 0 }
        }
    }

    @Test func failureBeforeCommitIsRetriedOnTheNextModelInvisibly() async throws {
        // sse-error(2): message_start, ping, then `event: error` (overloaded) — before any content.
        try await RouterHarness.with(sims: ["a": "sse-error(2)", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message(stream: true)
            #expect(reply.status == 200)
            #expect(reply.header("x-switchyard-model") == "haiku")
            let events = try SSE.parse(reply.body)
            #expect(events.map(\.name) == Self.expectedEvents, "one clean stream, from haiku only")
            #expect(events[0].data.contains("claude-3-5-haiku-20241022"))
            #expect(!reply.body.contains("claude-sonnet-4-20250514"))
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "ok")
            #expect(line["downgraded"] as? Bool == true)
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.count == 2)
            #expect(attempts[0]["error"] as? String == "stream_error")
            #expect(attempts[0]["error_type"] as? String == "overloaded_error")
            #expect(attempts[1]["status"] as? Int == 200)
            #expect(harness.runtime.table.model(named: "sonnet")?.health.snapshot.breaker.consecutiveFailures == 1)
        }
    }

    @Test func resetBeforeCommitIsRetriedToo() async throws {
        try await RouterHarness.with(sims: ["a": "cut(2)", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message(stream: true)
            #expect(reply.status == 200)
            let events = try SSE.parse(reply.body)
            #expect(events.map(\.name) == Self.expectedEvents)
            #expect(harness.sim("a").requestCount + harness.sim("b").requestCount >= 2)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "ok")
        }
    }

    @Test func failureAfterCommitEndsWithAWellFormedErrorEvent() async throws {
        // sse-error(4): message_start, ping, content_block_start, one delta, then `event: error`.
        try await RouterHarness.with(sims: ["a": "sse-error(4,api_error)", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message(stream: true)
            #expect(reply.status == 200)
            let events = try SSE.parse(reply.body)
            #expect(events.map(\.name) == [.messageStart, .ping, .contentBlockStart, .contentBlockDelta, .error])
            let error = try #require(events.last)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(error.data.utf8)) as? [String: Any])
            #expect(json["type"] as? String == "error")
            #expect((json["error"] as? [String: Any])?["type"] as? String == "api_error")
            #expect(harness.sim("b").requestCount == 0, "after the commit point nothing is retried")
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "stream_error")
            #expect(harness.runtime.table.model(named: "sonnet")?.health.snapshot.breaker.consecutiveFailures == 1)
        }
    }

    @Test func cutAfterCommitSynthesizesAnErrorEvent() async throws {
        try await RouterHarness.with(sims: ["a": "cut(5)", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let reply = try await harness.message(stream: true)
            let events = try SSE.parse(reply.body)
            #expect(events.first?.name == .messageStart)
            #expect(events.last?.name == .error)
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "stream_error")
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.last?["error"] as? String == "stream_error" || attempts.last?["error"] as? String == "reset")
        }
    }
}

/// Parses a whole SSE body into (name, data) pairs.
enum SSE {
    struct Event {
        var name: SSEEventName
        var data: String
    }

    static func parse(_ text: String) throws -> [Event] {
        var parser = SSEEventParser()
        parser.append(ByteBuffer(string: text))
        var events: [Event] = []
        while let event = try parser.next() {
            events.append(Event(name: event.name, data: String(buffer: event.data)))
        }
        return events
    }
}

func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw HarnessError("timed out after \(limit)")
        }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
}

/// Polls `condition` for up to `limit` (for effects that happen just after a response).
func eventually(_ what: String, within limit: Duration = .seconds(5), _ condition: () -> Bool) async throws {
    let start = ContinuousClock.now
    while !condition() {
        if ContinuousClock.now - start > limit {
            Issue.record("not within \(limit): \(what)")
            return
        }
        try await Task.sleep(for: .milliseconds(10))
    }
}
