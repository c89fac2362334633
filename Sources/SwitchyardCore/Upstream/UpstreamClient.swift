import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Why an upstream exchange produced no usable answer.
public struct UpstreamError: Error, Sendable, CustomStringConvertible {
    public var failure: TransportFailure
    public var detail: String

    public var description: String { "\(failure.rawValue): \(detail)" }
}

/// What one attempt sends upstream.
public struct UpstreamRequest: Sendable {
    /// POST for every model call; GET for polling an upstream Message Batch.
    public var method: HTTPMethod = .POST
    /// Path and query, e.g. `/v1/messages?beta=true`.
    public var pathAndQuery: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    /// Streams read the body as it comes; JSON bodies are read whole.
    public var isStreaming: Bool
    /// The response head must arrive by then (`first_byte`, capped by the request budget); the
    /// attempt loop sets it.
    public var headDeadline: NIODeadline

    public init(pathAndQuery: String, headers: HTTPHeaders, body: ByteBuffer, isStreaming: Bool, headDeadline: NIODeadline = .distantFuture) {
        self.pathAndQuery = pathAndQuery
        self.headers = headers
        self.body = body
        self.isStreaming = isStreaming
        self.headDeadline = headDeadline
    }
}

/// Turns a platform's response body into the bytes the caller gets (Bedrock's event-stream frames
/// into Anthropic SSE), chunk by chunk. Errors are stream failures.
public protocol UpstreamBodyTranslator: Sendable {
    mutating func translate(_ chunk: ByteBuffer) throws(UpstreamError) -> ByteBuffer?
    /// The body ended: whatever is left, or an error when it ended mid-frame.
    mutating func finish() throws(UpstreamError) -> ByteBuffer?
}

public struct UpstreamResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: UpstreamBody
}

/// The response body of one attempt, chunk by chunk; errors come out already classified.
public struct UpstreamBody: Sendable, AsyncSequence {
    public typealias Element = ByteBuffer
    let body: HTTPClientResponse.Body
    var translator: (any UpstreamBodyTranslator)?

    init(body: HTTPClientResponse.Body) {
        self.body = body
    }

    /// The same body, read through `translator`.
    public func translated(by translator: some UpstreamBodyTranslator) -> UpstreamBody {
        var copy = self
        copy.translator = translator
        return copy
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var iterator: HTTPClientResponse.Body.AsyncIterator
        var translator: (any UpstreamBodyTranslator)?
        var ended = false

        public mutating func next() async throws(UpstreamError) -> ByteBuffer? {
            guard var translator else { return try await nextRaw() }
            while !ended {
                let chunk = try await nextRaw()
                let output: ByteBuffer?
                if let chunk {
                    output = try translator.translate(chunk)
                } else {
                    ended = true
                    output = try translator.finish()
                }
                self.translator = translator
                if let output, output.readableBytes > 0 { return output }
            }
            return nil
        }

        private mutating func nextRaw() async throws(UpstreamError) -> ByteBuffer? {
            do {
                return try await iterator.next()
            } catch {
                throw UpstreamClient.classify(error)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(iterator: body.makeAsyncIterator(), translator: translator)
    }

    /// Reads the whole body; a body over `limit` is an error (an upstream gone mad must not
    /// exhaust memory).
    public func collect(upTo limit: Int) async throws(UpstreamError) -> ByteBuffer {
        var iterator = makeAsyncIterator()
        var collected = ByteBuffer()
        while let chunk = try await iterator.next() {
            if collected.readableBytes == 0 {
                collected = chunk
            } else {
                collected.writeImmutableBuffer(chunk)
            }
            guard collected.readableBytes <= limit else {
                throw UpstreamError(failure: .reset, detail: "response body larger than \(limit) bytes")
            }
        }
        return collected
    }
}

/// One provider's pooled HTTP client. Streams and whole-body requests use separate pools because
/// their read timeouts differ: a JSON answer may take minutes to start, a stream must not stall.
public final class UpstreamClient: Sendable {
    public let provider: ProviderSpec
    private let jsonClient: HTTPClient
    private let streamClient: HTTPClient

    public init(provider: ProviderSpec, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.provider = provider
        func configuration(read: Duration) -> HTTPClient.Configuration {
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(connect: .nanoseconds(provider.timeouts.connect.nanoseconds), read: .nanoseconds(read.nanoseconds)),
                decompression: .disabled
            )
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = provider.maxConnections
            configuration.connectionPool.idleTimeout = .seconds(60)
            configuration.connectionPool.retryConnectionEstablishment = false
            // No distributed tracing in this phase: skip building a span per request (measured
            // at ~3 % of the router's CPU under load).
            configuration.tracing.tracer = nil
            return configuration
        }
        jsonClient = HTTPClient(
            eventLoopGroupProvider: .shared(eventLoopGroup),
            configuration: configuration(read: max(provider.timeouts.firstByte, provider.timeouts.idle))
        )
        streamClient = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration(read: provider.timeouts.idle))
    }

    public func send(_ request: UpstreamRequest) async throws(UpstreamError) -> UpstreamResponse {
        var outbound = HTTPClientRequest(url: provider.baseURL.description + request.pathAndQuery)
        outbound.method = request.method
        outbound.headers = request.headers
        outbound.body = .bytes(request.body)
        let client = request.isStreaming ? streamClient : jsonClient
        do {
            let response = try await client.execute(outbound, deadline: request.headDeadline)
            return UpstreamResponse(status: Int(response.status.code), headers: response.headers, body: UpstreamBody(body: response.body))
        } catch {
            throw Self.classify(error)
        }
    }

    public func shutdown() async {
        try? await jsonClient.shutdown()
        try? await streamClient.shutdown()
    }

    static func classify(_ error: any Error) -> UpstreamError {
        if let error = error as? UpstreamError { return error }
        if error is CancellationError { return UpstreamError(failure: .reset, detail: "cancelled") }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .tlsHandshakeTimeout, .getConnectionFromPoolTimeout:
                return UpstreamError(failure: .connect, detail: "connect timeout")
            case .deadlineExceeded:
                return UpstreamError(failure: .timeout, detail: "no response head within first_byte")
            case .readTimeout:
                return UpstreamError(failure: .timeout, detail: "upstream idle longer than the idle timeout")
            case .remoteConnectionClosed:
                return UpstreamError(failure: .reset, detail: "connection closed by upstream")
            case .cancelled:
                return UpstreamError(failure: .reset, detail: "cancelled")
            default:
                return UpstreamError(failure: .reset, detail: "\(error)")
            }
        }
        if error is NIOSSLError { return UpstreamError(failure: .tls, detail: "\(error)") }
        if error is NIOConnectionError || error is ChannelError && (error as? ChannelError) == .connectTimeout(.zero) {
            return UpstreamError(failure: .connect, detail: "\(error)")
        }
        if let error = error as? IOError {
            return UpstreamError(failure: .reset, detail: error.description)
        }
        if error is HTTPParserError {
            return UpstreamError(failure: .reset, detail: "invalid HTTP from upstream: \(error)")
        }
        let text = String(describing: error)
        if text.contains("connect") || text.contains("Connection refused") {
            return UpstreamError(failure: .connect, detail: text)
        }
        return UpstreamError(failure: .reset, detail: text)
    }
}
