// TEMPORARY: stand-ins for the signer and event-stream codec being written in parallel.
import NIOCore
public struct SigV4Timestamp: Sendable { public init(unixSeconds: Int64) {} }
public struct SigV4Signer: Sendable {
    public struct Signature: Sendable { public var headersToAdd: [(name: String, value: String)] }
    public init(credentials: AWSCredentials, service: String, region: String) {}
    public func sign(method: String, path: String, query: String?, headers: [(name: String, value: String)], payloadSHA256: String, at: SigV4Timestamp, normalizePath: Bool = true, signSessionToken: Bool = true) -> Signature { Signature(headersToAdd: []) }
    public static func sha256Hex(_ buffer: ByteBuffer) -> String { "" }
}
public struct EventStreamMessage: Sendable { public var payload: ByteBuffer; public func stringHeader(_ name: String) -> String? { nil } }
public struct EventStreamError: Error, Sendable {}
public struct EventStreamDecoder: Sendable {
    public init() {}
    public mutating func append(_ chunk: ByteBuffer) {}
    public mutating func next() throws(EventStreamError) -> EventStreamMessage? { nil }
    public func finish() throws(EventStreamError) {}
}
