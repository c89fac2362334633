import NIOCore
import NIOSSL

/// Opens a `CONNECT` tunnel through an HTTP proxy, then starts TLS inside it: sends the request
/// when the channel becomes active, reads the proxy's answer head, and on a 2xx puts the TLS
/// handler where it stands and leaves the pipeline. Anything else (a 407, a refusal, bytes that
/// are not HTTP, a close) fails the connection as a connect error that names the proxy's answer.
///
/// The proxy's answer is read here, by hand, and not by the connection's HTTP decoder: the bytes
/// after its head belong to TLS.
final class HTTPConnectTunnel: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The proxy's answer head may not be larger than this.
    static let maxAnswerHead = 16 << 10

    private let target: HTTP1ConnectRoute.Endpoint
    private let authorization: String?
    private let sslContext: NIOSSLContext
    private let serverHostname: String?
    private var received = ByteBuffer()
    private var done = false

    init(target: HTTP1ConnectRoute.Endpoint, authorization: String?, sslContext: NIOSSLContext, serverHostname: String?) {
        self.target = target
        self.authorization = authorization
        self.sslContext = sslContext
        self.serverHostname = serverHostname
    }

    func channelActive(context: ChannelHandlerContext) {
        var request = "CONNECT \(target) HTTP/1.1\r\nhost: \(target)\r\n"
        if let authorization { request += "proxy-authorization: \(authorization)\r\n" }
        request += "\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        guard let end = headEnd() else {
            if received.readableBytes > Self.maxAnswerHead { fail(context: context, "the proxy's answer to CONNECT has no end") }
            return
        }
        let head = received.readString(length: end) ?? ""
        received.moveReaderIndex(forwardBy: 4)
        let statusLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            return fail(context: context, "the proxy did not answer CONNECT in HTTP: \(statusLine.prefix(80))")
        }
        guard (200..<300).contains(status) else {
            return fail(context: context, "the proxy refused CONNECT \(target): \(statusLine.prefix(120))")
        }
        done = true
        do {
            let tls = try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname)
            try context.pipeline.syncOperations.addHandler(tls, position: .after(self))
        } catch {
            return fail(context: context, "cannot start TLS in the proxy tunnel: \(error)")
        }
        let rest = received
        received = ByteBuffer()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            context.fireErrorCaught(HTTP1ClientError(.connect, "the proxy closed the connection before the CONNECT tunnel to \(target) was open"))
        }
        context.fireChannelInactive()
    }

    private func headEnd() -> Int? {
        let view = received.readableBytesView
        guard view.count >= 4 else { return nil }
        var index = view.startIndex
        while index <= view.endIndex - 4 {
            if view[index] == 13, view[index + 1] == 10, view[index + 2] == 13, view[index + 3] == 10 {
                return index - view.startIndex
            }
            index += 1
        }
        return nil
    }

    private func fail(context: ChannelHandlerContext, _ detail: String) {
        done = true
        context.fireErrorCaught(HTTP1ClientError(.connect, detail))
        context.close(promise: nil)
    }
}
