import NIOHTTP1

/// Who a caller is, from the key it presents (`x-api-key` or `Authorization: Bearer`), when
/// `clients:` is configured. Keys are compared in constant time: every configured key is
/// compared in full, whatever matched, so timing says nothing about how close a guess was.
public struct ClientAuthenticator: Sendable {
    public enum Verdict: Sendable {
        /// `clients:` is not configured: callers are not authenticated.
        case open
        case client(ClientCredential)
        case missingKey
        case unknownKey
    }

    let clients: [ClientCredential]

    public init(clients: [ClientCredential]) {
        self.clients = clients
    }

    public func authenticate(_ headers: HTTPHeaders) -> Verdict {
        guard !clients.isEmpty else { return .open }
        guard let presented = Self.presentedKey(headers) else { return .missingKey }
        var match: ClientCredential?
        for client in clients where ConstantTime.equal(presented, client.key) {
            match = client
        }
        return match.map(Verdict.client) ?? .unknownKey
    }

    /// The caller's key: `x-api-key`, else the token of `Authorization: Bearer`.
    static func presentedKey(_ headers: HTTPHeaders) -> Substring? {
        if let key = headers.first(name: HeaderPolicy.apiKey), !key.isEmpty { return Substring(key) }
        return bearerToken(headers)
    }

    static func bearerToken(_ headers: HTTPHeaders) -> Substring? {
        guard let authorization = headers.first(name: "authorization") else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].drop { $0 == " " }
        return token.isEmpty ? nil : token
    }
}

/// Comparison whose duration depends only on the lengths involved, never on where bytes differ.
enum ConstantTime {
    static func equal(_ presented: Substring, _ expected: String) -> Bool {
        let a = Array(presented.utf8)
        let b = Array(expected.utf8)
        var difference: UInt8 = a.count == b.count ? 0 : 1
        // Always walk the expected key's full length.
        for index in 0..<b.count {
            let left = index < a.count ? a[index] : ~b[index]
            difference |= left ^ b[index]
        }
        return difference == 0
    }
}
