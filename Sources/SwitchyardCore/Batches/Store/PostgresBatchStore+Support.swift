import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization

extension PostgresBatchStore {
    /// Where the shared database is and how to use it. The password comes from the environment
    /// variable `store_password_env` names, never from the URL, and is never logged.
    public struct Configuration: Sendable {
        public enum TLSMode: String, Sendable {
            /// Plain TCP.
            case disable
            /// TLS when the server offers it, without checking its certificate (libpq's default).
            case prefer
            /// TLS always, without checking the certificate.
            case require
            /// TLS always, with the certificate checked against the system's roots and the host name.
            case verifyFull = "verify-full"

            /// The TLS settings the mode asks for, and whether a server without TLS is still
            /// accepted (`prefer`); nil for `disable`. The batch store's pool and the fleet link
            /// both connect this way.
            var clientTLS: (settings: TLSConfiguration, optional: Bool)? {
                switch self {
                case .disable:
                    return nil
                case .prefer, .require:
                    var settings = TLSConfiguration.makeClientConfiguration()
                    settings.certificateVerification = .none
                    return (settings, self == .prefer)
                case .verifyFull:
                    return (.makeClientConfiguration(), false)
                }
            }
        }

        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        /// The schema the tables live in (`search_path`); created by `prepare()` when missing. nil:
        /// the role's default search path (usually `public`).
        public var schema: String?
        public var tls: TLSMode
        /// Connections in this process's pool.
        public var maximumConnections: Int
        /// How long a call waits for a connection before it fails with `.unavailable` (PostgreSQL
        /// down or unreachable). The pool keeps reconnecting in the background.
        public var acquireTimeout: Duration

        public init(
            host: String, port: Int = 5432, username: String, password: String?, database: String, schema: String? = nil,
            tls: TLSMode = .prefer, maximumConnections: Int = 16, acquireTimeout: Duration = .seconds(5)
        ) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.schema = schema
            self.tls = tls
            self.maximumConnections = maximumConnections
            self.acquireTimeout = acquireTimeout
        }

        /// host:port/database, for messages (no user, no password).
        var endpoint: String { "\(host):\(port)/\(database)" }

        func clientConfiguration() -> PostgresClient.Configuration {
            var tlsConfiguration = PostgresClient.Configuration.TLS.disable
            if case let (settings, optional)? = tls.clientTLS {
                tlsConfiguration = optional ? .prefer(settings) : .require(settings)
            }
            var configuration = PostgresClient.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: tlsConfiguration)
            configuration.options.maximumConnections = maximumConnections
            configuration.options.connectTimeout = acquireTimeout
            if let schema { configuration.options.additionalStartupParameters = [("search_path", schema)] }
            return configuration
        }

        static func isValidSchemaName(_ name: String) -> Bool {
            guard let first = name.unicodeScalars.first, first == "_" || ("a"..."z").contains(first), name.utf8.count <= 63 else { return false }
            return name.unicodeScalars.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
        }
    }

    struct AcquireTimeout: Error {}

    /// What a PostgreSQL failure means to the caller. Messages carry the SQLSTATE and, for errors
    /// that cannot quote data, the server's message; never a bound value or the password.
    func storeError(_ error: any Error, doing: String) -> BatchStoreError {
        if let error = error as? BatchStoreError { return error }
        let endpoint = configuration.endpoint
        if error is AcquireTimeout {
            return BatchStoreError(.unavailable, "PostgreSQL at \(endpoint) gave no connection within \(configuration.acquireTimeout) (\(doing))")
        }
        if error is CancellationError {
            return BatchStoreError(.unavailable, "\(doing) was cancelled (PostgreSQL at \(endpoint))")
        }
        guard let error = error as? PSQLError else {
            if error is IOError || error is ChannelError || "\(type(of: error))".contains("ConnectionPool") {
                return BatchStoreError(.unavailable, "PostgreSQL at \(endpoint) is unreachable (\(doing))")
            }
            return BatchStoreError(.failed, "\(doing) on PostgreSQL at \(endpoint) failed: \(type(of: error))")
        }
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState] ?? "?"
            let message = error.serverInfo?[.message] ?? ""
            switch state {
            case "25006", "53100":
                return BatchStoreError(.readOnly, "PostgreSQL at \(endpoint) refuses writes (SQLSTATE \(state): \(message)) while \(doing)")
            case _ where state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57") || state.hasPrefix("40") || state == "55P03":
                return BatchStoreError(.unavailable, "PostgreSQL at \(endpoint) is unavailable (SQLSTATE \(state): \(message)) while \(doing)")
            case _ where state.hasPrefix("22") || state.hasPrefix("23"):
                return BatchStoreError(.failed, "\(doing) on PostgreSQL at \(endpoint) failed: SQLSTATE \(state)")
            default:
                return BatchStoreError(.failed, "\(doing) on PostgreSQL at \(endpoint) failed: SQLSTATE \(state): \(message)")
            }
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled,
            .sslUnsupported, .failedToAddSSLHandler:
            return BatchStoreError(.unavailable, "PostgreSQL at \(endpoint): \(error.code) while \(doing)")
        default:
            return BatchStoreError(.failed, "\(doing) on PostgreSQL at \(endpoint) failed: \(error.code)")
        }
    }

    static func sqlState(of error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    static func record(_ row: PostgresRow) throws -> BatchRecord {
        let cells = row.makeRandomAccess()
        return BatchRecord(
            id: try cells["id"].decode(String.self),
            client: try cells["client"].decode(String?.self),
            createdAtMs: try cells["created_at"].decode(Int64.self),
            expiresAtMs: try cells["expires_at"].decode(Int64.self),
            endedAtMs: try cells["ended_at"].decode(Int64?.self),
            cancelInitiatedAtMs: try cells["cancel_initiated_at"].decode(Int64?.self),
            counts: BatchRequestCounts(
                processing: Int(try cells["n_pending"].decode(Int64.self)),
                succeeded: Int(try cells["n_succeeded"].decode(Int64.self)),
                errored: Int(try cells["n_errored"].decode(Int64.self)),
                canceled: Int(try cells["n_canceled"].decode(Int64.self)),
                expired: Int(try cells["n_expired"].decode(Int64.self))
            )
        )
    }
}

extension PostgresConnection {
    /// Runs `sql` with `binds` and reads every row.
    func rows(_ sql: String, _ build: (inout PostgresBindings) -> Void = { _ in }, logger: Logger) async throws -> [PostgresRow] {
        var bindings = PostgresBindings()
        build(&bindings)
        return try await query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger).collect()
    }
}

/// Set once, read from another task: whether a call got its connection before the deadline.
final class ConnectionAcquired: Sendable {
    private let value = Atomic(false)

    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

extension PostgresBatchStore {
    /// Runs `body` on a pooled connection. Waiting for the connection is bounded by
    /// ``Configuration/acquireTimeout``: when PostgreSQL is down the pool queues the call while it
    /// reconnects, and the call fails with `.unavailable` instead of hanging.
    func withConnection<T: Sendable>(
        _ doing: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(BatchStoreError) -> T {
        let acquired = ConnectionAcquired()
        let timeout = configuration.acquireTimeout
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await self.client.withConnection { connection in
                        acquired.set()
                        return try await body(connection)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    if acquired.isSet { return nil }
                    throw AcquireTimeout()
                }
                while let result = try await group.next() {
                    if let value = result {
                        group.cancelAll()
                        return value
                    }
                }
                throw CancellationError()
            }
        } catch {
            let failure = storeError(error, doing: doing)
            logger.debug("batch store call failed", metadata: ["error": "\(failure)"])
            throw failure
        }
    }

    /// `body` in one transaction (READ COMMITTED), rolled back on any error; tried again, up to
    /// three times, when PostgreSQL aborts it for a deadlock or a serialization failure.
    func transaction<T: Sendable>(
        _ doing: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(BatchStoreError) -> T {
        try await withConnection(doing) { connection in
            var attempt = 1
            while true {
                _ = try await connection.rows("BEGIN", logger: self.queryLogger)
                do {
                    let value = try await body(connection)
                    _ = try await connection.rows("COMMIT", logger: self.queryLogger)
                    return value
                } catch {
                    _ = try? await connection.rows("ROLLBACK", logger: self.queryLogger)
                    let state = Self.sqlState(of: error)
                    guard attempt < 3, state == "40P01" || state == "40001" else { throw error }
                    attempt += 1
                }
            }
        }
    }

    /// Locks batch rows in id order (the order every writer uses, so two never wait on each other).
    /// `FOR NO KEY UPDATE` does not block the foreign-key checks of inserts.
    func lockBatches(_ ids: [String], _ connection: PostgresConnection) async throws {
        guard !ids.isEmpty else { return }
        _ = try await connection.rows(
            "SELECT id FROM batches WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE", { $0.append(ids) }, logger: queryLogger)
    }

    /// Ends those of `ids` with nothing pending (the caller holds their locks); answers their ids.
    func endBatches(_ ids: [String], nowMs: Int64, _ connection: PostgresConnection) async throws -> [String] {
        guard !ids.isEmpty else { return [] }
        return try await connection.rows(
            BatchSchema.endBatchesWithNothingPending(idList: "SELECT unnest($2::text[])"), { $0.append(nowMs); $0.append(ids) }, logger: queryLogger
        ).map { try $0.decode(String.self) }
    }

    /// The batches `ids`, oldest first.
    func records(_ ids: [String], _ connection: PostgresConnection) async throws -> [BatchRecord] {
        guard !ids.isEmpty else { return [] }
        return try await connection.rows(
            BatchSchema.recordSelect + " WHERE b.id = ANY($1::text[]) ORDER BY b.seq", { $0.append(ids) }, logger: queryLogger
        ).map(Self.record)
    }

    /// An UPDATE for a WITH clause: ends the batches of `finished` (a relation of batch_id,
    /// custom_id that the same statement took out of `pending`) left with nothing pending. The
    /// statement's snapshot predates its own writes, hence the exclusion; the caller holds the
    /// batches' locks, taken before the statement began, so no other writer's result is unseen.
    static func endBatchesSeeing(_ finished: String, nowParameter: Int) -> String {
        """
        UPDATE batches b SET ended_at = $\(nowParameter)
        WHERE b.id IN (SELECT batch_id FROM \(finished)) AND b.ended_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM batch_requests p WHERE p.batch_id = b.id AND p.state = 'pending'
                AND NOT EXISTS (SELECT 1 FROM \(finished) f WHERE f.batch_id = p.batch_id AND f.custom_id = p.custom_id))
        RETURNING b.id
        """
    }

    /// Changes requests `owner` still holds (pending), in one statement. `value` binds `$2`.
    func updateHeld(
        _ keys: [BatchRequestKey], owner: String, set: String, doing: String, value: @escaping @Sendable (inout PostgresBindings) -> Void
    ) async throws(BatchStoreError) {
        guard !keys.isEmpty else { return }
        try await withConnection(doing) { connection in
            _ = try await connection.rows(
                """
                UPDATE batch_requests r SET \(set)
                FROM unnest($3::text[], $4::text[]) AS v (batch_id, custom_id)
                WHERE r.batch_id = v.batch_id AND r.custom_id = v.custom_id AND r.state = 'pending' AND r.lease_owner = $1
                """,
                { binds in
                    binds.append(owner)
                    value(&binds)
                    binds.append(keys.map(\.batchID))
                    binds.append(keys.map(\.customID))
                }, logger: self.queryLogger)
        }
    }
}
