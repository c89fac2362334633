import DequeModule
import Synchronization

/// The last 15 minutes of traffic in 10-second buckets, per route and per model, for the
/// dashboard: requests, failures, latency quantiles, which model served each route's requests,
/// and the latest decisions. Fed each finished request's audit record (a lock and a few
/// increments); read once a second by the dashboard's event stream.
final class LiveStats: Sendable {
    static let bucketMs: Int64 = 10_000
    static let bucketCount = 90
    static let decisionsKept = 200

    private let state = Mutex(State())

    private struct State {
        var routes: [String: Series] = [:]
        var models: [String: Series] = [:]
        /// Per route, per serving model: requests served per bucket.
        var served: [String: [String: Ring<Int>]] = [:]
        /// The latest decisions, oldest first, at most `decisionsKept`. A deque: dropping the
        /// oldest of an array moved all 200 on every request, a tenth of a request's instructions.
        var decisions = Deque<Decision>(minimumCapacity: LiveStats.decisionsKept)
    }

    /// One finished request, as the decisions table shows it.
    struct Decision: Sendable {
        var timestampMs: Int64
        var requestID: String
        var route: String?
        var model: String?
        var downgraded: Bool
        var status: Int
        var outcome: String
        /// Kept as records (a retain of the request's own array); their one-line summaries are
        /// written only when the dashboard asks.
        var attemptRecords: [AttemptRecord]
        var durationMs: Int64

        var attempts: [String] { attemptRecords.map(\.summary) }
    }

    /// What a series answers for the dashboard.
    struct Figures: Sendable {
        var ratePerSecond: Double
        var errorShare: Double
        var p50Ms: Double?
        var p99Ms: Double?
        /// Per bucket, oldest first.
        var rate: [Double]
        var errorShares: [Double]
        var p50: [Double?]
        var p99: [Double?]
    }

    func record(_ record: RequestAuditRecord) {
        let bucket = record.timestampMs / Self.bucketMs
        let failed = record.outcome == .upstreamError || record.outcome == .streamError || record.outcome == .noModelAvailable
        state.withLock { state in
            if let route = record.route {
                state.routes[route, default: Series()].add(bucket: bucket, failed: failed, latencyMs: record.durationMs)
                if let model = record.model {
                    state.served[route, default: [:]][model, default: .zeros()].add(1, at: bucket)
                }
            }
            for attempt in record.attempts {
                let failedAttempt = attempt.error != nil || (attempt.status ?? 0) >= 500 || attempt.status == 429
                state.models[attempt.model, default: Series()].add(bucket: bucket, failed: failedAttempt, latencyMs: attempt.durationMs)
            }
            while state.decisions.count >= Self.decisionsKept { state.decisions.removeFirst() }
            state.decisions.append(
                Decision(
                    timestampMs: record.timestampMs, requestID: record.requestID, route: record.route, model: record.model,
                    downgraded: record.downgraded, status: record.status, outcome: record.outcome.rawValue, attemptRecords: record.attempts,
                    durationMs: record.durationMs
                )
            )
        }
    }

    func route(_ name: String, nowMs: Int64) -> Figures {
        state.withLock { $0.routes[name]?.figures(nowBucket: nowMs / Self.bucketMs) } ?? Series().figures(nowBucket: nowMs / Self.bucketMs)
    }

    func model(_ name: String, nowMs: Int64) -> Figures {
        state.withLock { $0.models[name]?.figures(nowBucket: nowMs / Self.bucketMs) } ?? Series().figures(nowBucket: nowMs / Self.bucketMs)
    }

    /// Requests of `route` served by `model`, per bucket, oldest first.
    func served(route: String, model: String, nowMs: Int64) -> [Int] {
        let now = nowMs / Self.bucketMs
        return state.withLock { $0.served[route]?[model]?.values(endingAt: now) } ?? Array(repeating: 0, count: Self.bucketCount)
    }

    /// The last `count` decisions, downgrades first, newest first within each.
    func decisions(_ count: Int) -> [Decision] {
        let all = state.withLock { Array($0.decisions) }
        let newestFirst = all.reversed()
        return Array((newestFirst.filter(\.downgraded) + newestFirst.filter { !$0.downgraded }).prefix(count))
    }

    /// Counts, failures and latencies of one route or model, per bucket.
    private struct Series {
        var requests = Ring<Int>.zeros()
        var failures = Ring<Int>.zeros()
        var latency = Ring<LatencyHistogram>(repeating: LatencyHistogram())

        mutating func add(bucket: Int64, failed: Bool, latencyMs: Int64) {
            requests.add(1, at: bucket)
            if failed { failures.add(1, at: bucket) }
            latency.update(at: bucket) { $0.record(milliseconds: latencyMs) }
        }

        func figures(nowBucket now: Int64) -> Figures {
            let counts = requests.values(endingAt: now)
            let failed = failures.values(endingAt: now)
            let histograms = latency.values(endingAt: now)
            // "Now": the last minute (six buckets), the current one partly.
            let recent = counts.suffix(6).reduce(0, +)
            let recentFailed = failed.suffix(6).reduce(0, +)
            var merged = LatencyHistogram()
            for histogram in histograms.suffix(6) { merged.merge(histogram) }
            return Figures(
                ratePerSecond: Double(recent) / 60, errorShare: recent == 0 ? 0 : Double(recentFailed) / Double(recent),
                p50Ms: merged.quantile(0.5), p99Ms: merged.quantile(0.99),
                rate: counts.map { Double($0) / Double(LiveStats.bucketMs / 1000) },
                errorShares: zip(counts, failed).map { $0 == 0 ? 0 : Double($1) / Double($0) },
                p50: histograms.map { $0.quantile(0.5) }, p99: histograms.map { $0.quantile(0.99) }
            )
        }
    }
}

/// A fixed ring of `LiveStats.bucketCount` buckets keyed by bucket number: a bucket older than the
/// ring is reset before it is reused.
struct Ring<Element: Sendable>: Sendable {
    private var slots: [Element]
    private var numbers: [Int64]
    private let empty: Element

    init(repeating element: Element) {
        slots = Array(repeating: element, count: LiveStats.bucketCount)
        numbers = Array(repeating: -1, count: LiveStats.bucketCount)
        empty = element
    }

    mutating func update(at bucket: Int64, _ change: (inout Element) -> Void) {
        let index = Int(bucket % Int64(slots.count))
        if numbers[index] != bucket {
            numbers[index] = bucket
            slots[index] = empty
        }
        change(&slots[index])
    }

    /// The last `bucketCount` buckets up to `bucket`, oldest first; empty buckets as the empty element.
    func values(endingAt bucket: Int64) -> [Element] {
        let count = Int64(slots.count)
        return (bucket - count + 1...bucket).map { number in
            let index = Int(((number % count) + count) % count)
            return numbers[index] == number ? slots[index] : empty
        }
    }
}

extension Ring where Element == Int {
    static func zeros() -> Ring { Ring(repeating: 0) }

    mutating func add(_ value: Int, at bucket: Int64) {
        update(at: bucket) { $0 += value }
    }
}

/// Latencies counted in buckets growing by a quarter each, from 1 ms to about two hours:
/// quantiles within a quarter of the truth, at a few hundred bytes per 10-second bucket.
struct LatencyHistogram: Sendable {
    private static let bucketCount = 52
    private var counts: [UInt32] = []
    private var total: UInt32 = 0

    /// The upper edge of bucket `index`, in milliseconds.
    private static func edge(_ index: Int) -> Double {
        var value = 1.0
        for _ in 0..<index { value *= 1.25 }
        return value
    }

    private static let edges: [Double] = (0..<bucketCount).map(edge)

    mutating func record(milliseconds: Int64) {
        if counts.isEmpty { counts = Array(repeating: 0, count: Self.bucketCount) }
        let value = Double(max(0, milliseconds))
        let index = Self.edges.firstIndex { value <= $0 } ?? Self.bucketCount - 1
        counts[index] += 1
        total += 1
    }

    mutating func merge(_ other: LatencyHistogram) {
        guard other.total > 0 else { return }
        if counts.isEmpty { counts = Array(repeating: 0, count: Self.bucketCount) }
        for index in other.counts.indices { counts[index] += other.counts[index] }
        total += other.total
    }

    /// The bucket edge at or above the `q` quantile; nil without samples.
    func quantile(_ q: Double) -> Double? {
        guard total > 0 else { return nil }
        let rank = UInt32((Double(total) * q).rounded(.up))
        var seen: UInt32 = 0
        for index in counts.indices {
            seen += counts[index]
            if seen >= max(1, rank) { return Self.edges[index] }
        }
        return Self.edges.last
    }
}
