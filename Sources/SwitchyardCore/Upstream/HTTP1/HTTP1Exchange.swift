import NIOCore
import NIOHTTP1
import Synchronization

/// One request between its caller and the connection that serves it: the encoded request, the
/// continuation waiting for the head, the body bytes not yet read, and who waits for what.
///
/// The caller's side (any thread) and the connection's side (its event loop) meet under one
/// lock, so a body part that is already here is taken without a hop to the event loop. Signals
/// from the caller to the connection (more body wanted, the caller went away) run on the
/// connection's loop: directly when the caller is already there, through `execute` otherwise.
final class HTTP1Exchange: Sendable {
    typealias HeadResult = Result<HTTP1ClientResponse, HTTP1ClientError>
    typealias BodyResult = Result<ByteBuffer?, HTTP1ClientError>
    typealias HeadContinuation = UnsafeContinuation<HeadResult, Never>
    typealias BodyContinuation = UnsafeContinuation<BodyResult, Never>

    let id: HTTP1PoolStateMachine.RequestID
    let pool: HTTP1ConnectionPool
    /// The index of the caller's event loop in the pool.
    let loop: Int
    let head: HTTPRequestHead
    let request: HTTP1RequestEncoder.Encoded
    let deadlines: HTTP1Deadlines
    let createdAt: NIODeadline
    private let state: Mutex<State>

    private enum Phase {
        /// ``response()`` has not stored its continuation yet.
        case created
        case waitingForHead
        case streaming
        /// The body ended; bytes may still be buffered.
        case complete
        /// The body failed; buffered bytes are read first, then this is thrown.
        case failed(HTTP1ClientError)
        /// The caller went away: cancelled, or dropped the body before its end.
        case abandoned
    }

    private struct State {
        var phase = Phase.created
        var headWaiter: HeadContinuation?
        var bodyWaiter: BodyContinuation?
        var body = HTTP1BodyBuffer()
        /// The connection serving the request, while one does (read and written on its loop).
        var connection: NIOLoopBound<HTTP1ConnectionHandler>?
        var retried = false
        /// How long the request waited for a connection, once it has one (or gave up).
        var queued: TimeAmount?
    }

    enum Signal {
        /// The caller took the buffered body and wants more: read again.
        case demand
        /// The caller went away: drop the request from the queue, or close its connection.
        case abandon
    }

    /// What a body part did on arrival.
    enum Delivery {
        case keepReading
        /// The caller's buffer is full: stop reading until it asks.
        case bufferFull
        /// Nobody will read it: close the connection.
        case abandoned
    }

    init(pool: HTTP1ConnectionPool, loop: Int, head: HTTPRequestHead, request: HTTP1RequestEncoder.Encoded, deadlines: HTTP1Deadlines) {
        self.id = pool.makeRequestID()
        self.pool = pool
        self.loop = loop
        self.head = head
        self.request = request
        self.deadlines = deadlines
        createdAt = .now()
        state = Mutex(State())
    }

    /// Until when the request may wait for a connection.
    var queueDeadline: NIODeadline { min(createdAt + deadlines.queueTimeout, deadlines.budget) }

    // MARK: The caller's side

    /// Queues the request on the pool and waits for the response head.
    nonisolated(nonsending) func response() async -> HeadResult {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: HeadContinuation) in
                let submit = state.withLock { state -> Bool in
                    guard case .created = state.phase else { return false }  // cancelled before it started
                    state.phase = .waitingForHead
                    state.headWaiter = continuation
                    return true
                }
                if submit {
                    pool.lease(self)
                } else {
                    continuation.resume(returning: .failure(.cancelled))
                }
            }
        } onCancel: {
            cancelHead()
        }
    }

    private func cancelHead() {
        let waiter = state.withLock { state -> HeadContinuation?? in
            switch state.phase {
            case .created:
                state.phase = .abandoned
                return .some(nil)
            case .waitingForHead:
                state.phase = .abandoned
                defer { state.headWaiter = nil }
                return .some(state.headWaiter)
            case .streaming, .complete, .failed, .abandoned:
                return nil
            }
        }
        guard let waiter else { return }
        waiter?.resume(returning: .failure(.cancelled))
        signal(.abandon)
    }

    /// The next part of the body: taken from the buffer when one is there, else awaited.
    nonisolated(nonsending) func nextBodyPart() async throws(HTTP1ClientError) -> ByteBuffer? {
        enum Step {
            case give(ByteBuffer, demand: Bool)
            case end
            case fail(HTTP1ClientError)
            case wait
        }
        let step = state.withLock { state -> Step in
            let (bytes, resume) = state.body.take()
            if let bytes { return .give(bytes, demand: resume) }
            switch state.phase {
            case .complete: return .end
            case .failed(let error): return .fail(error)
            case .abandoned: return .fail(.cancelled)
            case .created, .waitingForHead, .streaming: return .wait
            }
        }
        switch step {
        case .give(let bytes, let demand):
            if demand { signal(.demand) }
            return bytes
        case .end:
            return nil
        case .fail(let error):
            throw error
        case .wait:
            break
        }
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: BodyContinuation) in
                let (immediate, demand) = state.withLock { state -> (BodyResult?, Bool) in
                    let (bytes, resume) = state.body.take()
                    if let bytes { return (.success(bytes), resume) }
                    switch state.phase {
                    case .complete: return (.success(nil), false)
                    case .failed(let error): return (.failure(error), false)
                    case .abandoned: return (.failure(.cancelled), false)
                    case .created, .waitingForHead, .streaming:
                        state.bodyWaiter = continuation
                        return (nil, state.body.resumeIfPaused())
                    }
                }
                if demand { signal(.demand) }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            cancelBody()
        }
        return try result.get()
    }

    private func cancelBody() {
        let waiter = state.withLock { state -> BodyContinuation?? in
            switch state.phase {
            case .streaming:
                state.phase = .abandoned
                state.body.removeAll()
                defer { state.bodyWaiter = nil }
                return .some(state.bodyWaiter)
            case .created, .waitingForHead, .complete, .failed, .abandoned:
                return nil
            }
        }
        guard let waiter else { return }
        waiter?.resume(returning: .failure(.cancelled))
        signal(.abandon)
    }

    /// The caller dropped the body (every copy of it and its iterators).
    func consumerDropped() {
        let abandon = state.withLock { state -> Bool in
            state.body.removeAll()
            guard case .streaming = state.phase else { return false }
            state.phase = .abandoned
            return true
        }
        if abandon { signal(.abandon) }
    }

    /// Tells the connection serving the request, on its loop (no hop when already there); a
    /// request still waiting for a connection that is abandoned leaves the pool's queue.
    private func signal(_ signal: Signal) {
        guard let connection = state.withLock({ $0.connection }) else {
            if case .abandon = signal { pool.cancel(self) }
            return
        }
        if connection.eventLoop.inEventLoop {
            connection.value.signal(signal, from: self)
        } else {
            connection.eventLoop.execute { connection.value.signal(signal, from: self) }
        }
    }

    // MARK: The connection's side (on its event loop)

    /// A connection takes the request: returns the head deadline (`first_byte` from now, within
    /// the budget), or nil when the caller has gone away meanwhile.
    func assign(to connection: HTTP1ConnectionHandler, now: NIODeadline) -> NIODeadline? {
        state.withLock { state in
            guard case .waitingForHead = state.phase else { return nil }
            state.connection = NIOLoopBound(connection, eventLoop: connection.eventLoop)
            if state.queued == nil { state.queued = now - createdAt }
            return min(now + deadlines.firstByte, deadlines.budget)
        }
    }

    /// How long the request waited for a connection.
    var queued: TimeAmount {
        state.withLock { $0.queued } ?? (.now() - createdAt)
    }

    /// Gives the head to the caller; false when nobody waits for it any more.
    func receiveHead(_ head: HTTPResponseHead) -> Bool {
        let waiter = state.withLock { state -> HeadContinuation? in
            guard case .waitingForHead = state.phase else { return nil }
            state.phase = .streaming
            defer { state.headWaiter = nil }
            return state.headWaiter
        }
        guard let waiter else { return false }
        let body = HTTP1ResponseBody(consumer: HTTP1BodyConsumer(exchange: self))
        waiter.resume(returning: .success(HTTP1ClientResponse(status: head.status, headers: head.headers, body: body, queued: queued)))
        return true
    }

    func receiveBodyPart(_ part: ByteBuffer) -> Delivery {
        let (delivery, waiter) = state.withLock { state -> (Delivery, BodyContinuation?) in
            guard case .streaming = state.phase else { return (.abandoned, nil) }
            if let waiter = state.bodyWaiter {
                state.bodyWaiter = nil
                return (.keepReading, waiter)
            }
            return (state.body.append(part) ? .keepReading : .bufferFull, nil)
        }
        waiter?.resume(returning: .success(part))
        return delivery
    }

    func receiveEnd() {
        let waiter = state.withLock { state -> BodyContinuation? in
            state.connection = nil
            guard case .streaming = state.phase else { return nil }
            state.phase = .complete
            defer { state.bodyWaiter = nil }
            return state.bodyWaiter
        }
        waiter?.resume(returning: .success(nil))
    }

    /// The request failed: the caller gets `error` from whatever it waits on, or from its next read
    /// once the buffered bytes are taken.
    func fail(_ error: HTTP1ClientError) {
        enum Waiter {
            case head(HeadContinuation)
            case body(BodyContinuation)
        }
        let waiter = state.withLock { state -> Waiter? in
            state.connection = nil
            switch state.phase {
            case .created, .waitingForHead:
                state.phase = .failed(error)
                defer { state.headWaiter = nil }
                return state.headWaiter.map(Waiter.head)
            case .streaming:
                state.phase = .failed(error)
                defer { state.bodyWaiter = nil }
                return state.bodyWaiter.map(Waiter.body)
            case .complete, .failed, .abandoned:
                return nil
            }
        }
        switch waiter {
        case .head(let continuation): continuation.resume(returning: .failure(error))
        case .body(let continuation): continuation.resume(returning: .failure(error))
        case nil: break
        }
    }

    /// Marks the request as retried once; false when it was already, or the caller went away.
    func prepareRetry() -> Bool {
        state.withLock { state in
            guard case .waitingForHead = state.phase, !state.retried else { return false }
            state.retried = true
            state.connection = nil
            return true
        }
    }
}

/// Held by a response body and its iterators; when the last of them goes, so does the caller's
/// interest: a body not read to its end closes its connection.
final class HTTP1BodyConsumer: Sendable {
    let exchange: HTTP1Exchange

    init(exchange: HTTP1Exchange) {
        self.exchange = exchange
    }

    deinit {
        exchange.consumerDropped()
    }
}
