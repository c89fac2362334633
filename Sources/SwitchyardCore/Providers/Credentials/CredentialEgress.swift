import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization

/// How a provider's credential endpoints (STS, Google's token endpoint, the metadata servers)
/// are reached: by the same rules as its upstream. The provider's own `proxy` key wins; else the
/// environment's proxy for each endpoint's scheme, unless `NO_PROXY` names its host.
public struct CredentialEgress: Sendable {
    private let pick: @Sendable (String) -> HTTPClient

    /// Every endpoint through `client` as it is configured (tests).
    public static func direct(_ client: HTTPClient) -> CredentialEgress {
        CredentialEgress { _ in client }
    }

    init(clients: CredentialClients, providerProxy: HTTP1Proxy?, environment: ProxyEnvironment) {
        pick = { url in
            if let providerProxy { return clients.client(through: providerProxy) }
            guard let components = URLComponents(string: url), let host = components.host else { return clients.client(through: nil) }
            let tls = components.scheme?.lowercased() == "https"
            let port = components.port ?? (tls ? 443 : 80)
            guard let (_, proxyURL) = environment.proxy(tls: tls, host: host, port: port), case .success(let proxy) = HTTP1Proxy.parse(proxyURL)
            else { return clients.client(through: nil) }
            return clients.client(through: proxy)
        }
    }

    private init(pick: @escaping @Sendable (String) -> HTTPClient) {
        self.pick = pick
    }

    /// The client for a request to `url`.
    func client(for url: String) -> HTTPClient { pick(url) }
}

/// The router's clients for credential endpoints (AsyncHTTPClient: no redirects, short
/// timeouts, trust roots from `SSL_CERT_FILE`/`SSL_CERT_DIR` as for upstreams): one direct, and
/// one per proxy in use, made the first time it is needed.
final class CredentialClients: Sendable {
    private let group: any EventLoopGroup
    private let configuration: HTTPClient.Configuration
    private let direct: HTTPClient
    private let proxied = Mutex<[HTTP1Proxy: HTTPClient]>([:])

    init(eventLoopGroup: any EventLoopGroup, environment: [String: String]) {
        group = eventLoopGroup
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(3), read: .seconds(10)), decompression: .disabled
        )
        configuration.tracing.tracer = nil
        if let tls = try? UpstreamTrust(environment: environment).tlsConfiguration() { configuration.tlsConfiguration = tls }
        self.configuration = configuration
        direct = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
    }

    func client(through proxy: HTTP1Proxy?) -> HTTPClient {
        guard let proxy else { return direct }
        return proxied.withLock { clients in
            if let existing = clients[proxy] { return existing }
            var configuration = configuration
            let credentials = proxy.authorization.map { String($0.dropFirst("Basic ".count)) }
            configuration.proxy = .server(host: proxy.host, port: proxy.port, authorization: credentials.map { .basic(credentials: $0) })
            let client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
            clients[proxy] = client
            return client
        }
    }

    func shutdown() async {
        let clients = proxied.withLock { clients in
            defer { clients.removeAll() }
            return Array(clients.values)
        }
        for client in clients + [direct] { try? await client.shutdown() }
    }
}
