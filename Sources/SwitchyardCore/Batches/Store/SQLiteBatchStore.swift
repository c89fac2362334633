import Foundation
import Logging
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization

/// The embedded batch store: one SQLite file that one Switchyard process owns. WAL with
/// `synchronous=FULL`, so a create is on disk (through a power cut) before it is answered; one
/// connection (SQLite has one writer), used by one call at a time; every write is one
/// `BEGIN IMMEDIATE … COMMIT`, rolled back on any error. A read-only file or a full disk gives
/// ``BatchStoreError/Kind/readOnly`` naming the file.
public final class SQLiteBatchStore: BatchStore {
    /// The database file as given (relative paths are relative to the working directory).
    public let path: String
    private let connection: SQLiteConnection
    private let gate = SQLiteConnectionGate()
    private let closed = Mutex(false)
    private let logger: Logger

    /// Rows per multi-row INSERT in `create`, and the params bytes after which a chunk ends early.
    static let insertChunkRows = 1_000
    static let insertChunkBytes = 16 << 20

    private init(path: String, connection: SQLiteConnection, logger: Logger) {
        self.path = path
        self.connection = connection
        self.logger = logger
    }

    /// Opens (creating if needed) the file and sets it up; ``prepare()`` then creates or migrates
    /// the tables. Call ``close()`` when done.
    public static func open(
        path: String,
        logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        threadPool: NIOThreadPool = .singleton
    ) async throws(BatchStoreError) -> SQLiteBatchStore {
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: threadPool, logger: logger, on: eventLoopGroup.any())
        } catch {
            throw storeError(error, path: path, doing: "opening")
        }
        let store = SQLiteBatchStore(path: path, connection: connection, logger: logger)
        do {
            // auto_vacuum only takes effect on a new file (before its first table).
            for pragma in [
                "PRAGMA busy_timeout = 5000", "PRAGMA foreign_keys = ON", "PRAGMA auto_vacuum = INCREMENTAL",
                "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA journal_size_limit = 67108864",
            ] {
                _ = try await store.execute(pragma, doing: "opening")
            }
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    public func prepare() async throws(BatchStoreError) {
        try await transaction("preparing the schema") { () async throws(BatchStoreError) in
            _ = try await execute(BatchSchema.versionTable(.sqlite), doing: "preparing the schema")
            let stored = try await execute(BatchSchema.storedVersion, doing: "preparing the schema").first?.int64("version") ?? 0
            for migration in try BatchSchema.plan(storedVersion: Int(stored)) {
                for statement in migration.statements(.sqlite) {
                    _ = try await execute(statement, doing: "migrating to schema version \(migration.version)")
                }
                _ = try await execute(BatchSchema.recordVersion(.sqlite), [.int(Int64(migration.version))], doing: "migrating")
                logger.info("batch store schema migrated", metadata: ["path": "\(path)", "version": "\(migration.version)"])
            }
        }
    }

    /// One process owns the file, so every lease in it is a dead process's: all are given back, due
    /// at once (a request of a canceling batch becomes `canceled`, as on release).
    public func recoverLeases(owner: String) async throws(BatchStoreError) {
        try await transaction("recovering leases") { () async throws(BatchStoreError) in
            let released = try await execute(
                """
                UPDATE batch_requests SET lease_owner = NULL, lease_until = NULL, next_attempt_at = 0,
                    state = CASE WHEN b.cancel_initiated_at IS NULL THEN 'pending' ELSE 'canceled' END,
                    result = CASE WHEN b.cancel_initiated_at IS NULL THEN NULL ELSE ?1 END
                FROM batches AS b
                WHERE b.id = batch_requests.batch_id AND batch_requests.state = 'pending' AND batch_requests.lease_owner IS NOT NULL
                RETURNING batch_requests.batch_id AS batch_id
                """, [.bytes(BatchSchema.canceledResult)], doing: "recovering leases")
            _ = try await execute(
                BatchSchema.sqlite(BatchSchema.endAllBatchesWithNothingPending), [.int(BatchStores.wallClockMs())],
                doing: "recovering leases")
            if !released.isEmpty {
                logger.info("batch requests of a previous run released", metadata: ["count": "\(released.count)"])
            }
        }
    }

    public func create(_ batch: NewBatch, requests: [NewBatchRequest]) async throws(BatchStoreError) {
        try await transaction("creating batch \(batch.id)") { () async throws(BatchStoreError) in
            do {
                _ = try await run(
                    "INSERT INTO batches (id, client, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    [.text(batch.id), .optionalText(batch.client), .int(batch.createdAtMs), .int(batch.expiresAtMs)])
            } catch {
                throw Self.isConstraintViolation(error) ? .conflict(batch.id) : Self.storeError(error, path: path, doing: "creating a batch")
            }
            for range in BatchStores.insertChunks(requests, maxRows: Self.insertChunkRows, maxBytes: Self.insertChunkBytes) {
                var binds: [SQLiteData] = [.text(batch.id), .int(batch.createdAtMs)]
                binds.reserveCapacity(2 + 6 * range.count)
                for position in range {
                    let request = requests[position]
                    binds += [
                        .text(request.customID), .int(Int64(position)), .text(request.route), .optionalText(request.upstreamBatchID),
                        .int(Int64(BatchSchema.lane(upstreamBatchID: request.upstreamBatchID))), .bytes(request.params),
                    ]
                }
                let rows = (0..<range.count).map { row in
                    "(?1, " + Self.placeholders(from: 3 + row * 6, count: 3) + ", ?2, " + Self.placeholders(from: 6 + row * 6, count: 3) + ")"
                }
                do {
                    _ = try await run(
                        "INSERT INTO batch_requests (batch_id, custom_id, position, route, next_attempt_at, upstream_batch_id, direct, params) VALUES "
                            + rows.joined(separator: ", "), binds)
                } catch {
                    if Self.isConstraintViolation(error) {
                        throw BatchStoreError(.failed, "batch \(batch.id): custom_id \(BatchStores.firstDuplicate(requests)) appears more than once")
                    }
                    throw Self.storeError(error, path: path, doing: "creating batch \(batch.id)")
                }
            }
        }
    }

    public func batch(id: String) async throws(BatchStoreError) -> BatchRecord? {
        try await exclusive { () async throws(BatchStoreError) in
            try await execute(BatchSchema.sqlite(BatchSchema.recordSelect + " WHERE b.id = $1"), [.text(id)], doing: "reading batch \(id)")
                .first.map(Self.record)
        }
    }

    public func list(client: String?, limit: Int, afterID: String?, beforeID: String?) async throws(BatchStoreError) -> BatchPage {
        let cursor: BatchSchema.ListCursor? = afterID != nil ? .after : (beforeID != nil ? .before : nil)
        var binds: [SQLiteData] = []
        if let client { binds.append(.text(client)) }
        if let cursorID = afterID ?? beforeID { binds.append(.text(cursorID)) }
        let limit = max(limit, 0)
        binds.append(.int(Int64(limit) + 1))
        let sql = BatchSchema.sqlite(BatchSchema.listQuery(client: client != nil, cursor: cursor))
        let rows = try await exclusive { () async throws(BatchStoreError) in try await execute(sql, binds, doing: "listing batches") }
        var batches = rows.prefix(limit).map(Self.record)
        if cursor == .before { batches.reverse() }
        return BatchPage(batches: batches, hasMore: rows.count > limit)
    }

    public func cancel(id: String, nowMs: Int64) async throws(BatchStoreError) -> BatchRecord? {
        let doing = "canceling batch \(id)"
        return try await transaction(doing) { () async throws(BatchStoreError) in
            let started = try await execute(
                "UPDATE batches SET cancel_initiated_at = COALESCE(cancel_initiated_at, ?2) WHERE id = ?1 AND ended_at IS NULL RETURNING id",
                [.text(id), .int(nowMs)], doing: doing)
            if !started.isEmpty {
                _ = try await execute(
                    """
                    UPDATE batch_requests SET state = 'canceled', result = ?3, lease_owner = NULL, lease_until = NULL
                    WHERE batch_id = ?1 AND state = 'pending' AND (lease_owner IS NULL OR lease_until < ?2)
                    """, [.text(id), .int(nowMs), .bytes(BatchSchema.canceledResult)], doing: doing)
                _ = try await execute(
                    BatchSchema.sqlite(BatchSchema.endBatchesWithNothingPending(idList: "$2")), [.int(nowMs), .text(id)], doing: doing)
            }
            return try await execute(BatchSchema.sqlite(BatchSchema.recordSelect + " WHERE b.id = $1"), [.text(id)], doing: doing)
                .first.map(Self.record)
        }
    }

    public func delete(id: String) async throws(BatchStoreError) -> BatchDeletion {
        let doing = "deleting batch \(id)"
        let outcome = try await transaction(doing) { () async throws(BatchStoreError) -> BatchDeletion in
            guard let row = try await execute("SELECT ended_at FROM batches WHERE id = ?1", [.text(id)], doing: doing).first else {
                return .notFound
            }
            guard row.optionalInt64("ended_at") != nil else { return .notEnded }
            _ = try await execute("DELETE FROM batches WHERE id = ?1", [.text(id)], doing: doing)
            return .deleted
        }
        if outcome == .deleted {
            // Gives the freed pages back to the file system (auto_vacuum = INCREMENTAL).
            _ = try? await exclusive { () async throws(BatchStoreError) in try await execute("PRAGMA incremental_vacuum", doing: doing) }
        }
        return outcome
    }

    public func results(batchID: String, afterPosition: Int, limit: Int) async throws(BatchStoreError) -> [BatchResultRow] {
        let rows = try await exclusive { () async throws(BatchStoreError) in
            try await execute(
                BatchSchema.sqlite(BatchSchema.results), [.text(batchID), .int(Int64(afterPosition)), .int(Int64(max(limit, 0)))],
                doing: "reading results of batch \(batchID)")
        }
        return rows.map { BatchResultRow(position: Int($0.int64("position")), customID: $0.text("custom_id"), result: $0.bytes("result")) }
    }

    public func lease(
        limit: Int, owner: String, nowMs: Int64, leaseUntilMs: Int64, routes: [String], kind: BatchLeaseKind
    ) async throws(BatchStoreError) -> [LeasedBatchRequest] {
        let lanes = BatchSchema.lanes(kind)
        let pairs = routes.flatMap { route in lanes.map { (route, $0) } }
        guard limit > 0, !pairs.isEmpty else { return [] }
        // One statement, so one implicit transaction: the open batches oldest first; in each, route
        // by route and lane by lane, the due requests in (next_attempt_at, position) order, each
        // (batch, route, lane) one range of batch_requests_due. CROSS JOIN fixes the join order:
        // left to itself, SQLite may scan every pending request and sort them.
        var binds: [SQLiteData] = [.int(nowMs), .text(owner), .int(leaseUntilMs), .int(Int64(limit))]
        for (route, lane) in pairs { binds += [.text(route), .int(Int64(lane))] }
        let (leased, batches) = try await exclusive { () async throws(BatchStoreError) in
            let leased = try await execute(
                """
                UPDATE batch_requests SET lease_owner = ?2, lease_until = ?3, next_attempt_at = ?3, attempts = attempts + 1
                WHERE rowid IN (
                    SELECT r.rowid FROM batches b
                    CROSS JOIN (VALUES \(Self.valueRows(from: 5, count: pairs.count, width: 2))) AS k
                    CROSS JOIN batch_requests r ON r.batch_id = b.id AND r.route = k.column1 AND r.direct = k.column2
                    WHERE b.ended_at IS NULL AND b.cancel_initiated_at IS NULL AND b.expires_at > ?1
                        AND r.state = 'pending' AND r.next_attempt_at <= ?1 AND (r.lease_owner IS NULL OR r.lease_until < ?1)
                    ORDER BY b.seq LIMIT ?4)
                RETURNING batch_id, custom_id, position, route, attempts, upstream_batch_id, params
                """, binds, doing: "leasing batch requests")
            let ids = Array(Set(leased.map { $0.text("batch_id") }))
            guard !ids.isEmpty else { return (leased, [SQLiteRow]()) }
            let batches = try await execute(
                "SELECT id, seq, expires_at, client FROM batches WHERE id IN (\(Self.placeholders(from: 1, count: ids.count)))",
                ids.map { .text($0) }, doing: "leasing batch requests")
            return (leased, batches)
        }
        let batchInfo = Dictionary(
            uniqueKeysWithValues: batches.map { ($0.text("id"), ($0.int64("seq"), $0.int64("expires_at"), $0.optionalText("client"))) })
        return leased.map { row -> (Int64, Int64, LeasedBatchRequest) in
            let batchID = row.text("batch_id")
            let (seq, expiresAt, client) = batchInfo[batchID] ?? (0, 0, nil)
            let request = LeasedBatchRequest(
                key: BatchRequestKey(batchID: batchID, customID: row.text("custom_id")), route: row.text("route"),
                params: row.bytes("params"), attempts: Int(row.int64("attempts")), upstreamBatchID: row.optionalText("upstream_batch_id"),
                expiresAtMs: expiresAt, client: client)
            return (seq, row.int64("position"), request)
        }
        .sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        .map(\.2)
    }

    public func renew(_ keys: [BatchRequestKey], owner: String, leaseUntilMs: Int64) async throws(BatchStoreError) {
        try await updateHeld(keys, owner: owner, set: "lease_until = ?2, next_attempt_at = ?2", value: .int(leaseUntilMs), doing: "renewing leases")
    }

    public func setUpstreamBatch(_ keys: [BatchRequestKey], upstreamBatchID: String?, owner: String) async throws(BatchStoreError) {
        try await updateHeld(
            keys, owner: owner, set: "upstream_batch_id = ?2, direct = \(BatchSchema.lane(upstreamBatchID: upstreamBatchID))",
            value: .optionalText(upstreamBatchID), doing: "recording an upstream batch")
    }

    public func complete(_ outcomes: [BatchRequestOutcome], owner: String, nowMs: Int64) async throws(BatchStoreError) -> BatchCompletion {
        guard !outcomes.isEmpty else { return BatchCompletion(written: [], endedBatches: []) }
        guard outcomes.allSatisfy({ $0.state != .pending }) else { throw BatchStoreError(.failed, "complete needs a final state, not pending") }
        return try await transaction("completing batch requests") { () async throws(BatchStoreError) in
            var written = Set<BatchRequestKey>()
            for chunk in outcomes.chunks(of: 500) {
                var binds: [SQLiteData] = [.text(owner)]
                for outcome in chunk {
                    binds += [.text(outcome.key.batchID), .text(outcome.key.customID), .text(outcome.state.rawValue), .bytes(outcome.result)]
                }
                let rows = try await execute(
                    """
                    UPDATE batch_requests SET state = v.column3, result = v.column4, lease_owner = NULL, lease_until = NULL
                    FROM (VALUES \(Self.valueRows(from: 2, count: chunk.count, width: 4))) AS v
                    WHERE batch_requests.batch_id = v.column1 AND batch_requests.custom_id = v.column2
                        AND batch_requests.state = 'pending' AND batch_requests.lease_owner = ?1
                    RETURNING batch_requests.batch_id AS batch_id, batch_requests.custom_id AS custom_id
                    """, binds, doing: "completing batch requests")
                for row in rows { written.insert(BatchRequestKey(batchID: row.text("batch_id"), customID: row.text("custom_id"))) }
            }
            let ended = try await endBatches(Set(written.map(\.batchID)), nowMs: nowMs, doing: "completing batch requests")
            return BatchCompletion(written: written, endedBatches: ended)
        }
    }

    public func release(_ retries: [BatchRetry], owner: String, nowMs: Int64) async throws(BatchStoreError) -> [BatchRecord] {
        guard !retries.isEmpty else { return [] }
        return try await transaction("releasing batch requests") { () async throws(BatchStoreError) in
            var touched = Set<String>()
            for chunk in retries.chunks(of: 500) {
                var binds: [SQLiteData] = [.text(owner), .bytes(BatchSchema.canceledResult)]
                for retry in chunk { binds += [.text(retry.key.batchID), .text(retry.key.customID), .int(retry.nextAttemptAtMs)] }
                let rows = try await execute(
                    """
                    UPDATE batch_requests SET lease_owner = NULL, lease_until = NULL, next_attempt_at = v.column3,
                        state = CASE WHEN b.cancel_initiated_at IS NULL THEN 'pending' ELSE 'canceled' END,
                        result = CASE WHEN b.cancel_initiated_at IS NULL THEN NULL ELSE ?2 END
                    FROM (VALUES \(Self.valueRows(from: 3, count: chunk.count, width: 3))) AS v, batches AS b
                    WHERE batch_requests.batch_id = v.column1 AND batch_requests.custom_id = v.column2 AND b.id = batch_requests.batch_id
                        AND batch_requests.state = 'pending' AND batch_requests.lease_owner = ?1
                    RETURNING batch_requests.batch_id AS batch_id, batch_requests.state AS state
                    """, binds, doing: "releasing batch requests")
                for row in rows where row.text("state") == BatchRequestState.canceled.rawValue { touched.insert(row.text("batch_id")) }
            }
            return try await endBatches(touched, nowMs: nowMs, doing: "releasing batch requests")
        }
    }

    public func expire(nowMs: Int64) async throws(BatchStoreError) -> [BatchRecord] {
        try await transaction("expiring batches") { () async throws(BatchStoreError) in
            _ = try await execute(
                """
                UPDATE batch_requests SET state = 'expired', result = ?2, lease_owner = NULL, lease_until = NULL
                WHERE state = 'pending' AND (lease_owner IS NULL OR lease_until < ?1)
                    AND batch_id IN (SELECT id FROM batches WHERE ended_at IS NULL AND expires_at <= ?1)
                """, [.int(nowMs), .bytes(BatchSchema.expiredResult)], doing: "expiring batches")
            let ended = try await execute(BatchSchema.sqlite(BatchSchema.endAllBatchesWithNothingPending), [.int(nowMs)], doing: "expiring batches")
            return try await records(ended.map { $0.text("id") }, doing: "expiring batches")
        }
    }

    public func stateCounts() async throws(BatchStoreError) -> BatchRequestCounts {
        let rows = try await exclusive { () async throws(BatchStoreError) in
            try await execute(BatchSchema.stateCounts, doing: "counting batch requests")
        }
        return BatchSchema.counts(rows.map { ($0.text("state"), Int($0.int64("n"))) })
    }

    public func sizeInBytes() async throws(BatchStoreError) -> Int64? {
        let sizes = [path, path + "-wal"].compactMap { file -> Int64? in
            (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value
        }
        return sizes.isEmpty ? nil : sizes.reduce(0, +)
    }

    public func close() async {
        await gate.withExclusiveAccess {
            let wasClosed = closed.withLock { closed in
                defer { closed = true }
                return closed
            }
            if !wasClosed { try? await connection.close().get() }
        }
    }

    /// Tests only: runs `sql`, answers the first column of the first row as an integer.
    @discardableResult
    func testingScalar(_ sql: String) async throws(BatchStoreError) -> Int64? {
        try await exclusive { () async throws(BatchStoreError) in try await execute(sql, doing: "testing").first?.columns.first?.data.integer.map { Int64($0) } }
    }

    // MARK: - Statements

    /// Changes requests `owner` still holds (pending): one statement, so one implicit transaction.
    private func updateHeld(_ keys: [BatchRequestKey], owner: String, set: String, value: SQLiteData, doing: String) async throws(BatchStoreError) {
        guard !keys.isEmpty else { return }
        try await exclusive { () async throws(BatchStoreError) in
            for chunk in keys.chunks(of: 500) {
                _ = try await execute(
                    """
                    UPDATE batch_requests SET \(set)
                    FROM (VALUES \(Self.valueRows(from: 3, count: chunk.count, width: 2))) AS v
                    WHERE batch_requests.batch_id = v.column1 AND batch_requests.custom_id = v.column2
                        AND batch_requests.state = 'pending' AND batch_requests.lease_owner = ?1
                    """, [.text(owner), value] + Self.keyBinds(chunk), doing: doing)
            }
        }
    }

    /// Ends those of `ids` with nothing pending; answers them as they are now.
    private func endBatches(_ ids: Set<String>, nowMs: Int64, doing: String) async throws(BatchStoreError) -> [BatchRecord] {
        guard !ids.isEmpty else { return [] }
        let list = Self.placeholders(from: 2, count: ids.count)
        let ended = try await execute(
            BatchSchema.sqlite(BatchSchema.endBatchesWithNothingPending(idList: list)), [.int(nowMs)] + ids.map { .text($0) }, doing: doing)
        return try await records(ended.map { $0.text("id") }, doing: doing)
    }

    private func records(_ ids: [String], doing: String) async throws(BatchStoreError) -> [BatchRecord] {
        guard !ids.isEmpty else { return [] }
        return try await execute(
            BatchSchema.sqlite(BatchSchema.recordSelect) + " WHERE b.id IN (\(Self.placeholders(from: 1, count: ids.count))) ORDER BY b.seq",
            ids.map { .text($0) }, doing: doing
        ).map(Self.record)
    }

    /// One statement; the caller holds the gate. The future-based query does not watch the task's
    /// cancellation, so a transaction's COMMIT or ROLLBACK always runs.
    private func run(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        if closed.withLock({ $0 }) { throw CancellationError() }
        let rows = Mutex<[SQLiteRow]>([])
        try await connection.query(sql, binds, logger: logger) { row in rows.withLock { $0.append(row) } }.get()
        return rows.withLock { $0 }
    }

    private func execute(_ sql: String, _ binds: [SQLiteData] = [], doing: String) async throws(BatchStoreError) -> [SQLiteRow] {
        do {
            return try await run(sql, binds)
        } catch {
            throw Self.storeError(error, path: path, doing: doing)
        }
    }

    private func exclusive<T>(_ body: () async throws(BatchStoreError) -> T) async throws(BatchStoreError) -> T {
        try await gate.withExclusiveAccess(body)
    }

    private func transaction<T>(_ doing: String, _ body: () async throws(BatchStoreError) -> T) async throws(BatchStoreError) -> T {
        try await exclusive { () async throws(BatchStoreError) -> T in
            _ = try await execute("BEGIN IMMEDIATE", doing: doing)
            do throws(BatchStoreError) {
                let value = try await body()
                _ = try await execute("COMMIT", doing: doing)
                return value
            } catch {
                _ = try? await run("ROLLBACK")
                throw error
            }
        }
    }
}
