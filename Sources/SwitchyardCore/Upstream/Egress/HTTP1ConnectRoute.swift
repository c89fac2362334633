import NIOCore

/// Where an upstream's connections go: straight to it, or through an HTTP proxy. An `https`
/// upstream behind a proxy is reached through a `CONNECT` tunnel, TLS running inside it; an
/// `http` one through the proxy's forwarding (absolute-form targets), as curl and the Anthropic
/// SDKs (httpx) do.
struct HTTP1ConnectRoute: Sendable, Equatable {
    struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        var host: String
        var port: Int

        /// `host:port`, brackets around an IPv6 address.
        var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The proxy's part of a route.
    struct Proxy: Sendable, Equatable {
        var endpoint: Endpoint
        /// The `Proxy-Authorization` value (Basic), when the proxy needs one.
        var authorization: String?
    }

    var upstream: Endpoint
    var proxy: Proxy?
    /// The upstream speaks TLS.
    var tls: Bool

    /// The socket's far end.
    var connectTarget: Endpoint { proxy?.endpoint ?? upstream }

    /// The proxy to ask for a `CONNECT` tunnel before TLS starts.
    var tunnel: Proxy? { tls ? proxy : nil }

    /// The proxy that forwards plain requests: targets go in absolute form.
    var forwardingProxy: Proxy? { tls ? nil : proxy }
}
