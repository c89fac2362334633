import NIOCore
import NIOHTTP1

/// The life of one upstream connection and of the request it carries, as a value: the channel
/// handler feeds it events (with `now` where time matters) and carries out the action it returns.
/// It knows nothing of channels, clocks or the pool (the shape of AsyncHTTPClient's
/// `HTTP1ConnectionStateMachine`, with the request's own life folded in: one request at a time,
/// its head and body written at once, so there is no request-stream state to track).
///
/// connecting → idle → waitingForHead → streaming → finishing → idle (keep-alive), or closing →
/// closed. An answer read to its end leaves the connection `finishing` until the read that
/// brought its last byte is fully processed: only a connection with no byte pending goes back to
/// the pool, and any part that arrives meanwhile (an extra answer, a partial head) closes it.
/// Errors, timeouts, cancellation and shutdown close the connection. Every transition out of a
/// usable state produces exactly one action that tells the pool the connection is gone
/// (`connectFailed`, `failRequest`, `forwardEnd(keepAlive: false)`, `close`, `connectionClosed`).
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
        /// The connection is up (TCP, the proxy tunnel and TLS when configured): hand it to the
        /// pool; keep a read pending so that a close by the upstream is seen while it waits there.
        case connectionReady
        /// The connection could not be established: tell the pool; close the channel.
        case connectFailed(HTTP1ClientError)
        /// Write the request (head and body) and flush; read.
        case sendRequest
        /// Give the response head to the caller.
        case forwardHead(HTTPResponseHead)
        /// Give a body part to the caller.
        case forwardBodyPart(ByteBuffer)
        /// The response is complete: give the end to the caller. With `keepAlive` the connection
        /// waits for the read to finish (``release(keepAliveTimeout:)`` follows when nothing else
        /// arrived); otherwise it is closed.
        case forwardEnd(keepAlive: Bool)
        /// The answer was read whole and nothing is pending: the connection goes back to the pool,
        /// with a read pending.
        case release(keepAliveTimeout: TimeAmount?)
        /// Fail the request (or, with `retry`, send it again on another connection); the connection
        /// is gone: tell the pool and close the channel.
        case failRequest(HTTP1ClientError, retry: Bool)
        /// Close a connection that carries no live request (idle too long, abandoned, broken while
        /// idle, stray bytes after an answer); tell the pool.
        case close
        /// The upstream closed the connection while it was idle: tell the pool.
        case connectionClosed
    }

    private enum State {
        /// TCP connecting (bounded by the bootstrap's connect timeout), then, once `active`, the
        /// proxy tunnel and TLS handshake, which give up at `deadline`.
        case connecting(deadline: NIODeadline, active: Bool)
        /// Established, waiting in the pool since `since`.
        case idle(since: NIODeadline)
        /// The request is written; the response head is due by `request.headDeadline`.
        case waitingForHead(Request)
        /// The head went to the caller; body parts follow.
        case streaming(Request, Stream)
        /// The answer ended; the read that brought its end is still being processed.
        case finishing(keepAliveTimeout: TimeAmount?)
        /// Given up by us; waiting for the channel to close.
        case closing
        case closed
    }

    private struct Request {
        var headDeadline: NIODeadline
        /// When the request's last byte was written.
        var sentAt: NIODeadline
        /// The connection had served a request before this one: a close right after the write
        /// may be the keep-alive race (see ``HTTP1ConnectionStateMachine/mayReplay(_:now:answerBegan:)``).
        var reusedConnection: Bool
        /// The request allows keeping the connection (no `Connection: close`).
        var keepAlive: Bool
    }

    private struct Stream {
        var keepAlive: Bool
        /// The answer's `Keep-Alive: timeout`, if it gave one.
        var keepAliveTimeout: TimeAmount?
        /// The caller wants more body: reads go on and the idle timeout runs. False while the
        /// caller's buffer is full (back-pressure): no reads, no idle timeout.
        var reading: Bool
        var lastActivity: NIODeadline
    }

    private var state: State
    private let timeouts: Timeouts
    private let connectStarted: NIODeadline
    private var requestsStarted = 0
    /// How soon after a request was written a close may still be the upstream closing an idle
    /// connection (the keep-alive race) rather than an answer to the request: twice what making
    /// the connection took (a round trip or three), within 100 ms and 1 s. The floor leaves room
    /// for a busy event loop that sees the close late; an upstream that has read a request and
    /// fails it that fast has generated nothing worth protecting.
    private(set) var replayWindow: TimeAmount = .milliseconds(100)

    init(connectStarted: NIODeadline, connectDeadline: NIODeadline, timeouts: Timeouts) {
        state = .connecting(deadline: connectDeadline, active: false)
        self.connectStarted = connectStarted
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

    /// Whether an answer is due or arriving: bytes from the upstream are expected only then.
    var expectsAnswer: Bool {
        switch state {
        case .waitingForHead, .streaming: true
        case .connecting, .idle, .finishing, .closing, .closed: false
        }
    }

    /// When ``timerFired(now:)`` next has something to check: the connect deadline, the head
    /// deadline, the end of the allowed silence in the body, or the pooled-idle limit.
    var nextDeadline: NIODeadline? {
        switch state {
        case .connecting(let deadline, let active): active ? deadline : nil
        case .idle(let since): since + timeouts.idleConnection
        case .waitingForHead(let request): request.headDeadline
        case .streaming(_, let stream): stream.reading ? stream.lastActivity + timeouts.idle : nil
        case .finishing, .closing, .closed: nil
        }
    }

    // MARK: Establishing

    /// TCP is up. `waitsForHandshake`: a proxy tunnel and/or TLS come before the connection is
    /// ready.
    mutating func channelActive(waitsForHandshake: Bool, now: NIODeadline) -> Action {
        guard case .connecting(let deadline, _) = state else { return .none }
        if waitsForHandshake {
            state = .connecting(deadline: deadline, active: true)
            // The handshake needs reads; autoRead is off.
            return .read
        }
        return ready(now: now)
    }

    mutating func handshakeCompleted(now: NIODeadline) -> Action {
        guard case .connecting = state else { return .none }
        return ready(now: now)
    }

    private mutating func ready(now: NIODeadline) -> Action {
        state = .idle(since: now)
        let handshake = now - connectStarted
        replayWindow = min(max(handshake * 2, .milliseconds(100)), .seconds(1))
        return .connectionReady
    }

    // MARK: Request

    /// The pool hands the connection a request. Only an idle connection is ever handed one: the
    /// pool learns synchronously, on the same event loop, when a connection stops being idle.
    mutating func startRequest(headDeadline: NIODeadline, keepAlive: Bool, now: NIODeadline) -> Action {
        guard case .idle = state else {
            preconditionFailure("a request was handed to a connection that is not idle: \(state)")
        }
        state = .waitingForHead(
            Request(headDeadline: headDeadline, sentAt: now, reusedConnection: requestsStarted > 0, keepAlive: keepAlive)
        )
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
            let timeout = keepAlive ? Self.keepAliveTimeout(in: head.headers) : nil
            state = .streaming(request, Stream(keepAlive: keepAlive, keepAliveTimeout: timeout, reading: true, lastActivity: now))
            return .forwardHead(head)
        case .idle, .finishing:
            // An answer nobody asked for (an extra answer after the last one): the connection's
            // bytes no longer line up with its requests.
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
        switch state {
        case .streaming: return .forwardBodyPart(part)
        case .finishing:
            state = .closing
            return .close
        default: return .none
        }
    }

    mutating func responseEnd(now: NIODeadline) -> Action {
        switch state {
        case .streaming(_, let stream):
            if stream.keepAlive {
                state = .finishing(keepAliveTimeout: stream.keepAliveTimeout)
                return .forwardEnd(keepAlive: true)
            }
            state = .closing
            return .forwardEnd(keepAlive: false)
        case .finishing:
            state = .closing
            return .close
        default:
            return .none
        }
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

    /// The read is processed. `pendingBytes`: the decoder holds bytes it has not turned into
    /// parts (the start of another message).
    mutating func channelReadComplete(now: NIODeadline, pendingBytes: Bool) -> Action {
        switch state {
        case .waitingForHead, .idle:
            // Idle: a read stays pending so that a close (or stray bytes) is noticed.
            return .read
        case .streaming(let request, var stream):
            guard stream.reading else { return .none }
            stream.lastActivity = now
            state = .streaming(request, stream)
            return .read
        case .finishing(let keepAliveTimeout):
            if pendingBytes {
                state = .closing
                return .close
            }
            state = .idle(since: now)
            return .release(keepAliveTimeout: keepAliveTimeout)
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
        case .connecting, .idle, .finishing, .closing, .closed:
            // An abandon that crossed the end of the response: nothing is left to stop.
            return .none
        }
    }

    /// The channel reports an error (already classified). `answerBegan`: bytes of an answer to
    /// the current request arrived.
    mutating func errorCaught(_ error: HTTP1ClientError, now: NIODeadline, answerBegan: Bool = false) -> Action {
        switch state {
        case .connecting:
            state = .closing
            return .connectFailed(error)
        case .idle, .finishing:
            state = .closing
            return .close
        case .waitingForHead(let request):
            state = .closing
            return .failRequest(error, retry: error.kind == .reset && mayReplay(request, now: now, answerBegan: answerBegan))
        case .streaming:
            state = .closing
            return .failRequest(error, retry: false)
        case .closing, .closed:
            return .none
        }
    }

    /// The channel closed.
    ///
    /// A request on a reused connection that sees the close before any byte of an answer, and
    /// right after it was written, is sent again once (`retry: true`): the upstream closed the
    /// idle connection just as the request went out (the keep-alive race), so it was never
    /// processed. A close later than that may come after the upstream worked on the request: an
    /// ordinary failure, for the router above to count and retry.
    mutating func channelInactive(now: NIODeadline, answerBegan: Bool = false) -> Action {
        switch state {
        case .connecting:
            state = .closed
            return .connectFailed(.closedDuringTLSHandshake)
        case .idle:
            state = .closed
            return .connectionClosed
        case .finishing:
            // Closed right after a complete answer: nothing is lost, the connection is just gone.
            state = .closed
            return .close
        case .waitingForHead(let request):
            state = .closed
            return .failRequest(.closedBeforeHead, retry: mayReplay(request, now: now, answerBegan: answerBegan))
        case .streaming:
            state = .closed
            return .failRequest(.closedInBody, retry: false)
        case .closing, .closed:
            state = .closed
            return .none
        }
    }

    /// The keep-alive race and nothing else: a reused connection, no answer byte, and the failure
    /// within ``replayWindow`` of the write.
    private func mayReplay(_ request: Request, now: NIODeadline, answerBegan: Bool) -> Bool {
        request.reusedConnection && !answerBegan && now - request.sentAt <= replayWindow
    }

    mutating func shutdown() -> Action {
        switch state {
        case .connecting:
            state = .closing
            return .connectFailed(.shutdown)
        case .idle, .finishing:
            state = .closing
            return .close
        case .waitingForHead, .streaming:
            state = .closing
            return .failRequest(.shutdown, retry: false)
        case .closing, .closed:
            return .none
        }
    }

    /// `Keep-Alive: timeout=N` (seconds), as servers such as Node's announce their idle limit.
    static func keepAliveTimeout(in headers: HTTPHeaders) -> TimeAmount? {
        guard let value = headers.first(name: "keep-alive") else { return nil }
        for parameter in value.split(separator: ",") {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingWhitespace().lowercased() == "timeout",
                let seconds = Int(pair[1].trimmingWhitespace()), seconds > 0
            else { continue }
            return .seconds(Int64(min(seconds, 86_400)))
        }
        return nil
    }
}

extension HTTP1ConnectionStateMachine: CustomStringConvertible {
    var description: String {
        switch state {
        case .connecting: "connecting"
        case .idle: "idle"
        case .waitingForHead: "waitingForHead"
        case .streaming(_, let stream): "streaming(keepAlive: \(stream.keepAlive), reading: \(stream.reading))"
        case .finishing: "finishing"
        case .closing: "closing"
        case .closed: "closed"
        }
    }
}
