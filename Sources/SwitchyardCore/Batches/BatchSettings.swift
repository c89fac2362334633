/// The `batches:` section (README, "Non-urgent work: Message Batches"). Absent: the Message Batches endpoints answer
/// 404 and no store is opened.
public struct BatchSettings: Sendable, Equatable {
    public enum Mode: String, Sendable {
        /// Each request runs through its route, patiently and second.
        case direct
        /// Requests go to the route's Anthropic providers' own Message Batches API.
        case upstream
    }

    /// `sqlite:PATH` or `postgres://USER@HOST:PORT/DB` (no password in it).
    public var store: String
    public var storePasswordEnv: String?
    /// Read from the environment at load; never printed.
    public var storePassword: String?
    public var expiresAfter: Duration
    /// Batch requests in flight at once, per replica.
    public var concurrency: Int
    /// A free half-open probe slot is left to interactive traffic this long.
    public var probeGrace: Duration
    /// Longest wait between two tries of one batch request.
    public var maxBackoff: Duration
    public var mode: Mode

    public static let defaultStore = "sqlite:./switchyard-batches.db"

    public static let defaults = BatchSettings(
        store: defaultStore, storePasswordEnv: nil, storePassword: nil, expiresAfter: .seconds(86_400), concurrency: 8,
        probeGrace: .seconds(2), maxBackoff: .seconds(300), mode: .direct
    )

    /// How long a replica holds a request before another may take it over; renewed while it runs.
    public static let leaseDuration = Duration.seconds(60)

    /// The store's kind and location as `check` prints it.
    public var storeDescription: String {
        store.hasPrefix("sqlite:") ? "SQLite file \(store.dropFirst("sqlite:".count))" : "PostgreSQL \(store)"
            + (storePasswordEnv.map { ", password from $\($0)" } ?? "")
    }
}
