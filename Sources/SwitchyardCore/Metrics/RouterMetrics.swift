import Prometheus
import Synchronization

/// The `/metrics` series of PRODUCT.md section 7, on a registry owned by one router (so tests and
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

    fileprivate struct Key: Hashable, Sendable {
        var name: String
        var labels: [String]
    }

    /// Series already registered, so that a request finds its counters without asking the
    /// registry (which validates names and labels on every call).
    private final class SeriesCache<Series: Sendable>: Sendable {
        private let cache = Mutex<[Key: Series]>([:])

        func series(_ key: Key, make: () -> Series) -> Series {
            cache.withLock { cache in
                if let existing = cache[key] { return existing }
                let made = make()
                cache[key] = made
                return made
            }
        }
    }

    private let counters = SeriesCache<Counter>()
    private let gauges = SeriesCache<Gauge>()
    private let histograms = SeriesCache<DurationHistogram>()

    public init() {}

    // MARK: Events

    /// Called once per finished request, with its audit record.
    public func requestFinished(_ record: RequestAuditRecord) {
        let route = record.route ?? "none"
        counter("switchyard_requests_total", "Requests answered, by route, serving model, status and outcome.", [
            ("route", route), ("model", record.model ?? "none"), ("status", String(record.status)), ("outcome", record.outcome.rawValue),
        ]).increment()
        if record.route != nil {
            histogram("switchyard_request_duration_seconds", "Time from request to last byte, by route.", [("route", route)])
                .record(.milliseconds(record.durationMs))
        }
        var previous: String?
        for attempt in record.attempts {
            let result = attempt.status.map(String.init) ?? attempt.error ?? "error"
            counter("switchyard_attempts_total", "Upstream attempts, by model and result (status code or error kind).", [
                ("model", attempt.model), ("result", result),
            ]).increment()
            if let ttfb = attempt.ttfbMs {
                histogram("switchyard_upstream_ttfb_seconds", "Time to the upstream's response head, by model.", [("model", attempt.model)])
                    .record(.milliseconds(ttfb))
            }
            if let previous, previous != attempt.model {
                counter("switchyard_failovers_total", "Moves from one model to the next within a request.", [
                    ("route", route), ("from", previous), ("to", attempt.model),
                ]).increment()
            }
            previous = attempt.model
        }
        if let usage = record.usage, let model = record.model {
            let kinds: [(String, Int?)] = [
                ("input", usage.inputTokens), ("output", usage.outputTokens), ("cache_read", usage.cacheReadInputTokens),
                ("cache_creation", usage.cacheCreationInputTokens),
            ]
            for (kind, count) in kinds {
                guard let count, count > 0 else { continue }
                counter("switchyard_tokens_total", "Tokens reported by upstreams, by model and kind.", [("model", model), ("kind", kind)])
                    .increment(by: Int64(count))
            }
        }
    }

    public func requestStarted(route: String) {
        inFlightGauge(route: route).increment()
    }

    public func requestEnded(route: String) {
        inFlightGauge(route: route).decrement()
    }

    public func breakerTransition(model: String, to state: CircuitBreaker.State) {
        counter("switchyard_breaker_transitions_total", "Circuit breaker transitions, by model and new state.", [
            ("model", model), ("to", state.rawValue),
        ]).increment()
        setBreakerState(model: model, state)
    }

    public func setBreakerState(model: String, _ state: CircuitBreaker.State) {
        let value: Double =
            switch state {
            case .closed: 0
            case .halfOpen: 1
            case .open: 2
            }
        gauge("switchyard_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", [("model", model)]).set(value)
    }

    /// The Prometheus text exposition.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }

    // MARK: Series

    private func inFlightGauge(route: String) -> Gauge {
        gauge("switchyard_in_flight_requests", "Requests being served, by route.", [("route", route)])
    }

    private func counter(_ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        counters.series(Key(name: name, labels: labels.map(\.1))) {
            registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels)
        }
    }

    private func gauge(_ name: String, _ help: String, _ labels: [(String, String)]) -> Gauge {
        gauges.series(Key(name: name, labels: labels.map(\.1))) {
            registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels)
        }
    }

    private func histogram(_ name: String, _ help: String, _ labels: [(String, String)]) -> DurationHistogram {
        histograms.series(Key(name: name, labels: labels.map(\.1))) {
            registry.makeDurationHistogram(descriptor: Self.descriptor(name, help), labels: labels, buckets: Self.latencyBuckets)
        }
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
