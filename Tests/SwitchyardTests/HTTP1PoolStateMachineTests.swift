import NIOCore
import Testing

@testable import SwitchyardCore

/// The pool's rules, fed events by hand: no sockets, no clock.
@Suite struct HTTP1PoolStateMachineTests {
    typealias Machine = HTTP1PoolStateMachine

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static func at(_ milliseconds: Int64) -> NIODeadline { start + .milliseconds(milliseconds) }

    /// A machine with `count` idle connections on `loop`, made at 0 ms (ids 0, 1, …).
    static func withIdle(_ count: Int, loop: Int = 0, max: Int = 8, loops: Int = 2) -> Machine {
        var machine = Machine(maxConnections: max, loopCount: loops)
        for request in 0..<count {
            let actions = machine.lease(100 + request, loop: loop, deadline: at(5_000), now: at(0))
            #expect(actions.connect.count == 1)
        }
        for connection in 0..<count {
            #expect(machine.connectionReady(connection, now: at(1)).execute?.connection == connection)
        }
        for connection in 0..<count {
            #expect(machine.released(connection, now: at(2)).execute == nil)
        }
        #expect(machine.statistics.idle == count)
        return machine
    }

    @Test func aRequestTakesTheMostRecentlyUsedIdleConnectionOfItsLoop() {
        var machine = Self.withIdle(2)
        _ = machine.lease(1, loop: 0, deadline: Self.at(5_000), now: Self.at(3))
        _ = machine.released(0, now: Self.at(10))
        let actions = machine.lease(2, loop: 0, deadline: Self.at(5_000), now: Self.at(11))
        #expect(actions.execute?.request == 2)
        #expect(actions.execute?.connection == 0)
        #expect(actions.connect.isEmpty)
    }

    @Test func withNoIdleConnectionOneIsOpenedOnTheRequestsLoop() {
        var machine = Machine(maxConnections: 4, loopCount: 2)
        let actions = machine.lease(1, loop: 1, deadline: Self.at(5_000), now: Self.at(0))
        #expect(actions.execute == nil)
        #expect(actions.connect.map(\.loop) == [1])
        #expect(actions.timer == .arm(Self.at(5_000)))
        let ready = machine.connectionReady(actions.connect[0].connection, now: Self.at(2))
        #expect(ready.execute?.request == 1)
        #expect(ready.timer == .cancel)
    }

    @Test func anIdleConnectionOfAnotherLoopIsLeftAloneWhileTheBoundAllowsANewOne() {
        var machine = Self.withIdle(1, loop: 0)
        let actions = machine.lease(1, loop: 1, deadline: Self.at(5_000), now: Self.at(3))
        #expect(actions.execute == nil)
        #expect(actions.connect.map(\.loop) == [1])
    }

    @Test func atTheBoundAnIdleConnectionOfAnotherLoopBeatsWaiting() {
        var machine = Self.withIdle(2, loop: 0, max: 2)
        let actions = machine.lease(1, loop: 1, deadline: Self.at(5_000), now: Self.at(3))
        #expect(actions.execute?.connection == 1)
        #expect(actions.connect.isEmpty)
    }

    @Test func theBoundHoldsAcrossLoopsOpeningConnectionsIncluded() {
        var machine = Machine(maxConnections: 3, loopCount: 2)
        var connects: [Int] = []
        for request in 0..<6 {
            connects += machine.lease(request, loop: request % 2, deadline: Self.at(5_000), now: Self.at(0)).connect.map(\.connection)
        }
        #expect(connects.count == 3)
        #expect(machine.statistics.connecting == 3)
        #expect(machine.statistics.waiting == 6)
        // Each connection serves a waiter, oldest first; a finished one serves the next.
        var served: [Int] = []
        for connection in connects {
            if let execute = machine.connectionReady(connection, now: Self.at(1)).execute { served.append(execute.request) }
        }
        #expect(served.count == 3)
        let next = machine.released(connects[0], now: Self.at(2))
        #expect(next.execute != nil)
        #expect(machine.statistics.total == 3)
    }

    @Test func aWaiterGivesUpAtItsDeadlineAsCapacityWhenThePoolIsFull() {
        var machine = Machine(maxConnections: 1, loopCount: 1)
        let first = machine.lease(1, loop: 0, deadline: Self.at(5_000), now: Self.at(0))
        _ = machine.connectionReady(first.connect[0].connection, now: Self.at(1))
        let waiting = machine.lease(2, loop: 0, deadline: Self.at(400), now: Self.at(2))
        #expect(waiting.connect.isEmpty)
        #expect(waiting.timer == .arm(Self.at(400)))
        let early = machine.timerFired(now: Self.at(399))
        #expect(early.fail.isEmpty)
        let fired = machine.timerFired(now: Self.at(400))
        #expect(fired.fail.map(\.request) == [2])
        #expect(fired.fail.map(\.failure) == [.capacity])
        #expect(machine.statistics.capacityRejections == 1)
        #expect(machine.statistics.waiting == 0)
    }

    @Test func aWaiterWhoseConnectionIsBeingOpenedWaitsForTheConnectNotItsQueueDeadline() {
        var machine = Machine(maxConnections: 4, loopCount: 1)
        let actions = machine.lease(1, loop: 0, deadline: Self.at(100), now: Self.at(0))
        #expect(machine.timerFired(now: Self.at(100)).fail.isEmpty)
        // The timer does not fire again for it.
        #expect(machine.statistics.waiting == 1)
        let failed = machine.connectFailed(actions.connect[0].connection, error: .connectTimeout)
        #expect(failed.fail.map(\.failure) == [.connect(.connectTimeout)])
    }

    @Test func anExpiredWaiterLeftWithoutAConnectFailsAsCapacity() {
        // Two waiters, one connection being opened, the bound reached by a busy one.
        var machine = Machine(maxConnections: 2, loopCount: 1)
        let busy = machine.lease(1, loop: 0, deadline: Self.at(5_000), now: Self.at(0))
        _ = machine.connectionReady(busy.connect[0].connection, now: Self.at(1))
        let opening = machine.lease(2, loop: 0, deadline: Self.at(100), now: Self.at(2))
        _ = machine.lease(3, loop: 0, deadline: Self.at(100), now: Self.at(3))
        #expect(opening.connect.count == 1)
        let fired = machine.timerFired(now: Self.at(100))
        // Request 2 has a connection being opened for it; request 3 has none and the pool is full.
        #expect(fired.fail.map(\.request) == [3])
        #expect(fired.fail.map(\.failure) == [.capacity])
    }

    @Test func aConnectFailureFailsOnlyAWaiterNoOtherConnectCovers() {
        var machine = Machine(maxConnections: 8, loopCount: 1)
        let a = machine.lease(1, loop: 0, deadline: Self.at(5_000), now: Self.at(0))
        let b = machine.lease(2, loop: 0, deadline: Self.at(5_000), now: Self.at(0))
        let failed = machine.connectFailed(a.connect[0].connection, error: HTTP1ClientError(.connect, "refused"))
        #expect(failed.fail.map(\.request) == [1])
        #expect(failed.connect.isEmpty)
        #expect(machine.connectionReady(b.connect[0].connection, now: Self.at(1)).execute?.request == 2)
    }

    @Test func aReplayedRequestGoesFirstAndMakesRoomAtTheBound() {
        var machine = Self.withIdle(2, loop: 0, max: 2)
        // Both idle connections were made at 0 ms; connection 1 is the older idle one.
        _ = machine.lease(1, loop: 0, deadline: Self.at(5_000), now: Self.at(3))  // takes 1 (most recent)
        _ = machine.released(1, now: Self.at(4))
        _ = machine.lease(7, loop: 0, deadline: Self.at(5_000), now: Self.at(5))  // takes 1 again
        let actions = machine.retry(9, loop: 0, deadline: Self.at(5_000))
        #expect(actions.close == [0])
        #expect(actions.connect.count == 1)
        #expect(actions.execute == nil)
        // The next connection to free up serves the replay, not a waiting idle one.
        _ = machine.lease(10, loop: 0, deadline: Self.at(5_000), now: Self.at(6))
        let next = machine.released(1, now: Self.at(7))
        #expect(next.execute?.request == 9)
    }

    @Test func anIdleConnectionPastTheUpstreamsKeepAliveTimeoutIsClosedNotHandedOut() {
        var machine = Self.withIdle(1)
        _ = machine.lease(1, loop: 0, deadline: Self.at(5_000), now: Self.at(3))
        _ = machine.released(0, keepAliveTimeout: .seconds(2), now: Self.at(10))
        // 2 s announced: handed out within 1.5 s of idleness, closed after.
        #expect(machine.lease(2, loop: 0, deadline: Self.at(5_000), now: Self.at(1_400)).execute?.connection == 0)
        _ = machine.released(0, keepAliveTimeout: .seconds(2), now: Self.at(1_410))
        let late = machine.lease(3, loop: 0, deadline: Self.at(5_000), now: Self.at(2_950))
        #expect(late.close == [0])
        #expect(late.execute == nil)
        #expect(late.connect.count == 1)
    }

    @Test func anUpstreamSeenClosingIdleConnectionsLowersHowLongOnesAreReused() {
        var machine = Self.withIdle(2)
        // The upstream closed connection 1 after 50 ms idle (it was released at 2 ms).
        _ = machine.connectionClosed(1, idleCloseByUpstream: true, now: Self.at(52))
        #expect(machine.observedIdleClose == .milliseconds(50))
        // Connection 0, idle since 2 ms: at 30 ms it may go out, at 45 ms (past 3/4 of 50) not.
        #expect(machine.lease(1, loop: 0, deadline: Self.at(5_000), now: Self.at(30)).execute?.connection == 0)
        _ = machine.released(0, now: Self.at(31))
        let stale = machine.lease(2, loop: 0, deadline: Self.at(5_000), now: Self.at(80))
        #expect(stale.close == [0])
        #expect(stale.execute == nil)
    }

    @Test func aCancelledWaiterLeavesTheQueue() {
        var machine = Machine(maxConnections: 1, loopCount: 1)
        let first = machine.lease(1, loop: 0, deadline: Self.at(5_000), now: Self.at(0))
        _ = machine.connectionReady(first.connect[0].connection, now: Self.at(1))
        _ = machine.lease(2, loop: 0, deadline: Self.at(300), now: Self.at(2))
        let cancelled = machine.cancel(2)
        #expect(cancelled.timer == .cancel)
        #expect(machine.statistics.waiting == 0)
        #expect(machine.released(first.connect[0].connection, now: Self.at(3)).execute == nil)
        #expect(machine.statistics.idle == 1)
    }

    @Test func shutdownFailsWaitersClosesConnectionsAndRefusesLaterLeases() {
        var machine = Self.withIdle(1, max: 1)
        _ = machine.lease(1, loop: 0, deadline: Self.at(5_000), now: Self.at(3))
        _ = machine.lease(2, loop: 0, deadline: Self.at(5_000), now: Self.at(3))
        let actions = machine.shutdown()
        #expect(actions.fail.map(\.request) == [2])
        #expect(actions.close == [0])
        #expect(machine.lease(3, loop: 0, deadline: Self.at(5_000), now: Self.at(4)).fail.map(\.failure) == [.shutdown])
    }
}
