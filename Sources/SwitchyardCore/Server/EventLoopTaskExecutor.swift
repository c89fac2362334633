import NIOCore

/// A connection's event loop as the task executor of the requests it carries.
///
/// Swift concurrency runs on NIO's loops here (NIO is installed as the global executor), but NIO
/// runs each job as the loop's *serial* executor, so every entry into nonisolated async code
/// (ours, NIO's `get()`, Hummingbird's) was a switch "to the generic executor": the task went back
/// through the loop's queue, about a dozen times per request. A task that prefers this executor
/// runs nonisolated code on it as the generic executor: no switch, same thread.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
