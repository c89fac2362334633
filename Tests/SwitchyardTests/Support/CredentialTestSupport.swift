import AsyncHTTPClient
import Foundation
import Logging
import Synchronization
import Testing

@testable import SwitchyardCore

/// Unix milliseconds that move only when a test says so.
final class TestUnixTime: Sendable {
    private let current: Mutex<Int64>

    init(_ start: Int64 = 1_760_000_000_000) {
        current = Mutex(start)
    }

    var now: @Sendable () -> Int64 { { [self] in current.withLock { $0 } } }
    var ms: Int64 { current.withLock { $0 } }

    func advance(seconds: Int64) {
        current.withLock { $0 += seconds * 1000 }
    }
}

/// A folder of files for one test, removed afterwards.
struct TemporaryFolder: ~Copyable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-credentials-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Writes `contents` to `name` in the folder and returns its path.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        let file = "\(path)/\(name)"
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A handler can wait on it until the test opens it.
final class TestGate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state in
                if state.open { return true }
                state.waiters.append(waiter)
                return false
            }
            if resumeNow { waiter.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Runs `body` with an HTTP client configured as the router's credential client, shut down after.
func withCredentialClient<T>(_ body: (HTTPClient) async throws -> T) async throws -> T {
    let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(3), read: .seconds(10)))
    )
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

/// Waits (in millisecond steps, at most `limit`) until `condition` holds; false when it never did.
func waitUntil(within limit: Duration = .seconds(5), _ condition: () async -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + limit
    while clock.now < end {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return await condition()
}

/// The error a throwing call failed with, or a test failure when it did not fail.
func credentialError<T>(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async -> CredentialError? {
    do {
        let value = try await body()
        Issue.record("expected a CredentialError, got \(value)", sourceLocation: sourceLocation)
    } catch let error as CredentialError {
        return error
    } catch {
        Issue.record("expected a CredentialError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Keeps every log line (message and metadata) so a test can check what was logged.
final class RecordingLogs: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(logs: self) }
    }

    private struct Handler: LogHandler {
        let logs: RecordingLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            logs.lines.withLock { $0.append("\(event.level) \(event.message) \(merged)") }
        }
    }
}
