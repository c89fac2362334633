import DequeModule
import NIOCore

/// The rules of one upstream's connection pool, as a value: events in (a request wants a
/// connection, a connection is up, finished an answer, closed; a timer fired), actions out
/// (execute a request on a connection, open one, fail a request, close one, arm the timer). It
/// knows nothing of channels or clocks (the shape of AsyncHTTPClient's
/// `HTTPConnectionPool.StateMachine`); ``HTTP1ConnectionPool`` carries the actions out.
///
/// The rules, one place each:
/// - `maxConnections` bounds every connection of the upstream, opening ones included, across
///   all event loops.
/// - A request takes an idle connection of its own event loop (no thread hop); with none, a
///   new one is opened on its loop while the bound allows; at the bound it takes an idle
///   connection of another loop; with none it waits, oldest first.
/// - A connection is handed out only after its answer was fully read (``released(_:now:)``).
///   One idle longer than the upstream is known to keep connections (its `Keep-Alive:
///   timeout`, or the idle age at which it was seen closing one) is closed, never handed out.
/// - A waiting request gives up at its queue deadline with ``Failure/capacity`` when the pool
///   was full; one that waits for a connection being opened for it waits for that connect.
/// - A request replayed after the keep-alive race (``retry(_:loop:deadline:)``) goes first and
///   only on a connection opened for it or one that has just finished an answer.
struct HTTP1PoolStateMachine {
    typealias ConnectionID = Int
    typealias RequestID = Int

    enum Failure: Equatable, Sendable {
        /// No connection was free within the queue deadline: the pool was full.
        case capacity
        /// The connection opened for the request failed.
        case connect(HTTP1ClientError)
        case shutdown
    }

    /// What the pool does after an event. Empty in the common cases, so the hot path allocates
    /// nothing.
    struct Actions: Equatable {
        var execute: (request: RequestID, connection: ConnectionID)?
        var connect: [(connection: ConnectionID, loop: Int)] = []
        var fail: [(request: RequestID, failure: Failure)] = []
        var close: [ConnectionID] = []
        var timer: Timer = .leave

        enum Timer: Equatable {
            case leave
            case arm(NIODeadline)
            case cancel
        }

        static func == (lhs: Actions, rhs: Actions) -> Bool {
            lhs.execute?.request == rhs.execute?.request && lhs.execute?.connection == rhs.execute?.connection
                && lhs.connect.map(\.connection) == rhs.connect.map(\.connection) && lhs.connect.map(\.loop) == rhs.connect.map(\.loop)
                && lhs.fail.map(\.request) == rhs.fail.map(\.request) && lhs.fail.map(\.failure) == rhs.fail.map(\.failure)
                && lhs.close == rhs.close && lhs.timer == rhs.timer
        }
    }

    struct Statistics: Equatable, Sendable {
        /// Connections carrying a request, or finishing one.
        var active: Int
        var idle: Int
        var connecting: Int
        var waiting: Int
        var capacityRejections: Int

        var total: Int { active + idle + connecting }
    }

    private struct Waiter {
        var request: RequestID
        var loop: Int
        var deadline: NIODeadline
        /// Its deadline passed while a connection was being opened for it: it waits for that
        /// connect, and gives up as soon as no opening connection covers it.
        var expired = false
    }

    private enum ConnectionState {
        case connecting
        case idle(since: NIODeadline)
        case leased(RequestID)
    }

    private struct Connection {
        var loop: Int
        var state: ConnectionState
        /// The upstream's `Keep-Alive: timeout` for this connection, from its last answer.
        var keepAliveTimeout: TimeAmount?
    }

    let maxConnections: Int
    private var connections: [ConnectionID: Connection] = [:]
    /// Idle connections per event loop, the most recently used last.
    private var idle: [[ConnectionID]]
    private var waiters = Deque<Waiter>()
    private var connecting = 0
    private var nextConnectionID = 0
    private var isShutDown = false
    private var armedTimer: NIODeadline?
    /// The idle age at which the upstream last closed a pooled connection itself.
    private(set) var observedIdleClose: TimeAmount?
    private var capacityRejections = 0

    init(maxConnections: Int, loopCount: Int) {
        self.maxConnections = max(1, maxConnections)
        idle = Array(repeating: [], count: max(1, loopCount))
    }

    var statistics: Statistics {
        var active = 0
        for connection in connections.values {
            if case .leased = connection.state { active += 1 }
        }
        let idleCount = idle.reduce(0) { $0 + $1.count }
        return Statistics(active: active, idle: idleCount, connecting: connecting, waiting: waiters.count, capacityRejections: capacityRejections)
    }

    // MARK: Requests

    /// A request from event loop `loop` wants a connection; it may wait until `deadline`.
    mutating func lease(_ request: RequestID, loop: Int, deadline: NIODeadline, now: NIODeadline) -> Actions {
        var actions = Actions()
        guard !isShutDown else {
            actions.fail.append((request, .shutdown))
            return actions
        }
        if let connection = takeIdle(on: loop, now: now, closing: &actions.close) {
            connections[connection]!.state = .leased(request)
            actions.execute = (request, connection)
            return actions
        }
        if connections.count >= maxConnections {
            // Full: an idle connection of another loop beats waiting (one thread hop).
            for other in idle.indices where other != loop {
                if let connection = takeIdle(on: other, now: now, closing: &actions.close) {
                    connections[connection]!.state = .leased(request)
                    actions.execute = (request, connection)
                    return actions
                }
            }
        }
        waiters.append(Waiter(request: request, loop: loop, deadline: deadline))
        connectIfNeeded(&actions)
        updateTimer(&actions)
        return actions
    }

    /// A request whose reused connection failed before it could have been processed goes again,
    /// first in line. Waiters only ever get a connection opened for them or one that has just
    /// finished an answer (``give``), never one that waited idle, which may be as stale as the one
    /// that failed.
    mutating func retry(_ request: RequestID, loop: Int, deadline: NIODeadline) -> Actions {
        var actions = Actions()
        guard !isShutDown else {
            actions.fail.append((request, .shutdown))
            return actions
        }
        waiters.prepend(Waiter(request: request, loop: loop, deadline: deadline))
        if connections.count >= maxConnections, let oldest = oldestIdle() {
            // Make room: the oldest idle connection goes.
            removeIdle(oldest, loop: connections[oldest]!.loop)
            connections[oldest] = nil
            actions.close.append(oldest)
        }
        connectIfNeeded(&actions)
        updateTimer(&actions)
        return actions
    }

    /// The request's caller went away while it waited.
    mutating func cancel(_ request: RequestID) -> Actions {
        var actions = Actions()
        if let index = waiters.firstIndex(where: { $0.request == request }) {
            waiters.remove(at: index)
            updateTimer(&actions)
        }
        return actions
    }

    // MARK: Connections

    /// The connection is up (TCP, the proxy tunnel and TLS when configured).
    mutating func connectionReady(_ connection: ConnectionID, now: NIODeadline) -> Actions {
        var actions = Actions()
        guard case .connecting = connections[connection]?.state else { return actions }
        connecting -= 1
        give(connection, now: now, actions: &actions)
        return actions
    }

    /// Opening the connection failed: the oldest waiter no other opening connection covers fails
    /// with the error.
    mutating func connectFailed(_ connection: ConnectionID, error: HTTP1ClientError) -> Actions {
        var actions = Actions()
        guard case .connecting = connections[connection]?.state else { return actions }
        connections[connection] = nil
        connecting -= 1
        if waiters.count > connecting, let waiter = waiters.popFirst() {
            actions.fail.append((waiter.request, .connect(error)))
        }
        connectIfNeeded(&actions)
        failExpired(&actions)
        updateTimer(&actions)
        return actions
    }

    /// The connection finished an answer that was read to its end with no byte pending; it can
    /// carry another request. `keepAliveTimeout`: what the answer's `Keep-Alive` header said.
    mutating func released(_ connection: ConnectionID, keepAliveTimeout: TimeAmount? = nil, now: NIODeadline) -> Actions {
        var actions = Actions()
        guard case .leased = connections[connection]?.state else { return actions }
        if let keepAliveTimeout { connections[connection]!.keepAliveTimeout = keepAliveTimeout }
        give(connection, now: now, actions: &actions)
        return actions
    }

    /// The connection serves no more. `idleCloseByUpstream`: the upstream closed it while it
    /// waited idle in the pool, which tells how long the upstream keeps idle connections.
    mutating func connectionClosed(_ connection: ConnectionID, idleCloseByUpstream: Bool = false, now: NIODeadline) -> Actions {
        var actions = Actions()
        guard let closed = connections.removeValue(forKey: connection) else { return actions }
        switch closed.state {
        case .connecting:
            connecting -= 1
        case .idle(let since):
            removeIdle(connection, loop: closed.loop)
            if idleCloseByUpstream { observedIdleClose = now - since }
        case .leased:
            break
        }
        connectIfNeeded(&actions)
        failExpired(&actions)
        updateTimer(&actions)
        return actions
    }

    // MARK: Time and shutdown

    /// Waiters whose deadline passed give up: with ``Failure/capacity`` when the pool is full;
    /// one whose connection is still being opened waits for the connect's own timeout.
    mutating func timerFired(now: NIODeadline) -> Actions {
        var actions = Actions()
        armedTimer = nil
        guard !waiters.isEmpty else { return actions }
        for index in waiters.indices where waiters[index].deadline <= now {
            waiters[index].expired = true
        }
        failExpired(&actions)
        updateTimer(&actions)
        return actions
    }

    /// Expired waiters that no opening connection covers give up: the pool is full.
    private mutating func failExpired(_ actions: inout Actions) {
        guard waiters.contains(where: \.expired) else { return }
        var kept = Deque<Waiter>()
        for waiter in waiters {
            if waiter.expired, kept.count >= connecting {
                capacityRejections += 1
                actions.fail.append((waiter.request, .capacity))
            } else {
                kept.append(waiter)
            }
        }
        waiters = kept
    }

    /// Fails every waiter and closes every connection; later leases fail at once. Connections
    /// still opening are closed when they report in.
    mutating func shutdown() -> Actions {
        var actions = Actions()
        isShutDown = true
        for waiter in waiters { actions.fail.append((waiter.request, .shutdown)) }
        waiters.removeAll()
        for (id, connection) in connections {
            if case .connecting = connection.state { continue }
            actions.close.append(id)
        }
        for index in idle.indices { idle[index].removeAll() }
        if armedTimer != nil {
            armedTimer = nil
            actions.timer = .cancel
        }
        return actions
    }

    // MARK: Rules

    /// Hands a connection that can carry a request to the waiter it suits (the oldest of its own
    /// loop, else the oldest), or keeps it idle.
    private mutating func give(_ connection: ConnectionID, now: NIODeadline, actions: inout Actions) {
        if isShutDown {
            connections[connection] = nil
            actions.close.append(connection)
            return
        }
        let loop = connections[connection]!.loop
        if !waiters.isEmpty {
            let index = waiters.firstIndex { $0.loop == loop } ?? waiters.startIndex
            let waiter = waiters.remove(at: index)
            connections[connection]!.state = .leased(waiter.request)
            actions.execute = (waiter.request, connection)
            updateTimer(&actions)
            return
        }
        connections[connection]!.state = .idle(since: now)
        idle[loop].append(connection)
    }

    /// The most recently used idle connection of `loop` that may still be handed out; idle ones
    /// the upstream may be closing by now are closed on the way.
    private mutating func takeIdle(on loop: Int, now: NIODeadline, closing: inout [ConnectionID]) -> ConnectionID? {
        while let candidate = idle[loop].popLast() {
            guard case .idle(let since) = connections[candidate]!.state else { continue }
            if let limit = reuseLimit(for: connections[candidate]!), now - since >= limit {
                connections[candidate] = nil
                closing.append(candidate)
                continue
            }
            return candidate
        }
        return nil
    }

    /// How long a connection may have been idle and still be handed out: a margin short of what
    /// the upstream said (`Keep-Alive: timeout`) or was seen doing (closing idle connections).
    private func reuseLimit(for connection: Connection) -> TimeAmount? {
        let announced = connection.keepAliveTimeout.map { $0 - min(.seconds(1), .nanoseconds($0.nanoseconds / 4)) }
        let observed = observedIdleClose.map { TimeAmount.nanoseconds($0.nanoseconds * 3 / 4) }
        switch (announced, observed) {
        case (let a?, let o?): return min(a, o)
        case (let a?, nil): return a
        case (nil, let o?): return o
        case (nil, nil): return nil
        }
    }

    private func oldestIdle() -> ConnectionID? {
        var oldest: (ConnectionID, NIODeadline)?
        for list in idle {
            guard let first = list.first, case .idle(let since) = connections[first]!.state else { continue }
            if oldest == nil || since < oldest!.1 { oldest = (first, since) }
        }
        return oldest?.0
    }

    private mutating func removeIdle(_ connection: ConnectionID, loop: Int) {
        guard let index = idle[loop].firstIndex(of: connection) else { return }
        idle[loop].remove(at: index)
    }

    /// Opens connections for waiters no opening connection covers, within the bound.
    private mutating func connectIfNeeded(_ actions: inout Actions) {
        guard !isShutDown else { return }
        while waiters.count > connecting, connections.count < maxConnections {
            let waiter = waiters[waiters.index(waiters.startIndex, offsetBy: connecting)]
            let id = nextConnectionID
            nextConnectionID += 1
            connections[id] = Connection(loop: waiter.loop, state: .connecting)
            connecting += 1
            actions.connect.append((id, waiter.loop))
        }
    }

    private mutating func updateTimer(_ actions: inout Actions) {
        var earliest: NIODeadline?
        for waiter in waiters where !waiter.expired && waiter.deadline != .distantFuture {
            earliest = min(earliest ?? waiter.deadline, waiter.deadline)
        }
        guard earliest != armedTimer else { return }
        armedTimer = earliest
        actions.timer = earliest.map { .arm($0) } ?? .cancel
    }
}
