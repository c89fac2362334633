import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// An HTTP proxy on loopback, as a company's egress proxy is: `CONNECT host:port` opens a tunnel
/// (for https targets), an absolute-form request (`POST http://host:port/path`) is forwarded (for
/// http ones). With `credentials` set (`user:password`), requests without the matching Basic
/// `Proxy-Authorization` get 407. Every request line it was asked is recorded.
final class TestProxy: Sendable {
    private let listener = Mutex<(any Channel)?>(nil)
    private let seen = Mutex<[String]>([])
    private let authorizations = Mutex<[String?]>([])
    let credentials: String?

    /// The request lines asked of it, in order: `CONNECT 127.0.0.1:443`, `POST http://…`.
    var requestLines: [String] { seen.withLock { $0 } }
    /// The `Proxy-Authorization` values that came with them.
    var proxyAuthorizations: [String?] { authorizations.withLock { $0 } }
    var port: Int { listener.withLock { $0?.localAddress?.port ?? 0 } }
    var url: String { "http://127.0.0.1:\(port)" }

    private init(credentials: String?) {
        self.credentials = credentials
    }

    static func start(credentials: String? = nil) async throws -> TestProxy {
        let proxy = TestProxy(credentials: credentials)
        let bound = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Inbound(proxy: proxy)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        proxy.listener.withLock { $0 = bound }
        return proxy
    }

    func stop() async {
        try? await listener.withLock { $0 }?.close()
    }

    fileprivate func record(_ line: String, authorization: String?) {
        seen.withLock { $0.append(line) }
        authorizations.withLock { $0.append(authorization) }
    }

    fileprivate var expectedAuthorization: String? {
        credentials.map { "Basic " + Data($0.utf8).base64EncodedString() }
    }

    /// The client's side: reads the first request head, then either tunnels or forwards.
    private final class Inbound: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let proxy: TestProxy
        var buffer = ByteBuffer()
        var peer: (any Channel)?

        init(proxy: TestProxy) {
            self.proxy = proxy
        }

        /// Tunnelling (after CONNECT): bytes go through as they are.
        var tunnel = false
        /// Forwarding: requests ready to go once the upstream connection is up.
        var pending: [ByteBuffer] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            if tunnel {
                peer?.writeAndFlush(bytes, promise: nil)
                return
            }
            buffer.writeBuffer(&bytes)
            // Every request of a kept-alive connection is read and forwarded on its own.
            while let request = takeRequest(context: context) {
                if let peer { peer.writeAndFlush(request, promise: nil) } else { pending.append(request) }
            }
        }

        /// The next whole request in `buffer`, in origin form for forwarding; nil when none is
        /// whole yet (or the connection was tunnelled or refused).
        private func takeRequest(context: ChannelHandlerContext) -> ByteBuffer? {
            guard !tunnel, let text = buffer.getString(at: buffer.readerIndex, length: buffer.readableBytes),
                let end = text.range(of: "\r\n\r\n")
            else { return nil }
            let head = String(text[..<end.lowerBound])
            let lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.first ?? ""
            let length = lines.dropFirst().first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            let headLength = head.utf8.count + 4
            guard buffer.readableBytes >= headLength + length else { return nil }
            buffer.moveReaderIndex(forwardBy: headLength)
            let body = buffer.readSlice(length: length) ?? ByteBuffer()
            let authorization = lines.dropFirst().first { $0.lowercased().hasPrefix("proxy-authorization:") }
                .map { String($0.dropFirst("proxy-authorization:".count)).trimmingCharacters(in: .whitespaces) }
            proxy.record(requestLine, authorization: authorization)
            if let expected = proxy.expectedAuthorization, authorization != expected {
                let refusal = "HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm=\"test\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: refusal)), promise: nil)
                context.close(promise: nil)
                buffer.clear()
                return nil
            }
            let parts = requestLine.split(separator: " ")
            guard parts.count == 3 else {
                context.close(promise: nil)
                return nil
            }
            if parts[0] == "CONNECT" {
                tunnel = true
                let target = parts[1].split(separator: ":")
                connect(host: String(target[0]), port: Int(target[1]) ?? 443, context: context) { context in
                    context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 Connection Established\r\n\r\n")), promise: nil)
                }
                return nil
            }
            guard let url = URLComponents(string: String(parts[1])), let host = url.host else {
                context.close(promise: nil)
                return nil
            }
            var forwarded = "\(parts[0]) \(url.percentEncodedPath)\(url.percentEncodedQuery.map { "?\($0)" } ?? "") \(parts[2])\r\n"
            for line in lines.dropFirst() where !line.lowercased().hasPrefix("proxy-authorization:") { forwarded += line + "\r\n" }
            forwarded += "\r\n"
            var request = ByteBuffer(string: forwarded)
            var rest = body
            request.writeBuffer(&rest)
            if peer == nil, !connecting {
                connecting = true
                connect(host: host, port: url.port ?? 80, context: context) { _ in
                    for request in self.pending { self.peer?.writeAndFlush(request, promise: nil) }
                    self.pending.removeAll()
                }
            }
            return request
        }

        var connecting = false

        private func connect(host: String, port: Int, context: ChannelHandlerContext, then: @escaping (ChannelHandlerContext) -> Void) {
            let inbound = context.channel
            let bound = NIOLoopBound((self, context, then), eventLoop: context.eventLoop)
            ClientBootstrap(group: context.eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Outbound(peer: inbound)) }
                }
                .connect(host: host, port: port)
                .whenComplete { result in
                    let (handler, context, then) = bound.value
                    switch result {
                    case .success(let channel):
                        handler.peer = channel
                        then(context)
                    case .failure:
                        context.writeAndFlush(handler.wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")), promise: nil)
                        context.close(promise: nil)
                    }
                }
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer?.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    /// The target's side: everything goes back to the client.
    private final class Outbound: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        let peer: any Channel

        init(peer: any Channel) {
            self.peer = peer
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            peer.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
