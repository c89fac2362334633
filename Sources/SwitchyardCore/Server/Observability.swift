import Logging

/// Where what the router does is written: the audit log (one line per request, per breaker
/// transition, per lifecycle event), the metrics derived from the same records, and the
/// operational log. Handed to every part that reports; none of them reads anything back.
public struct Observability: Sendable {
    public let audit: AuditLog
    public let metrics: RouterMetrics
    public let logger: Logger
    /// The dashboard's last 15 minutes.
    let live = LiveStats()

    init(audit: AuditLog, metrics: RouterMetrics, logger: Logger) {
        self.audit = audit
        self.metrics = metrics
        self.logger = logger
    }

    /// A request is over: its metrics, the dashboard's figures, and its audit line.
    func finish(_ record: RequestAuditRecord) async {
        metrics.requestFinished(record)
        live.record(record)
        await audit.append(record)
    }

    /// Breaker transitions: their audit lines, metrics and log lines.
    func record(_ transitions: [ObservedTransition]) async {
        for observed in transitions {
            metrics.breakerTransition(model: observed.model, to: observed.transition.to)
            await audit.append(AuditEvent.breaker(model: observed.model, transition: observed.transition, fromPeer: observed.fromPeer))
            var metadata: Logger.Metadata = ["reason": .string(observed.transition.reason)]
            if let peer = observed.fromPeer { metadata["from_peer"] = .string(peer) }
            logger.notice(
                "breaker \(observed.model): \(observed.transition.from.rawValue) -> \(observed.transition.to.rawValue)", metadata: metadata
            )
        }
    }

    /// A batch ended (all its requests have a result): its audit line.
    func batchEnded(_ batch: BatchRecord) async {
        let counts = batch.counts
        await audit.append(
            AuditEvent.lifecycle(
                "batch.ended",
                fields: [
                    ("batch_id", .string(batch.id)), ("client", .string(batch.client ?? "")), ("succeeded", .int(counts.succeeded)),
                    ("errored", .int(counts.errored)), ("canceled", .int(counts.canceled)), ("expired", .int(counts.expired)),
                ]
            )
        )
    }
}
