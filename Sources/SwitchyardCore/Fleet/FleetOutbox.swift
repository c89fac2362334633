import DequeModule
import Synchronization

/// Events on their way to the other replicas: requests post them and go on, the fleet link
/// drains them. Bounded: when the store is away and the queue is full, the oldest event goes
/// (a newer one about the same model says more), so a request never waits for the store and the
/// queue never grows without end. Events older than ``maxAge`` when the link takes them are
/// dropped too: after a long absence of the store, what a replica saw then is no news.
public final class FleetOutbox: Sendable {
    /// This replica's name and its process's random id, on every event it sends.
    public let replica: String
    public let instance: String
    public let capacity: Int
    let doorbell = Doorbell()
    /// Whether the fleet link is up now, for `/admin/state`.
    let linkUp = Atomic<Bool>(false)
    private let queue = Mutex<(events: Deque<(event: FleetEvent, postedAtMs: Int64)>, dropped: Int)>(([], 0))
    public static let maxAge = Duration.seconds(10)

    public init(replica: String, instance: String = FleetOutbox.randomInstance(), capacity: Int = 1024) {
        self.replica = replica
        self.instance = instance
        self.capacity = capacity
    }

    public static func randomInstance() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// Queues one change about `model`; returns at once.
    func post(_ changes: [FleetEvent.Change], model: RoutingTable.Model, wallNowMs: Int64) {
        guard !changes.isEmpty else { return }
        queue.withLock { state in
            for change in changes {
                if state.events.count >= capacity {
                    state.events.removeFirst()
                    state.dropped += 1
                }
                let event = FleetEvent(replica: replica, instance: instance, model: model.name, upstreamModel: model.spec.upstreamModel, change: change)
                state.events.append((event, wallNowMs))
            }
        }
        doorbell.ring()
    }

    /// Everything queued and still news, oldest first, and how many were dropped (full queue,
    /// too old) since the last call.
    func take(wallNowMs: Int64) -> (events: [(event: FleetEvent, postedAtMs: Int64)], dropped: Int) {
        queue.withLock { state in
            defer {
                state.events.removeAll(keepingCapacity: true)
                state.dropped = 0
            }
            let fresh: [(event: FleetEvent, postedAtMs: Int64)] = state.events.filter { wallNowMs - $0.postedAtMs <= Self.maxAge.milliseconds }
            return (fresh, state.dropped + state.events.count - fresh.count)
        }
    }

    /// Events given back after a failed send (the store went away mid-way), ahead of newer ones,
    /// within the same bound.
    func putBack(_ events: [(event: FleetEvent, postedAtMs: Int64)]) {
        queue.withLock { state in
            for entry in events.reversed() where state.events.count < capacity {
                state.events.prepend(entry)
            }
        }
    }

    var pending: Int { queue.withLock { $0.events.count } }

    public var isConnected: Bool { linkUp.load(ordering: .relaxed) }
}
