import NIOCore
import NIOHTTP1

/// The life of one upstream connection and of the request it carries, as a value: the channel
/// handler feeds it events (with `now` where time matters) and carries out the action it returns.
/// It knows nothing of channels, clocks or the pool (the shape of AsyncHTTPClient's
/// `HTTP1ConnectionStateMachine`, with the request's own life folded in: one request at a time,
/// its head and body written at once, so there is no request-stream state to track).
///
/// connecting → idle → waitingForHead → streaming → idle (keep-alive) or closing → closed.
/// Errors, timeouts, cancellation and shutdown close the connection. Every transition out of a
/// usable state produces exactly one action that tells the pool the connection is gone
/// (`connectFailed`, `failRequest`, `forwardEnd(reuse: false)`, `close`, `connectionClosed`).
struct HTTP1ConnectionStateMachine {
    struct Timeouts: Sendable, Equatable {
        /// Longest silence between two reads while the response body is wanted.
        var idle: TimeAmount
        /// A connection idle in the pool longer than this is closed.
        var idleConnection: TimeAmount
    }

    enum Action: Equatable {
        case none
        /// Ask the channel for more bytes.
        case read
        /// The connection is up (TCP, and TLS when configured): hand it to the pool; keep a read
        /// pending so that a close by the upstream is seen while it waits there.
        case connectionReady
        /// The connection could not be established: tell the pool; close the channel.
        case connectFailed(HTTP1ClientError)
        /// Write the request (head and body) and flush; read.
        case sendRequest
        /// Give the response head to the caller.
        case forwardHead(HTTPResponseHead)
        /// Give a body part to the caller.
        case forwardBodyPart(ByteBuffer)
        /// The response is complete: give the end to the caller; with `reuse`, the connection goes
        /// back to the pool, otherwise it is closed.
        case forwardEnd(reuse: Bool)
        /// Fail the request (or, with `retry`, send it again on another connection); the connection
        /// is gone: tell the pool and close the channel.
        case failRequest(HTTP1ClientError, retry: Bool)
        /// Close a connection that carries no live request (idle too long, abandoned, broken while
        /// idle); tell the pool.
        case close
        /// The channel closed while idle: tell the pool.
        case connectionClosed
    }

    private enum State {
        /// TCP connecting (bounded by the bootstrap's connect timeout), then, once `active`, the
        /// TLS handshake, which gives up at `deadline`.
        case connecting(deadline: NIODeadline, active: Bool)
        /// Established, waiting in the pool since `since`.
        case idle(since: NIODeadline)
        /// The request is written; the response head is due by `request.headDeadline`.
        case waitingForHead(Request)
        /// The head went to the caller; body parts follow.
        case streaming(Request, Stream)
        /// Given up by us; waiting for the channel to close.
        case closing
        case closed
    }

    private struct Request {
        var headDeadline: NIODeadline
        /// The connection had served a request before this one: a close before any answer may be
        /// the keep-alive race (see ``HTTP1ConnectionStateMachine/channelInactive()``).
        var reusedConnection: Bool
        /// The request allows keeping the connection (no `Connection: close`).
        var keepAlive: Bool
    }

    private struct Stream {
        var keepAlive: Bool
        /// The caller wants more body: reads go on and the idle timeout runs. False while the
        /// caller's buffer is full (back-pressure): no reads, no idle timeout.
        var reading: Bool
        var lastActivity: NIODeadline
    }

    private var state: State
    private let timeouts: Timeouts
    private var requestsStarted = 0

    init(connectDeadline: NIODeadline, timeouts: Timeouts) {
        state = .connecting(deadline: connectDeadline, active: false)
        self.timeouts = timeouts
    }

    /// Whether the connection was established (errors then count as resets, not connect failures).
    var isEstablished: Bool {
        if case .connecting = state { return false }
        return true
    }

    var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    /// When ``timerFired(now:)`` next has something to check: the connect deadline, the head
    /// deadline, the end of the allowed silence in the body, or the pooled-idle limit.
    var nextDeadline: NIODeadline? {
        switch state {
        case .connecting(let deadline, let active): active ? deadline : nil
        case .idle(let since): since + timeouts.idleConnection
        case .waitingForHead(let request): request.headDeadline
        case .streaming(_, let stream): stream.reading ? stream.lastActivity + timeouts.idle : nil
        case .closing, .closed: nil
        }
    }

    // MARK: Establishing

    mutating func channelActive(isTLS: Bool, now: NIODeadline) -> Action {
        guard case .connecting(let deadline, _) = state else { return .none }
        if isTLS {
            state = .connecting(deadline: deadline, active: true)
            // The handshake needs reads; autoRead is off.
            return .read
        }
        state = .idle(since: now)
        return .connectionReady
    }

    mutating func tlsHandshakeCompleted(now: NIODeadline) -> Action {
        guard case .connecting = state else { return .none }
        state = .idle(since: now)
        return .connectionReady
    }

    // MARK: Request

    /// The pool hands the connection a request. Only an idle connection is ever handed one: the
    /// pool learns synchronously, on the same event loop, when a connection stops being idle.
    mutating func startRequest(headDeadline: NIODeadline, keepAlive: Bool) -> Action {
        guard case .idle = state else {
            preconditionFailure("a request was handed to a connection that is not idle: \(state)")
        }
        state = .waitingForHead(Request(headDeadline: headDeadline, reusedConnection: requestsStarted > 0, keepAlive: keepAlive))
        requestsStarted += 1
        return .sendRequest
    }

    // MARK: Response

    mutating func responseHead(_ head: HTTPResponseHead, now: NIODeadline) -> Action {
        switch state {
        case .waitingForHead(let request):
            if head.status == .switchingProtocols {
                state = .closing
                return .failRequest(.unexpectedUpgrade, retry: false)
            }
            let keepAlive = request.keepAlive && head.keepsConnectionAlive
            state = .streaming(request, Stream(keepAlive: keepAlive, reading: true, lastActivity: now))
            return .forwardHead(head)
        case .idle:
            // Nothing was asked (the decoder refuses this before we see it; be safe anyway).
            state = .closing
            return .close
        case .streaming:
            state = .closing
            return .failRequest(HTTP1ClientError(.invalidResponse, "a second response head in one response"), retry: false)
        case .connecting, .closing, .closed:
            return .none
        }
    }

    mutating func responseBodyPart(_ part: ByteBuffer) -> Action {
        guard case .streaming = state else { return .none }
        return .forwardBodyPart(part)
    }

    mutating func responseEnd(now: NIODeadline) -> Action {
        guard case .streaming(_, let stream) = state else { return .none }
        if stream.keepAlive {
            state = .idle(since: now)
            return .forwardEnd(reuse: true)
        }
        state = .closing
        return .forwardEnd(reuse: false)
    }

    /// The caller's buffer is full: stop reading until it asks for more.
    mutating func bodyBufferFull() {
        guard case .streaming(let request, var stream) = state else { return }
        stream.reading = false
        state = .streaming(request, stream)
    }

    /// The caller took what was buffered and wants more.
    mutating func demandMore(now: NIODeadline) -> Action {
        guard case .streaming(let request, var stream) = state, !stream.reading else { return .none }
        stream.reading = true
        stream.lastActivity = now
        state = .streaming(request, stream)
        return .read
    }

    mutating func channelReadComplete(now: NIODeadline) -> Action {
        switch state {
        case .waitingForHead, .idle:
            // Idle: a read stays pending so that a close (or stray bytes) is noticed.
            return .read
        case .streaming(let request, var stream):
            guard stream.reading else { return .none }
            stream.lastActivity = now
            state = .streaming(request, stream)
            return .read
        case .connecting, .closing, .closed:
            return .none
        }
    }

    // MARK: Time, failures, the caller going away

    mutating func timerFired(now: NIODeadline) -> Action {
        switch state {
        case .connecting(let deadline, true) where now >= deadline:
            state = .closing
            return .connectFailed(.connectTimeout)
        case .idle(let since) where now >= since + timeouts.idleConnection:
            state = .closing
            return .close
        case .waitingForHead(let request) where now >= request.headDeadline:
            state = .closing
            return .failRequest(.headTimeout, retry: false)
        case .streaming(_, let stream) where stream.reading && now >= stream.lastActivity + timeouts.idle:
            state = .closing
            return .failRequest(.idleTimeout, retry: false)
        default:
            return .none
        }
    }

    /// The caller gave up: cancelled while waiting for the head or a body part, or dropped the
    /// body before its end. A connection with an unread answer on it cannot serve another request.
    mutating func requestAbandoned() -> Action {
        switch state {
        case .waitingForHead, .streaming:
            state = .closing
            return .failRequest(.cancelled, retry: false)
        case .connecting, .idle, .closing, .closed:
            // An abandon that crossed the end of the response: nothing is left to stop.
            return .none
        }
    }

    /// The channel reports an error (already classified).
    mutating func errorCaught(_ error: HTTP1ClientError) -> Action {
        switch state {
        case .connecting:
            state = .closing
            return .connectFailed(error)
        case .idle:
            state = .closing
            return .close
        case .waitingForHead(let request):
            state = .closing
            return .failRequest(error, retry: request.reusedConnection && error.kind == .reset)
        case .streaming:
            state = .closing
            return .failRequest(error, retry: false)
        case .closing, .closed:
            return .none
        }
    }

    /// The channel closed.
    ///
    /// A request on a reused connection that sees the close before any response byte is retried
    /// once (`retry: true`): the upstream closed the idle connection just as we wrote to it (the
    /// keep-alive race), and nothing of the request was processed in the common case. Nothing
    /// else is retried here; the router above decides other retries.
    mutating func channelInactive() -> Action {
        switch state {
        case .connecting:
            state = .closed
            return .connectFailed(.closedDuringTLSHandshake)
        case .idle:
            state = .closed
            return .connectionClosed
        case .waitingForHead(let request):
            state = .closed
            return .failRequest(.closedBeforeHead, retry: request.reusedConnection)
        case .streaming:
            state = .closed
            return .failRequest(.closedInBody, retry: false)
        case .closing, .closed:
            state = .closed
            return .none
        }
    }

    mutating func shutdown() -> Action {
        switch state {
        case .connecting:
            state = .closing
            return .connectFailed(.shutdown)
        case .idle:
            state = .closing
            return .close
        case .waitingForHead, .streaming:
            state = .closing
            return .failRequest(.shutdown, retry: false)
        case .closing, .closed:
            return .none
        }
    }
}

extension HTTP1ConnectionStateMachine: CustomStringConvertible {
    var description: String {
        switch state {
        case .connecting: "connecting"
        case .idle: "idle"
        case .waitingForHead: "waitingForHead"
        case .streaming(_, let stream): "streaming(keepAlive: \(stream.keepAlive), reading: \(stream.reading))"
        case .closing: "closing"
        case .closed: "closed"
        }
    }
}
