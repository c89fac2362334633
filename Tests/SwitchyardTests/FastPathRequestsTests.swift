import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import SwitchyardCore

/// The fast path's per-connection mailbox: requests served in order by one task on the
/// connection's loop, and `finish()` ends that task whether it waits or serves.
@Suite("Fast path requests")
struct FastPathRequestsTests {
    @Test func servesRequestsInOrderOnTheLoopAndEndsWhenFinishedWhileWaiting() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let requests = FastPathRequests(executor: LoopTaskExecutor(loop: loop))
        let served = Shared<[Int]>([])
        let onLoop = Shared(true)

        // One submitted before the serving task starts, two while it waits.
        requests.submit {
            served.withLock { $0.append(1) }
            onLoop.withLock { $0 = $0 && loop.inEventLoop }
        }
        let serving = Task(executorPreference: requests.executor) { await requests.serve() }
        for value in [2, 3] {
            try await waitUntil { served.withLock { $0.count } == value - 1 }
            requests.submit {
                served.withLock { $0.append(value) }
                onLoop.withLock { $0 = $0 && loop.inEventLoop }
            }
        }
        try await waitUntil { served.withLock { $0.count } == 3 }
        // Waiting for the next request: finish() ends it, and later submissions are dropped.
        requests.finish()
        await serving.value
        requests.submit { served.withLock { $0.append(4) } }

        #expect(served.withLock { $0 } == [1, 2, 3])
        #expect(onLoop.withLock { $0 })
        try await group.shutdownGracefully()
    }

    @Test func requestsSubmittedBeforeFinishAreStillServed() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let requests = FastPathRequests(executor: LoopTaskExecutor(loop: group.next()))
        let served = Shared<[Int]>([])
        for value in 1...3 { requests.submit { served.withLock { $0.append(value) } } }
        requests.finish()
        await Task(executorPreference: requests.executor) { await requests.serve() }.value
        #expect(served.withLock { $0 } == [1, 2, 3])
        try await group.shutdownGracefully()
    }

    /// A value the escaping jobs and the test share.
    final class Shared<Value: Sendable>: Sendable {
        private let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
        func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}
