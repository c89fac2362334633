/// The validated runtime configuration: every reference resolved, every value typed.
/// Built only by ``ConfigLoader``; once it exists nothing on the request path re-checks it.
public struct SwitchyardConfig: Sendable {
    public var server: ServerSettings
    /// Empty: callers are not authenticated by Switchyard.
    public var clients: [ClientCredential]
    /// In file order.
    public var providers: [ProviderSpec]
    /// In file order.
    public var models: [ModelSpec]
    /// In file order.
    public var routes: [RouteSpec]
    public var logging: LoggingSettings
    /// nil: the Message Batches API is off.
    public var batches: BatchSettings?
    /// nil: no traces are exported.
    public var telemetry: TelemetrySettings? = nil
    /// nil: each replica keeps its models' health to itself (no `fleet:` section).
    public var fleet: FleetSettings? = nil
    /// Where the configuration came from (a path, or `embedded demo`), for messages.
    public var source: String

    public func provider(named name: String) -> ProviderSpec? { providers.first { $0.name == name } }
    public func model(named name: String) -> ModelSpec? { models.first { $0.name == name } }
    public func route(named name: String) -> RouteSpec? { routes.first { $0.name == name } }
}

public struct ServerSettings: Sendable, Equatable {
    public var listen: HostPort
    public var maxBody: Int
    public var requestTimeout: Duration
    public var drainTimeout: Duration
    /// Name of the variable, for messages.
    public var adminTokenEnv: String?
    /// The token itself, read from the environment at load time.
    public var adminToken: String?
    /// Time a caller has to send the request head and body.
    public var clientTimeout: Duration
    /// Keep-alive connections with no request in flight are closed after this.
    public var idleTimeout: Duration
    public var maxHeaderSize: Int

    public static let defaults = ServerSettings(
        listen: HostPort(host: "127.0.0.1", port: 8080), maxBody: 32 << 20, requestTimeout: .seconds(600),
        drainTimeout: .seconds(30), adminTokenEnv: nil, adminToken: nil, clientTimeout: .seconds(30),
        idleTimeout: .seconds(75), maxHeaderSize: 64 << 10
    )
}

/// A caller allowed in when `clients:` is configured.
public struct ClientCredential: Sendable {
    public var name: String
    public var keyEnv: String
    public var key: String
    /// nil: every route.
    public var allowedRoutes: Set<String>?

    public func mayUse(route: String) -> Bool { allowedRoutes?.contains(route) ?? true }
}

public struct ProviderSpec: Sendable {
    public var name: String
    public var platform: Platform
    /// `base_url`, or the platform's default for the provider's region.
    public var baseURL: UpstreamURL
    public var timeouts: UpstreamTimeouts
    /// Connections to the upstream in all, across event loops (Envoy's default).
    public var maxConnections: Int
    /// How long a request waits for a free connection before the attempt ends as `capacity`.
    public var queueTimeout: Duration
    public var trust: UpstreamTrust
    /// The proxy the upstream is reached through; nil: directly.
    public var proxy: UpstreamProxy?
    /// The environment's proxy settings, which credential endpoints follow when `proxy` is not set.
    public var proxyEnvironment: ProxyEnvironment
    /// The platform's own keys (API key, region, project, credential source, ...).
    public var settings: any PlatformSettings

    public static let defaultMaxConnections = 1024
    public static let defaultQueueTimeout = Duration.seconds(5)

    public init(
        name: String, platform: Platform, baseURL: UpstreamURL, timeouts: UpstreamTimeouts, maxConnections: Int = ProviderSpec.defaultMaxConnections,
        queueTimeout: Duration = ProviderSpec.defaultQueueTimeout, trust: UpstreamTrust = .system, proxy: UpstreamProxy? = nil,
        proxyEnvironment: ProxyEnvironment = ProxyEnvironment([:]), settings: any PlatformSettings
    ) {
        self.name = name
        self.platform = platform
        self.baseURL = baseURL
        self.timeouts = timeouts
        self.maxConnections = maxConnections
        self.queueTimeout = queueTimeout
        self.trust = trust
        self.proxy = proxy
        self.proxyEnvironment = proxyEnvironment
        self.settings = settings
    }

    /// Everything whose change makes a reload rebuild the provider's client and credentials.
    var fingerprint: String {
        let t = timeouts
        let egress = "\(queueTimeout)|\(trust)|\(String(describing: proxy))|\(proxyEnvironment.fingerprint)"
        return "\(platform)|\(baseURL)|\(t.connect)|\(t.firstByte)|\(t.idle)|\(maxConnections)|\(egress)|\(settings.fingerprint)"
    }
}

/// Scheme, host, port and path prefix of an upstream, split once at load time.
public struct UpstreamURL: Sendable, Equatable, CustomStringConvertible {
    public var isTLS: Bool
    public var host: String
    public var port: Int
    /// Without a trailing slash; empty for the root.
    public var pathPrefix: String

    public var description: String {
        let scheme = isTLS ? "https" : "http"
        let defaultPort = isTLS ? 443 : 80
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(hostPart)\(port == defaultPort ? "" : ":\(port)")\(pathPrefix)"
    }

    public static func parse(_ text: String) -> UpstreamURL? {
        let isTLS: Bool
        var rest: Substring
        if text.hasPrefix("https://") {
            isTLS = true
            rest = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            isTLS = false
            rest = text.dropFirst(7)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        rest = rest.dropFirst(authority.count)
        guard !rest.contains("?"), !rest.contains("#"), !authority.isEmpty, !authority.contains("@") else { return nil }
        var host = authority
        var port = isTLS ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let parsed = Int(after.dropFirst()), (1...65535).contains(parsed) else { return nil }
                port = parsed
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
            port = parsed
        }
        // No control character, space or DEL: the host goes into every request's `host` line.
        guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return nil }
        var prefix = String(rest)
        while prefix.hasSuffix("/") { prefix.removeLast() }
        return UpstreamURL(isTLS: isTLS, host: String(host), port: port, pathPrefix: prefix)
    }
}

public struct UpstreamTimeouts: Sendable, Equatable {
    public var connect: Duration
    /// From the request being sent to the response head.
    public var firstByte: Duration
    /// Longest silence between two body chunks once the head arrived.
    public var idle: Duration

    public static let defaults = UpstreamTimeouts(connect: .seconds(5), firstByte: .seconds(120), idle: .seconds(60))
}

public struct ModelSpec: Sendable {
    /// The configured name (`sonnet`), what routes, logs and metrics use.
    public var name: String
    public var provider: String
    /// The provider's id (`claude-sonnet-4-20250514`), what goes into the upstream body.
    public var upstreamModel: String
    public var breaker: BreakerPolicy
}

public struct BreakerPolicy: Sendable, Equatable {
    public var failureThreshold: Int
    public var openFor: Duration
    public var maxOpenFor: Duration
    public var halfOpenProbes: Int
    public var failureRate: FailureRatePolicy?

    public static let defaults = BreakerPolicy(
        failureThreshold: 3, openFor: .seconds(30), maxOpenFor: .seconds(300), halfOpenProbes: 1, failureRate: nil
    )
}

public struct FailureRatePolicy: Sendable, Equatable {
    /// Share of failed requests in the window that opens the breaker, in (0, 1].
    public var threshold: Double
    public var window: Duration
    public var minRequests: Int
}

public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var perModel: Int
    public var backoff: BackoffPolicy

    public static let defaults = RetryPolicy(
        maxAttempts: 4, perModel: 2,
        backoff: BackoffPolicy(initial: .milliseconds(500), multiplier: 2, max: .seconds(8), jitter: .full)
    )
}

public struct BackoffPolicy: Sendable, Equatable {
    public enum Jitter: String, Sendable {
        /// Uniform in [0, delay] (AWS "full jitter").
        case full
        /// Uniform in [delay/2, delay].
        case equal
        case none
    }

    public var initial: Duration
    public var multiplier: Double
    public var max: Duration
    public var jitter: Jitter
}

public enum SelectionStrategy: String, Sendable {
    case priority
}

public enum UnavailablePolicy: String, Sendable {
    /// Send the request to the model whose open period ends first.
    case probe
    /// Answer 503 at once.
    case reject
}

public struct RouteSpec: Sendable {
    public var name: String
    /// Configured model names in preference order.
    public var models: [String]
    public var aliases: [String]
    public var strategy: SelectionStrategy
    public var whenAllUnavailable: UnavailablePolicy
    public var retry: RetryPolicy
    /// nil: `stream_recovery: off` (the default), a failure after the commit point is surfaced.
    public var streamRecovery: StreamRecoveryPolicy?
    /// `headroom: { min_remaining }`: on by default at 5 %.
    public var headroom: HeadroomPolicy = .defaults
    /// nil: no `retry_budget:`, every retry `retry:` allows is made.
    public var retryBudget: RetryBudgetPolicy? = nil
}

/// `headroom:` of a route (README, "Headroom"): models whose rate limits are nearly spent are
/// passed over until their reset, before the upstream answers 429.
public struct HeadroomPolicy: Sendable, Equatable {
    /// A model whose remaining share of any rate limit is below this is skipped, in [0, 1]
    /// (0: never skipped for headroom).
    public var minRemaining: Double

    public static let defaults = HeadroomPolicy(minRemaining: 0.05)
}

/// `stream_recovery: continue` (README, "Stream recovery"): a stream that fails after its commit point
/// is finished by a resumed stream when the partial answer is plain text.
public struct StreamRecoveryPolicy: Sendable, Equatable {
    /// Resumed streams per request (`max_resumes`).
    public var maxResumes: Int

    public static let defaultMaxResumes = 1
}

public struct LoggingSettings: Sendable, Equatable {
    public enum AuditDestination: Sendable, Equatable {
        case stdout
        case file(String)
    }

    public var level: String
    public var audit: AuditDestination

    public static let defaults = LoggingSettings(level: "info", audit: .stdout)
}
