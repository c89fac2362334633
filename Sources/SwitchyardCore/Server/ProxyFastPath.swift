import DequeModule
import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// The proxy path on the connection's pipeline: a `POST /v1/messages` (or count_tokens) with a
/// declared length is read here and answered through this handler's context, instead of crossing
/// into Hummingbird's request loop through `NIOAsyncChannel` and back through its outbound writer
/// (a quarter of the router's CPU per request, bench/README.md). Everything else — other
/// endpoints, chunked or oversized bodies, `Expect` — goes on to Hummingbird unchanged, so its
/// handling of them stays the one that is tested.
///
/// Sits after Hummingbird's connection state handler, so idle timeouts and graceful quiescing see
/// these requests and answers like any other; the connection guard before it cancels the request
/// when the caller leaves.
final class ProxyFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        case idle
        case collecting(HTTPRequest, ByteBuffer)
        /// A request's task is answering; later parts (a pipelining caller) wait in `queued`.
        case answering
    }

    private let front: HTTPFront
    private let canceller: DisconnectCanceller
    private var state = State.idle
    /// Requests handed on to Hummingbird whose answer has not ended yet: while there is one, a new
    /// request goes on too, so answers leave in the order the requests came.
    private var downstream = 0
    private var queued = Deque<HTTPRequestPart>()
    /// A `read` held back while too many parts wait.
    private var heldRead = false

    init(front: HTTPFront, canceller: DisconnectCanceller) {
        self.front = front
        self.canceller = canceller
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .answering = state {
            queued.append(part)
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            if downstream == 0, let length = eligibleLength(head) {
                state = .collecting(head, context.channel.allocator.buffer(capacity: length))
            } else {
                downstream += 1
                context.fireChannelRead(wrapInboundOut(part))
            }
        case (.collecting(let head, var body), .body(var chunk)):
            state = .idle  // lets `body` be written without a copy
            if body.readableBytes == 0 {
                body = chunk
            } else {
                body.writeBuffer(&chunk)
            }
            state = .collecting(head, body)
        case (.collecting(let head, let body), .end):
            state = .answering
            answer(Request(head: head, body: RequestBody(buffer: body)), context: context)
        case (.collecting, .head):
            // The decoder never sends a head inside a request; treat it as a broken connection.
            context.close(promise: nil)
        default:
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// The body's declared length when this request is the fast path's; nil otherwise.
    private func eligibleLength(_ head: HTTPRequest) -> Int? {
        guard head.method == .post, let path = head.path else { return nil }
        let route = path.firstIndex(of: "?").map { path[..<$0] } ?? Substring(path)
        guard route == "/v1/messages" || route == "/v1/messages/count_tokens" else { return nil }
        guard head.headerFields[.expect] == nil, head.headerFields[.transferEncoding] == nil,
            let length = head.headerFields[.contentLength].flatMap({ Int($0) }), length >= 0,
            length <= front.runtime.table.config.server.maxBody
        else { return nil }
        return length
    }

    private func answer(_ request: Request, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let front = self.front
        let canceller = self.canceller
        let channel = context.channel
        let closeAfter = request.headers[.connection]?.lowercased() == "close"
        Task {
            var failed = false
            do {
                try await front.proxy(request, writer: PipelineAnswerWriter(context: bound), channel: channel, canceller: canceller)
            } catch {
                failed = true
            }
            let close = failed || closeAfter
            bound.eventLoop.execute {
                handler.value.answered(context: bound.value, close: close)
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
        context.fireChannelReadComplete()
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
