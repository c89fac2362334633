import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import SwitchyardCore

/// Bad requests written byte for byte on a raw connection. Each gets a 4xx (in Anthropic's
/// envelope when Switchyard can still answer) or a closed connection; none reaches an
/// upstream, and the router keeps serving everyone else.
@Suite("Hostile input", .serialized)
struct HostileInputTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var bytes: [UInt8]
        /// Acceptable statuses; empty: only a closed connection is acceptable.
        var statuses: Set<Int>
        var testDescription: String { name }
    }

    static func post(_ body: String, headers: String = "") -> [UInt8] {
        Array("POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\(headers)content-length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
    }

    static let cases: [Case] = {
        var list: [Case] = [
            Case(name: "truncated JSON", bytes: post(#"{"model":"default","messages":[{"role":"us"#), statuses: [400]),
            Case(name: "invalid JSON", bytes: post(#"{model: default}"#), statuses: [400]),
            Case(name: "model is a number", bytes: post(#"{"model":7,"messages":[]}"#), statuses: [400]),
            Case(name: "model is an array", bytes: post(#"{"model":["default"],"messages":[]}"#), statuses: [400]),
            Case(name: "model is null", bytes: post(#"{"model":null,"messages":[]}"#), statuses: [400]),
            Case(name: "stream is a string", bytes: post(#"{"model":"default","stream":"true","messages":[]}"#), statuses: [400]),
            Case(name: "messages is a string", bytes: post(#"{"model":"default","messages":"hi"}"#), statuses: [400]),
            Case(name: "top level is an array", bytes: post(#"[{"model":"default"}]"#), statuses: [400]),
            Case(name: "deep nesting", bytes: post(#"{"model":"default","messages":"# + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "}"), statuses: [400]),
            Case(name: "empty body", bytes: post(""), statuses: [400]),
            Case(
                name: "body over max_body with content-length",
                bytes: Array("POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 5000000\r\n\r\n{\"model\":".utf8), statuses: [413]
            ),
            Case(
                name: "body over max_body, chunked",
                bytes: Array("POST /v1/messages HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".utf8)
                    + (0..<40).flatMap { _ in Array("8000\r\n".utf8) + [UInt8](repeating: 0x20, count: 0x8000) + Array("\r\n".utf8) },
                statuses: [413]
            ),
            Case(
                name: "huge header",
                bytes: Array("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: \(String(repeating: "a", count: 200_000))\r\n\r\n".utf8),
                statuses: [400, 431]
            ),
            Case(
                name: "thousands of headers",
                bytes: Array(("GET /healthz HTTP/1.1\r\nhost: x\r\n" + (0..<5000).map { "x-h\($0): v\r\n" }.joined() + "\r\n").utf8),
                statuses: [400, 431]
            ),
            Case(
                name: "smuggling: content-length and transfer-encoding",
                bytes: Array(
                    "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/state HTTP/1.1\r\nhost: x\r\n\r\n"
                        .utf8
                ),
                statuses: [400]
            ),
            Case(
                name: "smuggling: two content-lengths",
                bytes: Array("POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 40\r\n\r\n{}".utf8),
                statuses: [400]
            ),
            Case(name: "garbage request line", bytes: Array("HELLO THERE\r\n\r\n".utf8), statuses: [400]),
            Case(name: "bad chunk size", bytes: Array("POST /v1/messages HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".utf8), statuses: [400]),
        ]
        var invalidUTF8 = post(#"{"model":"default","messages":[{"role":"user","content":"XX"}]}"#)
        let marker = invalidUTF8.firstIndex(of: UInt8(ascii: "X"))!
        invalidUTF8[marker] = 0xC3
        invalidUTF8[marker + 1] = 0x28
        list.append(Case(name: "invalid UTF-8", bytes: invalidUTF8, statuses: [400]))
        return list
    }()

    @Test(arguments: cases)
    func badRequestIsRefusedWithoutAnUpstreamCall(_ hostile: Case) async throws {
        try await RouterHarness.with(
            sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels(server: "max_body: 1MiB, client_timeout: 1s, max_header_size: 16KiB")
        ) { harness in
            let answer = try await RawConnection.exchange(port: harness.port, bytes: hostile.bytes, timeout: .seconds(5))
            if let status = answer.status {
                #expect(hostile.statuses.contains(status), "\(hostile.name): got \(status)\n\(answer.text.prefix(300))")
                if status != 400 || answer.text.contains("{") {
                    // Switchyard's own errors are in Anthropic's envelope.
                    if answer.text.contains("\"type\"") {
                        #expect(answer.text.contains(#""type":"error""#), "\(hostile.name): \(answer.text.prefix(300))")
                    }
                }
            } else {
                #expect(answer.closed, "\(hostile.name): neither an answer nor a closed connection")
            }
            #expect(harness.sim("a").requestCount == 0 && harness.sim("b").requestCount == 0, "\(hostile.name) reached an upstream")
            // Everyone else is still served.
            #expect(try await harness.message().status == 200)
        }
    }

    @Test func chunkedBodyThatNeverEndsIsCutAtClientTimeout() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels(server: "client_timeout: 500ms")) { harness in
            let start = ContinuousClock.now
            let bytes = Array("POST /v1/messages HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"mod\r\n".utf8)
            let answer = try await RawConnection.exchange(port: harness.port, bytes: bytes, timeout: .seconds(5))
            #expect(answer.closed)
            #expect(ContinuousClock.now - start < .seconds(4))
            #expect(harness.sim("a").requestCount == 0)
            #expect(try await harness.message().status == 200)
        }
    }
}

/// Writes raw bytes on a fresh connection and collects what comes back until the server closes
/// the connection or `timeout` passes.
enum RawConnection {
    struct Answer {
        var text: String
        var closed: Bool
        var status: Int? {
            guard text.hasPrefix("HTTP/1.1 ") else { return nil }
            return Int(text.dropFirst(9).prefix(3))
        }
    }

    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = Mutex<[UInt8]>([])
        let complete: EventLoopPromise<Void>
        let untilClosed: Bool

        init(complete: EventLoopPromise<Void>, untilClosed: Bool = false) {
            self.complete = complete
            self.untilClosed = untilClosed
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            let all = received.withLock { $0 += buffer.readableBytesView; return $0 }
            if !untilClosed, Self.isCompleteResponse(all) { complete.succeed() }
        }

        /// A whole response with a content-length has arrived (the connection may stay open).
        static func isCompleteResponse(_ bytes: [UInt8]) -> Bool {
            let text = String(decoding: bytes, as: UTF8.self)
            guard let headEnd = text.range(of: "\r\n\r\n") else { return false }
            let head = text[..<headEnd.lowerBound].lowercased()
            guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
            else { return false }
            return text[headEnd.upperBound...].utf8.count >= length
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// - Parameter untilClosed: wait for the server to close (several answers), not for the first answer.
    static func exchange(port: Int, bytes: [UInt8], timeout: Duration, untilClosed: Bool = false) async throws -> Answer {
        try await exchange(port: port, pieces: [bytes], pause: .zero, timeout: timeout, untilClosed: untilClosed)
    }

    /// Writes `pieces` one by one, `pause` apart (each its own TCP segment on loopback).
    static func exchange(port: Int, pieces: [[UInt8]], pause: Duration, timeout: Duration, untilClosed: Bool = false) async throws -> Answer {
        let group = MultiThreadedEventLoopGroup.singleton
        let complete = group.next().makePromise(of: Void.self)
        let collector = Collector(complete: complete, untilClosed: untilClosed)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) } }
            .connect(host: "127.0.0.1", port: port).get()
        // The server may close before everything is written (that is an answer too).
        for (index, piece) in pieces.enumerated() {
            if index > 0 { try await Task.sleep(for: pause) }
            try? await channel.writeAndFlush(ByteBuffer(bytes: piece)).get()
        }
        channel.closeFuture.whenComplete { _ in complete.succeed() }
        do {
            try await withTimeout(timeout) { try await complete.futureResult.get() }
        } catch {}
        let closed = !channel.isActive
        try? await channel.close()
        return Answer(text: String(decoding: collector.received.withLock { $0 }, as: UTF8.self), closed: closed)
    }
}
