/// Where Message Batches live (README, "Non-urgent work: Message Batches"): a batch and every request in it are
/// committed before the create is answered, every request ends with exactly one result, and a
/// request leased by a process that died is run again. Two implementations: SQLite (the embedded
/// default, one process owns the file) and PostgreSQL (several replicas share the work).
///
/// Times are Unix milliseconds passed in by the caller (tests move them). Every method may throw
/// ``BatchStoreError``; none blocks an event loop.
public protocol BatchStore: Sendable {
    /// Creates the schema or migrates it to the current version (versioned, idempotent).
    func prepare() async throws(BatchStoreError)

    /// Called once at start by the process that will run requests as `owner`. SQLite gives back
    /// every lease at once (one process owns the file, so any lease is a dead process's);
    /// PostgreSQL leaves leases to expire (another replica may be alive and running them).
    func recoverLeases(owner: String) async throws(BatchStoreError)

    /// Commits the batch and all its requests in one transaction; returns only after the commit.
    /// Throws ``BatchStoreError/conflict`` when the id exists.
    func create(_ batch: NewBatch, requests: [NewBatchRequest]) async throws(BatchStoreError)

    /// The batch with its request counts; nil when there is no such batch.
    func batch(id: String) async throws(BatchStoreError) -> BatchRecord?

    /// Batches newest first. `client` nil: every batch; else only that client's. `afterID`: the
    /// page after that batch (older ones); `beforeID`: the page before it (newer ones), still
    /// newest first. `hasMore`: more exist beyond the page in its direction.
    func list(client: String?, limit: Int, afterID: String?, beforeID: String?) async throws(BatchStoreError) -> BatchPage

    /// Starts cancellation: sets `cancel_initiated_at` (once), makes every pending request that
    /// no process holds `canceled` (result `{"type":"canceled"}`), and ends the batch when
    /// nothing is pending any more. Leased requests finish or are canceled when released.
    func cancel(id: String, nowMs: Int64) async throws(BatchStoreError) -> BatchRecord?

    /// Deletes an ended batch and its requests.
    func delete(id: String) async throws(BatchStoreError) -> BatchDeletion

    /// Results in request order (`position`), up to `limit` after `afterPosition` (-1: from the
    /// start). Only requests that have a result are returned.
    func results(batchID: String, afterPosition: Int, limit: Int) async throws(BatchStoreError) -> [BatchResultRow]

    /// Leases up to `limit` due requests for `owner` until `leaseUntilMs`: pending, with
    /// `next_attempt_at <= nowMs`, not leased or with an expired lease, of batches not ended and
    /// not canceling, on one of `routes` (those with a model that admits batch work now), oldest
    /// batch first. PostgreSQL uses `SELECT … FOR UPDATE SKIP LOCKED` so replicas never lease the
    /// same request at once. Increments each request's `attempts`.
    ///
    /// `kind` (`mode: upstream`): `.direct` leases only requests marked to run directly
    /// (`upstream_batch_id = 'direct'`), `.upstream` only the others; `.any` does not look.
    func lease(
        limit: Int, owner: String, nowMs: Int64, leaseUntilMs: Int64, routes: [String], kind: BatchLeaseKind
    ) async throws(BatchStoreError) -> [LeasedBatchRequest]

    /// Extends leases `owner` still holds (a long request, an upstream batch being polled).
    func renew(_ keys: [BatchRequestKey], owner: String, leaseUntilMs: Int64) async throws(BatchStoreError)

    /// Writes final results in one transaction. A result is written only while `owner` still
    /// holds the request's lease and the request is pending: a request ends with exactly one
    /// result even when a lease expired and another process ran it too. Ends batches with
    /// nothing pending (sets `ended_at`). Returns the keys whose result was written and the
    /// batches this call ended.
    func complete(_ outcomes: [BatchRequestOutcome], owner: String, nowMs: Int64) async throws(BatchStoreError) -> BatchCompletion

    /// Gives leases back, each with the time of its next try. A request of a canceling batch
    /// becomes `canceled` instead (and its batch may end). Returns the batches this call ended.
    func release(_ retries: [BatchRetry], owner: String, nowMs: Int64) async throws(BatchStoreError) -> [BatchRecord]

    /// `mode: upstream`: records the upstream batch the requests were submitted to (so another
    /// replica that takes them over polls it instead of submitting again); nil clears it.
    func setUpstreamBatch(_ keys: [BatchRequestKey], upstreamBatchID: String?, owner: String) async throws(BatchStoreError)

    /// Pending requests of batches past `expires_at` that no process holds become `expired`
    /// (result `{"type":"expired"}`); batches with nothing pending end. Returns the batches this
    /// call ended.
    func expire(nowMs: Int64) async throws(BatchStoreError) -> [BatchRecord]

    /// Requests by state over every batch kept (the `switchyard_batch_requests{state}` metric;
    /// `processing` is the queue depth).
    func stateCounts() async throws(BatchStoreError) -> BatchRequestCounts

    /// Bytes the store uses on disk (SQLite: the file and its WAL; PostgreSQL: the tables), for
    /// reports; nil when it cannot tell.
    func sizeInBytes() async throws(BatchStoreError) -> Int64?

    func close() async
}

/// A batch as the create endpoint makes it.
public struct NewBatch: Sendable, Equatable {
    public var id: String
    /// The `clients:` name of the caller that created it; nil when callers are not authenticated.
    public var client: String?
    public var createdAtMs: Int64
    public var expiresAtMs: Int64

    public init(id: String, client: String?, createdAtMs: Int64, expiresAtMs: Int64) {
        self.id = id
        self.client = client
        self.createdAtMs = createdAtMs
        self.expiresAtMs = expiresAtMs
    }
}

public struct NewBatchRequest: Sendable, Equatable {
    public var customID: String
    /// The route `params.model` names, resolved at create.
    public var route: String
    /// `params`: the Messages request body, JSON, as the caller sent it.
    public var params: [UInt8]
    /// `mode: upstream`: ``BatchLeaseKind/directMarker`` for a request that must run directly
    /// (its route has no Anthropic model); nil otherwise.
    public var upstreamBatchID: String?

    public init(customID: String, route: String, params: [UInt8], upstreamBatchID: String? = nil) {
        self.customID = customID
        self.route = route
        self.params = params
        self.upstreamBatchID = upstreamBatchID
    }
}

/// Which requests a lease takes (see ``BatchStore/lease(limit:owner:nowMs:leaseUntilMs:routes:kind:)``).
public enum BatchLeaseKind: Sendable, Equatable {
    case any
    /// `upstream_batch_id = 'direct'`.
    case direct
    /// `upstream_batch_id` NULL or an upstream batch's id.
    case upstream

    /// The `upstream_batch_id` of a request that runs through its route, not an upstream batch.
    public static let directMarker = "direct"
}

public struct BatchRecord: Sendable, Equatable {
    public var id: String
    public var client: String?
    public var createdAtMs: Int64
    public var expiresAtMs: Int64
    public var endedAtMs: Int64?
    public var cancelInitiatedAtMs: Int64?
    public var counts: BatchRequestCounts

    public init(
        id: String, client: String?, createdAtMs: Int64, expiresAtMs: Int64, endedAtMs: Int64?, cancelInitiatedAtMs: Int64?,
        counts: BatchRequestCounts
    ) {
        self.id = id
        self.client = client
        self.createdAtMs = createdAtMs
        self.expiresAtMs = expiresAtMs
        self.endedAtMs = endedAtMs
        self.cancelInitiatedAtMs = cancelInitiatedAtMs
        self.counts = counts
    }
}

/// Anthropic's `request_counts`: `processing` is every request still pending.
public struct BatchRequestCounts: Sendable, Equatable {
    public var processing = 0
    public var succeeded = 0
    public var errored = 0
    public var canceled = 0
    public var expired = 0

    public init(processing: Int = 0, succeeded: Int = 0, errored: Int = 0, canceled: Int = 0, expired: Int = 0) {
        self.processing = processing
        self.succeeded = succeeded
        self.errored = errored
        self.canceled = canceled
        self.expired = expired
    }
}

public struct BatchPage: Sendable, Equatable {
    public var batches: [BatchRecord]
    public var hasMore: Bool

    public init(batches: [BatchRecord], hasMore: Bool) {
        self.batches = batches
        self.hasMore = hasMore
    }
}

public enum BatchDeletion: Sendable, Equatable {
    case deleted
    case notFound
    /// Only an ended batch can be deleted.
    case notEnded
}

public struct BatchRequestKey: Sendable, Hashable {
    public var batchID: String
    public var customID: String

    public init(batchID: String, customID: String) {
        self.batchID = batchID
        self.customID = customID
    }
}

public struct LeasedBatchRequest: Sendable, Equatable {
    public var key: BatchRequestKey
    public var route: String
    public var params: [UInt8]
    /// Tries so far, this one included.
    public var attempts: Int
    /// The upstream batch it was submitted to (`mode: upstream`), if any.
    public var upstreamBatchID: String?
    /// The batch's `expires_at`.
    public var expiresAtMs: Int64
    /// The `clients:` name of the caller that created the batch; nil when callers are not
    /// authenticated.
    public var client: String?

    public init(
        key: BatchRequestKey, route: String, params: [UInt8], attempts: Int, upstreamBatchID: String?, expiresAtMs: Int64, client: String? = nil
    ) {
        self.client = client
        self.key = key
        self.route = route
        self.params = params
        self.attempts = attempts
        self.upstreamBatchID = upstreamBatchID
        self.expiresAtMs = expiresAtMs
    }
}

/// The final states of a request.
public enum BatchRequestState: String, Sendable {
    case pending
    case succeeded
    case errored
    case canceled
    case expired
}

public struct BatchRequestOutcome: Sendable, Equatable {
    public var key: BatchRequestKey
    /// `succeeded`, `errored`, `canceled` or `expired`.
    public var state: BatchRequestState
    /// The `result` object of the results line, JSON: `{"type":"succeeded","message":{…}}`,
    /// `{"type":"errored","error":{…envelope…}}`, `{"type":"canceled"}`, `{"type":"expired"}`.
    public var result: [UInt8]

    public init(key: BatchRequestKey, state: BatchRequestState, result: [UInt8]) {
        self.key = key
        self.state = state
        self.result = result
    }
}

public struct BatchRetry: Sendable, Equatable {
    public var key: BatchRequestKey
    public var nextAttemptAtMs: Int64

    public init(key: BatchRequestKey, nextAttemptAtMs: Int64) {
        self.key = key
        self.nextAttemptAtMs = nextAttemptAtMs
    }
}

public struct BatchCompletion: Sendable, Equatable {
    public var written: Set<BatchRequestKey>
    public var endedBatches: [BatchRecord]

    public init(written: Set<BatchRequestKey>, endedBatches: [BatchRecord]) {
        self.written = written
        self.endedBatches = endedBatches
    }
}

public struct BatchResultRow: Sendable, Equatable {
    public var position: Int
    public var customID: String
    /// The `result` object, JSON.
    public var result: [UInt8]

    public init(position: Int, customID: String, result: [UInt8]) {
        self.position = position
        self.customID = customID
        self.result = result
    }
}

/// Why the store could not do what was asked. Never holds a password or a request's content.
public struct BatchStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The store cannot be reached (PostgreSQL down, a connection lost): try again later.
        case unavailable
        /// The store refuses writes: disk full, read-only file or database.
        case readOnly
        /// A batch with this id exists already.
        case conflict
        /// The schema is newer than this Switchyard, or cannot be migrated.
        case schema
        /// Anything else (a bug, a corrupt file).
        case failed
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public static func conflict(_ id: String) -> BatchStoreError { BatchStoreError(.conflict, "batch \(id) exists already") }

    public var description: String { "batch store \(kind.rawValue): \(message)" }
}
