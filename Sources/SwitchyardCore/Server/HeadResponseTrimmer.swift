import DequeModule
import NIOCore
import NIOHTTP1

/// Keeps answers to `HEAD` and `CONNECT` requests without a body (RFC 9110 §9.3.2, RFC 9112 §6.3)
/// for the requests Hummingbird answers.
///
/// NIO's response encoder does this only when `configureHTTPServerPipeline` pairs it with the
/// request decoder, and the pairing counts every decoded request — also those the proxy fast path
/// answers with finished bytes that never pass the encoder (``PipelineResponseWriter``), after which
/// its count would answer the next request with the method of an earlier one. So the encoder is
/// unpaired, and this handler, behind the fast path, sees exactly the requests and answers of
/// Hummingbird's share: it drops their body parts and keeps the head's framing such that an
/// encoder that does not know the method writes no body either.
final class HeadResponseTrimmer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Methods of the requests not answered yet, in order (answers leave in request order).
    private var methods = Deque<HTTPMethod>()
    private var trimming = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { methods.append(head.method) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            // A non-final 1xx is followed by the answer's own head.
            if (100..<200).contains(head.status.code), head.status.code != 101 { return context.write(data, promise: promise) }
            let method = methods.popFirst()
            trimming = method == .HEAD || method == .CONNECT
            guard trimming else { return context.write(data, promise: promise) }
            head.headers = Self.bodiless(head.headers, keepLength: method == .HEAD)
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .body:
            if trimming {
                promise?.succeed(())
            } else {
                context.write(data, promise: promise)
            }
        case .end:
            trimming = false
            context.write(data, promise: promise)
        }
    }

    /// Framing for an answer without a body: a HEAD answer keeps the length a GET would have had;
    /// chunked framing (whose terminator would be a body) becomes an explicit length of 0.
    static func bodiless(_ headers: HTTPHeaders, keepLength: Bool) -> HTTPHeaders {
        var headers = headers
        headers.remove(name: "transfer-encoding")
        if !keepLength { headers.remove(name: "content-length") }
        if !headers.contains(name: "content-length") { headers.add(name: "content-length", value: "0") }
        return headers
    }
}
