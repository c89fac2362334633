import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The keep-alive connections to one upstream on one event loop, and the requests waiting for
/// one. Lives on its event loop: ``HTTP1Client`` keeps it in a `NIOLoopBoundBox`, and every call
/// into it comes from that loop.
///
/// Idle connections are reused last-in first-out (the most recently used is the least likely to
/// have been closed by the upstream; the oldest age out after `idleConnectionTimeout`). A
/// request finding none idle waits in line while a connection is opened for it, up to
/// `maxConnections`; a connection that becomes free goes to the oldest waiter first.
final class HTTP1ConnectionPool {
    struct Settings: Sendable {
        var host: String
        var port: Int
        var sslContext: NIOSSLContext?
        /// Sent as SNI and checked against the certificate; nil for an IP address (then the
        /// certificate is checked against the address).
        var serverHostname: String?
        var connectTimeout: TimeAmount
        var timeouts: HTTP1ConnectionStateMachine.Timeouts
        /// The limit for this event loop's pool.
        var maxConnections: Int
    }

    let eventLoop: any EventLoop
    private let settings: Settings
    /// Established connections waiting for a request; the last is the most recently used.
    private var idle: [HTTP1ConnectionHandler] = []
    /// Every established connection, idle or busy.
    private var live: [ObjectIdentifier: HTTP1ConnectionHandler] = [:]
    private var connecting = 0
    private var waiters = CircularBuffer<HTTP1Exchange>()
    private var waiterTimer: NIOScheduledCallback?
    private var waiterTimerDeadline: NIODeadline?
    private var isShutDown = false

    init(eventLoop: any EventLoop, settings: Settings) {
        self.eventLoop = eventLoop
        self.settings = settings
    }

    /// What the pool holds, for tests and metrics.
    struct Statistics: Sendable, Equatable {
        var idle: Int
        var live: Int
        var connecting: Int
        var waiting: Int
    }

    var statistics: Statistics {
        Statistics(idle: idle.count, live: live.count, connecting: connecting, waiting: waiters.count)
    }

    // MARK: Requests

    func lease(_ exchange: HTTP1Exchange) {
        guard !isShutDown else {
            exchange.fail(.shutdown)
            return
        }
        if let connection = idle.popLast() {
            if !connection.execute(exchange) {
                // The caller went away before its request could start.
                idle.append(connection)
            }
            return
        }
        guard exchange.isWaitingForHead else { return }
        waiters.append(exchange)
        armWaiterTimer(for: exchange.headDeadline)
        connectIfNeeded()
    }

    /// A request whose reused connection closed before any answer (the keep-alive race) goes
    /// again, first in line, on a connection opened for it or one that has just finished an
    /// answer: never on one that waited idle in the pool, which may be as stale as the one that
    /// failed.
    func retry(_ exchange: HTTP1Exchange) {
        guard !isShutDown else {
            exchange.fail(.shutdown)
            return
        }
        waiters.prepend(exchange)
        armWaiterTimer(for: exchange.headDeadline)
        if live.count + connecting >= settings.maxConnections, !idle.isEmpty {
            // Make room: the oldest idle connection goes.
            idle.removeFirst().shutdown()
        }
        connectIfNeeded()
    }

    func exchangeSignalled(_ exchange: HTTP1Exchange, _ signal: HTTP1Exchange.Signal) {
        if case .abandon = signal, let index = waiters.firstIndex(where: { $0 === exchange }) {
            waiters.remove(at: index)
            return
        }
        exchange.connection?.signal(signal, from: exchange)
    }

    // MARK: Connections

    private func connectIfNeeded() {
        while !isShutDown, waiters.count > connecting, live.count + connecting < settings.maxConnections {
            connect()
        }
    }

    private func connect() {
        connecting += 1
        let settings = self.settings
        let deadline = NIODeadline.now() + settings.connectTimeout
        ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(ChannelOptions.autoRead, value: false)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext = settings.sslContext {
                        try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: settings.serverHostname))
                    }
                    let answers = UpstreamResponseSide()
                    try pipeline.addHandler(PlainHTTP1Decoder(side: answers))
                    try pipeline.addHandler(
                        HTTP1ConnectionHandler(
                            answers: answers, isTLS: settings.sslContext != nil, eventLoop: channel.eventLoop, connectDeadline: deadline,
                            timeouts: settings.timeouts
                        )
                    )
                }
            }
            .connect(host: settings.host, port: settings.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    guard let handler = try? channel.pipeline.syncOperations.handler(type: HTTP1ConnectionHandler.self) else {
                        channel.close(promise: nil)
                        self.connectFailed(HTTP1ClientError(.connect, "connection handler missing"))
                        return
                    }
                    handler.attach(to: self)
                case .failure(let error):
                    self.connectFailed(HTTP1ClientError.classify(error, established: false))
                }
            }
    }

    /// Called by a connection once established (TCP, and TLS when configured).
    func connectionReady(_ connection: HTTP1ConnectionHandler) {
        connecting -= 1
        live[ObjectIdentifier(connection)] = connection
        release(connection)
    }

    /// Called when an attempt failed. The oldest waiter not covered by another attempt fails
    /// with the error; the others keep waiting for their own attempts or a free connection.
    func connectFailed(_ error: HTTP1ClientError) {
        connecting -= 1
        if !isShutDown, waiters.count > connecting, let waiter = waiters.popFirst() {
            waiter.fail(error)
        }
        connectIfNeeded()
    }

    /// Called by a connection that has finished a response and can take another.
    func release(_ connection: HTTP1ConnectionHandler) {
        if isShutDown {
            connection.shutdown()
            return
        }
        while let waiter = waiters.popFirst() {
            if connection.execute(waiter) { return }
        }
        idle.append(connection)
    }

    /// Called, once, by a connection that serves no more (closed, failed, not reusable).
    func connectionGone(_ connection: HTTP1ConnectionHandler) {
        live.removeValue(forKey: ObjectIdentifier(connection))
        if let index = idle.firstIndex(where: { $0 === connection }) {
            idle.remove(at: index)
        }
        connectIfNeeded()
    }

    // MARK: Waiters' deadlines

    /// One timer for the pool, armed for the earliest head deadline of a waiting request; it
    /// fails the waiters whose deadline has passed and re-arms for the next.
    private func armWaiterTimer(for deadline: NIODeadline) {
        guard deadline != .distantFuture else { return }
        if let armed = waiterTimerDeadline, armed <= deadline { return }
        waiterTimer?.cancel()
        waiterTimerDeadline = deadline
        waiterTimer = try? eventLoop.assumeIsolated().scheduleCallback(at: deadline, handler: WaiterTimer(pool: self))
    }

    fileprivate func waiterTimerFired() {
        waiterTimer = nil
        waiterTimerDeadline = nil
        guard !waiters.isEmpty else { return }
        let now = NIODeadline.now()
        var expired: [HTTP1Exchange] = []
        var next: NIODeadline?
        var kept = CircularBuffer<HTTP1Exchange>(initialCapacity: waiters.count)
        for waiter in waiters {
            if waiter.headDeadline <= now {
                expired.append(waiter)
            } else {
                kept.append(waiter)
                if waiter.headDeadline != .distantFuture { next = min(next ?? waiter.headDeadline, waiter.headDeadline) }
            }
        }
        waiters = kept
        for waiter in expired { waiter.fail(.headTimeoutWaitingForConnection) }
        if let next { armWaiterTimer(for: next) }
    }

    private struct WaiterTimer: NIOScheduledCallbackHandler {
        let pool: HTTP1ConnectionPool

        func handleScheduledCallback(eventLoop: some EventLoop) {
            pool.waiterTimerFired()
        }
    }

    // MARK: Shutdown

    /// Fails waiting requests, fails the requests under way and closes every connection;
    /// completes when the connections are closed. Attempts still connecting close themselves
    /// when they complete.
    func shutdown() -> EventLoopFuture<Void> {
        isShutDown = true
        waiterTimer?.cancel()
        waiterTimer = nil
        waiterTimerDeadline = nil
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting { waiter.fail(.shutdown) }
        let connections = Array(live.values)
        idle.removeAll()
        let closed = connections.compactMap(\.closeFuture)
        for connection in connections { connection.shutdown() }
        return EventLoopFuture.andAllComplete(closed, on: eventLoop)
    }
}

@available(*, unavailable)
extension HTTP1ConnectionPool: Sendable {}
