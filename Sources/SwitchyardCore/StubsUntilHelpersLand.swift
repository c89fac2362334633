// TEMPORARY: stand-in for the batch stores being written in parallel; deleted when they land.
import Logging
import NIOCore
public enum BatchStores {
    public static func open(url: String, password: String?, logger: Logger, eventLoopGroup: any EventLoopGroup) async throws(BatchStoreError) -> any BatchStore {
        throw BatchStoreError(.failed, "not yet")
    }
}
