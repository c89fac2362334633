import DequeModule
import Synchronization

/// The requests ``ProxyFastPath`` takes on one connection, served one after the other by one task
/// of the connection's scope (``SwitchyardHTTP1Channel``), on the connection's event loop: no task
/// made per request, and when the connection closes the scope cancels the request in flight.
///
/// A mailbox of its own rather than an `AsyncStream`: the stream's generic storage looked up type
/// metadata and installed a cancellation handler on every request, about 10,000 instructions of a
/// request's ~190,000. The serving task does not need a cancellation handler to stop waiting:
/// the connection's scope calls ``finish()`` before it cancels its tasks.
final class FastPathRequests: Sendable {
    typealias Job = nonisolated(nonsending) @Sendable () async -> Void

    /// The connection's loop as the serving task's executor.
    let executor: LoopTaskExecutor
    private let mailbox = Mutex(Mailbox())

    private struct Mailbox: ~Copyable {
        /// Usually at most one: the fast path submits a request once the previous one is answered.
        var jobs = Deque<Job>()
        var waiter: UnsafeContinuation<Job?, Never>?
        var finished = false
    }

    init(executor: LoopTaskExecutor) {
        self.executor = executor
    }

    /// Called by the fast path, on the loop, once the previous request was answered.
    func submit(_ job: @escaping Job) {
        let waiter = mailbox.withLock { mailbox -> UnsafeContinuation<Job?, Never>? in
            guard !mailbox.finished else { return nil }
            if let waiter = mailbox.waiter {
                mailbox.waiter = nil
                return waiter
            }
            mailbox.jobs.append(job)
            return nil
        }
        waiter?.resume(returning: job)
    }

    /// Serves requests until ``finish()``.
    nonisolated(nonsending) func serve() async {
        while let job = await next() {
            await job()
        }
    }

    /// Ends ``serve()`` once the requests already submitted are served (as `AsyncStream.finish()`
    /// did); later submissions are dropped.
    func finish() {
        let waiter = mailbox.withLock { mailbox -> UnsafeContinuation<Job?, Never>? in
            mailbox.finished = true
            defer { mailbox.waiter = nil }
            return mailbox.waiter
        }
        waiter?.resume(returning: nil)
    }

    nonisolated(nonsending) private func next() async -> Job? {
        enum Taken {
            case job(Job)
            case end
            case wait
        }
        let taken = mailbox.withLock { mailbox -> Taken in
            if let job = mailbox.jobs.popFirst() { return .job(job) }
            return mailbox.finished ? .end : .wait
        }
        switch taken {
        case .job(let job): return job
        case .end: return nil
        case .wait:
            return await withUnsafeContinuation { continuation in
                let ready = mailbox.withLock { mailbox -> Job?? in
                    if let job = mailbox.jobs.popFirst() { return .some(job) }
                    if mailbox.finished { return .some(nil) }
                    mailbox.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}
