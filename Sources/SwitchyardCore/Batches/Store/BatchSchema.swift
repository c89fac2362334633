/// The batch store's tables, versioned: `schema_version` holds one row per migration applied, and
/// ``BatchSchema/plan(storedVersion:)`` says which migrations a store still needs (in order, applied
/// in one transaction by the store). A store written by a newer Switchyard is refused with
/// ``BatchStoreError/Kind/schema`` rather than read wrongly.
///
/// SQL is written once where both databases read it the same; placeholders are PostgreSQL's `$n`,
/// which ``BatchSchema/sqlite(_:)`` turns into SQLite's numbered `?n`.
enum BatchSchema {
    enum Dialect: Sendable {
        case sqlite
        case postgres
    }

    struct Migration: Sendable {
        var version: Int
        var sqlite: [String]
        var postgres: [String]

        func statements(_ dialect: Dialect) -> [String] {
            dialect == .sqlite ? sqlite : postgres
        }
    }

    /// The version this code reads and writes.
    static var currentVersion: Int { migrations.last!.version }

    static let migrations: [Migration] = [
        Migration(
            version: 1,
            sqlite: [
                // `seq` orders batches newest first; AUTOINCREMENT never reuses a deleted batch's seq.
                """
                CREATE TABLE batches (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    client TEXT,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    ended_at INTEGER,
                    cancel_initiated_at INTEGER
                )
                """,
                batchRequestsTable(time: "INTEGER", blob: "BLOB"),
            ] + sharedIndexes,
            postgres: [
                """
                CREATE TABLE batches (
                    id TEXT PRIMARY KEY,
                    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                    client TEXT,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    ended_at BIGINT,
                    cancel_initiated_at BIGINT
                )
                """,
                batchRequestsTable(time: "BIGINT", blob: "BYTEA"),
            ] + sharedIndexes
        )
    ]

    /// Migration 1's `batch_requests` in a dialect's column types: `time` for Unix milliseconds,
    /// `blob` for bytes; the rest is the same in both. The blobs come last: SQLite reads a row's
    /// leading columns without its overflow pages. Applied stores hold this text: a change to the
    /// table is a new migration, never an edit here.
    private static func batchRequestsTable(time: String, blob: String) -> String {
        """
        CREATE TABLE batch_requests (
            batch_id TEXT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
            custom_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            route TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at \(time) NOT NULL,
            lease_owner TEXT,
            lease_until \(time),
            upstream_batch_id TEXT,
            direct INTEGER NOT NULL DEFAULT 0,
            params \(blob) NOT NULL,
            result \(blob),
            PRIMARY KEY (batch_id, custom_id)
        )
        """
    }

    /// The indexes the queries need, the same in both databases.
    /// - `batch_requests_due`: `lease` walks the open batches oldest first and, for each route it
    ///   was given and each lane (`direct`: 1 when `upstream_batch_id` is the direct marker), takes
    ///   the due requests from here in (next_attempt_at, position) order. A lease moves
    ///   `next_attempt_at` to the lease's end, so held requests leave the due range until the lease
    ///   expires, and requests of routes not asked for (no model admits them) are never read.
    /// - `batch_requests_by_state`: request counts (GROUP BY state) without reading rows.
    /// - `batch_requests_by_position`: results in request order, a page at a time.
    private static let sharedIndexes = [
        "CREATE INDEX batch_requests_due ON batch_requests (batch_id, route, direct, next_attempt_at, position) WHERE state = 'pending'",
        "CREATE INDEX batch_requests_by_state ON batch_requests (batch_id, state)",
        "CREATE UNIQUE INDEX batch_requests_by_position ON batch_requests (batch_id, position)",
        "CREATE INDEX batches_open ON batches (seq) WHERE ended_at IS NULL",
        "CREATE INDEX batches_by_client ON batches (client, seq)",
    ]

    static func versionTable(_ dialect: Dialect) -> String {
        switch dialect {
        case .sqlite: "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
        case .postgres: "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
        }
    }

    static let storedVersion = "SELECT COALESCE(MAX(version), 0) AS version FROM schema_version"

    static func recordVersion(_ dialect: Dialect) -> String {
        switch dialect {
        case .sqlite: "INSERT INTO schema_version (version, applied_at) VALUES (?1, CAST(unixepoch('subsec') * 1000 AS INTEGER))"
        case .postgres: "INSERT INTO schema_version (version, applied_at) VALUES ($1, (extract(epoch FROM now()) * 1000)::bigint)"
        }
    }

    /// The migrations a store at `storedVersion` (0: empty) needs, oldest first.
    static func plan(storedVersion: Int) throws(BatchStoreError) -> [Migration] {
        guard storedVersion <= currentVersion else {
            throw BatchStoreError(
                .schema,
                "the batch store has schema version \(storedVersion), newer than this Switchyard's \(currentVersion): upgrade Switchyard"
            )
        }
        return migrations.filter { $0.version > storedVersion }
    }

    /// SQLite spelling of shared SQL: `$n` becomes `?n` (the shared SQL holds no other `$`).
    static func sqlite(_ sql: String) -> String {
        sql.replacingDollarPlaceholders()
    }

    static let canceledResult: [UInt8] = Array(#"{"type":"canceled"}"#.utf8)
    static let expiredResult: [UInt8] = Array(#"{"type":"expired"}"#.utf8)

    /// A batch's columns and its request counts, counted from the rows (`batch_requests_by_state`).
    static let recordSelect = """
        SELECT b.id, b.client, b.created_at, b.expires_at, b.ended_at, b.cancel_initiated_at,
            (SELECT count(*) FROM batch_requests r WHERE r.batch_id = b.id AND r.state = 'pending') AS n_pending,
            (SELECT count(*) FROM batch_requests r WHERE r.batch_id = b.id AND r.state = 'succeeded') AS n_succeeded,
            (SELECT count(*) FROM batch_requests r WHERE r.batch_id = b.id AND r.state = 'errored') AS n_errored,
            (SELECT count(*) FROM batch_requests r WHERE r.batch_id = b.id AND r.state = 'canceled') AS n_canceled,
            (SELECT count(*) FROM batch_requests r WHERE r.batch_id = b.id AND r.state = 'expired') AS n_expired
        FROM batches b
        """

    /// `list`'s query. Parameters in order: the client (when filtering), the cursor batch's id
    /// (when paging; it must be the same client's), the limit. Newest first, except a `before` page,
    /// which is read oldest first from the cursor and reversed by the caller.
    static func listQuery(client: Bool, cursor: ListCursor?) -> String {
        var count = 0
        func next() -> String {
            count += 1
            return "$\(count)"
        }
        var conditions: [String] = []
        let clientParameter = client ? next() : ""
        if client { conditions.append("b.client = \(clientParameter)") }
        if let cursor {
            let id = next()
            let lookup = client
                ? "(SELECT seq FROM batches WHERE id = \(id) AND client = \(clientParameter))"
                : "(SELECT seq FROM batches WHERE id = \(id))"
            conditions.append(cursor == .after ? "b.seq < \(lookup)" : "b.seq > \(lookup)")
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return recordSelect + filter + " ORDER BY b.seq \(cursor == .before ? "ASC" : "DESC") LIMIT \(next())"
    }

    enum ListCursor: Equatable {
        case after
        case before
    }

    /// Ends the listed open batches (`IN` list given by the caller) that have nothing pending;
    /// answers their ids.
    static func endBatchesWithNothingPending(idList: String) -> String {
        """
        UPDATE batches SET ended_at = $1
        WHERE id IN (\(idList)) AND ended_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM batch_requests r WHERE r.batch_id = batches.id AND r.state = 'pending')
        RETURNING id
        """
    }

    /// Ends every open batch with nothing pending (a sweep after expiry); answers their ids.
    static let endAllBatchesWithNothingPending = """
        UPDATE batches SET ended_at = $1
        WHERE ended_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM batch_requests r WHERE r.batch_id = batches.id AND r.state = 'pending')
        RETURNING id
        """

    /// Requests by state over every batch kept.
    static let stateCounts = "SELECT state, count(*) AS n FROM batch_requests GROUP BY state"

    /// The lanes a lease of `kind` reads (`direct` column values).
    static func lanes(_ kind: BatchLeaseKind) -> [Int] {
        switch kind {
        case .any: [0, 1]
        case .direct: [1]
        case .upstream: [0]
        }
    }

    /// The `direct` column for an `upstream_batch_id`.
    static func lane(upstreamBatchID: String?) -> Int {
        upstreamBatchID == BatchLeaseKind.directMarker ? 1 : 0
    }

    static func counts(_ pairs: [(state: String, count: Int)]) -> BatchRequestCounts {
        var counts = BatchRequestCounts()
        for (state, count) in pairs {
            switch BatchRequestState(rawValue: state) {
            case .pending: counts.processing += count
            case .succeeded: counts.succeeded += count
            case .errored: counts.errored += count
            case .canceled: counts.canceled += count
            case .expired: counts.expired += count
            case nil: break
            }
        }
        return counts
    }

    static let results = """
        SELECT position, custom_id, result FROM batch_requests
        WHERE batch_id = $1 AND position > $2 AND result IS NOT NULL
        ORDER BY position LIMIT $3
        """
}

extension String {
    fileprivate func replacingDollarPlaceholders() -> String {
        String(map { $0 == "$" ? "?" : $0 })
    }
}
