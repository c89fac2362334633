import Atomics
import Synchronization

/// A value read by every request on every event loop and changed rarely (a reload, a new metrics
/// series): readers load an immutable snapshot with one atomic operation and never wait on a lock
/// the other loops hold; writers replace the snapshot under a lock of their own.
final class ReadMostly<Value: Sendable>: Sendable {
    private final class Snapshot: AtomicReference, Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    private let current: ManagedAtomic<Snapshot>
    private let writers = Mutex(())

    init(_ value: Value) {
        current = ManagedAtomic(Snapshot(value))
    }

    var value: Value { current.load(ordering: .acquiring).value }

    /// Replaces the value with what `change` makes of it; returns what `change` returned.
    @discardableResult
    func update<T>(_ change: (inout Value) -> T) -> T {
        writers.withLock { _ in
            var value = current.load(ordering: .acquiring).value
            let result = change(&value)
            current.store(Snapshot(value), ordering: .releasing)
            return result
        }
    }
}
