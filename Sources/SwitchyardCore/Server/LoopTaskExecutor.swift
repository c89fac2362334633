import NIOCore

/// An event loop as a Swift *task executor*, the preference of each fast-path request's task and
/// of background credential fetches (``RefreshingCredential``).
///
/// With NIO's loops installed as Swift's global executor, a job runs with the loop as its *serial*
/// executor, while every nonisolated async function is isolated to the generic executor; each
/// `await` of the proxy path then hopped back to "generic" by enqueueing the task on the loop
/// once more — 21 jobs per request, measured with uprobes on `swift_job_run` (bench/README.md,
/// step 8). A task that prefers this executor runs its jobs here as the generic executor's
/// stand-in: nonisolated code needs no switch, and a resumed continuation is one job on the
/// same loop.
///
/// The loop must outlive the tasks that prefer it: NIO drops a job handed to a loop that has shut
/// down. The router's loops are the process-wide singleton group's, which never shuts down.
final class LoopTaskExecutor: TaskExecutor {
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
