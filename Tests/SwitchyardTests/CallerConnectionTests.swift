import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import SwitchyardCore

/// One caller connection carrying several requests, and a caller that leaves: answers leave in the
/// order requests came (a pipelining caller), and a caller that hangs up mid-request cancels the
/// upstream call instead of leaving it to run for nobody. Both hold on either path a request can
/// take: the proxy fast path (``ProxyFastPath``: a message with a declared length) and
/// Hummingbird's request loop (chunked bodies, other endpoints).
@Suite("Caller connections")
struct CallerConnectionTests {
    static func post(_ body: String, close: Bool = false) -> String {
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n"
            + (close ? "connection: close\r\n" : "") + "\r\n" + body
    }

    static let message = #"{"model":"default","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#

    @Test func pipelinedRequestsAreAnsweredInOrderByBothPaths() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            // A message, a probe, a bad request answered by the router itself, a chunked body, then a
            // message asking to close.
            let chunkedBody = Self.message
            let chunked = "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                + String(chunkedBody.utf8.count, radix: 16) + "\r\n" + chunkedBody + "\r\n0\r\n\r\n"
            let bytes = Self.post(Self.message) + "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n" + Self.post(#"{"model":"default","messages":[}"#)
                + chunked + Self.post(Self.message, close: true)
            let answer = try await RawConnection.exchange(port: harness.port, bytes: Array(bytes.utf8), timeout: .seconds(10), untilClosed: true)
            let statuses = answer.text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(statuses == ["200", "200", "400", "200", "200"], "\(answer.text.prefix(400))")
            #expect(answer.text.contains(#"{"status":"ok"}"#))
            #expect(answer.closed, "connection: close is honoured after the last answer")
            #expect(harness.sim("a").requestCount == 3)
        }
    }

    /// The fast path keeps a body that came in one read as that read's bytes, and joins one that
    /// came in several: the upstream gets the whole body, once, with its model patched.
    @Test func aBodyInSeveralReadsReachesTheUpstreamWhole() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let bytes = Array(Self.post(Self.message).utf8)
            let headEnd = bytes.count - Self.message.utf8.count
            // The head with the body's first byte, then the body in two more pieces.
            let pieces = [Array(bytes[..<(headEnd + 1)]), Array(bytes[(headEnd + 1)..<(headEnd + 20)]), Array(bytes[(headEnd + 20)...])]
            let answer = try await RawConnection.exchange(port: harness.port, pieces: pieces, pause: .milliseconds(30), timeout: .seconds(10))
            #expect(answer.status == 200, "\(answer.text.prefix(300))")
            let received = try #require(harness.sim("a").receivedRequests.last)
            #expect(harness.sim("a").requestCount == 1)
            #expect(received.body.contains(#""max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#), "\(received.body)")
            #expect(received.model == "claude-sonnet-4-20250514", "the route's name was patched to the model's")
        }
    }

    /// Answers read off one connection in order, knowing which requests were HEADs (their
    /// answers advertise a length but carry no body).
    static func answers(_ bytes: [UInt8], heads: [Bool]) -> [(status: Int, length: Int, body: String)]? {
        var answers: [(status: Int, length: Int, body: String)] = []
        var rest = bytes[...]
        for isHead in heads {
            let separator = Array("\r\n\r\n".utf8)
            guard let end = rest.indices.first(where: { rest[$0...].starts(with: separator) }) else { return nil }
            let head = String(decoding: rest[..<end], as: UTF8.self).lowercased()
            rest = rest[(end + 4)...]
            guard let status = Int(head.dropFirst("http/1.1 ".count).prefix(3)),
                let lengthLine = head.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                let length = Int(lengthLine.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
            else { return nil }
            let bodyLength = isHead ? 0 : length
            guard rest.count >= bodyLength else { return nil }
            answers.append((status, length, String(decoding: rest.prefix(bodyLength), as: UTF8.self)))
            rest = rest.dropFirst(bodyLength)
        }
        return rest.isEmpty ? answers : nil
    }

    /// HEAD answers come from Hummingbird, between whole answers the fast path writes as finished
    /// bytes past NIO's encoder (``ResponseOutlet``): each keeps its advertised length and no body,
    /// and the answers after it still line up.
    @Test func headAnswersCarryNoBodyBetweenFastPathAnswers() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            let bytes = "HEAD /healthz HTTP/1.1\r\nhost: x\r\n\r\n" + Self.post(Self.message) + "HEAD /v1/models HTTP/1.1\r\nhost: x\r\n\r\n"
                + Self.post(Self.message) + "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
                + "HEAD /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
            let answer = try await RawConnection.exchange(port: harness.port, bytes: Array(bytes.utf8), timeout: .seconds(10), untilClosed: true)
            let parsed = Self.answers(Array(answer.text.utf8), heads: [true, false, true, false, false, true])
            let answers = try #require(parsed, "the answers do not line up: \(answer.text.prefix(800))")
            #expect(answers.map(\.status) == [200, 200, 200, 200, 200, 404])
            #expect(answers[0].length == #"{"status":"ok"}"#.utf8.count && answers[0].body.isEmpty)
            #expect(answers[2].length > 0 && answers[2].body.isEmpty)
            #expect(answers[5].length > 0 && answers[5].body.isEmpty)
            for index in [1, 3] {
                #expect(answers[index].body.contains(#""type":"message""#) && answers[index].body.utf8.count == answers[index].length)
            }
            #expect(answers[4].body == #"{"status":"ok"}"#)
            #expect(answer.closed)
            #expect(harness.sim("a").requestCount == 2)
        }
    }

    @Test(arguments: [false, true])
    func aCallerThatLeavesCancelsTheUpstreamCall(chunked: Bool) async throws {
        let yaml = TestConfigs.twoModels(timeouts: "{ connect: 1s, first_byte: 30s, idle: 30s }")
        // The upstream would answer after 20 s; the caller leaves after 0.3 s. The bound below
        // tells the two apart with room for a loaded machine (4 s from the start was too tight).
        try await RouterHarness.with(sims: ["a": "slow(20s)", "b": ""], yaml: yaml) { harness in
            let request = chunked
                ? "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                    + String(Self.message.utf8.count, radix: 16) + "\r\n" + Self.message + "\r\n0\r\n\r\n"
                : Self.post(Self.message)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: harness.port).get()
            try await channel.writeAndFlush(ByteBuffer(string: request)).get()
            try await Task.sleep(for: .milliseconds(300))
            try await channel.close()
            let closedAt = ContinuousClock.now
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["outcome"] as? String == "cancelled" && line["status"] as? Int == 499, "\(line)")
            #expect(ContinuousClock.now - closedAt < .seconds(10), "ended when the caller left, not when the upstream answered")
        }
    }

    /// `server.idle_timeout` closes a keep-alive connection with no request, on either path, and
    /// never one whose request is still being answered (the upstream here takes longer than it).
    @Test(arguments: [false, true])
    func anIdleConnectionIsClosedButNotWhileItsAnswerIsPending(chunked: Bool) async throws {
        // The timeout counts from the accept too, and the first read waits for Hummingbird's accept
        // loop to take the connection: long enough for that on a loaded machine.
        let yaml = TestConfigs.twoModels(server: "max_body: 1MiB, idle_timeout: 2s", timeouts: "{ connect: 1s, first_byte: 6s, idle: 6s }")
        try await RouterHarness.with(sims: ["a": "slow(3s)", "b": ""], yaml: yaml) { harness in
            let request = chunked
                ? "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                    + String(Self.message.utf8.count, radix: 16) + "\r\n" + Self.message + "\r\n0\r\n\r\n"
                : Self.post(Self.message)
            let started = ContinuousClock.now
            let answer = try await RawConnection.exchange(port: harness.port, bytes: Array(request.utf8), timeout: .seconds(20), untilClosed: true)
            let elapsed = ContinuousClock.now - started
            #expect(answer.status == 200, "after \(elapsed): \(answer.text.prefix(300))")
            #expect(answer.closed, "the idle connection was closed by the router")
            #expect(elapsed >= .milliseconds(4_900) && elapsed < .seconds(12), "closed 2 s after the 3 s answer, not before: \(elapsed)")
        }
    }
}
