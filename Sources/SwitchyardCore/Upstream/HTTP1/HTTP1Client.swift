import NIOCore
import NIOHTTP1
import NIOSSL

/// An HTTP/1.1 client for one upstream (scheme, host, port), with a keep-alive pool on each
/// event loop of its group.
///
/// A request runs on the pool of the event loop its caller names: the loop of the inbound
/// connection it answers, so the upstream call needs no thread hop when the caller already runs
/// there. Nothing is retried except a request whose reused connection closed before any answer
/// (the keep-alive race); the router above decides every other retry.
public final class HTTP1Client: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// TLS with certificate and hostname verification, and SNI (not for an IP address).
        public var tls: Bool
        /// TCP connect and TLS handshake together.
        public var connectTimeout: Duration
        /// The longest silence allowed between two parts of a response body (while the caller
        /// reads it: a caller that stops reading stops the clock). The wait for the head is
        /// bounded by each request's `headDeadline` instead.
        public var idleTimeout: Duration
        /// Connections to this upstream in total, split evenly over the event loops' pools (each
        /// gets at least one): a pool never asks another loop for a connection, so the hot path
        /// takes no lock.
        public var maxConnections: Int
        /// A connection idle in its pool longer than this is closed.
        public var idleConnectionTimeout: Duration
        /// TLS settings; nil: the system's trust roots, full verification. Tests set a trust root.
        public var tlsConfiguration: TLSConfiguration?

        public init(
            host: String, port: Int, tls: Bool, connectTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60),
            maxConnections: Int = 128, idleConnectionTimeout: Duration = .seconds(60), tlsConfiguration: TLSConfiguration? = nil
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.connectTimeout = connectTimeout
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
            self.idleConnectionTimeout = idleConnectionTimeout
            self.tlsConfiguration = tlsConfiguration
        }
    }

    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let pools: [NIOLoopBoundBox<HTTP1ConnectionPool>]
    private let loopIDs: [ObjectIdentifier]
    private let allocator = ByteBufferAllocator()

    /// Fails only when the TLS configuration cannot be loaded (kind `tls`).
    public init(configuration: Configuration, eventLoopGroup: any EventLoopGroup) throws(HTTP1ClientError) {
        self.configuration = configuration
        group = eventLoopGroup
        var sslContext: NIOSSLContext?
        if configuration.tls {
            var tlsConfiguration = configuration.tlsConfiguration ?? TLSConfiguration.makeClientConfiguration()
            if tlsConfiguration.applicationProtocols.isEmpty {
                tlsConfiguration.applicationProtocols = ["http/1.1"]
            }
            do {
                sslContext = try NIOSSLContext(configuration: tlsConfiguration)
            } catch {
                throw HTTP1ClientError(.tls, "cannot load the TLS configuration: \(error)")
            }
        }
        let isIPAddress = (try? SocketAddress(ipAddress: configuration.host, port: 0)) != nil
        let loops = Array(eventLoopGroup.makeIterator())
        let perLoop = max(1, (configuration.maxConnections + loops.count - 1) / max(1, loops.count))
        let settings = HTTP1ConnectionPool.Settings(
            host: configuration.host, port: configuration.port, sslContext: sslContext, serverHostname: isIPAddress ? nil : configuration.host,
            connectTimeout: TimeAmount(configuration.connectTimeout),
            timeouts: .init(idle: TimeAmount(configuration.idleTimeout), idleConnection: TimeAmount(configuration.idleConnectionTimeout)),
            maxConnections: perLoop
        )
        pools = loops.map { loop in
            NIOLoopBoundBox.makeBoxSendingValue(HTTP1ConnectionPool(eventLoop: loop, settings: settings), eventLoop: loop)
        }
        loopIDs = loops.map { ObjectIdentifier($0) }
    }

    /// Sends one request on a pooled connection of `eventLoop` (the caller's own, so the call
    /// never hops threads), or of any loop when nil, and returns when the response head arrives.
    ///
    /// Head and body go out in one write and one flush; `content-length` is set from `body`.
    /// The caller sets every other header (`host` included), in `head` or as `presetLines`;
    /// `head.uri` is sent as it is.
    /// The head must arrive before `headDeadline`, waiting for a free connection included.
    /// Cancelling the calling task fails the call with `cancelled` and closes the connection.
    nonisolated(nonsending)
    public func execute(
        _ head: HTTPRequestHead, presetLines: PresetHeaderLines = .none, body: ByteBuffer, headDeadline: NIODeadline,
        on eventLoop: (any EventLoop)? = nil
    ) async throws(HTTP1ClientError) -> HTTP1ClientResponse {
        // A deadline already past would cost a connection (closed on the timeout) for nothing.
        guard headDeadline > .now() else { throw .headTimeout }
        let request = try HTTP1RequestEncoder.encode(head, presetLines: presetLines, body: body, allocator: allocator)
        let exchange = HTTP1Exchange(pool: pool(for: eventLoop), head: head, request: request, headDeadline: headDeadline)
        return try await exchange.response().get()
    }

    /// Closes every connection; requests waiting or under way fail with `shutdown`, and so does
    /// every later call.
    public func shutdown() async {
        for pool in pools {
            try? await pool.eventLoop.flatSubmit { pool.value.shutdown() }.get()
        }
    }

    /// What each event loop's pool holds, for tests and metrics.
    func statistics() async -> [(eventLoop: any EventLoop, statistics: HTTP1ConnectionPool.Statistics)] {
        var result: [(eventLoop: any EventLoop, statistics: HTTP1ConnectionPool.Statistics)] = []
        for pool in pools {
            if let statistics = try? await pool.eventLoop.submit({ pool.value.statistics }).get() {
                result.append((pool.eventLoop, statistics))
            }
        }
        return result
    }

    private func pool(for eventLoop: (any EventLoop)?) -> NIOLoopBoundBox<HTTP1ConnectionPool> {
        let target = eventLoop ?? group.any()
        let id = ObjectIdentifier(target)
        for index in loopIDs.indices where loopIDs[index] == id {
            return pools[index]
        }
        // A loop of another group: one of ours (the current thread's when it is one of them).
        let fallback = ObjectIdentifier(group.any())
        return pools[loopIDs.firstIndex(of: fallback) ?? 0]
    }
}
