#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A point on a monotonic timeline, in nanoseconds from an arbitrary origin. Plain integer
/// arithmetic keeps breaker and backoff decisions allocation-free and trivially testable.
public struct MonotonicInstant: Sendable, Hashable, Comparable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Self, rhs: Duration) -> Self { Self(nanoseconds: lhs.nanoseconds &+ rhs.nanoseconds) }

    public static func - (lhs: Self, rhs: Self) -> Duration { .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds) }
}

/// Time as the router sees it. Breakers, backoff and budgets read it; tests swap in ``ManualClock``.
public protocol RouterClock: Sendable {
    func now() -> MonotonicInstant
    func sleep(for duration: Duration) async throws
}

public struct SystemClock: RouterClock {
    public init() {}

    public func now() -> MonotonicInstant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return MonotonicInstant(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }

    public func sleep(for duration: Duration) async throws {
        guard duration > .zero else { return }
        try await Task.sleep(for: duration)
    }
}

/// A clock that only moves when told to. `sleep` advances it by the slept duration at once, so
/// code that backs off runs instantly under test while still observing the passage of time.
public final class ManualClock: RouterClock {
    private let current: Mutex<Int64>

    public init(start: MonotonicInstant = MonotonicInstant(nanoseconds: 1_000_000_000_000)) {
        current = Mutex(start.nanoseconds)
    }

    public func now() -> MonotonicInstant {
        MonotonicInstant(nanoseconds: current.withLock { $0 })
    }

    public func advance(by duration: Duration) {
        current.withLock { $0 &+= duration.nanoseconds }
    }

    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        if duration > .zero { advance(by: duration) }
        await Task.yield()
    }
}

/// Wall-clock time for audit timestamps, in milliseconds since the Unix epoch.
public enum WallClock {
    public static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    public static func nowMicroseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}
