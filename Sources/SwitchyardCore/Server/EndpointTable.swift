import HTTPTypes
import HummingbirdCore
import NIOCore

/// One request to an endpoint: Hummingbird's request, the path's `{parameters}` in order, and the
/// connection it came on.
struct EndpointRequest: Sendable {
    let request: Request
    let parameters: [String]
    let channel: any Channel
}

typealias EndpointHandler = @Sendable (EndpointRequest, consuming ResponseWriter) async throws -> Void

/// The router's HTTP surface as one declared table: method and path pattern → endpoint. Both
/// doors consult it — ``ProxyFastPath`` on the connection's pipeline for the proxy endpoints, and
/// ``HTTPFront`` for every request Hummingbird reads — so 404 and 405 (with `allow`) come from it,
/// and adding an endpoint is one line here plus its handler.
///
/// A table of Switchyard's own rather than Hummingbird's `Router`: the fast path matches in NIO's
/// types before any Hummingbird request exists, with no allocation (a scan of a handful of
/// literal paths), and the rest needs nothing a trie buys at two dozen entries.
struct EndpointTable: Sendable {
    enum Handler: Sendable {
        /// A proxy endpoint (Messages, count_tokens, Chat Completions): the fast path takes it when it can, Hummingbird's door
        /// otherwise.
        case proxy(CallerAPI)
        case handler(EndpointHandler)
    }

    struct Endpoint: Sendable {
        let method: HTTPRequest.Method
        let pattern: PathPattern
        let handler: Handler
    }

    enum Match {
        case found(Endpoint, parameters: [String])
        /// The path exists with other methods.
        case methodNotAllowed(allowed: [HTTPRequest.Method])
        case notFound
    }

    let endpoints: [Endpoint]
    /// The proxy endpoints' paths, for the fast path's scan.
    private let proxyPaths: [(path: String, api: CallerAPI)]

    init(_ endpoints: [Endpoint]) {
        self.endpoints = endpoints
        proxyPaths = endpoints.compactMap { endpoint in
            guard endpoint.method == .post, case .proxy(let api) = endpoint.handler, let literal = endpoint.pattern.literal else { return nil }
            return (literal, api)
        }
    }

    /// The proxy API a `POST` to `path` is for; nil for any other path. No allocation.
    func proxyAPI(postPath path: Substring) -> CallerAPI? {
        for entry in proxyPaths where path.utf8.elementsEqual(entry.path.utf8) { return entry.api }
        return nil
    }

    /// The endpoint of `method` and `path`. HEAD is served wherever GET is.
    func match(method: HTTPRequest.Method, path: String) -> Match {
        let segments = PathPattern.segments(of: path)
        var allowed: [HTTPRequest.Method] = []
        for endpoint in endpoints {
            guard let parameters = endpoint.pattern.match(segments) else { continue }
            if endpoint.method == method || (method == .head && endpoint.method == .get) {
                return .found(endpoint, parameters: parameters)
            }
            if !allowed.contains(endpoint.method) { allowed.append(endpoint.method) }
            if endpoint.method == .get, !allowed.contains(.head) { allowed.append(.head) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }
}

/// A path with `{parameter}` segments: `/v1/messages/batches/{id}/results`.
struct PathPattern: Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    private enum Segment: Sendable {
        case literal(String)
        case parameter
    }

    private let segments: [Segment]
    let description: String

    init(stringLiteral text: String) {
        description = text
        segments = Self.segments(of: text).map { $0.hasPrefix("{") && $0.hasSuffix("}") ? .parameter : .literal(String($0)) }
    }

    /// The whole path when it has no parameter.
    var literal: String? {
        segments.allSatisfy { if case .literal = $0 { true } else { false } } ? description : nil
    }

    /// The path's segments after the leading `/`; empty ones kept, so `/a//b` matches no pattern.
    static func segments(of path: String) -> [Substring] {
        Array(path.split(separator: "/", omittingEmptySubsequences: false).dropFirst())
    }

    /// The parameters' values in order, or nil when `path` is not of this pattern.
    func match(_ path: [Substring]) -> [String]? {
        guard path.count == segments.count else { return nil }
        var parameters: [String] = []
        for (segment, part) in zip(segments, path) {
            switch segment {
            case .literal(let text): guard part == text else { return nil }
            case .parameter:
                guard !part.isEmpty else { return nil }
                parameters.append(String(part))
            }
        }
        return parameters
    }
}
