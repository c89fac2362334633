/// `fleet: { store: postgres, replica: NAME }` (README, "Shared health across replicas"): the
/// replicas of one deployment tell each other about breaker transitions, 429s and low headroom
/// through the PostgreSQL database the batch store uses (LISTEN/NOTIFY).
public struct FleetSettings: Sendable, Equatable {
    public enum Store: String, Sendable {
        case postgres
    }

    public var store: Store
    /// This replica's name in other replicas' audit lines (`from_peer`); default: host and
    /// process id.
    public var replica: String
    /// The batch store's `postgres://` URL and password: the fleet uses the same database.
    public var url: String
    public var password: String?

    /// A fleet name may be quoted in audit lines and must fit a fleet message.
    public static let maxReplicaNameLength = 64
}
