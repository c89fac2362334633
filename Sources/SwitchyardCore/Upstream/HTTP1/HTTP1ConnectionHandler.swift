import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// One upstream connection: carries out what ``HTTP1ConnectionStateMachine`` decides (the shape
/// of AsyncHTTPClient's `HTTP1ClientChannelHandler`). Lives on its channel's event loop; the pool
/// calls it there.
///
/// Pipeline: `[HTTPConnectTunnel]` `[NIOSSLClientHandler]` → ``PlainHTTP1Decoder`` (and NIO's
/// `HTTPResponseDecoder` after it, once an answer is not plain) → this. The request goes out as
/// raw bytes from the decoder's context; the decoder's side is told of each request head
/// directly, so it can pair the answer with it. The channel's autoRead is off: this handler reads
/// while a response head is due, while the caller wants more body, and while idle (so a close by
/// the upstream, or a stray byte, is seen).
final class HTTP1ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    let id: HTTP1PoolStateMachine.ConnectionID
    let eventLoop: any EventLoop
    private let pool: HTTP1ConnectionPool
    private var machine: HTTP1ConnectionStateMachine
    private let answers: UpstreamResponseSide
    private let waitsForHandshake: Bool
    private var context: ChannelHandlerContext?
    /// The decoder's context: bytes written from there go straight to TLS or the socket.
    private var writeContext: ChannelHandlerContext?
    /// The request this connection serves.
    private var exchange: HTTP1Exchange?
    /// A request whose answer was read whole: its caller gets the end once the connection is
    /// back in the pool (or closed), so a next request of the same caller finds it idle.
    private var finished: HTTP1Exchange?
    private var report = Report.connecting
    private var timer: NIOScheduledCallback?
    private var timerDeadline: NIODeadline?
    private var readPending = false

    /// What the pool has been told.
    private enum Report {
        case connecting
        case ready
        case gone
    }

    init(
        id: HTTP1PoolStateMachine.ConnectionID, pool: HTTP1ConnectionPool, answers: UpstreamResponseSide, eventLoop: any EventLoop,
        connectStarted: NIODeadline, connectDeadline: NIODeadline, timeouts: HTTP1ConnectionStateMachine.Timeouts
    ) {
        self.id = id
        self.pool = pool
        self.answers = answers
        self.eventLoop = eventLoop
        waitsForHandshake = pool.settings.sslContext != nil || pool.settings.route.tunnel != nil
        machine = HTTP1ConnectionStateMachine(connectStarted: connectStarted, connectDeadline: connectDeadline, timeouts: timeouts)
    }

    // MARK: Called by the pool (on the event loop)

    /// Sends `exchange`'s request; false (and nothing sent) when its caller has gone away.
    func execute(_ exchange: HTTP1Exchange) -> Bool {
        guard report == .ready, machine.isIdle else {
            // Closed between the pool's choice and this call: the request goes back in line.
            pool.retryUnsent(exchange)
            return true
        }
        let now = NIODeadline.now()
        guard let headDeadline = exchange.assign(to: self, now: now) else { return false }
        precondition(self.exchange == nil, "a connection serves one request at a time")
        self.exchange = exchange
        // The decoder pairs each response with a request head it has seen (and refuses others).
        answers.requestSent(exchange.head)
        run(machine.startRequest(headDeadline: headDeadline, keepAlive: !exchange.request.closeAfterResponse, now: now))
        return true
    }

    /// The caller of `exchange` went away or wants more of its body.
    func signal(_ signal: HTTP1Exchange.Signal, from exchange: HTTP1Exchange) {
        guard self.exchange === exchange else { return }
        switch signal {
        case .abandon: run(machine.requestAbandoned())
        case .demand: run(machine.demandMore(now: .now()))
        }
    }

    func shutdown() {
        run(machine.shutdown())
    }

    var closeFuture: EventLoopFuture<Void>? { context?.channel.closeFuture }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The pool puts the decoder right before this handler.
        writeContext = try? context.pipeline.syncOperations.context(handlerType: PlainHTTP1Decoder.self)
        if context.channel.isActive {
            run(machine.channelActive(waitsForHandshake: waitsForHandshake, now: .now()))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        self.context = nil
        writeContext = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        run(machine.channelActive(waitsForHandshake: waitsForHandshake, now: .now()))
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.channelInactive(now: .now(), answerBegan: answers.answerBegan))
        cancelTimer()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            answers.headArrived(head)
            run(machine.responseHead(head, now: .now()))
        case .body(let part):
            run(machine.responseBodyPart(part))
        case .end:
            run(machine.responseEnd(now: .now()))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readPending = false
        run(machine.channelReadComplete(now: .now(), pendingBytes: answers.hasPendingBytes))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            run(machine.handshakeCompleted(now: .now()))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let error = HTTP1ClientError.classify(error, established: machine.isEstablished)
        run(machine.errorCaught(error, now: .now(), answerBegan: answers.answerBegan))
    }

    // MARK: Actions

    private func run(_ action: HTTP1ConnectionStateMachine.Action) {
        switch action {
        case .none:
            break

        case .read:
            read()
            updateTimer()

        case .connectionReady:
            read()
            updateTimer()
            report = .ready
            pool.connectionReady(self)

        case .connectFailed(let error):
            cancelTimer()
            context?.close(promise: nil)
            if report == .connecting {
                report = .gone
                pool.connectFailed(id, error: error)
            }

        case .sendRequest:
            guard let exchange, let writeContext else {
                run(machine.errorCaught(HTTP1ClientError(.reset, "the connection's pipeline has no HTTP decoder"), now: .now()))
                return
            }
            writeContext.write(NIOAny(exchange.request.bytes), promise: nil)
            if let body = exchange.request.trailingBody {
                writeContext.write(NIOAny(body), promise: nil)
            }
            writeContext.flush()
            read()
            updateTimer()

        case .forwardHead(let head):
            if exchange?.receiveHead(head) == true {
                updateTimer()
            } else {
                run(machine.requestAbandoned())
            }

        case .forwardBodyPart(let part):
            switch exchange?.receiveBodyPart(part) ?? .abandoned {
            case .keepReading: break
            case .bufferFull: machine.bodyBufferFull()
            case .abandoned: run(machine.requestAbandoned())
            }

        case .forwardEnd(let keepAlive):
            finished = exchange
            exchange = nil
            answers.answerEnded()
            guard keepAlive else {
                deliverEnd()
                cancelTimer()
                context?.close(promise: nil)
                gone()
                return
            }
            // Kept alive: the connection goes back to the pool once this read is processed and
            // nothing else came with it (`release`).

        case .release(let keepAliveTimeout):
            defer { deliverEnd() }
            // An answer that ended with the connection (no length, read to EOF) leaves it
            // closed: the coming channelInactive reports it.
            guard context?.channel.isActive == true, report == .ready else { return }
            read()
            updateTimer()
            pool.release(self, keepAliveTimeout: keepAliveTimeout)

        case .failRequest(let error, let retry):
            let failed = exchange
            exchange = nil
            cancelTimer()
            context?.close(promise: nil)
            gone()
            if let failed {
                if retry, failed.prepareRetry() {
                    pool.retry(failed)
                } else {
                    failed.fail(error)
                }
            }

        case .close:
            cancelTimer()
            context?.close(promise: nil)
            gone()
            deliverEnd()

        case .connectionClosed:
            cancelTimer()
            gone(idleCloseByUpstream: true)
        }
    }

    private func deliverEnd() {
        guard let done = finished else { return }
        finished = nil
        done.receiveEnd()
    }

    private func read() {
        guard !readPending, let context else { return }
        readPending = true
        context.read()
    }

    /// Tells the pool, once, that this connection serves no more.
    private func gone(idleCloseByUpstream: Bool = false) {
        switch report {
        case .ready:
            report = .gone
            pool.connectionGone(self, idleCloseByUpstream: idleCloseByUpstream)
        case .connecting:
            report = .gone
            pool.connectFailed(id, error: HTTP1ClientError(.connect, "connection closed before it was established"))
        case .gone:
            break
        }
    }

    // MARK: Timer

    /// One timer per connection, armed for the earliest deadline the state machine has; a
    /// deadline that moves later (a new request, a body part) leaves it as it is, and it re-arms
    /// itself when it fires early. So a busy connection does not schedule a timer per request.
    private func updateTimer() {
        guard let deadline = machine.nextDeadline, deadline != .distantFuture else { return }
        if let armed = timerDeadline, armed <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = try? eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: TimerCallback(connection: self))
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    fileprivate func timerFired() {
        timer = nil
        timerDeadline = nil
        run(machine.timerFired(now: .now()))
        updateTimer()
    }

    private struct TimerCallback: NIOScheduledCallbackHandler {
        let connection: HTTP1ConnectionHandler

        func handleScheduledCallback(eventLoop: some EventLoop) {
            connection.timerFired()
        }
    }
}

@available(*, unavailable)
extension HTTP1ConnectionHandler: Sendable {}
