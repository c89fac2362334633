import NIOCore
import NIOHTTP1

/// An answer Switchyard makes itself, rendered in Anthropic's error envelope so that SDKs raise
/// their usual exception classes.
public struct RouterError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    /// Anthropic's `error.type`.
    public var type: String
    public var message: String
    public var outcome: RequestOutcome
    /// Sent as `retry-after` (whole seconds, rounded up).
    public var retryAfter: Duration?
    /// Sent as `x-should-retry` when set.
    public var shouldRetry: Bool?
    /// The request field at fault, for a Chat Completions caller (OpenAI's `param`).
    public var param: String?
    /// Close the connection after answering (the rest of the request cannot be trusted or read).
    public var closeConnection = false

    public init(status: Int, type: String, message: String, outcome: RequestOutcome, retryAfter: Duration? = nil, shouldRetry: Bool? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.outcome = outcome
        self.retryAfter = retryAfter
        self.shouldRetry = shouldRetry
    }

    public var description: String { "\(status) \(type): \(message)" }

    public func body(requestID: String) -> ByteBuffer {
        AnthropicErrorEnvelope.body(type: type, message: message, requestID: requestID)
    }

    /// The answer's headers, without `content-length` and Switchyard's own: JSON, Anthropic's
    /// `request-id`, and the retry advice.
    func answerHeaders(requestID: String) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(10)
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "request-id", value: requestID)
        if let retryAfter {
            headers.add(name: "retry-after", value: String(max(1, (retryAfter.nanoseconds + 999_999_999) / 1_000_000_000)))
        }
        if let shouldRetry {
            headers.add(name: HeaderPolicy.shouldRetryName, value: shouldRetry ? "true" : "false")
        }
        return headers
    }

    public static func invalidRequest(_ message: String) -> RouterError {
        RouterError(status: 400, type: "invalid_request_error", message: message, outcome: .rejected)
    }

    public static func notFound(_ message: String) -> RouterError {
        RouterError(status: 404, type: "not_found_error", message: message, outcome: .rejected)
    }

    public static func tooLarge(limit: Int) -> RouterError {
        var error = RouterError(
            status: 413, type: "request_too_large", message: "request body exceeds the limit of \(limit) bytes", outcome: .rejected
        )
        error.closeConnection = true
        return error
    }

    public static func authentication(_ message: String) -> RouterError {
        RouterError(status: 401, type: "authentication_error", message: message, outcome: .rejected)
    }

    public static func permission(_ message: String) -> RouterError {
        RouterError(status: 403, type: "permission_error", message: message, outcome: .rejected)
    }

    /// Every model the request could use had all its upstream connections busy for `queue_timeout`:
    /// Switchyard's own limit, so the caller may retry soon.
    public static func capacityExhausted(route: String, detail: String) -> RouterError {
        RouterError(
            status: 529, type: "overloaded_error", message: "no upstream connection free for route '\(route)': \(detail)", outcome: .noModelAvailable,
            retryAfter: .seconds(1), shouldRetry: true
        )
    }

    /// Nothing admitted the request: the caller may retry after the shortest open period.
    public static func noModelAvailable(route: String, retryAfter: Duration?, detail: String) -> RouterError {
        RouterError(
            status: 503, type: "overloaded_error", message: "no model of route '\(route)' is available: \(detail)",
            outcome: .noModelAvailable, retryAfter: retryAfter ?? .seconds(1), shouldRetry: true
        )
    }
}
