import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// One upstream connection: carries out what ``HTTP1ConnectionStateMachine`` decides (the shape
/// of AsyncHTTPClient's `HTTP1ClientChannelHandler`). Lives on its channel's event loop, which is
/// its pool's.
///
/// Pipeline: `[NIOSSLClientHandler]` → ``PlainHTTP1Decoder`` (and NIO's `HTTPResponseDecoder`
/// after it, once an answer is not plain) → this. The request goes out as raw bytes from the
/// decoder's context; the decoder's side is told of each request head directly, so it can pair
/// the answer with it. The channel's autoRead is off: this handler reads while a response head
/// is due, while the caller wants more body, and while idle (so a close by the upstream is seen).
final class HTTP1ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var machine: HTTP1ConnectionStateMachine
    private let answers: UpstreamResponseSide
    private let isTLS: Bool
    let eventLoop: any EventLoop
    private var context: ChannelHandlerContext?
    /// The decoder's context: bytes written from there go straight to TLS or the socket.
    private var writeContext: ChannelHandlerContext?
    /// The request this connection serves.
    private var exchange: HTTP1Exchange?
    private var registration = Registration.unattached(pending: nil)
    private var timer: NIOScheduledCallback?
    private var timerDeadline: NIODeadline?
    private var readPending = false

    /// Where the connection stands with its pool.
    private enum Registration {
        /// The pool has not taken the channel yet (the connect future has not completed);
        /// `pending` is how establishing it ended, if it has.
        case unattached(pending: Result<Void, HTTP1ClientError>?)
        /// The pool has the channel and waits for it to be established (TLS handshake).
        case attached(HTTP1ConnectionPool)
        /// The pool counts it as a live connection.
        case registered(HTTP1ConnectionPool)
        /// The pool has been told it is gone.
        case gone
    }

    init(answers: UpstreamResponseSide, isTLS: Bool, eventLoop: any EventLoop, connectDeadline: NIODeadline, timeouts: HTTP1ConnectionStateMachine.Timeouts) {
        self.answers = answers
        self.isTLS = isTLS
        self.eventLoop = eventLoop
        machine = HTTP1ConnectionStateMachine(connectDeadline: connectDeadline, timeouts: timeouts)
    }

    // MARK: Called by the pool (on the event loop)

    /// The pool takes the channel once connected; it hears back when the connection is ready (at
    /// once for plain TCP, after the handshake for TLS) or failed.
    func attach(to pool: HTTP1ConnectionPool) {
        guard case .unattached(let pending) = registration else { return }
        if let pending {
            settle(pending, in: pool)
        } else {
            registration = .attached(pool)
        }
    }

    /// The connection is up (or failed) and its pool is known: tell the pool.
    private func settle(_ result: Result<Void, HTTP1ClientError>, in pool: HTTP1ConnectionPool) {
        switch result {
        case .success:
            registration = .registered(pool)
            pool.connectionReady(self)
        case .failure(let error):
            registration = .gone
            pool.connectFailed(error)
        }
    }

    /// Sends `exchange`'s request; false (and nothing sent) when its caller has gone away.
    func execute(_ exchange: HTTP1Exchange) -> Bool {
        guard exchange.assign(to: self) else { return false }
        precondition(self.exchange == nil, "a connection serves one request at a time")
        self.exchange = exchange
        // The decoder pairs each response with a request head it has seen (and refuses others).
        answers.requestSent(exchange.head)
        run(machine.startRequest(headDeadline: exchange.headDeadline, keepAlive: !exchange.request.closeAfterResponse))
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
            run(machine.channelActive(isTLS: isTLS, now: .now()))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        self.context = nil
        writeContext = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        run(machine.channelActive(isTLS: isTLS, now: .now()))
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.channelInactive())
        cancelTimer()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            run(machine.responseHead(head, now: .now()))
        case .body(let part):
            run(machine.responseBodyPart(part))
        case .end:
            run(machine.responseEnd(now: .now()))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readPending = false
        run(machine.channelReadComplete(now: .now()))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            run(machine.tlsHandshakeCompleted(now: .now()))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        run(machine.errorCaught(HTTP1ClientError.classify(error, established: machine.isEstablished)))
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
            established(.success(()))

        case .connectFailed(let error):
            cancelTimer()
            context?.close(promise: nil)
            established(.failure(error))

        case .sendRequest:
            guard let exchange, let writeContext else {
                run(machine.errorCaught(HTTP1ClientError(.reset, "the connection's pipeline has no HTTP decoder")))
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

        case .forwardEnd(let reuse):
            let finished = exchange
            exchange = nil
            finished?.receiveEnd()
            if reuse {
                // An answer that ended with the connection (no length, read to EOF) leaves it
                // closed: the coming channelInactive reports it.
                guard context?.channel.isActive == true, case .registered(let pool) = registration else { return }
                updateTimer()
                // Last: the pool may hand this connection its next request right away.
                pool.release(self)
            } else {
                cancelTimer()
                context?.close(promise: nil)
                gone()
            }

        case .failRequest(let error, let retry):
            let failed = exchange
            exchange = nil
            cancelTimer()
            context?.close(promise: nil)
            let pool = gone()
            if let failed {
                if retry, let pool, failed.prepareRetry() {
                    pool.retry(failed)
                } else {
                    failed.fail(error)
                }
            }

        case .close:
            cancelTimer()
            context?.close(promise: nil)
            gone()

        case .connectionClosed:
            cancelTimer()
            gone()
        }
    }

    private func read() {
        guard !readPending, let context else { return }
        readPending = true
        context.read()
    }

    private func established(_ result: Result<Void, HTTP1ClientError>) {
        switch registration {
        case .unattached(nil):
            registration = .unattached(pending: result)
        case .attached(let pool):
            settle(result, in: pool)
        case .unattached, .registered, .gone:
            break
        }
    }

    /// Tells the pool, once, that this connection serves no more; returns the pool.
    @discardableResult
    private func gone() -> HTTP1ConnectionPool? {
        switch registration {
        case .registered(let pool):
            registration = .gone
            pool.connectionGone(self)
            return pool
        case .unattached(.success):
            // Closed between being established and being taken by the pool.
            registration = .unattached(pending: .failure(HTTP1ClientError(.connect, "connection closed as soon as it was established")))
            return nil
        case .attached(let pool):
            registration = .gone
            pool.connectFailed(HTTP1ClientError(.connect, "connection closed before it was established"))
            return nil
        case .unattached, .gone:
            return nil
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
