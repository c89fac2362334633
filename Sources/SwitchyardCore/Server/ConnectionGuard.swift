import NIOCore
import NIOHTTP1
import Synchronization

/// When a caller's connection closes. The tasks serving the connection's requests run in one
/// structured scope (``SwitchyardHTTP1Channel``) that waits for this and then cancels them, so
/// the upstream call of a caller who left stops at once instead of running to completion for
/// nobody.
public final class ConnectionCloseSignal: Sendable {
    private let state = Mutex<(closed: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    /// Returns once the connection has closed (at once if it has), or when the calling task is
    /// cancelled.
    public func closed() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.closed || Task.isCancelled { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            for waiter in state.withLock({ state in defer { state.waiters.removeAll() }; return state.waiters }) { waiter.resume() }
        }
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    func connectionClosed() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.closed = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Per-connection protection against slow and vanished callers:
/// - a request's head and body must arrive within `clientTimeout` of the head;
/// - a caller that stops reading (the connection stays unwritable) is cut after `clientTimeout`;
/// - when the connection closes, its ``ConnectionCloseSignal`` says so (and the requests being
///   served are cancelled).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let closeSignal: ConnectionCloseSignal
    private let clientTimeout: TimeAmount
    private var readTimer: Scheduled<Void>?
    /// When the head of a request not yet read to its end arrived.
    private var requestStarted: NIODeadline?
    private var writeTimer: Scheduled<Void>?

    init(closeSignal: ConnectionCloseSignal, clientTimeout: TimeAmount) {
        self.closeSignal = closeSignal
        self.clientTimeout = clientTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            readTimer?.cancel()
            readTimer = nil
            requestStarted = .now()
        case .end:
            readTimer?.cancel()
            readTimer = nil
            requestStarted = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Armed only when a read ends inside a request: most requests arrive whole in one read,
        // and a timer scheduled and cancelled for each of them was a measurable cost.
        if let started = requestStarted, readTimer == nil {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            readTimer = context.eventLoop.scheduleTask(deadline: started + clientTimeout) {
                // The caller did not finish sending its request in time.
                loopBound.value.close(promise: nil)
            }
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeTimer?.cancel()
            writeTimer = nil
        } else if writeTimer == nil {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            writeTimer = context.eventLoop.scheduleTask(in: clientTimeout) {
                // The caller stopped reading its response.
                loopBound.value.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Hummingbird allows remote half-closure, so a caller that hangs up shows up as end of
        // input, not as an inactive channel: during a stalled stream nothing is written that
        // could fail. HTTP/1.1 callers do not half-close while waiting for an answer, so treat it
        // as the caller leaving.
        if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            closeSignal.connectionClosed()
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        readTimer?.cancel()
        writeTimer?.cancel()
        closeSignal.connectionClosed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        readTimer?.cancel()
        writeTimer?.cancel()
    }
}
