import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import SwitchyardCore

/// The fast path's request tasks prefer their connection's loop (``LoopTaskExecutor``): every job
/// of such a task — its start, the code after each `await` of a nonisolated function, a
/// continuation resumed from another thread — runs on that loop.
@Suite("Loop task executor")
struct LoopTaskExecutorTests {
    /// A nonisolated async function: before the executor, each `await` of one hopped to the
    /// generic executor.
    nonisolated static func hop(_ value: Int) async -> Int {
        await Task.yield()
        return value + 1
    }

    @Test func aTaskPreferringALoopRunsEveryJobOnIt() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loop = group.next()
        let other = group.next()
        #expect(loop !== other)
        let executor = LoopTaskExecutor(loop: loop)

        let onLoop = await Task(executorPreference: executor) { () async -> [Bool] in
            var seen = [loop.inEventLoop]
            var value = 0
            for _ in 0..<5 {
                value = await Self.hop(value)
                seen.append(loop.inEventLoop)
            }
            // Resumed by the other loop's thread: the task still continues on its own loop.
            let reached = value
            let resumed = await withCheckedContinuation { (continuation: CheckedContinuation<Int, Never>) in
                other.execute { continuation.resume(returning: reached) }
            }
            seen.append(loop.inEventLoop && resumed == 5)
            return seen
        }.value

        #expect(onLoop.count == 7)
        #expect(onLoop.allSatisfy { $0 })
        try await group.shutdownGracefully()
    }

    /// Jobs enqueued on the loop run in batches; a job a batch enqueues waits for the next one,
    /// so a task that keeps yielding leaves room for the loop's other work.
    @Test func aTaskThatKeepsYieldingDoesNotHoldTheLoopsOtherWorkBack() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let executor = try await loop.submit { LoopTaskExecutor.ofCurrentLoop }.get()
        let sameAgain = try await loop.submit { LoopTaskExecutor.ofCurrentLoop }.get()
        #expect(executor != nil && executor === sameAgain, "one executor per loop")
        #expect(LoopTaskExecutor.ofCurrentLoop == nil, "none off a loop thread")

        let otherWorkRan = Mutex(false)
        let yieldsBeforeOtherWork = await Task(executorPreference: executor) { () async -> Int? in
            // From here on the task's jobs are enqueued on the loop, in the executor's batches.
            await Task.yield()
            // Queued behind this job on the loop: it runs once this task yields its turn.
            loop.execute { otherWorkRan.withLock { $0 = true } }
            for yields in 0..<10_000 {
                if otherWorkRan.withLock({ $0 }) { return yields }
                await Task.yield()
                precondition(loop.inEventLoop)
            }
            return nil
        }.value
        let yields = try #require(yieldsBeforeOtherWork, "10,000 yields and the loop never ran its other task")
        #expect(yields <= 2)
        try await group.shutdownGracefully()
    }

    /// A credential's background fetch runs on a loop too, not on Swift's cooperative pool: in
    /// this process NIO's loops are not the global executor, and a fetch queued on a busy pool
    /// missed the deadlines of requests waiting for it on the loops (CI, before this).
    @Test func aCredentialsBackgroundFetchRunsOnALoop() async throws {
        let placesSeen = Mutex<[Bool]>([])
        let credential = RefreshingCredential<String>(source: "test endpoint", now: { 1_000_000 }) { _ throws(CredentialError) in
            placesSeen.withLock { $0.append(MultiThreadedEventLoopGroup.currentEventLoop != nil) }
            try? await Task.sleep(for: .milliseconds(1))
            placesSeen.withLock { $0.append(MultiThreadedEventLoopGroup.currentEventLoop != nil) }
            return .init(value: "token", expiresAtMs: 1_000_000 + 3_600_000)
        }
        let value = try await credential.value(deadline: .now() + .seconds(10))
        #expect(value == "token")
        #expect(placesSeen.withLock { $0 } == [true, true])
    }
}
