import Foundation
import Testing

@testable import SwitchyardCore

/// The PostgreSQL server the PostgreSQL half of BatchStoreTests runs against: the one
/// `SWITCHYARD_TEST_POSTGRES_URL` names (CI starts it with `ops/postgres-test-cluster.sh`).
/// Unset: those tests fail, saying how to start it. `skip`: they are skipped, and say so.
enum PostgresTestCluster {
    static let variable = "SWITCHYARD_TEST_POSTGRES_URL"

    static let howToStart = """
        the PostgreSQL batch store tests need a server: run `eval "$(ops/postgres-test-cluster.sh start)"` \
        (PostgreSQL from `apt-get install -y postgresql`; the script exports \(variable)), \
        or set \(variable)=skip to skip them
        """

    enum Availability {
        case url(String)
        case skipped
        case missing
    }

    static var availability: Availability {
        switch ProcessInfo.processInfo.environment[variable] {
        case nil, "": .missing
        case "skip": .skipped
        case let url?: .url(url)
        }
    }

    /// The store configuration for the test database, in a schema of its own (created by `prepare`).
    static func configuration(url: String, schema: String, acquireTimeout: Duration = .seconds(5)) throws -> PostgresBatchStore.Configuration {
        guard case .postgres(let host, let port, let username, let database, _, let tls) = try BatchStores.parse(url) else {
            throw BatchStoreError(.failed, "\(variable) must be a postgres:// URL")
        }
        return PostgresBatchStore.Configuration(
            host: host, port: port, username: username, password: ProcessInfo.processInfo.environment["SWITCHYARD_TEST_POSTGRES_PASSWORD"],
            database: database, schema: schema, tls: tls, maximumConnections: 8, acquireTimeout: acquireTimeout)
    }

    /// A store URL for the test database in a schema of its own, so runs never share rows; nil
    /// (after recording an issue when the variable is missing) when there is no database.
    static func urlWithOwnSchema(_ test: String) -> String? {
        switch availability {
        case .missing:
            Issue.record(Comment(rawValue: howToStart))
            return nil
        case .skipped:
            print("\(test): skipped (\(variable)=skip)")
            return nil
        case .url(let given):
            return given + (given.contains("?") ? "&" : "?") + "schema=" + uniqueSchema()
        }
    }

    /// A fresh schema name.
    static func uniqueSchema() -> String {
        "t_" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// ops/postgres-test-cluster.sh of this checkout.
    static var script: String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ops/postgres-test-cluster.sh").path
    }

    /// Runs the cluster script (`stop immediate`, `start`, `status`) for the cluster on `url`'s port.
    @discardableResult
    static func runScript(_ arguments: [String], url: String) async throws -> (status: Int32, output: String) {
        guard case .postgres(_, let port, _, _, _, _) = try BatchStores.parse(url) else { throw HarnessError("\(variable) must be postgres://") }
        return try await runScript(arguments, port: port, directory: nil)
    }

    /// Runs the cluster script for the cluster on `port` in `directory` (nil: the environment's).
    @discardableResult
    static func runScript(_ arguments: [String], port: Int, directory: String?) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SWITCHYARD_PG_TEST_PORT"] = String(port)
        if let directory { environment["SWITCHYARD_PG_TEST_DIR"] = directory }
        process.environment = environment
        // A file, not a pipe: the server the script starts may inherit the descriptor and keep a
        // pipe open for as long as it runs.
        let outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("pg-cluster-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outputFile) }
        let handle = try FileHandle(forWritingTo: outputFile)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        await process.exited()
        try handle.close()
        let output = (try? String(contentsOf: outputFile, encoding: .utf8)) ?? ""
        return (process.terminationStatus, output)
    }

    /// A cluster of the test's own (its own folder and port), for tests that stop and start
    /// PostgreSQL while others use the shared one. nil (after saying why) when the PostgreSQL
    /// tests are skipped.
    static func ownCluster(_ test: String) async throws -> OwnCluster? {
        if case .skipped = availability {
            print("\(test): skipped (\(variable)=skip)")
            return nil
        }
        let directory = "/tmp/switchyard-test-pg-\(UInt32.random(in: 0...UInt32.max))"
        let port = Int.random(in: 20_000...39_999)
        let (status, output) = try await runScript(["start"], port: port, directory: directory)
        guard status == 0, let line = output.split(separator: "\n").first(where: { $0.contains("\(variable)=") }) else {
            Issue.record("could not start a PostgreSQL cluster of its own (\(howToStart)): \(output.suffix(1000))")
            _ = try? await runScript(["destroy"], port: port, directory: directory)
            return nil
        }
        return OwnCluster(directory: directory, port: port, url: String(line.split(separator: "=", maxSplits: 1)[1]))
    }

    struct OwnCluster: Sendable {
        let directory: String
        let port: Int
        let url: String

        func stop() async throws -> Int32 { try await PostgresTestCluster.runScript(["stop", "immediate"], port: port, directory: directory).status }
        func start() async throws -> Int32 { try await PostgresTestCluster.runScript(["start"], port: port, directory: directory).status }
        func destroy() async throws { try await PostgresTestCluster.runScript(["destroy"], port: port, directory: directory) }
    }

    /// Whether `url` is the cluster the script manages (so a test may stop and start it).
    static func isScriptCluster(url: String) async throws -> Bool {
        let (status, output) = try await runScript(["status"], url: url)
        return status == 0 && output.contains(url)
    }
}
