import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The shared batch store: several replicas on one PostgreSQL database. Requests are leased with
/// `SELECT … FOR UPDATE SKIP LOCKED`, so two replicas never hold one request at once; writes that
/// can end a batch (complete, release, cancel, expire) first lock the batch rows (in id order), so
/// the last result of a batch always ends it, whichever replica writes it.
///
/// The connection pool runs in ``run()``: put the store in a `ServiceGroup` (it is a `Service`) or
/// let ``BatchStores/open(url:password:logger:eventLoopGroup:)`` run it; ``close()`` stops it.
/// PostgreSQL that goes away makes calls fail with ``BatchStoreError/Kind/unavailable`` (after at
/// most ``Configuration/acquireTimeout``); the pool reconnects by itself when it comes back.
public final class PostgresBatchStore: BatchStore, Service {
    public let configuration: Configuration
    let client: PostgresClient
    let logger: Logger
    /// Handed to PostgresNIO with each query: never below info, as its trace level logs the rows
    /// (request params and results).
    let queryLogger: Logger
    private let stopSignal: AsyncStream<Void>
    private let stop: AsyncStream<Void>.Continuation
    private let started = Atomic(false)
    private let ownedRun = Mutex<Task<Void, Never>?>(nil)

    /// Rows per INSERT in `create` (arrays bound as parameters), and the params bytes after which a
    /// chunk ends early.
    static let insertChunkRows = 5_000
    static let insertChunkBytes = 32 << 20

    public init(
        configuration: Configuration, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(BatchStoreError) {
        if let schema = configuration.schema, !Configuration.isValidSchemaName(schema) {
            throw BatchStoreError(.failed, "schema \(schema): use lower-case letters, digits and _ (at most 63)")
        }
        self.configuration = configuration
        self.logger = logger
        var queryLogger = logger
        queryLogger.logLevel = max(logger.logLevel, .info)
        self.queryLogger = queryLogger
        // The pool's own chatter (a warning when a call comes before run() has begun, connection
        // attempts) only at error level: the store reports failures itself.
        var poolLogger = logger
        poolLogger.logLevel = max(logger.logLevel, .error)
        self.client = PostgresClient(configuration: configuration.clientConfiguration(), eventLoopGroup: eventLoopGroup, backgroundLogger: poolLogger)
        (stopSignal, stop) = AsyncStream<Void>.makeStream()
    }

    /// Runs the connection pool until ``close()``, cancellation or graceful shutdown. Call once.
    public func run() async {
        guard !started.exchange(true, ordering: .relaxed) else {
            logger.warning("PostgresBatchStore.run() called twice: the pool already runs")
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.client.run() }
            group.addTask { for await _ in self.stopSignal {} }
            await group.next()
            group.cancelAll()
        }
    }

    /// Runs the pool in a task this store owns, until ``close()``.
    ///
    /// Detached: a child of the caller's context would inherit its task-locals, among them
    /// ServiceLifecycle's graceful shutdown when a service opens the store in its `run()`, and the
    /// pool (which stops on graceful shutdown) would stop the moment that service begins to shut
    /// down — before it hands its leases back through the store.
    public func startRunning() {
        ownedRun.withLock { task in
            if task == nil { task = Task.detached { await self.run() } }
        }
    }

    public func close() async {
        stop.finish()
        await ownedRun.withLock { $0 }?.value
    }

    public func prepare() async throws(BatchStoreError) {
        try await transaction("preparing the schema") { connection in
            _ = try await connection.rows("SELECT pg_advisory_xact_lock(7365432101)", logger: self.queryLogger)
            if let schema = self.configuration.schema,
                try await connection.rows("SELECT 1 FROM pg_namespace WHERE nspname = $1", { $0.append(schema) }, logger: self.queryLogger).isEmpty
            {
                _ = try await connection.rows("CREATE SCHEMA \"\(schema)\"", logger: self.queryLogger)
            }
            _ = try await connection.rows(BatchSchema.versionTable(.postgres), logger: self.queryLogger)
            let stored = try await connection.rows(BatchSchema.storedVersion, logger: self.queryLogger).first?.decode(Int64.self) ?? 0
            for migration in try BatchSchema.plan(storedVersion: Int(stored)) {
                for statement in migration.statements(.postgres) {
                    _ = try await connection.rows(statement, logger: self.queryLogger)
                }
                _ = try await connection.rows(BatchSchema.recordVersion(.postgres), { $0.append(migration.version) }, logger: self.queryLogger)
                self.logger.info("batch store schema migrated", metadata: ["version": "\(migration.version)"])
            }
        }
    }

    /// Other replicas may be alive and running their leases, so those expire on their own. Leases
    /// held under this very `owner` are a previous run's of this replica: given back at once.
    public func recoverLeases(owner: String) async throws(BatchStoreError) {
        let released = try await transaction("recovering leases") { connection in
            let batchIDs = try await connection.rows(
                "SELECT DISTINCT batch_id FROM batch_requests WHERE state = 'pending' AND lease_owner = $1", { $0.append(owner) },
                logger: self.queryLogger
            ).map { try $0.decode(String.self) }
            guard !batchIDs.isEmpty else { return 0 }
            try await self.lockBatches(batchIDs, connection)
            let rows = try await connection.rows(
                """
                UPDATE batch_requests r SET lease_owner = NULL, lease_until = NULL, next_attempt_at = 0,
                    state = CASE WHEN b.cancel_initiated_at IS NULL THEN 'pending' ELSE 'canceled' END,
                    result = CASE WHEN b.cancel_initiated_at IS NULL THEN NULL ELSE $2 END
                FROM batches b WHERE b.id = r.batch_id AND r.state = 'pending' AND r.lease_owner = $1
                RETURNING r.batch_id
                """, { $0.append(owner); $0.append(ByteBuffer(bytes: BatchSchema.canceledResult)) }, logger: self.queryLogger)
            _ = try await self.endBatches(batchIDs, nowMs: BatchStores.wallClockMs(), connection)
            return rows.count
        }
        if released > 0 { logger.info("batch requests of a previous run released", metadata: ["count": "\(released)"]) }
    }

    public func create(_ batch: NewBatch, requests: [NewBatchRequest]) async throws(BatchStoreError) {
        try await transaction("creating batch \(batch.id)") { connection in
            do {
                _ = try await connection.rows(
                    "INSERT INTO batches (id, client, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                    { $0.append(batch.id); $0.append(batch.client); $0.append(batch.createdAtMs); $0.append(batch.expiresAtMs) },
                    logger: self.queryLogger)
            } catch where Self.sqlState(of: error) == "23505" {
                throw BatchStoreError.conflict(batch.id)
            }
            for range in BatchStores.insertChunks(requests, maxRows: Self.insertChunkRows, maxBytes: Self.insertChunkBytes) {
                let chunk = requests[range]
                do {
                    _ = try await connection.rows(
                        """
                        INSERT INTO batch_requests (batch_id, custom_id, position, route, next_attempt_at, upstream_batch_id, direct, params)
                        SELECT $1, t.custom_id, t.position, t.route, $2, NULLIF(t.upstream, ''), t.direct, t.params
                        FROM unnest($3::text[], $4::int8[], $5::text[], $6::text[], $7::int4[], $8::bytea[])
                            AS t (custom_id, position, route, upstream, direct, params)
                        """,
                        { binds in
                            binds.append(batch.id)
                            binds.append(batch.createdAtMs)
                            binds.append(chunk.map(\.customID))
                            binds.append(chunk.indices.map { Int64($0) })
                            binds.append(chunk.map(\.route))
                            binds.append(chunk.map { $0.upstreamBatchID ?? "" })
                            binds.append(chunk.map { Int32(BatchSchema.lane(upstreamBatchID: $0.upstreamBatchID)) })
                            binds.append(chunk.map { ByteBuffer(bytes: $0.params) })
                        }, logger: self.queryLogger)
                } catch where Self.sqlState(of: error) == "23505" {
                    throw BatchStoreError(.failed, "batch \(batch.id): custom_id \(BatchStores.firstDuplicate(requests)) appears more than once")
                }
            }
        }
    }

    public func batch(id: String) async throws(BatchStoreError) -> BatchRecord? {
        try await withConnection("reading batch \(id)") { connection in
            try await connection.rows(BatchSchema.recordSelect + " WHERE b.id = $1", { $0.append(id) }, logger: self.queryLogger)
                .first.map(Self.record)
        }
    }

    public func list(client: String?, limit: Int, afterID: String?, beforeID: String?) async throws(BatchStoreError) -> BatchPage {
        let cursor: BatchSchema.ListCursor? = afterID != nil ? .after : (beforeID != nil ? .before : nil)
        let limit = max(limit, 0)
        let sql = BatchSchema.listQuery(client: client != nil, cursor: cursor)
        let rows = try await withConnection("listing batches") { connection in
            try await connection.rows(sql, { binds in
                if let client { binds.append(client) }
                if let cursorID = afterID ?? beforeID { binds.append(cursorID) }
                binds.append(Int64(limit) + 1)
            }, logger: self.queryLogger).map(Self.record)
        }
        var batches = Array(rows.prefix(limit))
        if cursor == .before { batches.reverse() }
        return BatchPage(batches: batches, hasMore: rows.count > limit)
    }

    public func cancel(id: String, nowMs: Int64) async throws(BatchStoreError) -> BatchRecord? {
        try await transaction("canceling batch \(id)") { connection in
            let started = try await connection.rows(
                "UPDATE batches SET cancel_initiated_at = COALESCE(cancel_initiated_at, $2) WHERE id = $1 AND ended_at IS NULL RETURNING id",
                { $0.append(id); $0.append(nowMs) }, logger: self.queryLogger)
            if !started.isEmpty {
                _ = try await connection.rows(
                    """
                    UPDATE batch_requests SET state = 'canceled', result = $3, lease_owner = NULL, lease_until = NULL
                    WHERE batch_id = $1 AND state = 'pending' AND (lease_owner IS NULL OR lease_until < $2)
                    """, { $0.append(id); $0.append(nowMs); $0.append(ByteBuffer(bytes: BatchSchema.canceledResult)) }, logger: self.queryLogger)
                _ = try await self.endBatches([id], nowMs: nowMs, connection)
            }
            return try await connection.rows(BatchSchema.recordSelect + " WHERE b.id = $1", { $0.append(id) }, logger: self.queryLogger)
                .first.map(Self.record)
        }
    }

    public func delete(id: String) async throws(BatchStoreError) -> BatchDeletion {
        try await transaction("deleting batch \(id)") { connection -> BatchDeletion in
            guard let row = try await connection.rows("SELECT ended_at FROM batches WHERE id = $1 FOR UPDATE", { $0.append(id) }, logger: self.queryLogger).first
            else { return .notFound }
            guard try row.decode(Int64?.self) != nil else { return .notEnded }
            _ = try await connection.rows("DELETE FROM batches WHERE id = $1", { $0.append(id) }, logger: self.queryLogger)
            return .deleted
        }
    }

    public func results(batchID: String, afterPosition: Int, limit: Int) async throws(BatchStoreError) -> [BatchResultRow] {
        try await withConnection("reading results of batch \(batchID)") { connection in
            try await connection.rows(
                BatchSchema.results, { $0.append(batchID); $0.append(Int64(afterPosition)); $0.append(Int64(max(limit, 0))) }, logger: self.queryLogger
            ).map { row in
                let (position, customID, result) = try row.decode((Int64, String, ByteBuffer).self)
                return BatchResultRow(position: Int(position), customID: customID, result: Array(result.readableBytesView))
            }
        }
    }

    public func lease(
        limit: Int, owner: String, nowMs: Int64, leaseUntilMs: Int64, routes: [String], kind: BatchLeaseKind
    ) async throws(BatchStoreError) -> [LeasedBatchRequest] {
        let lanes = BatchSchema.lanes(kind)
        let pairs = routes.flatMap { route in lanes.map { (route, Int32($0)) } }
        guard limit > 0, !pairs.isEmpty else { return [] }
        // One statement: the open batches oldest first; in each, route by route and lane by lane,
        // the due requests in (next_attempt_at, position) order, each (batch, route, lane) one
        // range of batch_requests_due, locked with SKIP LOCKED. The lease moves next_attempt_at to
        // the lease's end, out of the due range until it expires.
        let rows = try await withConnection("leasing batch requests") { connection in
            try await connection.rows(
                """
                UPDATE batch_requests r SET lease_owner = $2, lease_until = $3, next_attempt_at = $3, attempts = r.attempts + 1
                FROM batches b
                WHERE b.id = r.batch_id AND (r.batch_id, r.custom_id) IN (
                    SELECT d.batch_id, d.custom_id
                    FROM batches ob
                    CROSS JOIN unnest($5::text[], $6::int4[]) AS k (route, direct)
                    CROSS JOIN LATERAL (
                        SELECT q.batch_id, q.custom_id FROM batch_requests q
                        WHERE q.batch_id = ob.id AND q.route = k.route AND q.direct = k.direct
                            AND q.state = 'pending' AND q.next_attempt_at <= $1 AND (q.lease_owner IS NULL OR q.lease_until < $1)
                        ORDER BY q.next_attempt_at, q.position
                        LIMIT $4
                        FOR UPDATE SKIP LOCKED) d
                    WHERE ob.ended_at IS NULL AND ob.cancel_initiated_at IS NULL AND ob.expires_at > $1
                    ORDER BY ob.seq
                    LIMIT $4)
                RETURNING b.seq, r.position, r.batch_id, r.custom_id, r.route, r.attempts, r.upstream_batch_id, b.expires_at, r.params, b.client
                """,
                { binds in
                    binds.append(nowMs)
                    binds.append(owner)
                    binds.append(leaseUntilMs)
                    binds.append(Int64(limit))
                    binds.append(pairs.map(\.0))
                    binds.append(pairs.map(\.1))
                }, logger: self.queryLogger
            ).map { row -> (Int64, Int64, LeasedBatchRequest) in
                let (seq, position, batchID, customID, route, attempts, upstream, expiresAt, params, client) =
                    try row.decode((Int64, Int64, String, String, String, Int64, String?, Int64, ByteBuffer, String?).self)
                return (seq, position, LeasedBatchRequest(
                    key: BatchRequestKey(batchID: batchID, customID: customID), route: route, params: Array(params.readableBytesView),
                    attempts: Int(attempts), upstreamBatchID: upstream, expiresAtMs: expiresAt, client: client))
            }
        }
        return rows.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
    }

    public func renew(_ keys: [BatchRequestKey], owner: String, leaseUntilMs: Int64) async throws(BatchStoreError) {
        try await updateHeld(keys, owner: owner, set: "lease_until = $2, next_attempt_at = $2", doing: "renewing leases") { $0.append(leaseUntilMs) }
    }

    public func setUpstreamBatch(_ keys: [BatchRequestKey], upstreamBatchID: String?, owner: String) async throws(BatchStoreError) {
        let lane = BatchSchema.lane(upstreamBatchID: upstreamBatchID)
        try await updateHeld(keys, owner: owner, set: "upstream_batch_id = $2, direct = \(lane)", doing: "recording an upstream batch") {
            $0.append(upstreamBatchID)
        }
    }

    public func complete(_ outcomes: [BatchRequestOutcome], owner: String, nowMs: Int64) async throws(BatchStoreError) -> BatchCompletion {
        guard !outcomes.isEmpty else { return BatchCompletion(written: [], endedBatches: []) }
        guard outcomes.allSatisfy({ $0.state != .pending }) else { throw BatchStoreError(.failed, "complete needs a final state, not pending") }
        let batchIDs = Array(Set(outcomes.map(\.key.batchID)))
        return try await transaction("completing batch requests") { connection in
            try await self.lockBatches(batchIDs, connection)
            // Writes the results and ends the batches left with nothing pending, in one statement:
            // its snapshot is taken after the locks, so it sees every other writer's results.
            let rows = try await connection.rows(
                """
                WITH done AS (
                    UPDATE batch_requests r SET state = v.state, result = v.result, lease_owner = NULL, lease_until = NULL
                    FROM unnest($3::text[], $4::text[], $5::text[], $6::bytea[]) AS v (batch_id, custom_id, state, result)
                    WHERE r.batch_id = v.batch_id AND r.custom_id = v.custom_id AND r.state = 'pending' AND r.lease_owner = $1
                    RETURNING r.batch_id, r.custom_id),
                ended AS (\(Self.endBatchesSeeing("done", nowParameter: 2)))
                SELECT batch_id, custom_id, NULL AS ended FROM done UNION ALL SELECT NULL, NULL, id FROM ended
                """,
                { binds in
                    binds.append(owner)
                    binds.append(nowMs)
                    binds.append(outcomes.map(\.key.batchID))
                    binds.append(outcomes.map(\.key.customID))
                    binds.append(outcomes.map(\.state.rawValue))
                    binds.append(outcomes.map { ByteBuffer(bytes: $0.result) })
                }, logger: self.queryLogger)
            var written = Set<BatchRequestKey>()
            var ended: [String] = []
            for row in rows {
                let (batchID, customID, endedID) = try row.decode((String?, String?, String?).self)
                if let batchID, let customID { written.insert(BatchRequestKey(batchID: batchID, customID: customID)) }
                if let endedID { ended.append(endedID) }
            }
            return BatchCompletion(written: written, endedBatches: try await self.records(ended, connection))
        }
    }

    public func release(_ retries: [BatchRetry], owner: String, nowMs: Int64) async throws(BatchStoreError) -> [BatchRecord] {
        guard !retries.isEmpty else { return [] }
        let batchIDs = Array(Set(retries.map(\.key.batchID)))
        return try await transaction("releasing batch requests") { connection in
            try await self.lockBatches(batchIDs, connection)
            let ended = try await connection.rows(
                """
                WITH done AS (
                    UPDATE batch_requests r SET lease_owner = NULL, lease_until = NULL, next_attempt_at = v.next_attempt_at,
                        state = CASE WHEN b.cancel_initiated_at IS NULL THEN 'pending' ELSE 'canceled' END,
                        result = CASE WHEN b.cancel_initiated_at IS NULL THEN NULL ELSE $3 END
                    FROM unnest($4::text[], $5::text[], $6::int8[]) AS v (batch_id, custom_id, next_attempt_at), batches b
                    WHERE r.batch_id = v.batch_id AND r.custom_id = v.custom_id AND b.id = r.batch_id
                        AND r.state = 'pending' AND r.lease_owner = $1
                    RETURNING r.batch_id, r.custom_id, r.state),
                canceled AS (SELECT batch_id, custom_id FROM done WHERE state = 'canceled'),
                ended AS (\(Self.endBatchesSeeing("canceled", nowParameter: 2)))
                SELECT id FROM ended
                """,
                { binds in
                    binds.append(owner)
                    binds.append(nowMs)
                    binds.append(ByteBuffer(bytes: BatchSchema.canceledResult))
                    binds.append(retries.map(\.key.batchID))
                    binds.append(retries.map(\.key.customID))
                    binds.append(retries.map(\.nextAttemptAtMs))
                }, logger: self.queryLogger
            ).map { try $0.decode(String.self) }
            return try await self.records(ended, connection)
        }
    }

    public func expire(nowMs: Int64) async throws(BatchStoreError) -> [BatchRecord] {
        let ended = try await transaction("expiring batches") { connection -> [String] in
            let ids = try await connection.rows(
                "SELECT id FROM batches WHERE ended_at IS NULL AND expires_at <= $1 ORDER BY id FOR NO KEY UPDATE", { $0.append(nowMs) },
                logger: self.queryLogger
            ).map { try $0.decode(String.self) }
            guard !ids.isEmpty else { return [] }
            _ = try await connection.rows(
                """
                UPDATE batch_requests SET state = 'expired', result = $2, lease_owner = NULL, lease_until = NULL
                WHERE batch_id = ANY($3::text[]) AND state = 'pending' AND (lease_owner IS NULL OR lease_until < $1)
                """, { $0.append(nowMs); $0.append(ByteBuffer(bytes: BatchSchema.expiredResult)); $0.append(ids) }, logger: self.queryLogger)
            return try await self.endBatches(ids, nowMs: nowMs, connection)
        }
        // A sweep of its own: ends any open batch left with nothing pending.
        return try await withConnection("expiring batches") { connection in
            let swept = try await connection.rows(BatchSchema.endAllBatchesWithNothingPending, { $0.append(nowMs) }, logger: self.queryLogger)
                .map { try $0.decode(String.self) }
            return try await self.records(ended + swept, connection)
        }
    }

    public func stateCounts() async throws(BatchStoreError) -> BatchRequestCounts {
        try await withConnection("counting batch requests") { connection in
            BatchSchema.counts(
                try await connection.rows(BatchSchema.stateCounts, logger: self.queryLogger).map { row in
                    let (state, count) = try row.decode((String, Int64).self)
                    return (state, Int(count))
                })
        }
    }

    public func sizeInBytes() async throws(BatchStoreError) -> Int64? {
        try await withConnection("measuring the store") { connection in
            try await connection.rows(
                """
                SELECT (COALESCE(pg_total_relation_size(to_regclass('batches')), 0)
                    + COALESCE(pg_total_relation_size(to_regclass('batch_requests')), 0))::bigint
                """, logger: self.queryLogger
            ).first?.decode(Int64.self)
        }
    }

    /// Tests only: runs `sql`, answers the first column of the first row as an integer.
    @discardableResult
    func testingScalar(_ sql: String) async throws(BatchStoreError) -> Int64? {
        try await withConnection("testing") { connection in
            try await connection.rows(sql, logger: self.queryLogger).first.flatMap { row in try row.makeRandomAccess()[0].decode(Int64?.self) }
        }
    }
}
