import NIOCore
import Testing

@testable import SwitchyardCore

/// The rules a caller connection ends by (``ConnectionLifecycle``), as plain transitions with
/// explicit times: idle keep-alive connections close, answering ones do not, and a quiesce waits
/// for the open answer.
@Suite("Connection lifecycle")
struct ConnectionLifecycleTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static func at(_ ms: Int64) -> NIODeadline { start + .milliseconds(ms) }

    @Test func anIdleConnectionClosesAfterTheTimeoutFromItsLastAnswer() {
        var lifecycle = ConnectionLifecycle(idleTimeout: .milliseconds(300), now: Self.start)
        #expect(lifecycle.activated(now: Self.start) == .armTimer(Self.at(300)))
        lifecycle.read(head: true, end: true, now: Self.at(100))
        #expect(lifecycle.answered(now: Self.at(150)) == .armTimer(Self.at(450)))
        // The first timer fires before the connection has been idle long enough: armed again.
        #expect(lifecycle.timerFired(now: Self.at(300)) == .armTimer(Self.at(450)))
        #expect(lifecycle.timerFired(now: Self.at(450)) == .close)
    }

    @Test func aConnectionWaitingForItsAnswerIsNotIdle() {
        var lifecycle = ConnectionLifecycle(idleTimeout: .milliseconds(300), now: Self.start)
        _ = lifecycle.activated(now: Self.start)
        lifecycle.read(head: true, end: true, now: Self.at(10))
        // The upstream takes longer than the idle timeout: the timer does nothing.
        #expect(lifecycle.timerFired(now: Self.at(300)) == ConnectionLifecycle.Action.none)
        #expect(lifecycle.timerFired(now: Self.at(5_000)) == ConnectionLifecycle.Action.none)
        #expect(lifecycle.answered(now: Self.at(6_000)) == .armTimer(Self.at(6_300)))
    }

    @Test func aRequestStillBeingReadKeepsTheConnectionOnlyWhileItsPartsArrive() {
        var lifecycle = ConnectionLifecycle(idleTimeout: .milliseconds(300), now: Self.start)
        _ = lifecycle.activated(now: Self.start)
        lifecycle.read(head: true, end: false, now: Self.at(200))
        #expect(lifecycle.timerFired(now: Self.at(300)) == .armTimer(Self.at(500)))
        #expect(lifecycle.timerFired(now: Self.at(500)) == .close)
    }

    @Test func quiescingClosesAtOnceWhenIdleAndAfterTheLastOpenAnswerOtherwise() {
        var idle = ConnectionLifecycle(idleTimeout: nil, now: Self.start)
        _ = idle.activated(now: Self.start)
        #expect(idle.quiesce() == .close)

        var busy = ConnectionLifecycle(idleTimeout: .seconds(75), now: Self.start)
        _ = busy.activated(now: Self.start)
        busy.read(head: true, end: true, now: Self.at(1))
        busy.read(head: true, end: true, now: Self.at(2))  // pipelined
        #expect(busy.quiesce() == ConnectionLifecycle.Action.none)
        #expect(busy.answered(now: Self.at(3)) == ConnectionLifecycle.Action.none)
        #expect(busy.answered(now: Self.at(4)) == .close)
    }

    @Test func anAnswerToNoCountedRequestDoesNotUnderflow() {
        var lifecycle = ConnectionLifecycle(idleTimeout: .seconds(1), now: Self.start)
        _ = lifecycle.activated(now: Self.start)
        // A 400 for bytes that never parsed into a request.
        #expect(lifecycle.answered(now: Self.at(5)) == .armTimer(Self.at(1_005)))
        lifecycle.read(head: true, end: true, now: Self.at(6))
        #expect(lifecycle.openRequests == 1)
        _ = lifecycle.answered(now: Self.at(7))
        #expect(lifecycle.openRequests == 0)
    }
}
