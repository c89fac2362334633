import NIOHTTP1

/// Which headers cross the proxy, in each direction (README, "HTTP API"). Headers stay in
/// NIO's HTTP/1 form from the caller's connection to the upstream's and back: the proxy path
/// never converts them to another representation.
public enum HeaderPolicy {
    static let apiKey = "x-api-key"
    static let requestIDName = "x-request-id"
    static let shouldRetryName = "x-should-retry"
    static let idempotencyKeyName = "idempotency-key"

    /// The caller's `idempotency-key` when it is one that can go upstream as it is (printable
    /// ASCII, at most 255 bytes); else `fallback`.
    static func idempotencyKey(in inbound: HTTPHeaders, fallback: String) -> String {
        guard let given = inbound.first(name: idempotencyKeyName), !given.isEmpty, given.utf8.count <= 255,
            given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return fallback }
        return given
    }

    /// Where an upstream request's credential comes from.
    public enum Credential: Sendable {
        /// The provider's key, added as `x-api-key`.
        case providerKey(String)
        /// The provider's key goes as a preset line (``PresetHeaderLines``): nothing to add here.
        case preset
        /// The provider has no key of its own: the caller's `x-api-key` or `Authorization` goes through.
        case callers
    }

    /// The headers of one upstream attempt: the caller's `anthropic-version`, `anthropic-beta`,
    /// `content-type` and `accept` as they came, in the caller's order, plus the credential.
    /// Nothing else of the caller's goes out.
    public static func upstreamHeaders(from inbound: HTTPHeaders, credential: Credential) -> HTTPHeaders {
        // Built as a list and wrapped once: `HTTPHeaders.add` checks each name is ASCII, and these
        // names are constants or the caller's, which the decoder has checked.
        var headers: [(String, String)] = []
        headers.reserveCapacity(6)
        // The caller's credential goes through when the provider has none: its first key, its
        // first authorization.
        var callersKey = if case .callers = credential { true } else { false }
        var callersAuthorization = callersKey
        for (name, value) in inbound {
            switch name.utf8.count {
            case 17 where name.equalsLowercasedASCII("anthropic-version"): headers.append(("anthropic-version", value))
            case 14 where name.equalsLowercasedASCII("anthropic-beta"): headers.append(("anthropic-beta", value))
            case 12 where name.equalsLowercasedASCII("content-type"): headers.append(("content-type", value))
            case 6 where name.equalsLowercasedASCII("accept"): headers.append(("accept", value))
            case 9 where callersKey && name.equalsLowercasedASCII(apiKey):
                headers.append((apiKey, value))
                callersKey = false
            case 13 where callersAuthorization && name.equalsLowercasedASCII("authorization"):
                headers.append(("authorization", value))
                callersAuthorization = false
            default: break
            }
        }
        if case .providerKey(let key) = credential {
            headers.append((apiKey, key))
        }
        return HTTPHeaders(headers)
    }

    /// Upstream response headers that are the connection's business, or that Switchyard sets itself
    /// (`request-id` too: the exchange writes the upstream's own id back under it, or its own).
    /// Matched by length first: this runs for every header of every answer.
    static func isNotRelayed(_ lowered: String) -> Bool {
        switch lowered.utf8.count {
        case 2: lowered == "te"
        case 6: lowered == "server"
        case 7: lowered == "trailer" || lowered == "upgrade"
        case 10: lowered == "connection" || lowered == "keep-alive" || lowered == "request-id"
        case 12: lowered == "x-request-id"
        case 14: lowered == "content-length"
        case 16: lowered == "proxy-connection"
        case 17: lowered == "transfer-encoding"
        case 18: lowered == "x-switchyard-route" || lowered == "x-switchyard-model"
        case 21: lowered == "x-switchyard-attempts"
        default: false
        }
    }

    /// The upstream's response headers as the caller should see them, names in lower case.
    public static func relayedHeaders(from upstream: HTTPHeaders) -> HTTPHeaders {
        // A list wrapped once, as in ``upstreamHeaders(from:credential:)``; the room left is for
        // the exchange's own headers.
        var relayed: [(String, String)] = []
        relayed.reserveCapacity(upstream.count + 5)
        for (name, value) in upstream {
            let lowered = name.lowercasedASCII()
            guard !isNotRelayed(lowered) else { continue }
            relayed.append((lowered, value))
        }
        return HTTPHeaders(relayed)
    }

    /// What a platform's answer (Bedrock, Vertex) tells an Anthropic caller: the content type.
    /// The platform's own headers mean nothing to it; its request id goes out as `request-id`.
    static func platformAnswerHeaders(stream: Bool) -> HTTPHeaders {
        stream ? ["content-type": "text/event-stream", "cache-control": "no-cache"] : ["content-type": "application/json"]
    }
}

extension String {
    /// `self` when it has no upper-case ASCII letter (most header names): no new string is made.
    /// Header names are ASCII tokens: only `A`–`Z` change (no Unicode case mapping).
    func lowercasedASCII() -> String {
        withUTF8Bytes { bytes in
            guard bytes.contains(where: { $0 &- 65 < 26 }) else { return self }
            return String(unsafeUninitializedCapacity: bytes.count) { buffer in
                for (index, byte) in bytes.enumerated() { buffer[index] = byte &- 65 < 26 ? byte | 0x20 : byte }
                return bytes.count
            }
        }
    }

    /// Whether `self` is `lowercased` but for the case of ASCII letters (header names compared as
    /// HTTP compares them), without making a string.
    func equalsLowercasedASCII(_ lowercased: String) -> Bool {
        guard utf8.count == lowercased.utf8.count else { return false }
        return withUTF8Bytes { bytes in
            lowercased.withUTF8Bytes { lowered in
                for index in bytes.indices {
                    let byte = bytes[index]
                    let lower = lowered[index]
                    guard byte == lower || (byte &- 65 < 26 && byte | 0x20 == lower) else { return false }
                }
                return true
            }
        }
    }
}
