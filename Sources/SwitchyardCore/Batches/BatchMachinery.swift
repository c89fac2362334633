import Synchronization

/// What the Message Batches parts share: the store once ``BatchService`` opened it, and the
/// doorbell that wakes the runner (a new batch, a finished request, a breaker transition).
public final class BatchMachinery: Sendable {
    let doorbell = Doorbell()
    /// nil while batches are off or the store is opening.
    let store = Mutex<(any BatchStore)?>(nil)

    public init() {}

    public var currentStore: (any BatchStore)? { store.withLock { $0 } }
}
