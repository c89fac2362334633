import Foundation
import Logging
import ServiceLifecycleTestKit
import Testing

@testable import SwitchyardCore

/// The batch store contract (Batches/BatchStore.swift), run against both stores: SQLite files in a
/// temporary directory and the PostgreSQL server of `SWITCHYARD_TEST_POSTGRES_URL`, each test in a
/// schema of its own. Serialized: the restart test stops the shared server.
@Suite(.serialized)
struct BatchStoreTests {
    enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case sqlite
        case postgres

        var testDescription: String { rawValue }
    }

    static let t0: Int64 = 1_700_000_000_000
    static let day: Int64 = 86_400_000

    /// A store of `kind` for one test, opened and prepared; nil when the PostgreSQL half is not
    /// run (an issue is recorded unless it was skipped on purpose).
    final class Harness: Sendable {
        let kind: Kind
        let store: any BatchStore
        let directory: URL?
        let postgres: (url: String, schema: String)?

        private init(kind: Kind, store: any BatchStore, directory: URL?, postgres: (url: String, schema: String)?) {
            self.kind = kind
            self.store = store
            self.directory = directory
            self.postgres = postgres
        }

        static func open(_ kind: Kind, acquireTimeout: Duration = .seconds(5)) async throws -> Harness? {
            let logger = Logger(label: "batch-store-test")
            switch kind {
            case .sqlite:
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("batchstore-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                let store = try await SQLiteBatchStore.open(path: directory.appendingPathComponent("batches.db").path, logger: logger)
                try await store.prepare()
                return Harness(kind: kind, store: store, directory: directory, postgres: nil)
            case .postgres:
                switch PostgresTestCluster.availability {
                case .missing:
                    Issue.record(Comment(rawValue: PostgresTestCluster.howToStart))
                    return nil
                case .skipped:
                    print("PostgreSQL batch store test skipped (\(PostgresTestCluster.variable)=skip)")
                    return nil
                case .url(let url):
                    let schema = PostgresTestCluster.uniqueSchema()
                    let store = try PostgresBatchStore(
                        configuration: PostgresTestCluster.configuration(url: url, schema: schema, acquireTimeout: acquireTimeout), logger: logger)
                    store.startRunning()
                    try await store.prepare()
                    return Harness(kind: kind, store: store, directory: nil, postgres: (url, schema))
                }
            }
        }

        /// Another process on the same store: a second PostgresBatchStore on the same schema; for
        /// SQLite (one process owns the file) the same store.
        func replica() async throws -> any BatchStore {
            guard let postgres else { return store }
            let replica = try PostgresBatchStore(
                configuration: PostgresTestCluster.configuration(url: postgres.url, schema: postgres.schema), logger: Logger(label: "replica"))
            replica.startRunning()
            return replica
        }

        var sqliteStore: SQLiteBatchStore? { store as? SQLiteBatchStore }
        var postgresStore: PostgresBatchStore? { store as? PostgresBatchStore }

        func scalar(_ sql: String) async throws -> Int64? {
            if let sqliteStore { return try await sqliteStore.testingScalar(sql) }
            return try await postgresStore!.testingScalar(sql)
        }

        func close() async {
            if let postgres {
                _ = try? await scalar("DROP SCHEMA \"\(postgres.schema)\" CASCADE")
            }
            await store.close()
            if let directory { try? FileManager.default.removeItem(at: directory) }
        }
    }

    /// Runs `body` with a fresh store of `kind`, closed (and its data removed) afterwards.
    func withStore(_ kind: Kind, acquireTimeout: Duration = .seconds(5), _ body: (Harness) async throws -> Void) async throws {
        guard let harness = try await Harness.open(kind, acquireTimeout: acquireTimeout) else { return }
        do {
            try await body(harness)
        } catch {
            await harness.close()
            throw error
        }
        await harness.close()
    }

    static func batch(_ id: String, client: String? = nil, createdAt: Int64 = t0, expiresAt: Int64 = t0 + day) -> NewBatch {
        NewBatch(id: id, client: client, createdAtMs: createdAt, expiresAtMs: expiresAt)
    }

    /// `count` requests of about `paramsBytes` each; `incompressible`: the content is pseudo-random
    /// text (PostgreSQL compresses large values, so repeated letters would flatter its sizes).
    static func requests(_ count: Int, paramsBytes: Int = 40, incompressible: Bool = false) -> [NewBatchRequest] {
        var random = BatchStoreTestRandom(seed: 7)
        return (0..<count).map { index in
            let body = #"{"model":"fast","max_tokens":16,"messages":[{"role":"user","content":"#
            let length = max(0, paramsBytes - body.utf8.count - 5)
            let padding = incompressible ? random.text(length) : String(repeating: "x", count: length)
            return NewBatchRequest(customID: "r\(index)", route: "fast", params: Array((body + "\"\(padding)\"}]}").utf8))
        }
    }

    static func key(_ batchID: String, _ customID: String) -> BatchRequestKey {
        BatchRequestKey(batchID: batchID, customID: customID)
    }

    static func succeeded(_ key: BatchRequestKey, _ text: String = "ok") -> BatchRequestOutcome {
        BatchRequestOutcome(key: key, state: .succeeded, result: Array(#"{"type":"succeeded","message":{"text":"\#(text)"}}"#.utf8))
    }

    static func expectError(_ kind: BatchStoreError.Kind, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("expected a \(kind.rawValue) error, got success", sourceLocation: sourceLocation)
        } catch let error as BatchStoreError {
            #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected a BatchStoreError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Create, retrieve, list

    @Test(arguments: Kind.allCases)
    func createThenRetrieveWithCounts(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            try await store.create(Self.batch("b1", client: "alice"), requests: Self.requests(3))
            let record = try #require(try await store.batch(id: "b1"))
            #expect(record == BatchRecord(
                id: "b1", client: "alice", createdAtMs: Self.t0, expiresAtMs: Self.t0 + Self.day, endedAtMs: nil, cancelInitiatedAtMs: nil,
                counts: BatchRequestCounts(processing: 3)))
            #expect(try await store.batch(id: "b2") == nil)
            #expect(try await store.stateCounts() == BatchRequestCounts(processing: 3))
        }
    }

    @Test(arguments: Kind.allCases)
    func createIsAtomicAndAnExistingIDConflicts(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            var requests = Self.requests(2_500)
            requests[1_700].customID = "r3"  // a duplicate in the middle, in a later INSERT chunk
            await Self.expectError(.failed) { try await store.create(Self.batch("b1"), requests: requests) }
            #expect(try await store.batch(id: "b1") == nil)
            #expect(try await store.stateCounts() == BatchRequestCounts())
            #expect(try await store.list(client: nil, limit: 10, afterID: nil, beforeID: nil).batches.isEmpty)

            try await store.create(Self.batch("b1"), requests: Self.requests(2))
            await Self.expectError(.conflict) { try await store.create(Self.batch("b1"), requests: Self.requests(5)) }
            #expect(try await store.batch(id: "b1")?.counts.processing == 2)
        }
    }

    @Test(arguments: Kind.allCases)
    func listIsNewestFirstWithCursorsAndClientFilter(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            for index in 1...5 {
                try await store.create(Self.batch("b\(index)", client: index % 2 == 1 ? "alice" : "bob", createdAt: Self.t0 + Int64(index)), requests: Self.requests(1))
            }
            func page(_ limit: Int, client: String? = nil, after: String? = nil, before: String? = nil) async throws -> ([String], Bool) {
                let page = try await store.list(client: client, limit: limit, afterID: after, beforeID: before)
                return (page.batches.map(\.id), page.hasMore)
            }
            #expect(try await page(2) == (["b5", "b4"], true))
            #expect(try await page(2, after: "b4") == (["b3", "b2"], true))
            #expect(try await page(2, after: "b2") == (["b1"], false))
            #expect(try await page(10) == (["b5", "b4", "b3", "b2", "b1"], false))
            #expect(try await page(2, before: "b2") == (["b4", "b3"], true))
            #expect(try await page(2, before: "b4") == (["b5"], false))
            #expect(try await page(10, client: "alice") == (["b5", "b3", "b1"], false))
            #expect(try await page(1, client: "alice", after: "b5") == (["b3"], true))
            #expect(try await page(5, client: "alice", before: "b1") == (["b5", "b3"], false))
            #expect(try await page(5, client: "bob", after: "b3") == ([], false))  // another client's cursor
            #expect(try await page(5, after: "nope") == ([], false))
            #expect(try await store.list(client: nil, limit: 1, afterID: nil, beforeID: nil).batches.first?.counts.processing == 1)
        }
    }

    // MARK: - Leases

    @Test(arguments: Kind.allCases)
    func leaseRespectsNextAttemptAndTakesOverOnlyExpiredLeases(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            try await store.create(Self.batch("b1"), requests: Self.requests(3))
            #expect(try await store.lease(limit: 10, owner: "A", nowMs: Self.t0 - 1, leaseUntilMs: Self.t0 + 1_000).isEmpty)

            let first = try await store.lease(limit: 2, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 1_000)
            #expect(first.map(\.key.customID) == ["r0", "r1"])
            #expect(first.map(\.attempts) == [1, 1])
            #expect(first[0].route == "fast" && first[0].params == Self.requests(1)[0].params)
            #expect(first[0].expiresAtMs == Self.t0 + Self.day && first[0].upstreamBatchID == nil)

            let live = try await store.lease(limit: 10, owner: "B", nowMs: Self.t0 + 1_000, leaseUntilMs: Self.t0 + 2_000)
            #expect(live.map(\.key.customID) == ["r2"])  // r0, r1 still held (until t0+1000 inclusive)

            let takenOver = try await store.lease(limit: 10, owner: "B", nowMs: Self.t0 + 1_001, leaseUntilMs: Self.t0 + 5_000)
            #expect(takenOver.map(\.key.customID) == ["r0", "r1"])
            #expect(takenOver.map(\.attempts) == [2, 2])
            #expect(try await store.lease(limit: 10, owner: "C", nowMs: Self.t0 + 1_500, leaseUntilMs: Self.t0 + 9_000).isEmpty)
        }
    }

    @Test(arguments: Kind.allCases)
    func leaseTakesTheOldestBatchFirstAndSkipsCancelingEndedAndExpiredBatches(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            // Older than the rest, each of these three is skipped: one stays canceling (its first
            // request is held), one has ended, one is past its expiry.
            try await store.create(Self.batch("canceling"), requests: Self.requests(2))
            #expect(try await store.lease(limit: 1, owner: "X", nowMs: Self.t0, leaseUntilMs: Self.t0 + 1_000).count == 1)
            #expect(try await store.cancel(id: "canceling", nowMs: Self.t0 + 1)?.endedAtMs == nil)
            try await store.create(Self.batch("ended"), requests: Self.requests(1))
            #expect(try await store.cancel(id: "ended", nowMs: Self.t0 + 1)?.endedAtMs != nil)
            try await store.create(Self.batch("expired", expiresAt: Self.t0 + 50), requests: Self.requests(2))
            try await store.create(Self.batch("old"), requests: Self.requests(2))
            try await store.create(Self.batch("new"), requests: Self.requests(2))

            let leased = try await store.lease(limit: 3, owner: "A", nowMs: Self.t0 + 100, leaseUntilMs: Self.t0 + 1_000)
            #expect(leased.map { "\($0.key.batchID)/\($0.key.customID)" } == ["old/r0", "old/r1", "new/r0"])
            let rest = try await store.lease(limit: 10, owner: "A", nowMs: Self.t0 + 100, leaseUntilMs: Self.t0 + 1_000)
            #expect(rest.map { "\($0.key.batchID)/\($0.key.customID)" } == ["new/r1"])
        }
    }

    @Test(arguments: Kind.allCases)
    func leaseTakesOnlyTheRoutesAndLanesAskedFor(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            let direct = BatchLeaseKind.directMarker
            try await store.create(
                Self.batch("b1"),
                requests: [
                    NewBatchRequest(customID: "a0", route: "alpha", params: [1]),
                    NewBatchRequest(customID: "b0", route: "beta", params: [2]),
                    NewBatchRequest(customID: "a1", route: "alpha", params: [3], upstreamBatchID: direct),
                    NewBatchRequest(customID: "b1", route: "beta", params: [4], upstreamBatchID: direct),
                    NewBatchRequest(customID: "g0", route: "gamma", params: [5]),
                ])
            func lease(_ routes: [String], _ laneKind: BatchLeaseKind) async throws -> [String] {
                try await store.lease(limit: 10, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 100, routes: routes, kind: laneKind)
                    .map(\.key.customID).sorted()
            }
            #expect(try await lease([], .any).isEmpty)
            #expect(try await lease(["alpha"], .upstream) == ["a0"])
            #expect(try await lease(["alpha", "beta"], .direct) == ["a1", "b1"])
            let directOne = try await store.lease(limit: 1, owner: "B", nowMs: Self.t0 + 101, leaseUntilMs: Self.t0 + 200, routes: ["beta"], kind: .direct)
            #expect(directOne.map(\.upstreamBatchID) == [direct])
            #expect(try await lease(["beta", "gamma"], .any) == ["b0", "g0"])
            // An upstream submission that failed for good: the request moves to the direct lane.
            _ = try await store.release([BatchRetry(key: Self.key("b1", "a0"), nextAttemptAtMs: Self.t0)], owner: "A", nowMs: Self.t0 + 1)
            let again = try await store.lease(limit: 10, owner: "C", nowMs: Self.t0 + 2, leaseUntilMs: Self.t0 + 300, routes: ["alpha"], kind: .upstream)
            #expect(again.map(\.key.customID) == ["a0"])
            try await store.setUpstreamBatch([Self.key("b1", "a0")], upstreamBatchID: direct, owner: "C")
            _ = try await store.release([BatchRetry(key: Self.key("b1", "a0"), nextAttemptAtMs: Self.t0)], owner: "C", nowMs: Self.t0 + 3)
            #expect(try await store.lease(limit: 10, owner: "D", nowMs: Self.t0 + 4, leaseUntilMs: Self.t0 + 300, routes: ["alpha"], kind: .upstream).isEmpty)
            let moved = try await store.lease(limit: 10, owner: "D", nowMs: Self.t0 + 4, leaseUntilMs: Self.t0 + 300, routes: ["alpha"], kind: .direct)
            #expect(moved.map(\.key.customID) == ["a0"] && moved.first?.upstreamBatchID == direct)
        }
    }

    @Test(arguments: Kind.allCases)
    func twoReplicasLeasingConcurrentlyNeverGetTheSameRequest(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let count = 600
            try await harness.store.create(Self.batch("b1"), requests: Self.requests(count))
            try await harness.store.create(Self.batch("b2", createdAt: Self.t0 + 1), requests: Self.requests(count))
            let replicas = [harness.store, try await harness.replica()]
            let leasedKeys = try await withThrowingTaskGroup(of: [BatchRequestKey].self) { group in
                for worker in 0..<8 {
                    let store = replicas[worker % 2]
                    group.addTask {
                        var mine: [BatchRequestKey] = []
                        while true {
                            let leased = try await store.lease(limit: 7, owner: "w\(worker)", nowMs: Self.t0 + 10, leaseUntilMs: Self.t0 + 600_000)
                            if leased.isEmpty { return mine }
                            mine += leased.map(\.key)
                            let written = try await store.complete(leased.map { Self.succeeded($0.key) }, owner: "w\(worker)", nowMs: Self.t0 + 20).written
                            #expect(written == Set(leased.map(\.key)))
                        }
                    }
                }
                return try await group.reduce(into: [BatchRequestKey]()) { $0 += $1 }
            }
            if replicas[1] as AnyObject !== replicas[0] as AnyObject { await replicas[1].close() }
            #expect(leasedKeys.count == 2 * count)
            #expect(Set(leasedKeys).count == 2 * count)
            for id in ["b1", "b2"] {
                let record = try #require(try await harness.store.batch(id: id))
                #expect(record.counts == BatchRequestCounts(succeeded: count))
                #expect(record.endedAtMs == Self.t0 + 20)
            }
        }
    }

    // MARK: - Complete, release, renew

    @Test(arguments: Kind.allCases)
    func completeWritesOnceAndTheLastResultEndsTheBatch(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            try await store.create(Self.batch("b1"), requests: Self.requests(3))
            #expect(try await store.lease(limit: 3, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 100).count == 3)
            // A's leases expire; B takes r0 over.
            #expect(try await store.lease(limit: 1, owner: "B", nowMs: Self.t0 + 200, leaseUntilMs: Self.t0 + 1_000).map(\.key.customID) == ["r0"])

            #expect(try await store.complete([Self.succeeded(Self.key("b1", "r0"), "from A")], owner: "A", nowMs: Self.t0 + 300).written.isEmpty)
            // A still holds r1 (expired, but no one took it): its result is written.
            #expect(try await store.complete([Self.succeeded(Self.key("b1", "r1"), "from A")], owner: "A", nowMs: Self.t0 + 300)
                == BatchCompletion(written: [Self.key("b1", "r1")], endedBatches: []))
            #expect(try await store.complete([Self.succeeded(Self.key("b1", "r0"), "from B")], owner: "B", nowMs: Self.t0 + 400).written
                == [Self.key("b1", "r0")])
            #expect(try await store.complete([Self.succeeded(Self.key("b1", "r0"), "again")], owner: "B", nowMs: Self.t0 + 500).written.isEmpty)
            #expect(try await store.batch(id: "b1")?.endedAtMs == nil)

            let errored = BatchRequestOutcome(key: Self.key("b1", "r2"), state: .errored, result: Array(#"{"type":"errored"}"#.utf8))
            let last = try await store.complete([errored], owner: "A", nowMs: Self.t0 + 600)
            #expect(last.written == [Self.key("b1", "r2")])
            let record = try #require(try await store.batch(id: "b1"))
            #expect(last.endedBatches == [record])
            #expect(record.endedAtMs == Self.t0 + 600)
            #expect(record.counts == BatchRequestCounts(succeeded: 2, errored: 1))
            let results = try await store.results(batchID: "b1", afterPosition: -1, limit: 10)
            #expect(results.map(\.customID) == ["r0", "r1", "r2"])
            #expect(String(decoding: results[0].result, as: UTF8.self).contains("from B"))
            #expect(try await store.stateCounts() == BatchRequestCounts(succeeded: 2, errored: 1))
        }
    }

    @Test(arguments: Kind.allCases)
    func releaseSetsTheNextAttemptAndOnlyTheHolderMayRelease(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            try await store.create(Self.batch("b1"), requests: Self.requests(1))
            _ = try await store.lease(limit: 1, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 1_000)
            _ = try await store.release([BatchRetry(key: Self.key("b1", "r0"), nextAttemptAtMs: Self.t0 + 5_000)], owner: "A", nowMs: Self.t0 + 10)
            #expect(try await store.lease(limit: 1, owner: "B", nowMs: Self.t0 + 4_999, leaseUntilMs: Self.t0 + 10_000).isEmpty)
            let again = try await store.lease(limit: 1, owner: "B", nowMs: Self.t0 + 5_000, leaseUntilMs: Self.t0 + 10_000)
            #expect(again.map(\.attempts) == [2])
            _ = try await store.release([BatchRetry(key: Self.key("b1", "r0"), nextAttemptAtMs: Self.t0)], owner: "A", nowMs: Self.t0 + 5_001)
            #expect(try await store.lease(limit: 1, owner: "C", nowMs: Self.t0 + 5_002, leaseUntilMs: Self.t0 + 10_000).isEmpty)
            #expect(try await store.batch(id: "b1")?.counts.processing == 1)
        }
    }

    @Test(arguments: Kind.allCases)
    func renewKeepsALeaseAndTheUpstreamBatchFollowsATakeover(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            let key = Self.key("b1", "r0")
            try await store.create(Self.batch("b1"), requests: Self.requests(1))
            _ = try await store.lease(limit: 1, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 100)
            try await store.renew([key], owner: "A", leaseUntilMs: Self.t0 + 10_000)
            try await store.renew([key], owner: "B", leaseUntilMs: Self.t0 + 1)  // not B's: ignored
            #expect(try await store.lease(limit: 1, owner: "B", nowMs: Self.t0 + 200, leaseUntilMs: Self.t0 + 1_000).isEmpty)
            try await store.setUpstreamBatch([key], upstreamBatchID: "msgbatch_up1", owner: "A")
            try await store.setUpstreamBatch([key], upstreamBatchID: "msgbatch_other", owner: "B")  // ignored
            let takenOver = try await store.lease(limit: 1, owner: "B", nowMs: Self.t0 + 10_001, leaseUntilMs: Self.t0 + 20_000)
            #expect(takenOver.first?.upstreamBatchID == "msgbatch_up1")
            try await store.setUpstreamBatch([key], upstreamBatchID: nil, owner: "B")
            _ = try await store.release([BatchRetry(key: key, nextAttemptAtMs: Self.t0)], owner: "B", nowMs: Self.t0 + 10_002)
            let third = try await store.lease(limit: 1, owner: "C", nowMs: Self.t0 + 10_003, leaseUntilMs: Self.t0 + 20_000)
            #expect(third.count == 1 && third.first?.upstreamBatchID == nil && third.first?.attempts == 3)
        }
    }

    // MARK: - Cancel, delete, expire

    @Test(arguments: Kind.allCases)
    func cancelCancelsWhatNoOneHoldsAndTheBatchEndsWhenHeldOnesFinish(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            try await store.create(Self.batch("b1"), requests: Self.requests(3))
            try await store.create(Self.batch("b2"), requests: Self.requests(3))
            // A holds r0 of each: it leases four and gives two back.
            #expect(try await store.lease(limit: 4, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 1_000).count == 4)
            _ = try await store.release(
                ["r1", "r2"].map { BatchRetry(key: Self.key("b1", $0), nextAttemptAtMs: Self.t0) }, owner: "A", nowMs: Self.t0)
            let canceling = try #require(try await store.cancel(id: "b1", nowMs: Self.t0 + 10))
            #expect(canceling.cancelInitiatedAtMs == Self.t0 + 10 && canceling.endedAtMs == nil)
            #expect(canceling.counts == BatchRequestCounts(processing: 1, canceled: 2))
            #expect(try await store.cancel(id: "b1", nowMs: Self.t0 + 20)?.cancelInitiatedAtMs == Self.t0 + 10)
            // B takes b2's r1 and r2 (due before A's expired r0), none of canceling b1.
            #expect(try await store.lease(limit: 2, owner: "B", nowMs: Self.t0 + 2_000, leaseUntilMs: Self.t0 + 3_000).map(\.key)
                == [Self.key("b2", "r1"), Self.key("b2", "r2")])

            // b1: the held request completes, and the batch ends.
            let completion = try await store.complete([Self.succeeded(Self.key("b1", "r0"))], owner: "A", nowMs: Self.t0 + 30)
            #expect(completion.written.count == 1)
            let ended = try #require(try await store.batch(id: "b1"))
            #expect(completion.endedBatches == [ended])
            #expect(ended.endedAtMs == Self.t0 + 30 && ended.counts == BatchRequestCounts(succeeded: 1, canceled: 2))
            let results = try await store.results(batchID: "b1", afterPosition: -1, limit: 10)
            #expect(results.map { String(decoding: $0.result, as: UTF8.self) }.suffix(2) == [#"{"type":"canceled"}"#, #"{"type":"canceled"}"#])

            // b2: A's r0 lease expired and B's two are live; cancel then release: released ones are canceled.
            let b2 = try #require(try await store.cancel(id: "b2", nowMs: Self.t0 + 2_500))
            #expect(b2.counts == BatchRequestCounts(processing: 2, canceled: 1))
            let endedByRelease = try await store.release(
                [BatchRetry(key: Self.key("b2", "r1"), nextAttemptAtMs: Self.t0), BatchRetry(key: Self.key("b2", "r2"), nextAttemptAtMs: Self.t0)],
                owner: "B", nowMs: Self.t0 + 2_600)
            let b2Ended = try #require(try await store.batch(id: "b2"))
            #expect(b2Ended.endedAtMs == Self.t0 + 2_600 && b2Ended.counts == BatchRequestCounts(canceled: 3))
            #expect(endedByRelease == [b2Ended])

            #expect(try await store.cancel(id: "nope", nowMs: Self.t0) == nil)
            #expect(try await store.cancel(id: "b2", nowMs: Self.t0 + 9_000) == b2Ended)  // ended: unchanged
        }
    }

    @Test(arguments: Kind.allCases)
    func deleteTakesOnlyAnEndedBatch(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            try await store.create(Self.batch("b1"), requests: Self.requests(3))
            try await store.create(Self.batch("b2"), requests: Self.requests(1))
            #expect(try await store.delete(id: "nope") == .notFound)
            #expect(try await store.delete(id: "b1") == .notEnded)
            #expect(try await store.cancel(id: "b1", nowMs: Self.t0 + 1)?.endedAtMs == Self.t0 + 1)
            #expect(try await store.delete(id: "b1") == .deleted)
            #expect(try await store.batch(id: "b1") == nil)
            #expect(try await store.results(batchID: "b1", afterPosition: -1, limit: 10).isEmpty)
            #expect(try await store.delete(id: "b1") == .notFound)
            #expect(try await store.stateCounts() == BatchRequestCounts(processing: 1))
            try await store.create(Self.batch("b1"), requests: Self.requests(1))  // the id is free again
        }
    }

    @Test(arguments: Kind.allCases)
    func expireEndsWhatNoOneHoldsPastExpiry(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            try await store.create(Self.batch("b1", expiresAt: Self.t0 + 100), requests: Self.requests(3))
            try await store.create(Self.batch("b2", expiresAt: Self.t0 + Self.day), requests: Self.requests(1))
            _ = try await store.lease(limit: 1, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 10_000)  // b1/r0
            #expect(try await store.expire(nowMs: Self.t0 + 99).isEmpty)
            #expect(try await store.expire(nowMs: Self.t0 + 100).isEmpty)  // r1 and r2 expire; A still holds r0
            #expect(try await store.batch(id: "b1")?.counts == BatchRequestCounts(processing: 1, expired: 2))
            #expect(try await store.lease(limit: 10, owner: "B", nowMs: Self.t0 + 200, leaseUntilMs: Self.t0 + 300).map(\.key.batchID) == ["b2"])
            let ended = try await store.expire(nowMs: Self.t0 + 20_000)  // A's lease ran out
            let record = try #require(try await store.batch(id: "b1"))
            #expect(ended == [record])
            #expect(record.endedAtMs == Self.t0 + 20_000 && record.counts == BatchRequestCounts(expired: 3))
            #expect(try await store.results(batchID: "b1", afterPosition: -1, limit: 10).allSatisfy { $0.result == Array(#"{"type":"expired"}"#.utf8) })
            #expect(try await store.batch(id: "b2")?.counts.processing == 1)
        }
    }

    // MARK: - Results, recovery, schema

    @Test(arguments: Kind.allCases)
    func resultsComeInPositionOrderAcrossPages(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            try await store.create(Self.batch("b1"), requests: Self.requests(7))
            _ = try await store.lease(limit: 7, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 1_000)
            for position in [5, 0, 6, 2, 1, 4] {  // position 3 stays pending
                _ = try await store.complete([Self.succeeded(Self.key("b1", "r\(position)"), "p\(position)")], owner: "A", nowMs: Self.t0 + 1)
            }
            let first = try await store.results(batchID: "b1", afterPosition: -1, limit: 3)
            #expect(first.map(\.position) == [0, 1, 2])
            #expect(first.map(\.customID) == ["r0", "r1", "r2"])
            let second = try await store.results(batchID: "b1", afterPosition: 2, limit: 3)
            #expect(second.map(\.position) == [4, 5, 6])
            #expect(String(decoding: second[1].result, as: UTF8.self).contains("p5"))
            #expect(try await store.results(batchID: "b1", afterPosition: 6, limit: 3).isEmpty)
        }
    }

    @Test(arguments: Kind.allCases)
    func recoverLeasesGivesBackWhatADeadProcessHeld(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            try await store.create(Self.batch("b1"), requests: Self.requests(3))
            try await store.create(Self.batch("b2", createdAt: Self.t0 + 1), requests: Self.requests(1))
            #expect(try await store.lease(limit: 4, owner: "A", nowMs: Self.t0 + 1, leaseUntilMs: Self.t0 + 600_000).count == 4)
            _ = try await store.cancel(id: "b2", nowMs: Self.t0 + 1)  // its one request is held: canceling

            try await store.recoverLeases(owner: "B")
            if kind == .postgres {
                // Another replica's leases are left to expire; this owner's own (a restart) come back.
                #expect(try await store.lease(limit: 10, owner: "B", nowMs: Self.t0 + 2, leaseUntilMs: Self.t0 + 1_000).isEmpty)
                try await store.recoverLeases(owner: "A")
            }
            let recovered = try await store.lease(limit: 10, owner: "B", nowMs: Self.t0 + 2, leaseUntilMs: Self.t0 + 1_000)
            #expect(recovered.map(\.key.customID) == ["r0", "r1", "r2"])
            #expect(recovered.map(\.attempts) == [2, 2, 2])
            let b2 = try #require(try await store.batch(id: "b2"))
            #expect(b2.counts == BatchRequestCounts(canceled: 1) && b2.endedAtMs != nil)
        }
    }

    @Test(arguments: Kind.allCases)
    func theSchemaVersionIsRecordedAndANewerOneIsRefused(kind: Kind) async throws {
        try await withStore(kind) { harness in
            #expect(try await harness.scalar("SELECT MAX(version) FROM schema_version") == Int64(BatchSchema.currentVersion))
            try await harness.store.prepare()  // idempotent
            #expect(try await harness.scalar("SELECT count(*) FROM schema_version") == Int64(BatchSchema.migrations.count))
            _ = try await harness.scalar("INSERT INTO schema_version (version, applied_at) VALUES (\(BatchSchema.currentVersion + 1), 0)")
            await Self.expectError(.schema) { try await harness.store.prepare() }
        }
    }

    @Test func theMigrationPlanRunsInOrderAndRefusesTheFuture() throws {
        #expect(try BatchSchema.plan(storedVersion: 0).map(\.version) == BatchSchema.migrations.map(\.version))
        #expect(try BatchSchema.plan(storedVersion: BatchSchema.currentVersion).isEmpty)
        #expect(throws: BatchStoreError.self) { try BatchSchema.plan(storedVersion: BatchSchema.currentVersion + 1) }
    }

    // MARK: - Opening from batches.store

    @Test func storeURLsParseAndMistakesAreRefusedWithoutQuotingThem() throws {
        #expect(try BatchStores.parse("sqlite:./switchyard-batches.db") == .sqlite(path: "./switchyard-batches.db"))
        #expect(try BatchStores.parse("sqlite:///var/lib/switchyard/b.db") == .sqlite(path: "/var/lib/switchyard/b.db"))
        #expect(try BatchStores.parse("postgres://switchyard@db:5432/switchyard")
            == .postgres(host: "db", port: 5432, username: "switchyard", database: "switchyard", schema: nil, tls: .prefer))
        #expect(try BatchStores.parse("postgresql://sw%40x@[::1]/batches?sslmode=disable&schema=sy_batches")
            == .postgres(host: "::1", port: 5432, username: "sw@x", database: "batches", schema: "sy_batches", tls: .disable))
        for bad in [
            "mysql://u@h/db", "sqlite:", "postgres://h:5432/db", "postgres://u@h:99999/db", "postgres://u@h", "postgres://u@h/db?sslmode=maybe",
            "postgres://u@h/db?schema=Bad-Name", "postgres://u@h/db?password=x",
        ] {
            #expect(throws: BatchStoreError.self, "\(bad)") { try BatchStores.parse(bad) }
        }
        do {
            _ = try BatchStores.parse("postgres://user:hunter2@db/x")
            Issue.record("a password in the URL was taken")
        } catch {
            #expect(!error.message.contains("hunter2") && error.message.contains("store_password_env"), "\(error)")
        }
    }

    @Test(arguments: Kind.allCases)
    func openFromTheStoreSettingGivesAWorkingStore(kind: Kind) async throws {
        let url: String
        switch kind {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("batchstore-open-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            url = "sqlite:" + directory.appendingPathComponent("b.db").path
        case .postgres:
            // Through Harness: it reports a missing server (or a skip) the same way as every test.
            guard let harness = try await Harness.open(.postgres), let base = harness.postgres?.url else { return }
            await harness.close()
            url = base + "?sslmode=disable&schema=" + PostgresTestCluster.uniqueSchema()
        }
        let store = try await BatchStores.open(url: url, password: nil, logger: Logger(label: "open-test"))
        try await store.prepare()
        try await store.recoverLeases(owner: "replica-1")
        try await store.create(Self.batch("b1"), requests: Self.requests(2))
        #expect(try await store.batch(id: "b1")?.counts.processing == 2)
        #expect(try await store.sizeInBytes() ?? 0 > 0)
        if let postgres = store as? PostgresBatchStore, let schema = postgres.configuration.schema {
            _ = try await postgres.testingScalar("DROP SCHEMA \(schema) CASCADE")
        }
        await store.close()
        if case .sqlite(let path) = try BatchStores.parse(url) {
            try? FileManager.default.removeItem(at: URL(fileURLWithPath: path).deletingLastPathComponent())
        }
    }

    // MARK: - SQLite: a file that cannot be written

    /// Makes `path` unwritable even for root (`chattr +i`), or with `chmod` for anyone else.
    static func setWritable(_ path: String, _ writable: Bool) throws {
        let process = Process()
        if getuid() == 0 {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
            process.arguments = [writable ? "-i" : "+i", path]
        } else {
            process.executableURL = URL(fileURLWithPath: "/bin/chmod")
            process.arguments = [writable ? "644" : "444", path]
        }
        try process.run()
        process.waitUntilExit()  // milliseconds (chattr), and called from a `defer`
        #expect(process.terminationStatus == 0, "could not change \(path)")
    }

    @Test func aReadOnlySQLiteFileGivesReadOnlyNamingTheFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("batchstore-ro-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("batches.db").path
        let logger = Logger(label: "batch-store-test")
        let store = try await SQLiteBatchStore.open(path: path, logger: logger)
        try await store.prepare()
        try await store.create(Self.batch("b1"), requests: Self.requests(2))
        await store.close()

        try Self.setWritable(path, false)
        defer { try? Self.setWritable(path, true) }
        // Opening may already refuse; if it does not, reading works and the first write is refused.
        let failure: BatchStoreError? = await {
            let store: SQLiteBatchStore
            do throws(BatchStoreError) {
                store = try await SQLiteBatchStore.open(path: path, logger: logger)
            } catch {
                return error
            }
            do throws(BatchStoreError) {
                try await store.prepare()
                let readable = try await store.batch(id: "b1")
                #expect(readable?.counts.processing == 2)
                try await store.create(Self.batch("b2"), requests: Self.requests(1))
            } catch {
                await store.close()
                return error
            }
            await store.close()
            return nil
        }()
        let error = try #require(failure, "a read-only file took a write")
        print("read-only SQLite file: \(error)")
        #expect(error.kind == .readOnly, "\(error)")
        #expect(error.message.contains(path), "\(error)")
    }

    @Test func aFullSQLiteDiskGivesReadOnlyAndLeavesNothingHalfWritten() async throws {
        try await withStore(.sqlite) { harness in
            let store = try #require(harness.sqliteStore)
            try await store.create(Self.batch("b1"), requests: Self.requests(1))
            let pages = try #require(try await store.testingScalar("PRAGMA page_count"))
            // What SQLite answers when the disk fills up (SQLITE_FULL), without filling a disk.
            try await store.testingScalar("PRAGMA max_page_count = \(pages + 8)")
            await Self.expectError(.readOnly) { try await store.create(Self.batch("big"), requests: Self.requests(200, paramsBytes: 4_096)) }
            do {
                try await store.create(Self.batch("big"), requests: Self.requests(200, paramsBytes: 4_096))
            } catch {
                print("full SQLite disk: \(error)")
                #expect("\(error)".contains(store.path) && "\(error)".contains("full"), "\(error)")
            }
            #expect(try await store.batch(id: "big") == nil)
            #expect(try await store.batch(id: "b1")?.counts.processing == 1)
            #expect(try await store.lease(limit: 5, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 10).count == 1)
        }
    }

    // MARK: - PostgreSQL that goes away and comes back

    @Test func postgresGoingAwayGivesUnavailableAndComingBackWorksWithoutARestart() async throws {
        try await withStore(.postgres, acquireTimeout: .seconds(1)) { harness in
            let url = try #require(harness.postgres?.url)
            guard try await PostgresTestCluster.isScriptCluster(url: url) else {
                Issue.record("this test stops and starts the server: it needs the cluster of ops/postgres-test-cluster.sh")
                return
            }
            let store = harness.store
            try await store.create(Self.batch("b1"), requests: Self.requests(3))

            #expect(try await PostgresTestCluster.runScript(["stop", "immediate"], url: url).status == 0)
            do {
                let clock = ContinuousClock()
                let started = clock.now
                await Self.expectError(.unavailable) { _ = try await store.batch(id: "b1") }
                await Self.expectError(.unavailable) { _ = try await store.lease(limit: 5, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 10) }
                await Self.expectError(.unavailable) { try await store.create(Self.batch("b2"), requests: Self.requests(2)) }
                let down = clock.now - started
                #expect(down < .seconds(10), "three calls took \(down) while PostgreSQL was down")
                print("PostgreSQL down: three calls failed with unavailable in \(down)")
            }
            #expect(try await PostgresTestCluster.runScript(["start"], url: url).status == 0)

            let clock = ContinuousClock()
            let restarted = clock.now
            var record: BatchRecord?
            while record == nil, clock.now - restarted < .seconds(20) {
                do {
                    record = try await store.batch(id: "b1")
                } catch {
                    #expect((error as? BatchStoreError)?.kind == .unavailable, "\(error)")
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            print("PostgreSQL back: the store answered again \(clock.now - restarted) after the server started")
            #expect(record?.counts.processing == 3)
            try await store.create(Self.batch("b2"), requests: Self.requests(2))
            #expect(try await store.lease(limit: 10, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 10).count == 5)
        }
    }

    // MARK: - Measurements for the report

    /// Prints the store's size per 1,000 requests (~1 KB params each; then with ~1 KB results).
    @Test(arguments: Kind.allCases)
    func storeSizePerThousandRequests(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            func compactedSize() async throws -> Int64 {
                if kind == .sqlite {
                    _ = try await harness.scalar("PRAGMA wal_checkpoint(TRUNCATE)")
                } else {
                    _ = try await harness.scalar("VACUUM batch_requests")
                }
                return try #require(try await store.sizeInBytes())
            }
            let empty = try await compactedSize()
            try await store.create(Self.batch("b1"), requests: Self.requests(1_000, paramsBytes: 1_024, incompressible: true))
            let pendingRaw = try #require(try await store.sizeInBytes())
            let pending = try await compactedSize()
            var random = BatchStoreTestRandom(seed: 11)
            var leased = 0
            while true {
                let batch = try await store.lease(limit: 64, owner: "A", nowMs: Self.t0, leaseUntilMs: Self.t0 + 60_000)
                if batch.isEmpty { break }
                leased += batch.count
                let outcomes = batch.map { BatchRequestOutcome(key: $0.key, state: .succeeded, result: Array(random.text(1_000).utf8)) }
                _ = try await store.complete(outcomes, owner: "A", nowMs: Self.t0)
            }
            #expect(leased == 1_000)
            let doneRaw = try #require(try await store.sizeInBytes())
            let done = try await compactedSize()
            func kb(_ bytes: Int64) -> String { "\((Double(bytes) / 1024).rounded()) KiB" }
            print(
                "\(kind) store size per 1,000 requests (1 KiB params, random text): \(kb(pending - empty)) pending (\(kb(pendingRaw - empty)) before checkpoint/vacuum); "
                    + "\(kb(done - empty)) with 1 KiB results (\(kb(doneRaw - empty)) before checkpoint/vacuum)")
            #expect(try await store.batch(id: "b1")?.counts.succeeded == 1_000)
        }
    }

    /// Prints how long creating 10,000 and 100,000 small requests takes (one transaction each).
    @Test(arguments: Kind.allCases)
    func creatingLargeBatchesIsFast(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            for count in [10_000, 100_000] {
                let requests = Self.requests(count, paramsBytes: 200)
                let clock = ContinuousClock()
                let started = clock.now
                try await store.create(Self.batch("b\(count)"), requests: requests)
                let took = clock.now - started
                print("\(kind) create of \(count) requests (200-byte params): \(took)")
                #expect(took < .seconds(60))
                #expect(try await store.batch(id: "b\(count)")?.counts.processing == count)
            }
            let page = try await store.results(batchID: "b100000", afterPosition: -1, limit: 10)
            #expect(page.isEmpty)
        }
    }

    /// With SWITCHYARD_BATCH_BENCH set: lease/complete throughput of 8 workers (two replicas for
    /// PostgreSQL), retrieving a 100,000-request batch, and a 256 MB create.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SWITCHYARD_BATCH_BENCH"] != nil), arguments: Kind.allCases)
    func benchmark(kind: Kind) async throws {
        try await withStore(kind) { harness in
            let store = harness.store
            let clock = ContinuousClock()
            let count = 20_000
            try await store.create(Self.batch("work"), requests: Self.requests(count, paramsBytes: 1_024))
            let replicas = [store, try await harness.replica()]
            let result = Array(String(repeating: "r", count: 1_000).utf8)
            var started = clock.now
            let done = try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in 0..<8 {
                    let replica = replicas[worker % 2]
                    group.addTask {
                        var done = 0
                        while true {
                            let leased = try await replica.lease(limit: 8, owner: "w\(worker)", nowMs: Self.t0, leaseUntilMs: Self.t0 + 600_000)
                            if leased.isEmpty { return done }
                            done += try await replica.complete(
                                leased.map { BatchRequestOutcome(key: $0.key, state: .succeeded, result: result) }, owner: "w\(worker)", nowMs: Self.t0
                            ).written.count
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            let throughput = Double(done) / (clock.now - started).inSeconds
            print("\(kind) lease+complete, 8 workers x 8 per call: \(Int(throughput)) requests/s")
            if replicas[1] as AnyObject !== store as AnyObject { await replicas[1].close() }

            try await store.create(Self.batch("big"), requests: Self.requests(100_000, paramsBytes: 200))
            started = clock.now
            for _ in 0..<10 { _ = try await store.batch(id: "big") }
            print("\(kind) retrieve of a 100,000-request batch (counts): \((clock.now - started) / 10)")
            started = clock.now
            _ = try await store.list(client: nil, limit: 20, afterID: nil, beforeID: nil)
            print("\(kind) list of 3 batches (122,000 requests): \(clock.now - started)")

            let heavy = Self.requests(10_000, paramsBytes: 26_843)
            started = clock.now
            try await store.create(Self.batch("heavy"), requests: heavy)
            print("\(kind) create of 10,000 requests, 256 MB of params: \(clock.now - started)")
            print("\(kind) store size now: \((try await store.sizeInBytes() ?? 0) >> 20) MiB")
        }
    }

    /// The batch service opens its store inside its own run, where ServiceLifecycle's graceful
    /// shutdown is a task-local: the pool's task must not inherit it, or the pool stops the moment
    /// the service begins to shut down — before the service hands its leases back through it.
    @Test func aPostgreSQLStoreOutlivesTheGracefulShutdownOfTheServiceThatOpenedItUntilClosed() async throws {
        guard let url = PostgresTestCluster.urlWithOwnSchema("store outliving its service's shutdown") else { return }
        var logger = Logger(label: "batch-store-test")
        logger.logLevel = .critical
        try await testGracefulShutdown { trigger in
            let store = try await BatchStores.open(url: url, password: nil, logger: logger)
            try await store.prepare()
            trigger.triggerGracefulShutdown()
            try await Task.sleep(for: .milliseconds(300))
            let counts = try await store.stateCounts()
            #expect(counts.processing == 0)
            await store.close()
        }
    }
}

extension BatchStore {
    /// A lease of every lane on the tests' one route.
    fileprivate func lease(limit: Int, owner: String, nowMs: Int64, leaseUntilMs: Int64) async throws(BatchStoreError) -> [LeasedBatchRequest] {
        try await lease(limit: limit, owner: owner, nowMs: nowMs, leaseUntilMs: leaseUntilMs, routes: ["fast"], kind: .any)
    }
}

/// A small deterministic generator for test content.
private struct BatchStoreTestRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func text(_ length: Int) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)
        return String(decoding: (0..<length).map { _ in letters[Int(next() % UInt64(letters.count))] }, as: UTF8.self)
    }
}

extension Duration {
    fileprivate var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
