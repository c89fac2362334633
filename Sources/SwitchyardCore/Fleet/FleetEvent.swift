import Foundation

/// One change to a model's health that a replica tells the others (README, "Shared health across
/// replicas"): its breaker opened or closed, a 429 rate-limited it, or a rate limit's headroom
/// fell low. Deadlines travel as Unix milliseconds: each replica puts them on its own monotonic
/// clock when it applies them, so replicas need clocks in step (NTP) to within a fraction of
/// the open periods involved.
public struct FleetEvent: Sendable, Equatable {
    public enum Change: Sendable, Equatable {
        case breakerOpened(untilMs: Int64, reason: String)
        case breakerClosed(reason: String)
        case rateLimited(untilMs: Int64)
        /// A rate limit below the publishing replica's headroom floor, reset time included.
        case headroom(kind: HeadroomKind, report: HeadroomReport)
    }

    /// The sending replica's name (`fleet.replica`), for `from_peer`.
    public var replica: String
    /// A random id of the sending process: a replica drops its own notifications by it.
    public var instance: String
    /// The configured model name, and its upstream model id: an event applies only to a model of
    /// the same name and upstream model.
    public var model: String
    public var upstreamModel: String
    public var change: Change

    public init(replica: String, instance: String, model: String, upstreamModel: String, change: Change) {
        self.replica = replica
        self.instance = instance
        self.model = model
        self.upstreamModel = upstreamModel
        self.change = change
    }

    /// PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
    public static let maxPayloadBytes = 7_900
    /// A breaker reason is cut to this many characters in a message.
    static let maxReasonCharacters = 300

    /// The NOTIFY payload: a JSON object. nil when even without its reason it would not fit.
    public func encoded() -> String? {
        for keepReason in [true, false] {
            var json = JSONWriter(capacity: 256)
            json.beginObject()
            json.field("v", 1)
            json.field("replica", replica)
            json.field("instance", instance)
            json.field("model", model)
            json.field("upstream", upstreamModel)
            switch change {
            case .breakerOpened(let until, let reason):
                json.field("change", "open")
                json.field("until", until)
                if keepReason { json.field("reason", String(reason.prefix(Self.maxReasonCharacters))) }
            case .breakerClosed(let reason):
                json.field("change", "closed")
                if keepReason { json.field("reason", String(reason.prefix(Self.maxReasonCharacters))) }
            case .rateLimited(let until):
                json.field("change", "rate_limited")
                json.field("until", until)
            case .headroom(let kind, let report):
                json.field("change", "headroom")
                json.field("kind", kind.name)
                json.field("limit", report.limit)
                json.field("remaining", report.remaining)
                json.field("reset", report.resetWallMs)
            }
            json.endObject()
            if json.bytes.count <= Self.maxPayloadBytes { return String(decoding: json.bytes, as: UTF8.self) }
        }
        return nil
    }

    /// A payload read back; nil for anything that is not a version-1 event (a newer replica's
    /// message, or something else on the channel).
    public static func decode(_ payload: String) -> FleetEvent? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any], object["v"] as? Int == 1,
            let replica = object["replica"] as? String, let instance = object["instance"] as? String, let model = object["model"] as? String,
            let upstream = object["upstream"] as? String, let change = object["change"] as? String
        else { return nil }
        func int(_ key: String) -> Int64? { (object[key] as? NSNumber).map { $0.int64Value } }
        let reason = (object["reason"] as? String) ?? "no reason given"
        let decoded: Change
        switch change {
        case "open":
            guard let until = int("until") else { return nil }
            decoded = .breakerOpened(untilMs: until, reason: reason)
        case "closed":
            decoded = .breakerClosed(reason: reason)
        case "rate_limited":
            guard let until = int("until") else { return nil }
            decoded = .rateLimited(untilMs: until)
        case "headroom":
            guard let kind = (object["kind"] as? String).flatMap(HeadroomKind.init(name:)), let limit = int("limit"), let remaining = int("remaining"),
                let reset = int("reset")
            else { return nil }
            decoded = .headroom(kind: kind, report: HeadroomReport(limit: limit, remaining: remaining, resetWallMs: reset))
        default:
            return nil
        }
        return FleetEvent(replica: replica, instance: instance, model: model, upstreamModel: upstream, change: decoded)
    }
}
