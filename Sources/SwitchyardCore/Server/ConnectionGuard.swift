import NIOCore
import NIOHTTP1
import Synchronization

/// Cancels the task serving a connection's current request when the caller goes away, so that the
/// upstream call stops at once instead of running to completion for nobody.
public final class DisconnectCanceller: Sendable {
    private struct TaskBox: @unchecked Sendable {
        // Only used while the owning task is alive: `register` and `unregister` bracket its use,
        // and `cancel` runs under the same lock.
        let task: UnsafeCurrentTask
    }

    private let state = Mutex<(task: TaskBox?, disconnected: Bool)>((nil, false))

    public init() {}

    /// Runs `body`; the surrounding task is cancelled if the connection closes meanwhile.
    public func whileConnected<T>(_ body: () async throws -> T) async rethrows -> T {
        withUnsafeCurrentTask { task in
            guard let task else { return }
            let alreadyGone = state.withLock { state -> Bool in
                state.task = TaskBox(task: task)
                return state.disconnected
            }
            if alreadyGone { task.cancel() }
        }
        defer { state.withLock { $0.task = nil } }
        return try await body()
    }

    public var isDisconnected: Bool { state.withLock { $0.disconnected } }

    func connectionClosed() {
        state.withLock { state in
            state.disconnected = true
            state.task?.task.cancel()
        }
    }
}

/// Per-connection protection against slow and vanished callers:
/// - a request's head and body must arrive within `clientTimeout` of the head;
/// - a caller that stops reading (the connection stays unwritable) is cut after `clientTimeout`;
/// - when the connection closes, the request being served is cancelled.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let canceller: DisconnectCanceller
    private let clientTimeout: TimeAmount
    private var readTimer: Scheduled<Void>?
    /// When the head of a request not yet read to its end arrived.
    private var requestStarted: NIODeadline?
    private var writeTimer: Scheduled<Void>?

    init(canceller: DisconnectCanceller, clientTimeout: TimeAmount) {
        self.canceller = canceller
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
            canceller.connectionClosed()
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        readTimer?.cancel()
        writeTimer?.cancel()
        canceller.connectionClosed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        readTimer?.cancel()
        writeTimer?.cancel()
    }
}
