import DequeModule
import HummingbirdCore
import NIOCore
import NIOHTTP1

/// The proxy path on the connection's pipeline: a `POST /v1/messages` (or count_tokens) with a
/// declared length is read here, in NIO's HTTP/1 types, and answered through this handler's
/// context, instead of being converted to HTTP types and crossing into Hummingbird's request loop
/// through `NIOAsyncChannel` and back through its outbound writer (bench/README.md: a third of the
/// router's CPU per request). Everything else — other endpoints, absolute-form targets, chunked or
/// oversized bodies, `Expect` — goes on to Hummingbird unchanged, so its handling of them stays
/// the one that is tested.
///
/// Sits after ``ConnectionGuard`` and ``ConnectionLifecycle``, so client timeouts, idle timeouts
/// and graceful quiescing see these requests and answers like any other, and the request is
/// cancelled when the caller leaves.
final class ProxyFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case collecting(HTTPRequestHead, Target, ByteBuffer, declaredLength: Int)
        /// A request's task is answering; later parts (a pipelining caller) wait in `queued`.
        case answering
    }

    private let front: HTTPFront
    /// Where this connection's requests are served (by a task of the connection's scope).
    private let requests: FastPathRequests
    /// Where whole answers go as finished bytes (``ResponseOutlet``); without one (a pipeline lacking
    /// NIO's encoder or ``ConnectionLifecycleHandler``) every request goes on to Hummingbird.
    private var outlet: ResponseOutlet?
    private var state = State.idle
    /// Requests handed on to Hummingbird whose answer has not ended yet: while there is one, a new
    /// request goes on too, so answers leave in the order the requests came.
    private var downstream = 0
    private var queued = Deque<HTTPServerRequestPart>()
    /// A `read` held back while too many parts wait.
    private var heldRead = false
    /// Parts went on to Hummingbird since the last read-complete: only then does it need one.
    private var forwarded = false

    init(front: HTTPFront, requests: FastPathRequests) {
        self.front = front
        self.requests = requests
    }

    func handlerAdded(context: ChannelHandlerContext) {
        outlet = ResponseOutlet.find(from: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        outlet = nil  // it holds other handlers' contexts
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .answering = state {
            queued.append(part)
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            if downstream == 0, let (target, length) = eligible(head) {
                state = .collecting(head, target, ByteBuffer(), declaredLength: length)
            } else {
                downstream += 1
                forward(part, context: context)
            }
        case (.collecting(let head, let target, var body, let declared), .body(var chunk)):
            state = .idle  // lets `body` be written without a copy
            if body.readableBytes == 0 {
                // Nearly always the whole body, a slice of the read: kept as it is, no buffer made.
                body = chunk
            } else {
                // The decoder holds the body to its declared length: one buffer of that size.
                body.reserveCapacity(minimumWritableBytes: max(declared - body.readableBytes, chunk.readableBytes))
                body.writeBuffer(&chunk)
            }
            state = .collecting(head, target, body, declaredLength: declared)
        case (.collecting(let head, let target, let body, _), .end):
            state = .answering
            answer(head, target: target, body: body, context: context)
        case (.collecting, .head):
            // The decoder never sends a head inside a request; treat it as a broken connection.
            context.close(promise: nil)
        default:
            forward(part, context: context)
        }
    }

    private func forward(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        forwarded = true
        context.fireChannelRead(wrapInboundOut(part))
    }

    /// Kept from Hummingbird's side when this read brought it nothing: a read-complete there
    /// costs a pass through its handlers for every request the fast path answers.
    func channelReadComplete(context: ChannelHandlerContext) {
        guard forwarded else { return }
        forwarded = false
        context.fireChannelReadComplete()
    }

    /// A request target of the proxy: its API and its query string (without `?`).
    private struct Target {
        var api: CallerAPI
        var query: Substring?

        /// nil for anything but an origin-form target of one of the table's proxy endpoints.
        init?(_ uri: String, endpoints: EndpointTable) {
            let mark = uri.utf8.firstIndex(of: UInt8(ascii: "?"))
            guard let api = endpoints.proxyAPI(postPath: mark.map { uri[..<$0] } ?? Substring(uri)) else { return nil }
            self.api = api
            query = mark.map { uri[uri.index(after: $0)...] }
        }
    }

    /// The target and the body's declared length when this request is the fast path's.
    private func eligible(_ head: HTTPRequestHead) -> (Target, Int)? {
        guard outlet != nil, head.method == .POST, let target = Target(head.uri, endpoints: front.endpoints) else { return nil }
        let headers = head.headers
        guard !headers.contains(name: "expect"), !headers.contains(name: "transfer-encoding"),
            let length = headers.first(name: "content-length").flatMap({ Int($0) }), length >= 0,
            length <= front.configuration.table.config.server.maxBody
        else { return nil }
        return (target, length)
    }

    private func answer(_ head: HTTPRequestHead, target: Target, body: ByteBuffer, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        // eligible() took the request only with an outlet; none now means the handler is gone.
        guard let found = self.outlet else { return context.close(promise: nil) }
        let outlet = NIOLoopBound(found, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let front = self.front
        let channel = context.channel
        let closeAfter = head.headers.first(name: "connection")?.lowercased() == "close"
        let inbound = HTTPFront.ProxyInbound(api: target.api, headers: head.headers, query: target.query, body: .whole(body))
        requests.submit {
            var failed = false
            do {
                try await front.proxy(inbound, writer: PipelineResponseWriter(context: bound, outlet: outlet), channel: channel)
            } catch {
                failed = true
            }
            let close = failed || closeAfter
            // The serving task runs on the connection's loop, so this is a call, not one more job
            // for the loop.
            if bound.eventLoop.inEventLoop {
                handler.value.answered(context: bound.value, close: close)
            } else {
                bound.eventLoop.execute { handler.value.answered(context: bound.value, close: close) }
            }
        }
    }

    private func answered(context: ChannelHandlerContext, close: Bool) {
        state = .idle
        if close {
            queued.removeAll()
            context.close(promise: nil)
            return
        }
        guard !queued.isEmpty else { return resumeReading(context: context) }
        while let part = queued.popFirst() {
            handle(part, context: context)
            if case .answering = state { break }
        }
        // Parts replayed here arrive outside a read cycle; NIOAsyncChannel hands what it was given
        // to Hummingbird only on read-complete.
        channelReadComplete(context: context)
        resumeReading(context: context)
    }

    private func resumeReading(context: ChannelHandlerContext) {
        if heldRead, queued.count < Self.maxQueued {
            heldRead = false
            context.read()
        }
    }

    private static let maxQueued = 64

    func read(context: ChannelHandlerContext) {
        if case .answering = state, queued.count >= Self.maxQueued {
            heldRead = true
            return
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Only Hummingbird's answers pass here (the fast path writes from its own context).
        if case .end = unwrapOutboundIn(data), downstream > 0 { downstream -= 1 }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .idle:
            context.fireErrorCaught(error)
        case .collecting, .answering:
            // A request of the fast path is open: Hummingbird must not answer this connection too.
            context.close(promise: nil)
        }
    }
}
