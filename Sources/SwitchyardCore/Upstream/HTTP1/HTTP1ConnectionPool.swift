import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The connections to one upstream across every event loop of a group, and the requests waiting
/// for one: carries out what ``HTTP1PoolStateMachine`` decides. The machine sits behind one
/// lock; connections live on their own loops and are called there (directly when the caller is
/// already on that loop, which is the common case: a request takes a connection of its own loop).
final class HTTP1ConnectionPool: Sendable {
    struct Settings: Sendable {
        /// Where connections go: the upstream, or the proxy in front of it.
        var route: HTTP1ConnectRoute
        var sslContext: NIOSSLContext?
        /// Sent as SNI and checked against the certificate; nil for an IP address (then the
        /// certificate is checked against the address).
        var serverHostname: String?
        var connectTimeout: TimeAmount
        var timeouts: HTTP1ConnectionStateMachine.Timeouts
        /// Connections to the upstream in all, across event loops.
        var maxConnections: Int
    }

    let settings: Settings
    let loops: [any EventLoop]
    private let loopIDs: [ObjectIdentifier]
    private let state: Mutex<State>
    private let nextRequestID = Atomic<Int>(0)

    private struct State {
        var machine: HTTP1PoolStateMachine
        /// Requests the machine knows, until a connection takes them or they fail.
        var requests: [HTTP1PoolStateMachine.RequestID: HTTP1Exchange] = [:]
        /// Established connections, until they are gone.
        var connections: [HTTP1PoolStateMachine.ConnectionID: NIOLoopBound<HTTP1ConnectionHandler>] = [:]
        var timer: Scheduled<Void>?
    }

    /// What the actions of one event name, resolved under the lock.
    private struct Work {
        var execute: (HTTP1Exchange, NIOLoopBound<HTTP1ConnectionHandler>, HTTP1PoolStateMachine.ConnectionID)?
        var connect: [(connection: HTTP1PoolStateMachine.ConnectionID, loop: Int)] = []
        var fail: [(HTTP1Exchange, HTTP1ClientError)] = []
        var close: [NIOLoopBound<HTTP1ConnectionHandler>] = []
    }

    init(settings: Settings, loops: [any EventLoop]) {
        self.settings = settings
        self.loops = loops
        loopIDs = loops.map { ObjectIdentifier($0) }
        state = Mutex(State(machine: HTTP1PoolStateMachine(maxConnections: settings.maxConnections, loopCount: loops.count)))
    }

    var statistics: HTTP1PoolStateMachine.Statistics {
        state.withLock { $0.machine.statistics }
    }

    /// The index of `eventLoop` among the pool's loops; a loop of another group maps to one of
    /// ours (the current thread's when it is one of them).
    func loopIndex(of eventLoop: (any EventLoop)?) -> Int {
        if let eventLoop {
            let id = ObjectIdentifier(eventLoop)
            for index in loopIDs.indices where loopIDs[index] == id { return index }
        }
        if let current = MultiThreadedEventLoopGroup.currentEventLoop {
            let id = ObjectIdentifier(current)
            for index in loopIDs.indices where loopIDs[index] == id { return index }
        }
        return nextRequestID.load(ordering: .relaxed) % loops.count
    }

    func makeRequestID() -> Int {
        nextRequestID.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    // MARK: Requests (any thread)

    func lease(_ exchange: HTTP1Exchange) {
        let now = NIODeadline.now()
        let work = apply { state in
            state.requests[exchange.id] = exchange
            return state.machine.lease(exchange.id, loop: exchange.loop, deadline: exchange.queueDeadline, now: now)
        }
        perform(work)
    }

    /// A request whose reused connection closed before it could have been processed (the
    /// keep-alive race) goes again, first in line.
    func retry(_ exchange: HTTP1Exchange) {
        let work = apply { state in
            state.requests[exchange.id] = exchange
            return state.machine.retry(exchange.id, loop: exchange.loop, deadline: exchange.queueDeadline)
        }
        perform(work)
    }

    /// A request the pool handed to a connection that closed before the request could be
    /// written goes back in line, first; it was never sent, so it is not a retry.
    func retryUnsent(_ exchange: HTTP1Exchange) {
        retry(exchange)
    }

    /// The caller of a waiting request went away.
    func cancel(_ exchange: HTTP1Exchange) {
        let work = apply { state in
            guard state.requests.removeValue(forKey: exchange.id) != nil else { return HTTP1PoolStateMachine.Actions() }
            return state.machine.cancel(exchange.id)
        }
        perform(work)
    }

    // MARK: Connections (on their event loops)

    func connectionReady(_ connection: HTTP1ConnectionHandler) {
        let now = NIODeadline.now()
        let work = apply { state in
            state.connections[connection.id] = NIOLoopBound(connection, eventLoop: connection.eventLoop)
            return state.machine.connectionReady(connection.id, now: now)
        }
        perform(work)
    }

    func connectFailed(_ id: HTTP1PoolStateMachine.ConnectionID, error: HTTP1ClientError) {
        perform(apply { $0.machine.connectFailed(id, error: error) })
    }

    /// The connection read its answer to the end and nothing else is pending.
    func release(_ connection: HTTP1ConnectionHandler, keepAliveTimeout: TimeAmount?) {
        let now = NIODeadline.now()
        perform(apply { $0.machine.released(connection.id, keepAliveTimeout: keepAliveTimeout, now: now) })
    }

    /// Called, once, by a connection that serves no more.
    func connectionGone(_ connection: HTTP1ConnectionHandler, idleCloseByUpstream: Bool) {
        let now = NIODeadline.now()
        let work = apply { state in
            state.connections[connection.id] = nil
            return state.machine.connectionClosed(connection.id, idleCloseByUpstream: idleCloseByUpstream, now: now)
        }
        perform(work)
    }

    // MARK: Shutdown

    /// Fails waiting requests and the requests under way, closes every connection; completes
    /// when they are closed. Connections still opening close themselves when they report in.
    func shutdown() async {
        let work = state.withLock { state -> Work in
            var work = resolve(state.machine.shutdown(), in: &state)
            // Requests under way are failed by their connection's shutdown.
            work.close += state.connections.values
            state.connections.removeAll()
            return work
        }
        for (exchange, error) in work.fail { exchange.fail(error) }
        for handler in work.close {
            let closed = try? await handler.eventLoop.submit { () -> EventLoopFuture<Void>? in
                handler.value.shutdown()
                return handler.value.closeFuture
            }.get()
            if let closed = closed ?? nil { try? await closed.get() }
        }
    }

    // MARK: Carrying out

    private func apply(_ event: (inout State) -> HTTP1PoolStateMachine.Actions) -> Work {
        state.withLock { state in
            let actions = event(&state)
            return resolve(actions, in: &state)
        }
    }

    private func resolve(_ actions: HTTP1PoolStateMachine.Actions, in state: inout State) -> Work {
        var work = Work()
        if let (request, connection) = actions.execute, let exchange = state.requests.removeValue(forKey: request),
            let handler = state.connections[connection]
        {
            work.execute = (exchange, handler, connection)
        }
        work.connect = actions.connect
        for (request, failure) in actions.fail {
            guard let exchange = state.requests.removeValue(forKey: request) else { continue }
            work.fail.append((exchange, Self.error(for: failure, waited: exchange)))
        }
        for connection in actions.close {
            if let handler = state.connections.removeValue(forKey: connection) { work.close.append(handler) }
        }
        switch actions.timer {
        case .leave:
            break
        case .cancel:
            state.timer?.cancel()
            state.timer = nil
        case .arm(let deadline):
            state.timer?.cancel()
            state.timer = loops[0].scheduleTask(deadline: deadline) { [self] in
                perform(apply { $0.machine.timerFired(now: .now()) })
            }
        }
        return work
    }

    private static func error(for failure: HTTP1PoolStateMachine.Failure, waited exchange: HTTP1Exchange) -> HTTP1ClientError {
        switch failure {
        case .capacity:
            return HTTP1ClientError(.capacity, "no connection to the upstream free within queue_timeout (max_connections reached)")
        case .connect(let error): return error
        case .shutdown: return .shutdown
        }
    }

    private func perform(_ work: Work) {
        for (exchange, error) in work.fail { exchange.fail(error) }
        for handler in work.close {
            if handler.eventLoop.inEventLoop {
                handler.value.shutdown()
            } else {
                handler.eventLoop.execute { handler.value.shutdown() }
            }
        }
        for (connection, loop) in work.connect { connect(connection, on: loops[loop]) }
        if let (exchange, handler, connection) = work.execute {
            if handler.eventLoop.inEventLoop {
                execute(exchange, on: handler.value, connection)
            } else {
                handler.eventLoop.execute { self.execute(exchange, on: handler.value, connection) }
            }
        }
    }

    /// On the connection's loop: sends the request, or, when its caller has gone away meanwhile,
    /// gives the connection back.
    private func execute(_ exchange: HTTP1Exchange, on handler: HTTP1ConnectionHandler, _ connection: HTTP1PoolStateMachine.ConnectionID) {
        if !handler.execute(exchange) {
            release(handler, keepAliveTimeout: nil)
        }
    }

    private func connect(_ id: HTTP1PoolStateMachine.ConnectionID, on eventLoop: any EventLoop) {
        let settings = self.settings
        let started = NIODeadline.now()
        let deadline = started + settings.connectTimeout
        let target = settings.route.connectTarget
        ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(ChannelOptions.autoRead, value: false)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    let answers = UpstreamResponseSide()
                    if let sslContext = settings.sslContext {
                        if let tunnel = settings.route.tunnel {
                            // TLS goes in once the proxy has opened the tunnel (the tunnel adds it).
                            try pipeline.addHandler(
                                HTTPConnectTunnel(
                                    target: settings.route.upstream, authorization: tunnel.authorization, sslContext: sslContext,
                                    serverHostname: settings.serverHostname
                                )
                            )
                        } else {
                            try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: settings.serverHostname))
                        }
                    }
                    try pipeline.addHandler(PlainHTTP1Decoder(side: answers))
                    try pipeline.addHandler(
                        HTTP1ConnectionHandler(
                            id: id, pool: self, answers: answers, eventLoop: channel.eventLoop, connectStarted: started, connectDeadline: deadline,
                            timeouts: settings.timeouts
                        )
                    )
                }
            }
            .connect(host: target.host, port: target.port)
            .whenFailure { error in
                self.connectFailed(id, error: HTTP1ClientError.classify(error, established: false))
            }
    }
}
