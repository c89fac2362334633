import NIOCore
import NIOHTTP1
import NIOSSL

/// The time limits of one request: how long it may wait for a free connection, how long the
/// upstream may take to start answering once it is written, and the end of the request's whole
/// budget, which caps both.
public struct HTTP1Deadlines: Sendable {
    public var queueTimeout: TimeAmount
    public var firstByte: TimeAmount
    public var budget: NIODeadline

    public init(queueTimeout: TimeAmount, firstByte: TimeAmount, budget: NIODeadline = .distantFuture) {
        self.queueTimeout = queueTimeout
        self.firstByte = firstByte
        self.budget = budget
    }
}

/// An HTTP/1.1 client for one upstream (scheme, host, port), with one pool of keep-alive
/// connections across the event loops of its group (``HTTP1ConnectionPool``).
///
/// A request runs on a connection of the event loop its caller names when there is one: the
/// loop of the inbound connection it answers, so the upstream call needs no thread hop. Nothing
/// is retried except a request whose reused connection closed right after it was written, before
/// any answer (the keep-alive race); the router above decides every other retry.
public final class HTTP1Client: Sendable {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// TLS with certificate and hostname verification, and SNI (not for an IP address).
        public var tls: Bool
        /// TCP connect, proxy tunnel and TLS handshake together.
        public var connectTimeout: Duration
        /// The longest silence allowed between two parts of a response body (while the caller
        /// reads it: a caller that stops reading stops the clock).
        public var idleTimeout: Duration
        /// Connections to this upstream in all, across every event loop: the exact bound.
        public var maxConnections: Int
        /// A connection idle in the pool longer than this is closed.
        public var idleConnectionTimeout: Duration
        /// TLS settings; nil: the system's trust roots, full verification.
        public var tlsConfiguration: TLSConfiguration?
        /// The name TLS sends as SNI and verifies the certificate against; nil: `host` (none for
        /// an IP address).
        public var serverName: String?
        /// An HTTP proxy between the router and the upstream.
        public var proxy: HTTP1Proxy?

        public init(
            host: String, port: Int, tls: Bool, connectTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60),
            maxConnections: Int = 1024, idleConnectionTimeout: Duration = .seconds(60), tlsConfiguration: TLSConfiguration? = nil,
            serverName: String? = nil, proxy: HTTP1Proxy? = nil
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.connectTimeout = connectTimeout
            self.idleTimeout = idleTimeout
            self.maxConnections = maxConnections
            self.idleConnectionTimeout = idleConnectionTimeout
            self.tlsConfiguration = tlsConfiguration
            self.serverName = serverName
            self.proxy = proxy
        }
    }

    public let configuration: Configuration
    let pool: HTTP1ConnectionPool
    private let allocator = ByteBufferAllocator()

    /// Fails only when the TLS configuration cannot be loaded (kind `tls`).
    public init(configuration: Configuration, eventLoopGroup: any EventLoopGroup) throws(HTTP1ClientError) {
        self.configuration = configuration
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
        let name = configuration.serverName ?? configuration.host
        let isIPAddress = (try? SocketAddress(ipAddress: name, port: 0)) != nil
        let upstream = HTTP1ConnectRoute.Endpoint(host: configuration.host, port: configuration.port)
        let route = HTTP1ConnectRoute(
            upstream: upstream,
            proxy: configuration.proxy.map { HTTP1ConnectRoute.Proxy(endpoint: .init(host: $0.host, port: $0.port), authorization: $0.authorization) },
            tls: configuration.tls
        )
        let settings = HTTP1ConnectionPool.Settings(
            route: route, sslContext: sslContext, serverHostname: isIPAddress ? nil : name,
            connectTimeout: TimeAmount(configuration.connectTimeout),
            timeouts: .init(idle: TimeAmount(configuration.idleTimeout), idleConnection: TimeAmount(configuration.idleConnectionTimeout)),
            maxConnections: configuration.maxConnections
        )
        pool = HTTP1ConnectionPool(settings: settings, loops: Array(eventLoopGroup.makeIterator()))
    }

    /// Sends one request on a pooled connection, one of `eventLoop`'s when it can (the caller's
    /// own, so the call never hops threads), and returns when the response head arrives.
    ///
    /// Head and body go out in one write and one flush; `content-length` is set from `body`.
    /// The caller sets every other header (`host` included), in `head` or as `presetLines`;
    /// `head.uri` is sent as it is (in absolute form through a forwarding proxy).
    /// Cancelling the calling task fails the call with `cancelled` and closes the connection.
    nonisolated(nonsending)
    public func execute(
        _ head: HTTPRequestHead, presetLines: PresetHeaderLines = .none, body: ByteBuffer, deadlines: HTTP1Deadlines,
        on eventLoop: (any EventLoop)? = nil
    ) async throws(HTTP1ClientError) -> HTTP1ClientResponse {
        // A budget already spent would cost a connection (closed on the timeout) for nothing.
        guard deadlines.budget > .now() else { throw .headTimeout }
        var head = head
        var presetLines = presetLines
        if let proxy = pool.settings.route.forwardingProxy {
            head.uri = "http://\(pool.settings.route.upstream)\(head.uri)"
            if let authorization = proxy.authorization {
                presetLines = presetLines.followed(by: (try? PresetHeaderLines([("proxy-authorization", authorization)])) ?? .none)
            }
        }
        let request = try HTTP1RequestEncoder.encode(head, presetLines: presetLines, body: body, allocator: allocator)
        let exchange = HTTP1Exchange(pool: pool, loop: pool.loopIndex(of: eventLoop), head: head, request: request, deadlines: deadlines)
        return try await exchange.response().get()
    }

    /// Closes every connection; requests waiting or under way fail with `shutdown`, and so does
    /// every later call.
    public func shutdown() async {
        await pool.shutdown()
    }

    /// What the pool holds, for tests and metrics.
    var statistics: HTTP1PoolStateMachine.Statistics { pool.statistics }
}

/// An HTTP proxy in front of an upstream.
public struct HTTP1Proxy: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// `Proxy-Authorization` (e.g. `Basic …`); nil when the proxy needs none.
    public var authorization: String?

    public init(host: String, port: Int, authorization: String? = nil) {
        self.host = host
        self.port = port
        self.authorization = authorization
    }
}
