import ExtrasBase64

/// The proxy settings of the environment, read as curl and the Anthropic SDKs (httpx) read them:
/// `https_proxy`/`HTTPS_PROXY` for https targets, `http_proxy`/`HTTP_PROXY` for http ones,
/// `all_proxy`/`ALL_PROXY` for either, the lower-case name first; `no_proxy`/`NO_PROXY` lists
/// the hosts reached directly.
public struct ProxyEnvironment: Sendable, Equatable {
    /// (variable, value) per scheme, after the lower/upper-case and `ALL_PROXY` fallbacks.
    private let https: (name: String, value: String)?
    private let http: (name: String, value: String)?
    public let noProxy: NoProxyList

    public init(_ environment: [String: String]) {
        func first(_ names: [String]) -> (name: String, value: String)? {
            for name in names {
                if let value = environment[name]?.trimmingWhitespace(), !value.isEmpty { return (name, String(value)) }
            }
            return nil
        }
        https = first(["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])
        // Not `HTTP_PROXY` in upper case alone in CGI-like settings (httpoxy); the router is not
        // CGI, and the SDKs read it, so it is read too.
        http = first(["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"])
        noProxy = NoProxyList(first(["no_proxy", "NO_PROXY"])?.value ?? "")
    }

    public static func == (lhs: ProxyEnvironment, rhs: ProxyEnvironment) -> Bool {
        lhs.https?.name == rhs.https?.name && lhs.https?.value == rhs.https?.value && lhs.http?.name == rhs.http?.name
            && lhs.http?.value == rhs.http?.value && lhs.noProxy == rhs.noProxy
    }

    /// What a reload compares: a changed proxy setting rebuilds the provider's connections.
    var fingerprint: String {
        "\(https?.name ?? "")=\(https?.value ?? "")|\(http?.name ?? "")=\(http?.value ?? "")|\(noProxy.entries)"
    }

    /// The proxy for a connection to `host:port` (over TLS or not), with the variable that names
    /// it; nil when none is set or `NO_PROXY` names the host.
    public func proxy(tls: Bool, host: String, port: Int) -> (variable: String, url: String)? {
        guard let setting = tls ? https : http, !noProxy.matches(host: host, port: port) else { return nil }
        return (setting.name, setting.value)
    }
}

/// `NO_PROXY`: comma-separated entries; `*` for every host; a host or domain (`example.com`
/// and `.example.com` both match the domain and its subdomains), optionally with `:port`; an
/// IP address or a CIDR block (`10.0.0.0/8`).
public struct NoProxyList: Sendable, Equatable {
    enum Entry: Sendable, Equatable {
        case everything
        case domain(String, port: Int?)
        case network(IPAddressBytes, prefix: Int)
    }

    let entries: [Entry]

    public init(_ text: String) {
        var entries: [Entry] = []
        for raw in text.split(separator: ",") {
            let item = raw.trimmingWhitespace().lowercased()
            guard !item.isEmpty else { continue }
            if item == "*" {
                entries.append(.everything)
                continue
            }
            if let slash = item.firstIndex(of: "/"), let prefix = Int(item[item.index(after: slash)...]),
                let address = IPAddressBytes(String(item[..<slash])), prefix >= 0, prefix <= address.bits
            {
                entries.append(.network(address, prefix: prefix))
                continue
            }
            if let address = IPAddressBytes(item.strippingBrackets) {
                entries.append(.network(address, prefix: address.bits))
                continue
            }
            var host = Substring(item)
            var port: Int?
            if let colon = host.lastIndex(of: ":"), let number = Int(host[host.index(after: colon)...]) {
                port = number
                host = host[..<colon]
            }
            while host.hasPrefix(".") || host.hasPrefix("*") { host = host.dropFirst() }
            if !host.isEmpty { entries.append(.domain(String(host), port: port)) }
        }
        self.entries = entries
    }

    public func matches(host: String, port: Int) -> Bool {
        let host = host.lowercased().strippingBrackets
        let address = IPAddressBytes(host)
        for entry in entries {
            switch entry {
            case .everything:
                return true
            case .domain(let domain, let entryPort):
                if let entryPort, entryPort != port { continue }
                if host == domain || host.hasSuffix("." + domain) { return true }
            case .network(let network, let prefix):
                if let address, address.isIn(network, prefix: prefix) { return true }
            }
        }
        return false
    }
}

/// An IPv4 or IPv6 address as bytes, for `NO_PROXY` blocks.
struct IPAddressBytes: Sendable, Equatable {
    let bytes: [UInt8]
    var bits: Int { bytes.count * 8 }

    init?(_ text: String) {
        if text.contains(":") {
            guard let parsed = Self.parseIPv6(text) else { return nil }
            bytes = parsed
        } else {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var parsed: [UInt8] = []
            for part in parts {
                guard !part.isEmpty, part.count <= 3, let value = UInt8(part) else { return nil }
                parsed.append(value)
            }
            bytes = parsed
        }
    }

    func isIn(_ network: IPAddressBytes, prefix: Int) -> Bool {
        guard bytes.count == network.bytes.count else { return false }
        var left = prefix
        for index in bytes.indices where left > 0 {
            let take = min(8, left)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - take))
            if bytes[index] & mask != network.bytes[index] & mask { return false }
            left -= take
        }
        return true
    }

    private static func parseIPv6(_ text: String) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var values: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !group.isEmpty, group.count <= 4, let value = UInt16(group, radix: 16) else { return nil }
                values.append(value)
            }
            return values
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}

extension HTTP1Proxy {
    /// `http://[user:password@]host[:port][/]`: the proxy, with Basic `Proxy-Authorization`
    /// from the user info (percent-decoded), or why the text is not one.
    public static func parse(_ text: String) -> Result<HTTP1Proxy, ProxyURLError> {
        var rest = Substring(text.trimmingWhitespace())
        if rest.hasPrefix("https://") {
            return .failure(ProxyURLError("a proxy reached over TLS (https://) is not supported; use http://"))
        }
        if rest.hasPrefix("http://") {
            rest = rest.dropFirst(7)
        } else if rest.contains("://") {
            return .failure(ProxyURLError("only http:// proxies are supported"))
        }
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...].allSatisfy({ $0 == "/" }) else { return .failure(ProxyURLError("a proxy URL has no path")) }
            rest = rest[..<slash]
        }
        var authorization: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
            let credentials = (userInfo.removingPercentEncodingASCII ?? userInfo)
            authorization = basicAuthorization(credentials)
        }
        var host = rest
        var port = 80
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return .failure(ProxyURLError("unclosed [ in the proxy's IPv6 address")) }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if after.hasPrefix(":") {
                guard let number = Int(after.dropFirst()), (1...65535).contains(number) else { return .failure(ProxyURLError("invalid proxy port")) }
                port = number
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard let number = Int(host[host.index(after: colon)...]), (1...65535).contains(number) else {
                return .failure(ProxyURLError("invalid proxy port"))
            }
            port = number
            host = host[..<colon]
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "@" }) else {
            return .failure(ProxyURLError("the proxy URL has no valid host"))
        }
        return .success(HTTP1Proxy(host: String(host), port: port, authorization: authorization))
    }
}

extension HTTP1Proxy {
    /// `Basic base64(user:password)`.
    public static func basicAuthorization(_ credentials: String) -> String {
        "Basic " + Base64.encodeToString(bytes: Array(credentials.utf8))
    }
}

public struct ProxyURLError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension String {
    /// An IPv6 literal without its `[` `]`.
    fileprivate var strippingBrackets: String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }

    /// `%XX` escapes undone (ASCII only); nil when an escape is malformed.
    fileprivate var removingPercentEncodingASCII: String? {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(), let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
