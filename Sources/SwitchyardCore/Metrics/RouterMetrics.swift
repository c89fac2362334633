import NIOPosix
import Prometheus
import Synchronization

/// The `/metrics` series of ops/RUNBOOK.md, "Metrics", on a registry owned by one router (so tests and
/// several routers in one process never share counters).
///
/// Request-level series are derived from the finished ``RequestAuditRecord``: the audit line and
/// the metrics can never disagree about what a request did.
public final class RouterMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    /// LLM latencies: from a cached 10 ms answer to a 10 minute stream.
    static let latencyBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
        .seconds(600),
    ]

    /// One series family: its name, help text and label names, defined once.
    struct Family: Sendable {
        var name: String
        var help: String
        var labels: [String]

        static let requests = Family(
            name: "switchyard_requests_total", help: "Requests answered, by route, serving model, status and outcome.",
            labels: ["route", "model", "status", "outcome"]
        )
        static let attempts = Family(
            name: "switchyard_attempts_total", help: "Upstream attempts, by model and result (status code or error kind).",
            labels: ["model", "result"]
        )
        /// A platform-wide incident shows here first: every model of one platform failing at once.
        static let platformAttempts = Family(
            name: "switchyard_platform_attempts_total", help: "Upstream attempts, by platform (anthropic, bedrock, vertex, openai) and result.",
            labels: ["platform", "result"]
        )
        static let failovers = Family(
            name: "switchyard_failovers_total", help: "Moves from one model to the next within a request.", labels: ["route", "from", "to"]
        )
        static let tokens = Family(name: "switchyard_tokens_total", help: "Tokens reported by upstreams, by model and kind.", labels: ["model", "kind"])
        static let transitions = Family(
            name: "switchyard_breaker_transitions_total", help: "Circuit breaker transitions, by model and new state.", labels: ["model", "to"]
        )
        static let breakerState = Family(
            name: "switchyard_breaker_state", help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.", labels: ["model"]
        )
        static let recoveries = Family(
            name: "switchyard_stream_recoveries_total",
            help: "Streams that failed after their commit point on a route with stream_recovery, by what recovery did.",
            labels: ["route", "result"]
        )
        static let batchRequests = Family(
            name: "switchyard_batch_requests", help: "Batch requests in the store, by state (processing, succeeded, errored, canceled, expired).",
            labels: ["state"]
        )
        static let batchQueueDepth = Family(
            name: "switchyard_batch_queue_depth", help: "Batch requests waiting to run or running (processing), over every batch.", labels: []
        )
        static let batchResults = Family(
            name: "switchyard_batch_results_total", help: "Batch request results written by this replica, by state.", labels: ["state"]
        )
        static let inFlight = Family(name: "switchyard_in_flight_requests", help: "Requests being served, by route.", labels: ["route"])
        static let duration = Family(
            name: "switchyard_request_duration_seconds", help: "Time from request to last byte, by route.", labels: ["route"]
        )
        static let ttfb = Family(
            name: "switchyard_upstream_ttfb_seconds", help: "Time to the upstream's response head, by model.", labels: ["model"]
        )

        static let upstreamConnections = Family(
            name: "switchyard_upstream_connections", help: "Upstream connections, by provider and state (active: carrying a request; idle: pooled).",
            labels: ["provider", "state"]
        )
        static let upstreamQueueDepth = Family(
            name: "switchyard_upstream_queue_depth", help: "Requests waiting for a free upstream connection, by provider.", labels: ["provider"]
        )
        static let capacityRejections = Family(
            name: "switchyard_capacity_rejections_total",
            help: "Attempts that found no upstream connection free within queue_timeout (max_connections reached), by provider.",
            labels: ["provider"]
        )

        var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: name, unitName: "", helpText: help) }

        func labelPairs(_ key: Key) -> [(String, String)] {
            Array(zip(labels, [key.v0, key.v1, key.v2, key.v3]))
        }
    }

    /// A series: its family and up to four label values. Built per request without allocating
    /// (label values are short strings, stored inline).
    struct Key: Hashable, Sendable {
        var family: String
        var v0: String
        var v1 = ""
        var v2 = ""
        var v3 = ""
    }

    /// Series already registered, so that a request finds its counters without asking the
    /// registry (which validates names and labels on every call).
    /// Each thread (event loop) keeps its own copy of the series it has used: a lookup touches
    /// nothing the other loop touches (a shared table's reference count, read by both loops for
    /// every series of every request, kept a cache line moving between the cores). A series is
    /// made once, under a lock, the first time any thread sees its labels.
    private final class SeriesCache<CacheKey: Hashable & Sendable, Series: Sendable>: Sendable {
        private let shared = Mutex<[CacheKey: Series]>([:])
        /// Never reused, unlike an object's address: a thread's copy never outlives its meaning.
        private let id = SeriesCacheID.next()

        /// This cache's series as the current thread has seen them. Only ever used by that thread.
        final class ThreadCopy: @unchecked Sendable {
            var series: [CacheKey: Series] = [:]
            /// The series found last: a run of requests of one route and outcome compares its
            /// key (its strings are the same objects each time) instead of hashing it.
            var last: (key: CacheKey, series: Series)?
        }

        func series(_ key: CacheKey, make: () -> Series) -> Series {
            let copies = ThreadSeriesCopies.current
            let copy: ThreadCopy
            if let existing = copies.caches[id] {
                copy = unsafeDowncast(existing, to: ThreadCopy.self)
            } else {
                copy = ThreadCopy()
                copies.caches[id] = copy
            }
            if let last = copy.last, last.key == key { return last.series }
            if let existing = copy.series[key] {
                copy.last = (key, existing)
                return existing
            }
            let found = shared.withLock { shared in
                if let existing = shared[key] { return existing }
                let made = make()
                shared[key] = made
                return made
            }
            copy.series[key] = found
            copy.last = (key, found)
            return found
        }
    }

    private let counters = SeriesCache<Key, Counter>()
    private let gauges = SeriesCache<Key, Gauge>()
    private let histograms = SeriesCache<Key, DurationHistogram>()

    /// What a finished request with one attempt is counted by: found with one lookup instead of
    /// one per series (five), which was most of the metrics' share of a request's CPU.
    struct OneAttemptKey: Hashable, Sendable {
        var route: String?
        var model: String?
        var status: Int
        var outcome: RequestOutcome
        var attemptModel: String
        var platform: String?
        var result: String
        var hasTTFB: Bool
        /// Which token kinds the request counted (``TokenCounts/mask``), with `model`.
        var tokenKinds: UInt8
    }

    /// The series of a ``OneAttemptKey``, made through the per-series caches (so each exists once).
    struct OneAttemptSeries: Sendable {
        var requests: Counter
        var duration: DurationHistogram?
        var attempts: Counter
        var platformAttempts: Counter
        var ttfb: DurationHistogram?
        /// The tokens counters of the key's kinds, by kind (``TokenCounts/names``).
        var tokens: [Counter?]
    }

    private let oneAttempt = SeriesCache<OneAttemptKey, OneAttemptSeries>()

    public init() {}

    // MARK: Events

    /// Results this replica wrote.
    public func batchResults(_ states: [BatchRequestState]) {
        for state in states { counter(.batchResults, state.rawValue).increment() }
    }

    /// The store's counts, read periodically by the batch service.
    public func setBatchCounts(_ counts: BatchRequestCounts) {
        gauge(.batchRequests, "processing").set(Double(counts.processing))
        gauge(.batchRequests, "succeeded").set(Double(counts.succeeded))
        gauge(.batchRequests, "errored").set(Double(counts.errored))
        gauge(.batchRequests, "canceled").set(Double(counts.canceled))
        gauge(.batchRequests, "expired").set(Double(counts.expired))
        gauge(.batchQueueDepth, "").set(Double(counts.processing))
    }

    /// Called once per finished request, with its audit record.
    public func requestFinished(_ record: RequestAuditRecord) {
        if record.attempts.count == 1 {
            countOneAttempt(record, record.attempts[0], TokenCounts(record))
        } else {
            countAttempts(record)
            let tokens = TokenCounts(record)
            if let model = record.model {
                for kind in tokens.kinds { counter(.tokens, model, TokenCounts.names[kind]).increment(by: tokens.count(kind)) }
            }
        }
        if let recovery = record.recovery {
            counter(.recoveries, record.route ?? "none", recovery.rawValue).increment()
        }
        countHealthDecisions(record)
    }

    /// A request's tokens by kind, as the tokens counters count them: only positive counts, and
    /// only for a request with a model.
    struct TokenCounts {
        static let names = ["input", "output", "cache_read", "cache_creation"]
        private var counts: (Int64, Int64, Int64, Int64) = (0, 0, 0, 0)
        /// Bit `i` set: kind `i` (of ``names``) has a count.
        private(set) var mask: UInt8 = 0

        init(_ record: RequestAuditRecord) {
            guard let usage = record.usage, record.model != nil else { return }
            func positive(_ count: Int?) -> Int64 { Int64(max(count ?? 0, 0)) }
            counts = (positive(usage.inputTokens), positive(usage.outputTokens), positive(usage.cacheReadInputTokens), positive(usage.cacheCreationInputTokens))
            for kind in 0..<4 where count(kind) > 0 { mask |= 1 << kind }
        }

        func count(_ kind: Int) -> Int64 {
            switch kind {
            case 0: counts.0
            case 1: counts.1
            case 2: counts.2
            default: counts.3
            }
        }

        var kinds: [Int] { (0..<4).filter { mask & (1 << $0) != 0 } }
    }

    /// The pools' connections and queues, read when /metrics is scraped.
    public func setUpstreamPool(provider: String, active: Int, idle: Int, waiting: Int) {
        gauge(.upstreamConnections, provider, "active").set(Double(active))
        gauge(.upstreamConnections, provider, "idle").set(Double(idle))
        gauge(.upstreamQueueDepth, provider).set(Double(waiting))
    }

    private func countCapacity(_ attempt: AttemptRecord) {
        guard attempt.error == TransportFailure.capacity.rawValue else { return }
        counter(.capacityRejections, attempt.provider ?? "none").increment()
    }

    private static func result(_ attempt: AttemptRecord) -> String {
        attempt.status.map(String.init) ?? attempt.error ?? "error"
    }

    /// The same series as ``countAttempts(_:)`` for a request with one attempt (no failover).
    private func countOneAttempt(_ record: RequestAuditRecord, _ attempt: AttemptRecord, _ tokens: TokenCounts) {
        let key = OneAttemptKey(
            route: record.route, model: record.model, status: record.status, outcome: record.outcome, attemptModel: attempt.model,
            platform: attempt.platform, result: Self.result(attempt), hasTTFB: attempt.ttfbMs != nil, tokenKinds: tokens.mask
        )
        let series = oneAttempt.series(key) {
            let route = key.route ?? "none"
            return OneAttemptSeries(
                requests: counter(.requests, route, key.model ?? "none", String(key.status), key.outcome.rawValue),
                duration: key.route.map { histogram(.duration, $0) },
                attempts: counter(.attempts, key.attemptModel, key.result),
                platformAttempts: counter(.platformAttempts, key.platform ?? "none", key.result),
                ttfb: key.hasTTFB ? histogram(.ttfb, key.attemptModel) : nil,
                tokens: TokenCounts.names.indices.map { kind in
                    guard let model = key.model, key.tokenKinds & (1 << kind) != 0 else { return nil }
                    return counter(.tokens, model, TokenCounts.names[kind])
                }
            )
        }
        series.requests.increment()
        countCapacity(attempt)
        series.duration?.record(.milliseconds(record.durationMs))
        series.attempts.increment()
        series.platformAttempts.increment()
        if let ttfb = attempt.ttfbMs { series.ttfb?.record(.milliseconds(ttfb)) }
        for kind in 0..<4 { series.tokens[kind]?.increment(by: tokens.count(kind)) }
    }

    private func countAttempts(_ record: RequestAuditRecord) {
        let route = record.route ?? "none"
        counter(.requests, route, record.model ?? "none", String(record.status), record.outcome.rawValue).increment()
        if record.route != nil {
            histogram(.duration, route).record(.milliseconds(record.durationMs))
        }
        var previous: String?
        for attempt in record.attempts {
            let result = Self.result(attempt)
            countCapacity(attempt)
            counter(.attempts, attempt.model, result).increment()
            counter(.platformAttempts, attempt.platform ?? "none", result).increment()
            if let ttfb = attempt.ttfbMs {
                histogram(.ttfb, attempt.model).record(.milliseconds(ttfb))
            }
            if let previous, previous != attempt.model {
                counter(.failovers, route, previous, attempt.model).increment()
            }
            previous = attempt.model
        }
    }

    /// A request counted in its route's in-flight gauge until ``InFlight/ended()``: the gauge is
    /// found once per request, not again at its end.
    public struct InFlight: Sendable {
        fileprivate let gauge: Gauge

        public func ended() {
            gauge.decrement()
        }
    }

    public func requestStarted(route: String) -> InFlight {
        let gauge = inFlightGauge(route: route)
        gauge.increment()
        return InFlight(gauge: gauge)
    }

    public func breakerTransition(model: String, to state: CircuitBreaker.State) {
        counter(.transitions, model, state.rawValue).increment()
        setBreakerState(model: model, state)
    }

    public func setBreakerState(model: String, _ state: CircuitBreaker.State) {
        let value: Double =
            switch state {
            case .closed: 0
            case .halfOpen: 1
            case .open: 2
            }
        gauge(.breakerState, model).set(value)
    }

    /// The Prometheus text exposition.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }

    // MARK: Series

    private func inFlightGauge(route: String) -> Gauge {
        gauge(.inFlight, route)
    }

    func counter(_ family: Family, _ v0: String, _ v1: String = "", _ v2: String = "", _ v3: String = "") -> Counter {
        let key = Key(family: family.name, v0: v0, v1: v1, v2: v2, v3: v3)
        return counters.series(key) { registry.makeCounter(descriptor: family.descriptor, labels: family.labelPairs(key)) }
    }

    func gauge(_ family: Family, _ v0: String, _ v1: String = "") -> Gauge {
        let key = Key(family: family.name, v0: v0, v1: v1)
        return gauges.series(key) { registry.makeGauge(descriptor: family.descriptor, labels: family.labelPairs(key)) }
    }

    private func histogram(_ family: Family, _ v0: String) -> DurationHistogram {
        let key = Key(family: family.name, v0: v0)
        return histograms.series(key) {
            registry.makeDurationHistogram(descriptor: family.descriptor, labels: family.labelPairs(key), buckets: Self.latencyBuckets)
        }
    }
}

/// Numbers for series caches, never reused.
private enum SeriesCacheID {
    private static let counter = Atomic<UInt64>(0)
    static func next() -> UInt64 { counter.add(1, ordering: .relaxed).newValue }
}

/// The series a thread has used, per cache: one thread-specific slot for the process (threads
/// are few: the event loops), whatever number of routers it runs.
private final class ThreadSeriesCopies: @unchecked Sendable {
    // Only ever used by the thread it belongs to; values are the caches' `ThreadCopy`s.
    var caches: [UInt64: AnyObject] = [:]

    private static let slot = ThreadSpecificVariable<ThreadSeriesCopies>()

    static var current: ThreadSeriesCopies {
        if let copies = slot.currentValue { return copies }
        let copies = ThreadSeriesCopies()
        slot.currentValue = copies
        return copies
    }
}
