import NIOCore
import NIOPosix

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
/// Jobs enqueued from the loop's own thread (nearly all: a request's start, each resumed
/// continuation) are queued here and run together by one loop task, instead of one NIO task — a
/// closure allocated per job — each. Jobs a running batch enqueues wait for the next batch, so
/// a task that keeps yielding cannot hold the loop's I/O back.
///
/// The loop must outlive the tasks that prefer it: NIO drops a job handed to a loop that has shut
/// down. The router's loops are the process-wide singleton group's, which never shuts down.
final class LoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop
    // Both only ever touched on `loop`'s thread (checked in `enqueue`).
    private var queued: [UnownedJob] = []
    private var batchScheduled = false

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// The executor of the current thread's loop, made once per loop: the requests of every
    /// connection on a loop share its batches. Nil off a loop thread.
    static var ofCurrentLoop: LoopTaskExecutor? {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop else { return nil }
        if let existing = perThread.currentValue, existing.loop === loop { return existing }
        let made = LoopTaskExecutor(loop: loop)
        perThread.currentValue = made
        return made
    }

    private static let perThread = ThreadSpecificVariable<LoopTaskExecutor>()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        guard loop.inEventLoop else {
            loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
            return
        }
        queued.append(job)
        if !batchScheduled {
            batchScheduled = true
            loop.execute { self.runBatch() }
        }
    }

    private func runBatch() {
        batchScheduled = false
        var batch: [UnownedJob] = []
        swap(&batch, &queued)
        for job in batch {
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
        // Hand the storage back for the next batch when nothing was queued meanwhile.
        if queued.isEmpty {
            batch.removeAll(keepingCapacity: true)
            swap(&batch, &queued)
        }
    }
}
