/// The requests ``ProxyFastPath`` takes on one connection, served one after the other by one task
/// of the connection's scope (``SwitchyardHTTP1Channel``), on the connection's event loop: no task
/// made per request, and when the connection closes the scope cancels the request in flight.
final class FastPathRequests: Sendable {
    typealias Job = @Sendable () async -> Void

    /// The connection's loop as the serving task's executor.
    let executor: LoopTaskExecutor
    private let jobs: AsyncStream<Job>
    private let submitted: AsyncStream<Job>.Continuation

    init(executor: LoopTaskExecutor) {
        self.executor = executor
        (jobs, submitted) = AsyncStream.makeStream(of: Job.self)
    }

    /// Called by the fast path, on the loop, once the previous request was answered.
    func submit(_ job: @escaping Job) {
        submitted.yield(job)
    }

    /// Serves requests until the connection's scope ends (cancelled, or ``finish()``).
    func serve() async {
        for await job in jobs {
            await job()
        }
    }

    func finish() {
        submitted.finish()
    }
}
