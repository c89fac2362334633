#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import DequeModule
import Foundation
import Synchronization

/// The JSON-lines audit stream. Lines are queued in memory and written by one dedicated thread;
/// when the queue is over its limit, writers wait (back-pressure) instead of lines being dropped.
/// A request's record is queued as it is and encoded by that thread, so the event loops that
/// serve requests never spend time on audit JSON.
public final class AuditLog: Sendable {
    public enum Destination: Sendable, Equatable {
        case stdout
        case file(String)
        /// Kept in memory; for tests.
        case memory
    }

    public struct OpenError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot open audit log \(path): \(reason)" }
    }

    /// One queued line: encoded already (rare lifecycle and breaker lines), or a request's
    /// record for the writer to encode.
    enum Entry: Sendable {
        case line([UInt8])
        case record(RequestAuditRecord)

        var estimatedSize: Int {
            switch self {
            case .line(let bytes): bytes.count + 1
            case .record(let record): record.estimatedSize
            }
        }

        func encode(into buffer: inout [UInt8]) {
            switch self {
            case .line(let bytes): buffer.append(contentsOf: bytes)
            case .record(let record): record.encode(into: &buffer)
            }
            buffer.append(UInt8(ascii: "\n"))
        }
    }

    private struct State {
        var batch: [Entry] = []
        /// What the queued entries take, about, once encoded; the limit applies to this.
        var batchBytes = 0
        var waiters: Deque<CheckedContinuation<Void, Never>> = []
        var flushWaiters: [CheckedContinuation<Void, Never>] = []
        var closed = false
        var writtenLines = 0
        var pendingLines = 0
        /// Lines the writer has taken and not yet written: a flush waits for these too.
        var writingLines = 0
        /// The writer waits for a signal (a whole linger brought nothing to write). While it
        /// runs, it wakes every ``AuditLog/linger`` on its own: lines are written in batches,
        /// without a wake-up (and a context switch) per line or per few lines.
        var writerAsleep = true
        /// Something cannot wait for the linger to end: a ``flush()``, appenders held back by
        /// the limit, or a batch of ``AuditLog/urgentBytes``.
        var urgent = false
    }

    /// How long the running writer lets lines gather before it writes them. Each wake-up of the
    /// writer costs a timer, two context switches and a `write`; at 2 ms, a router serving one
    /// connection at a time paid several µs of CPU per request for them (bench/README.md,
    /// step 17). A line still reaches the file within about this long; `flush()` and shutdown
    /// write at once.
    static let linger = Duration.milliseconds(10)
    /// A batch this large (about, in encoded bytes) is written without waiting out the linger.
    static let urgentBytes = 256 << 10

    private let state = Mutex(State())
    private let wakeup = Condition()
    private let fd: Int32
    private let ownsFD: Bool
    private let memory: MemorySink?
    /// Queues larger than this (in bytes, about) make writers wait.
    private let highWater: Int

    public init(destination: Destination, highWater: Int = 4 << 20) throws(OpenError) {
        self.highWater = highWater
        switch destination {
        case .stdout:
            fd = STDOUT_FILENO
            ownsFD = false
            memory = nil
        case .memory:
            fd = -1
            ownsFD = false
            memory = MemorySink()
        case .file(let path):
            let opened = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            guard opened >= 0 else { throw OpenError(path: path, reason: String(cString: strerror(errno))) }
            fd = opened
            ownsFD = true
            memory = nil
        }
        let thread = Thread { [self] in self.writerLoop() }
        thread.name = "switchyard-audit"
        thread.start()
    }

    /// Appends one line (without its newline); returns once it is queued, waiting while the
    /// queue is over its limit.
    nonisolated(nonsending) public func append(_ line: [UInt8]) async {
        await append(.line(line))
    }

    /// Appends a request's line, to be encoded on the writer's thread.
    nonisolated(nonsending) public func append(_ record: RequestAuditRecord) async {
        await append(.record(record))
    }

    nonisolated(nonsending) private func append(_ entry: Entry) async {
        let size = entry.estimatedSize
        let highWater = self.highWater
        let (mustWait, wake) = state.withLock { state -> (Bool, Bool) in
            state.batch.append(entry)
            state.batchBytes += size
            state.pendingLines += 1
            let mustWait = state.batchBytes > highWater
            // Only the first line after a quiet spell wakes the writer, and a batch that should
            // not wait; otherwise the writer wakes itself when its linger ends.
            var wake = state.writerAsleep
            if !state.urgent, mustWait || state.batchBytes >= Self.urgentBytes {
                state.urgent = true
                wake = true
            }
            state.writerAsleep = false
            return (mustWait, wake)
        }
        if wake { wakeup.signal() }
        if mustWait {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.batchBytes <= highWater || state.closed { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Queues a rare lifecycle line at once, from synchronous code, without waiting for room
    /// (so it keeps its place in time: `server.draining` before the requests that finish later).
    public func enqueue(_ line: [UInt8]) {
        let wake = state.withLock { state -> Bool in
            state.batch.append(.line(line))
            state.batchBytes += line.count + 1
            state.pendingLines += 1
            defer { state.writerAsleep = false }
            return state.writerAsleep
        }
        if wake { wakeup.signal() }
    }

    /// Waits until every line appended so far has been written.
    public func flush() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.pendingLines == 0 && state.writingLines == 0 { return true }
                state.flushWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
            state.withLock { state in
                state.writerAsleep = false
                state.urgent = true
            }
            wakeup.signal()
        }
    }

    /// Flushes and stops the writer thread.
    public func close() async {
        await flush()
        state.withLock { $0.closed = true }
        wakeup.signal()
    }

    /// Lines written so far (for tests and the shutdown message).
    public var writtenLines: Int { state.withLock { $0.writtenLines } }

    /// The memory destination's contents.
    public var memoryContents: String {
        memory.map { String(decoding: $0.bytes.withLock { $0 }, as: UTF8.self) } ?? ""
    }

    private func writerLoop() {
        var entries: [Entry] = []
        var encoded: [UInt8] = []
        /// Whether the last round wrote something: then lines are coming, and the writer lets the
        /// next ones gather for a linger (ended early only when something is urgent).
        var running = false
        while true {
            if running {
                _ = wakeup.wait(for: Self.linger) { self.state.withLock { $0.urgent || $0.closed } }
            }
            var lines = 0
            let (closed, sleep) = state.withLock { state -> (Bool, Bool) in
                swap(&entries, &state.batch)
                state.batchBytes = 0
                state.urgent = false
                lines = state.pendingLines
                state.pendingLines = 0
                state.writingLines = lines
                // A whole linger (or the start) brought nothing: sleep until a line comes.
                let sleep = entries.isEmpty && !state.closed && state.flushWaiters.isEmpty
                if sleep { state.writerAsleep = true }
                return (state.closed, sleep)
            }
            if sleep {
                running = false
                wakeup.wait { self.state.withLock { !$0.batch.isEmpty || $0.closed || $0.urgent } }
                continue
            }
            running = !entries.isEmpty
            if !entries.isEmpty {
                for entry in entries { entry.encode(into: &encoded) }
                entries.removeAll(keepingCapacity: entries.count < 4096)
                write(encoded)
                encoded.removeAll(keepingCapacity: encoded.count < 16 << 20)
            }
            let (waiters, flushWaiters) = state.withLock { state in
                state.writtenLines += lines
                state.writingLines = 0
                let waiters = state.waiters
                state.waiters.removeAll()
                var flushWaiters: [CheckedContinuation<Void, Never>] = []
                if state.pendingLines == 0 {
                    flushWaiters = state.flushWaiters
                    state.flushWaiters.removeAll()
                }
                return (waiters, flushWaiters)
            }
            waiters.forEach { $0.resume() }
            flushWaiters.forEach { $0.resume() }
            if closed, state.withLock({ $0.batch.isEmpty }) {
                if ownsFD { Glibc.close(fd) }
                return
            }
        }
    }

    private func write(_ bytes: [UInt8]) {
        if let memory {
            memory.bytes.withLock { $0.append(contentsOf: bytes) }
            return
        }
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    // The destination is gone (disk full, closed pipe); there is nowhere left to
                    // report to but stderr, and blocking callers forever would take the router down.
                    let message = "switchyard: audit log write failed: \(String(cString: strerror(errno)))\n"
                    _ = message.withCString { Glibc.write(STDERR_FILENO, $0, strlen($0)) }
                    return
                }
                offset += written
            }
        }
    }
}

final class MemorySink: Sendable {
    let bytes = Mutex<[UInt8]>([])
}

/// A minimal condition variable for the writer thread.
final class Condition: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    func signal() {
        pthread_mutex_lock(&mutex)
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Sleeps `pause` (or until signalled), then tells whether `ready` is true; returns at once
    /// when it is true already.
    func wait(for pause: Duration, ready: () -> Bool) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if ready() { return true }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = Int64(now.tv_nsec) + pause.nanoseconds
        var deadline = timespec(tv_sec: now.tv_sec + Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
        pthread_cond_timedwait(&condition, &mutex, &deadline)
        return ready()
    }

    /// Waits until `ready` is true; `ready` is checked under the condition's mutex so a signal
    /// between the check and the wait cannot be lost.
    func wait(until ready: () -> Bool) {
        pthread_mutex_lock(&mutex)
        while !ready() {
            pthread_cond_wait(&condition, &mutex)
        }
        pthread_mutex_unlock(&mutex)
    }
}
