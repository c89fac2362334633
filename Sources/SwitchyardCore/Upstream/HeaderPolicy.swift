import HTTPTypes
import NIOHTTP1

/// Which headers cross the proxy, in each direction (PRODUCT.md section 3).
public enum HeaderPolicy {
    /// Caller headers that go upstream as they came.
    static let forwarded: [HTTPField.Name] = [
        HTTPField.Name("anthropic-version")!, HTTPField.Name("anthropic-beta")!, .contentType, .accept,
    ]
    static let apiKey = HTTPField.Name("x-api-key")!
    static let requestIDName = HTTPField.Name("x-request-id")!
    static let shouldRetryName = HTTPField.Name("x-should-retry")!

    /// The caller's credential, as it came: `x-api-key`, or the token of `Authorization: Bearer`.
    public static func callerKey(in headers: HTTPFields) -> String? {
        if let key = headers[apiKey], !key.isEmpty { return key }
        if let authorization = headers[.authorization] {
            let prefix = "bearer "
            if authorization.count > prefix.count, authorization.prefix(prefix.count).lowercased() == prefix {
                return String(authorization.dropFirst(prefix.count)).trimmingCharacters(in: " ")
            }
        }
        return nil
    }

    /// The headers of one upstream attempt: the forwarded set plus the provider's key, or the
    /// caller's own credential in pass-through mode. Nothing else of the caller's goes out.
    public static func upstreamHeaders(from inbound: HTTPFields, providerKey: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(6)
        for name in forwarded {
            for value in inbound[values: name] {
                headers.add(name: name.canonicalName, value: value)
            }
        }
        if let key = providerKey {
            headers.add(name: "x-api-key", value: key)
        } else {
            if let key = inbound[apiKey] { headers.add(name: "x-api-key", value: key) }
            if let authorization = inbound[.authorization] { headers.add(name: "authorization", value: authorization) }
        }
        return headers
    }

    /// Upstream response headers that are the connection's business, or that Switchyard sets itself.
    private static let notRelayed: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length",
        "server", "x-request-id", "x-switchyard-route", "x-switchyard-model", "x-switchyard-attempts",
    ]

    /// The upstream's response headers as the caller should see them.
    public static func relayedHeaders(from upstream: HTTPHeaders) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(upstream.count + 5)
        for (name, value) in upstream {
            let lowered = name.lowercased()
            guard !notRelayed.contains(lowered), let fieldName = HTTPField.Name(lowered) else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        return fields
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var slice = Substring(self)
        while slice.first == set { slice.removeFirst() }
        while slice.last == set { slice.removeLast() }
        return String(slice)
    }
}
