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

/// One provider's upstream connections: Switchyard's own HTTP/1.1 client (``HTTP1Client``), a
/// keep-alive pool on each event loop, so an attempt runs on the loop of the caller's connection
/// with no thread hop. The head must arrive by the request's deadline (`first_byte`); a body may
/// not go silent longer than `idle`.
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
        let configuration = HTTP1Client.Configuration(
            host: url.host, port: url.port, tls: url.isTLS, connectTimeout: provider.timeouts.connect, idleTimeout: provider.timeouts.idle,
            maxConnections: provider.maxConnections
        )
        // A TLS configuration that cannot load fails every attempt with a clear error, never the process.
        client = Result { () throws(HTTP1ClientError) -> HTTP1Client in try HTTP1Client(configuration: configuration, eventLoopGroup: eventLoopGroup) }
        let hostPart = url.host.contains(":") ? "[\(url.host)]" : url.host
        let host = url.port == (url.isTLS ? 443 : 80) ? hostPart : "\(hostPart):\(url.port)"
        // The URL parser takes no host with a control character or a space: the line encodes.
        presetLines = ((try? PresetHeaderLines([("host", host)])) ?? .none).followed(by: providerLines)
        presetLinesWithoutHost = providerLines
        pathPrefix = url.pathPrefix
    }

    /// Consumes `request`: its headers go into the request head without a copy.
    public func send(_ request: consuming UpstreamRequest) async throws(UpstreamError) -> UpstreamResponse {
        let client: HTTP1Client
        switch self.client {
        case .success(let ready): client = ready
        case .failure(let error): throw Self.classify(error)
        }
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: pathPrefix + request.pathAndQuery, headers: request.headers)
        do {
            let response = try await client.execute(
                head, presetLines: request.headers.contains(name: "host") ? presetLinesWithoutHost : presetLines,
                body: request.body, headDeadline: request.headDeadline, on: MultiThreadedEventLoopGroup.currentEventLoop
            )
            return UpstreamResponse(status: Int(response.status.code), headers: response.headers, body: UpstreamBody(body: response.body))
        } catch {
            throw Self.classify(error)
        }
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
        case .reset, .invalidResponse, .invalidRequest, .cancelled, .shutdown: UpstreamError(failure: .reset, detail: error.detail)
        }
    }
}
