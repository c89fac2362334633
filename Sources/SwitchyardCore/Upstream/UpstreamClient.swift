import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Why an upstream exchange produced no usable answer.
public struct UpstreamError: Error, Sendable, CustomStringConvertible {
    public var failure: TransportFailure
    public var detail: String
    /// For `capacity`: how long the request waited for a connection.
    public var queued: Duration?

    public init(failure: TransportFailure, detail: String, queued: Duration? = nil) {
        self.failure = failure
        self.detail = detail
        self.queued = queued
    }

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
    /// The end of the request's whole budget: waiting for a connection (`queue_timeout`) and
    /// for the head (`first_byte`, from the write) both stop there. The attempt loop sets it.
    public var budget: NIODeadline

    public init(pathAndQuery: String, headers: HTTPHeaders, body: ByteBuffer, isStreaming: Bool, budget: NIODeadline = .distantFuture) {
        self.pathAndQuery = pathAndQuery
        self.headers = headers
        self.body = body
        self.isStreaming = isStreaming
        self.budget = budget
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
    /// How long the request waited for a free connection.
    public var queued: Duration = .zero
}

/// The response body of one attempt, chunk by chunk; errors come out already classified.
public struct UpstreamBody: Sendable, AsyncSequence {
    public typealias Element = ByteBuffer
    let body: HTTP1ResponseBody
    var translator: (any UpstreamBodyTranslator)?

    init(body: HTTP1ResponseBody) {
        self.body = body
    }

    /// The same body, read through `translator`.
    public func translated(by translator: some UpstreamBodyTranslator) -> UpstreamBody {
        var copy = self
        copy.translator = translator
        return copy
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var iterator: HTTP1ResponseBody.AsyncIterator
        var translator: (any UpstreamBodyTranslator)?
        var ended = false

        nonisolated(nonsending) public mutating func next() async throws(UpstreamError) -> ByteBuffer? {
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

        nonisolated(nonsending) private mutating func nextRaw() async throws(UpstreamError) -> ByteBuffer? {
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
    nonisolated(nonsending) public func collect(upTo limit: Int) async throws(UpstreamError) -> ByteBuffer {
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

/// One provider's upstream connections: Switchyard's own HTTP/1.1 client (``HTTP1Client``), one
/// keep-alive pool across the event loops, so an attempt runs on a connection of the caller's
/// loop with no thread hop. A request waits at most `queue_timeout` for a free connection; the
/// head must then arrive within `first_byte` of the write; a body may not go silent longer than
/// `idle`.
public final class UpstreamClient: Sendable {
    public let provider: ProviderSpec
    private let client: Result<HTTP1Client, HTTP1ClientError>
    /// The header lines every request gets (``PresetHeaderLines``): `host`, then the provider's
    /// own (its key); the provider's own alone for a request that names its host (a signed one).
    private let presetLines: PresetHeaderLines
    private let presetLinesWithoutHost: PresetHeaderLines
    /// The base URL's path prefix, computed once.
    private let pathPrefix: String

    /// - Parameter presetLines: the provider's own lines, sent on every request.
    public init(
        provider: ProviderSpec, presetLines providerLines: PresetHeaderLines = .none,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.provider = provider
        let url = provider.baseURL
        // A TLS configuration that cannot load fails every attempt with a clear error, never the process.
        client = Result { () throws(HTTP1ClientError) -> HTTP1Client in
            var tlsConfiguration: TLSConfiguration?
            if url.isTLS {
                do {
                    tlsConfiguration = try provider.trust.tlsConfiguration()
                } catch {
                    throw HTTP1ClientError(.tls, "cannot load the trusted certificates (\(provider.trust.description)): \(error)")
                }
            }
            let configuration = HTTP1Client.Configuration(
                host: url.host, port: url.port, tls: url.isTLS, connectTimeout: provider.timeouts.connect, idleTimeout: provider.timeouts.idle,
                maxConnections: provider.maxConnections, tlsConfiguration: tlsConfiguration, serverName: provider.trust.serverName,
                proxy: provider.proxy?.proxy
            )
            return try HTTP1Client(configuration: configuration, eventLoopGroup: eventLoopGroup)
        }
        let hostPart = url.host.contains(":") ? "[\(url.host)]" : url.host
        let host = url.port == (url.isTLS ? 443 : 80) ? hostPart : "\(hostPart):\(url.port)"
        // The URL parser takes no host with a control character or a space: the line encodes.
        presetLines = ((try? PresetHeaderLines([("host", host)])) ?? .none).followed(by: providerLines)
        presetLinesWithoutHost = providerLines
        pathPrefix = url.pathPrefix
    }

    /// Consumes `request`: its headers go into the request head without a copy.
    nonisolated(nonsending) public func send(_ request: consuming UpstreamRequest) async throws(UpstreamError) -> UpstreamResponse {
        let client: HTTP1Client
        switch self.client {
        case .success(let ready): client = ready
        case .failure(let error): throw Self.classify(error)
        }
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: pathPrefix + request.pathAndQuery, headers: request.headers)
        let deadlines = HTTP1Deadlines(
            queueTimeout: TimeAmount(provider.queueTimeout), firstByte: TimeAmount(provider.timeouts.firstByte), budget: request.budget
        )
        let started = NIODeadline.now()
        do {
            let response = try await client.execute(
                head, presetLines: request.headers.contains(name: "host") ? presetLinesWithoutHost : presetLines,
                body: request.body, deadlines: deadlines, on: MultiThreadedEventLoopGroup.currentEventLoop
            )
            return UpstreamResponse(
                status: Int(response.status.code), headers: response.headers, body: UpstreamBody(body: response.body),
                queued: .nanoseconds(response.queued.nanoseconds)
            )
        } catch {
            var failure = Self.classify(error)
            if failure.failure == .capacity { failure.queued = .nanoseconds((NIODeadline.now() - started).nanoseconds) }
            throw failure
        }
    }

    /// The pool's connections and waiters, for metrics; nil when the client could not be made.
    var statistics: HTTP1PoolStateMachine.Statistics? {
        if case .success(let client) = client { return client.statistics }
        return nil
    }

    public func shutdown() async {
        if case .success(let client) = client { await client.shutdown() }
    }

    static func classify(_ error: HTTP1ClientError) -> UpstreamError {
        switch error.kind {
        case .connect: UpstreamError(failure: .connect, detail: error.detail)
        case .tls: UpstreamError(failure: .tls, detail: error.detail)
        case .headTimeout: UpstreamError(failure: .timeout, detail: "no response head within first_byte")
        case .idleTimeout: UpstreamError(failure: .timeout, detail: "upstream idle longer than the idle timeout")
        case .capacity: UpstreamError(failure: .capacity, detail: error.detail)
        case .reset, .invalidResponse, .invalidRequest, .cancelled, .shutdown: UpstreamError(failure: .reset, detail: error.detail)
        }
    }
}
