import NIOCore
import NIOHTTP1

/// When a caller's connection ends on Switchyard's side: after `idleTimeout` without a request,
/// or when asked to quiesce (graceful shutdown) — at once when no request is open, else right
/// after the last open request is answered. Counts every request and answer of the connection,
/// whichever front serves it (the proxy fast path or Hummingbird); it replaces Hummingbird's
/// `HTTPConnectionStateHandler`, whose rules it keeps, because that one sits behind the fast path
/// and would see only Hummingbird's share.
struct ConnectionLifecycle: Equatable {
    enum Action: Equatable {
        case none
        case armTimer(NIODeadline)
        case close
    }

    let idleTimeout: TimeAmount?
    private(set) var isActive = false
    private(set) var openRequests = 0
    private(set) var readingRequest = false
    private(set) var lastActive: NIODeadline
    private(set) var closeWhenAnswered = false

    init(idleTimeout: TimeAmount?, now: NIODeadline) {
        self.idleTimeout = idleTimeout
        self.lastActive = now
    }

    mutating func activated(now: NIODeadline) -> Action {
        isActive = true
        lastActive = now
        return idleTimeout.map { .armTimer(now + $0) } ?? .none
    }

    mutating func deactivated() {
        isActive = false
    }

    mutating func read(head: Bool, end: Bool, now: NIODeadline) {
        lastActive = now
        if head {
            readingRequest = true
            openRequests += 1
        }
        if end { readingRequest = false }
    }

    /// An answer's last part was written.
    mutating func answered(now: NIODeadline) -> Action {
        // An answer to no counted request (a 400 for bytes that never parsed) leaves the count at 0.
        openRequests = max(0, openRequests - 1)
        guard openRequests == 0 else { return .none }
        if closeWhenAnswered { return .close }
        guard let idleTimeout, isActive else { return .none }
        lastActive = now
        return .armTimer(now + idleTimeout)
    }

    mutating func timerFired(now: NIODeadline) -> Action {
        guard let idleTimeout, isActive else { return .none }
        // Read and being answered: not idle. The timer is armed again when the answer ends.
        if !readingRequest, openRequests > 0 { return .none }
        let due = lastActive + idleTimeout
        return now >= due ? .close : .armTimer(due)
    }

    mutating func quiesce() -> Action {
        guard openRequests > 0 else { return .close }
        closeWhenAnswered = true
        return .none
    }
}

/// Carries out ``ConnectionLifecycle`` on a connection's pipeline, in NIO's HTTP/1 types.
final class ConnectionLifecycleHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var lifecycle: ConnectionLifecycle
    private var timer: Scheduled<Void>?

    init(idleTimeout: TimeAmount?) {
        lifecycle = ConnectionLifecycle(idleTimeout: idleTimeout, now: .now())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { perform(lifecycle.activated(now: .now()), context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if !lifecycle.isActive { perform(lifecycle.activated(now: .now()), context: context) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        lifecycle.deactivated()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: lifecycle.read(head: true, end: false, now: .now())
        case .body: lifecycle.read(head: false, end: false, now: .now())
        case .end: lifecycle.read(head: false, end: true, now: .now())
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        switch lifecycle.answered(now: .now()) {
        case .close:
            context.writeAndFlush(data, promise: promise)
            context.close(promise: nil)
        case .armTimer(let deadline):
            context.write(data, promise: promise)
            arm(deadline, context: context)
        case .none:
            context.write(data, promise: promise)
        }
    }

    /// An answer written past this handler as finished bytes (``PipelineResponseWriter``'s whole
    /// answers on the fast path), counted as if its `.end` had come through here.
    func answeredPast(context: ChannelHandlerContext) {
        perform(lifecycle.answered(now: .now()), context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        perform(lifecycle.quiesce(), context: context)
    }

    private func perform(_ action: ConnectionLifecycle.Action, context: ChannelHandlerContext) {
        switch action {
        case .none: break
        case .close: context.close(promise: nil)
        case .armTimer(let deadline): arm(deadline, context: context)
        }
    }

    /// One timer at a time: a later deadline is taken up when the armed one fires.
    private func arm(_ deadline: NIODeadline, context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.timer = nil
            handler.perform(handler.lifecycle.timerFired(now: .now()), context: context)
        }
    }
}
