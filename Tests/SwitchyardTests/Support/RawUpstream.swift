import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// An upstream that speaks HTTP/1.1 by hand, on raw sockets, so a test can make it misbehave in
/// ways a well-behaved server library cannot: extra answers in the same segment, a partial head
/// after an answer, a reset after the request was read, a close timed to race a reused
/// connection.
///
/// Each request is read whole (head and `content-length` body) and handed to `behaviour`, which
/// returns the steps to take: bytes to write, pauses, a close or a reset. Steps of one request
/// run in order; the next request of the connection is read only after they are done. The
/// marker of a request (the text of its first user message, see ``RawUpstream/marker(in:)``) is
/// what the canned answers echo, so a test can tell whose answer a caller got.
final class RawUpstream: Sendable {
    enum Step: Sendable {
        case write([UInt8])
        case pause(Duration)
        /// FIN: the connection closes (unread bytes make the kernel send a reset).
        case close
        /// RST: SO_LINGER 0, then close.
        case reset
    }

    struct Request: Sendable {
        /// Which connection (from 0) and which request on it (from 0).
        var connection: Int
        var index: Int
        var head: String
        var body: [UInt8]
        var marker: String { RawUpstream.marker(in: body) }
        var headerLines: [String] { head.components(separatedBy: "\r\n") }

        func header(_ name: String) -> String? {
            for line in headerLines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                if line[..<colon].lowercased() == name.lowercased() {
                    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            return nil
        }
    }

    typealias Behaviour = @Sendable (Request) -> [Step]

    private struct Counters {
        var accepted = 0
        var open = 0
        var maxOpen = 0
        var requests: [Request] = []
    }

    private let counters = Mutex(Counters())
    private let listener = Mutex<(any Channel)?>(nil)
    private let behaviour: Behaviour
    /// Closes every connection this long after its last answer when no new request has begun.
    let closeIdleAfter: Duration?
    /// The close comes at that time even when a request arrived meanwhile (it is dropped unanswered),
    /// as when a request crosses the upstream's idle close on the wire.
    let closeIgnoresArrivals: Bool

    var accepted: Int { counters.withLock { $0.accepted } }
    var open: Int { counters.withLock { $0.open } }
    var maxOpen: Int { counters.withLock { $0.maxOpen } }
    var requests: [Request] { counters.withLock { $0.requests } }
    var port: Int { listener.withLock { $0?.localAddress?.port ?? 0 } }
    let tls: Bool
    var baseURL: String { "\(tls ? "https" : "http")://127.0.0.1:\(port)" }

    private init(closeIdleAfter: Duration?, closeIgnoresArrivals: Bool, tls: Bool, behaviour: @escaping Behaviour) {
        self.behaviour = behaviour
        self.closeIdleAfter = closeIdleAfter
        self.closeIgnoresArrivals = closeIgnoresArrivals
        self.tls = tls
    }

    /// - Parameter tls: the certificate it serves over TLS; nil: plain TCP.
    static func start(
        closeIdleAfter: Duration? = nil, closeIgnoresArrivals: Bool = false, tls: TestPKI.Leaf? = nil, _ behaviour: @escaping Behaviour
    ) async throws -> RawUpstream {
        let server = RawUpstream(closeIdleAfter: closeIdleAfter, closeIgnoresArrivals: closeIgnoresArrivals, tls: tls != nil, behaviour: behaviour)
        let sslContext = try tls.map { leaf in
            try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: [.certificate(leaf.certificate)], privateKey: .privateKey(leaf.key)))
        }
        let bound = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 4096)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext)) }
                    try channel.pipeline.syncOperations.addHandler(Connection(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.listener.withLock { $0 = bound }
        return server
    }

    func stop() async {
        let bound = listener.withLock { $0 }
        try? await bound?.close()
    }

    // MARK: Canned answers

    /// The text of the request's first `"content":"…"` string.
    static func marker(in body: [UInt8]) -> String {
        let text = String(decoding: body, as: UTF8.self)
        guard let range = text.range(of: #""content":""#) else { return "" }
        let rest = text[range.upperBound...]
        return String(rest.prefix { $0 != "\"" })
    }

    /// A Messages answer whose text is `marker`.
    static func message(_ marker: String) -> String {
        #"{"id":"msg_\#(marker)","type":"message","role":"assistant","model":"raw","content":[{"type":"text","text":"\#(marker)"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}"#
    }

    /// A whole answer with `content-length` framing.
    static func lengthAnswer(_ marker: String, requestID: String? = nil) -> [UInt8] {
        let body = message(marker)
        let id = requestID ?? "req_raw_\(marker)"
        return Array("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: \(id)\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
    }

    /// A whole answer with chunked framing (two chunks).
    static func chunkedAnswer(_ marker: String, requestID: String? = nil) -> [UInt8] {
        let body = Array(message(marker).utf8)
        let half = body.count / 2
        let id = requestID ?? "req_raw_\(marker)"
        var bytes = Array("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: \(id)\r\ntransfer-encoding: chunked\r\n\r\n".utf8)
        for part in [body[..<half], body[half...]] {
            bytes += Array(String(part.count, radix: 16).utf8) + [13, 10] + part + [13, 10]
        }
        bytes += Array("0\r\n\r\n".utf8)
        return bytes
    }

    /// An SSE Messages stream of `events` text deltas `interval` apart, each delta `marker`.
    static func streamSteps(_ marker: String, events: Int, interval: Duration) -> [Step] {
        var steps: [Step] = [
            .write(Array("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nrequest-id: req_raw_\(marker)\r\ntransfer-encoding: chunked\r\n\r\n".utf8))
        ]
        func chunk(_ text: String) -> Step {
            let bytes = Array(text.utf8)
            return .write(Array(String(bytes.count, radix: 16).utf8) + [13, 10] + bytes + [13, 10])
        }
        steps.append(
            chunk(
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_\(marker)\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"raw\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
            )
        )
        for _ in 0..<events {
            steps.append(.pause(interval))
            steps.append(chunk("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\(marker) \"}}\n\n"))
        }
        steps.append(
            chunk(
                "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":\(events)}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
            )
        )
        steps.append(.write(Array("0\r\n\r\n".utf8)))
        return steps
    }

    // MARK: Serving

    fileprivate func opened() -> Int {
        counters.withLock { counters in
            counters.accepted += 1
            counters.open += 1
            counters.maxOpen = max(counters.maxOpen, counters.open)
            return counters.accepted - 1
        }
    }

    fileprivate func closed() {
        counters.withLock { $0.open -= 1 }
    }

    fileprivate func received(_ request: Request) -> [Step] {
        counters.withLock { $0.requests.append(request) }
        return behaviour(request)
    }

    private final class Connection: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let server: RawUpstream
        var id = 0
        var index = 0
        var buffer: [UInt8] = []
        var busy = false
        var idleClose: Scheduled<Void>?

        init(server: RawUpstream) {
            self.server = server
        }

        func channelActive(context: ChannelHandlerContext) {
            id = server.opened()
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            server.closed()
            idleClose?.cancel()
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            buffer += Array(buffer: unwrapInboundIn(data))
            if !server.closeIgnoresArrivals {
                idleClose?.cancel()
                idleClose = nil
            }
            takeRequest(context: context)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        private func takeRequest(context: ChannelHandlerContext) {
            guard !busy, let end = findHeadEnd() else { return }
            let head = String(decoding: buffer[..<end], as: UTF8.self)
            var length = 0
            for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            guard buffer.count >= end + 4 + length else { return }
            let body = Array(buffer[(end + 4)..<(end + 4 + length)])
            buffer.removeFirst(end + 4 + length)
            let request = Request(connection: id, index: index, head: head, body: body)
            index += 1
            busy = true
            run(server.received(request)[...], context: context)
        }

        private func findHeadEnd() -> Int? {
            guard buffer.count >= 4 else { return nil }
            for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
                return i
            }
            return nil
        }

        private func run(_ steps: ArraySlice<Step>, context: ChannelHandlerContext) {
            guard context.channel.isActive else { return }
            var steps = steps
            while let step = steps.popFirst() {
                switch step {
                case .write(let bytes):
                    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                case .pause(let duration):
                    let rest = steps
                    let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: TimeAmount(duration)) {
                        bound.value.0.run(rest, context: bound.value.1)
                    }
                    return
                case .close:
                    context.close(promise: nil)
                    return
                case .reset:
                    let channel = context.channel
                    if let provider = channel as? any SocketOptionProvider {
                        provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
                    } else {
                        context.close(promise: nil)
                    }
                    return
                }
            }
            busy = false
            if let after = server.closeIdleAfter {
                idleClose?.cancel()
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                idleClose = context.eventLoop.scheduleTask(in: TimeAmount(after)) { bound.value.close(promise: nil) }
            }
            takeRequest(context: context)
        }
    }
}
