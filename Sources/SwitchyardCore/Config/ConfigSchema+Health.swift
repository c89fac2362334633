import Foundation
import Yams

/// The keys that say how a model's health is judged beyond its own answers: a route's
/// `headroom` and `retry_budget`, and the top-level `fleet` section.
extension ConfigSchema {
    /// `headroom: { min_remaining: 5% }`.
    func readHeadroom(_ node: Node, path: String) -> HeadroomPolicy? {
        guard let fields = reader.fields(node, path: path, known: ["min_remaining"]) else { return nil }
        var policy = HeadroomPolicy.defaults
        if let value = fields["min_remaining"].flatMap({ reader.parsed($0, path: fields.path("min_remaining"), Self.share) }) {
            policy.minRemaining = value
        }
        return policy
    }

    /// `retry_budget: { percent: 20, min_per_second: 5 }`; either key may be left out.
    func readRetryBudget(_ node: Node, path: String) -> RetryBudgetPolicy? {
        guard let fields = reader.fields(node, path: path, known: ["percent", "min_per_second"]) else { return nil }
        var policy = RetryBudgetPolicy(percent: RetryBudgetPolicy.defaultPercent, minPerSecond: RetryBudgetPolicy.defaultMinPerSecond)
        if let value = fields["percent"].flatMap({ reader.parsed($0, path: fields.path("percent"), Self.percent) }) {
            policy.percent = value
        }
        if let value = fields["min_per_second"].flatMap({ reader.double($0, path: fields.path("min_per_second"), minimum: 0) }) {
            if value > 100_000 {
                reader.report("must be at most 100000, found \(value)", at: fields["min_per_second"], path: fields.path("min_per_second"))
            } else {
                policy.minPerSecond = value
            }
        }
        return policy
    }

    /// `fleet: { store: postgres, replica: NAME }`: needs `batches.store` on PostgreSQL, whose
    /// URL and password it shares.
    func readFleet(_ node: Node, batches: BatchSettings?) -> FleetSettings? {
        guard let fields = reader.fields(node, path: "fleet", known: ["store", "replica"]) else { return nil }
        let store = fields.required("store").flatMap { reader.oneOf($0, path: fields.path("store"), FleetSettings.Store.self, allowed: [.postgres]) }
        var replica = Self.defaultReplicaName()
        if let replicaNode = fields["replica"], let name = reader.string(replicaNode, path: fields.path("replica")) {
            let allowed = name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
            if name.isEmpty || name.utf8.count > FleetSettings.maxReplicaNameLength || !allowed {
                reader.report(
                    "a replica name is 1 to \(FleetSettings.maxReplicaNameLength) printable ASCII characters without spaces or quotes",
                    at: replicaNode, path: fields.path("replica")
                )
            } else {
                replica = name
            }
        }
        guard let store else { return nil }
        guard let batches, batches.store.hasPrefix("postgres://") || batches.store.hasPrefix("postgresql://") else {
            reader.report(
                "fleet.store: postgres shares the batch store's database: it needs batches.store to be a postgres:// URL"
                    + (batches == nil ? " (there is no batches: section)" : " (batches.store is \(batches!.storeDescription))"),
                at: fields["store"], path: fields.path("store")
            )
            return nil
        }
        return FleetSettings(store: store, replica: replica, url: batches.store, password: batches.storePassword)
    }

    /// Host name and process id: unique among replicas of one host.
    static func defaultReplicaName() -> String {
        let host = ProcessInfo.processInfo.hostName.prefix(40)
        let name = "\(host)-\(ProcessInfo.processInfo.processIdentifier)"
        return String(name.map { $0.isASCII && !$0.isWhitespace && $0 != "\"" && $0 != "\\" ? $0 : "_" })
    }

    /// A share that may be zero: `5%`, `0.05`, `0` (never).
    static func share(_ text: String) -> Result<Double, ConfigValues.Reason> {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasSuffix("%"), let percent = Double(trimmed.dropLast()), percent >= 0, percent <= 100 {
            return .success(percent / 100)
        }
        if let value = Double(trimmed), value >= 0, value <= 1 { return .success(value) }
        return .failure(ConfigValues.Reason("invalid share '\(text)' (expected a percentage such as 5% or a fraction in [0, 1])"))
    }

    /// Envoy's `budget_percent`: a number of percent (`20`) or `20%`.
    static func percent(_ text: String) -> Result<Double, ConfigValues.Reason> {
        var trimmed = Substring(text.trimmingWhitespace())
        if trimmed.hasSuffix("%") { trimmed = trimmed.dropLast() }
        if let value = Double(trimmed), value >= 0, value <= 100 { return .success(value / 100) }
        return .failure(ConfigValues.Reason("invalid percent '\(text)' (expected a number from 0 to 100, e.g. 20)"))
    }
}
