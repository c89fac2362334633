/// The series of a model's health beyond its breaker: rate-limit headroom, models passed over
/// by selection, the retry budget, and the fleet link (ops/RUNBOOK.md, "Metrics").
extension RouterMetrics.Family {
    static let headroom = RouterMetrics.Family(
        name: "switchyard_headroom_remaining_ratio",
        help: "Remaining share of each rate limit an upstream reports (1 once its reset has passed), by model and kind.",
        labels: ["model", "kind"]
    )
    static let skips = RouterMetrics.Family(
        name: "switchyard_selection_skips_total",
        help: "Models passed over by selection, by model and reason (breaker_open, rate_limited, headroom, disabled, ...).",
        labels: ["model", "reason"]
    )
    static let retryBudget = RouterMetrics.Family(
        name: "switchyard_retry_budget_exhausted_total", help: "Retries not made because the route's retry_budget was spent, by route.",
        labels: ["route"]
    )
    static let fleetEvents = RouterMetrics.Family(
        name: "switchyard_fleet_events_total",
        help: "Fleet health events: published by this replica, applied or ignored from peers, dropped (queue full, too old).",
        labels: ["direction"]
    )
    static let fleetConnected = RouterMetrics.Family(
        name: "switchyard_fleet_connected", help: "1 while this replica's fleet link to PostgreSQL is up.", labels: []
    )
}

extension RouterMetrics {
    public enum FleetDirection: String, Sendable {
        case published
        case applied
        case ignored
        case dropped
    }

    /// Skips and a refused retry, from a finished request's record (nothing for the usual
    /// request, whose only decision entry is the model it was sent to).
    func countHealthDecisions(_ record: RequestAuditRecord) {
        for entry in record.decision where entry.action == .skipped {
            counter(.skips, entry.model, entry.reason ?? "skipped").increment()
        }
        if record.error == "retry_budget" {
            counter(.retryBudget, record.route ?? "none").increment()
        }
    }

    /// A model's headroom per kind, read when /metrics is scraped.
    public func setHeadroom(model: String, _ headroom: Headroom, now: MonotonicInstant) {
        for kind in HeadroomKind.allCases {
            guard let bucket = headroom[kind], let share = bucket.share else { continue }
            let passed = bucket.resetAt.map { now >= $0 } ?? false
            gauge(.headroom, model, kind.name).set(passed ? 1.0 : share)
        }
    }

    public func fleetEvents(_ direction: FleetDirection, count: Int) {
        counter(.fleetEvents, direction.rawValue).increment(by: Int64(count))
    }

    public func setFleetConnected(_ connected: Bool) {
        gauge(.fleetConnected, "").set(Double(connected ? 1 : 0))
    }
}
