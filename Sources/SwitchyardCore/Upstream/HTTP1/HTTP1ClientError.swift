import NIOCore
import NIOHTTP1
import NIOSSL

/// Why an ``HTTP1Client`` exchange produced no (complete) answer. `kind` is what a caller
/// matches on; `detail` says what happened, for logs.
public struct HTTP1ClientError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// No connection: refused, unreachable, name not resolved, or not established within
        /// `connectTimeout` (TCP connect and TLS handshake together).
        case connect
        /// The TLS handshake failed: an untrusted certificate, a wrong hostname, no common cipher.
        case tls
        /// The connection was closed or reset by the upstream before the answer was complete.
        case reset
        /// No response head within `first_byte` of the request being written (or before the
        /// request's budget ran out).
        case headTimeout
        /// No connection to the upstream was free within `queue_timeout`: `max_connections` are
        /// all busy. The router's own limit, not the upstream's failure.
        case capacity
        /// The upstream was silent longer than `idleTimeout` between two body chunks.
        case idleTimeout
        /// The calling task was cancelled.
        case cancelled
        /// The upstream's bytes are not an HTTP/1.1 response.
        case invalidResponse
        /// The request cannot be sent as given (a header with CR/LF, an unsupported method).
        case invalidRequest
        /// The client was shut down.
        case shutdown
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(kind.rawValue): \(detail)" }

    static let cancelled = HTTP1ClientError(.cancelled, "the request was cancelled")
    static let shutdown = HTTP1ClientError(.shutdown, "the HTTP client was shut down")
    static let headTimeout = HTTP1ClientError(.headTimeout, "no response head before the deadline")
    static let idleTimeout = HTTP1ClientError(.idleTimeout, "the upstream was silent longer than the idle timeout")
    static let closedBeforeHead = HTTP1ClientError(.reset, "connection closed by the upstream before the response head")
    static let closedInBody = HTTP1ClientError(.reset, "connection closed by the upstream before the end of the response body")
    static let connectTimeout = HTTP1ClientError(.connect, "connect timeout")
    static let closedDuringTLSHandshake = HTTP1ClientError(.tls, "connection closed during the TLS handshake")
    static let unexpectedUpgrade = HTTP1ClientError(.invalidResponse, "the upstream switched protocols")

    /// Maps what a channel reports to an error kind. `established`: the connection was up (a TLS
    /// error then is a reset of a working connection, not a handshake failure).
    static func classify(_ error: any Error, established: Bool) -> HTTP1ClientError {
        switch error {
        case let error as HTTP1ClientError:
            return error
        case let error as HTTPParserError:
            return HTTP1ClientError(.invalidResponse, "invalid HTTP response: \(error)")
        case let error as NIOHTTPDecoderError:
            return HTTP1ClientError(.invalidResponse, "invalid HTTP response: \(error)")
        case let error as NIOSSLError:
            if established, case .uncleanShutdown = error {
                return HTTP1ClientError(.reset, "TLS connection closed without close_notify")
            }
            return HTTP1ClientError(established ? .reset : .tls, "\(error)")
        case let error as NIOSSLExtraError:
            return HTTP1ClientError(.tls, "\(error)")
        case let error as ChannelError:
            if case .connectTimeout = error { return .connectTimeout }
            return HTTP1ClientError(established ? .reset : .connect, "\(error)")
        case let error as IOError:
            return HTTP1ClientError(established ? .reset : .connect, error.description)
        default:
            if !established { return HTTP1ClientError(.connect, "\(error)") }
            return HTTP1ClientError(.reset, "\(error)")
        }
    }
}
