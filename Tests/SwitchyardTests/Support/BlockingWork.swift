import Dispatch
import Foundation

/// Work that blocks a thread — waiting for a child process — run on a thread of Dispatch's, not on
/// Swift's cooperative pool. The pool has one thread per core (two here), and tests that blocked
/// them (the Python cross-checks, the processes of the CLI tests) stalled every task of the tests
/// running beside them for seconds — among them the router's background credential refreshes, so
/// that a platform test saw a token fetch miss its request's deadline.
enum BlockingWork {
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}

extension Process {
    /// `waitUntilExit()` without holding a thread of Swift's cooperative pool (``BlockingWork``).
    func exited() async {
        let process = UncheckedProcess(process: self)
        _ = try? await BlockingWork.run { process.process.waitUntilExit() }
    }
}

/// A `Process` handed to the thread that waits for it; nothing else touches it meanwhile.
private struct UncheckedProcess: @unchecked Sendable {
    let process: Process
}
