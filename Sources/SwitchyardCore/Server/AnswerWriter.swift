import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// Where an answer to a caller goes: Hummingbird's response writer, or the proxy fast path's
/// writer on the connection's pipeline (``ProxyFastPath``). Written once: a whole answer, or a
/// head and then a body writer for a stream. Heads are NIO's HTTP/1 types, which the fast path
/// writes as they are; Hummingbird's writer converts them.
protocol AnswerWriter: ~Copyable {
    associatedtype BodyWriter: ResponseBodyWriter
    consuming func writeAnswer(status: Int, headers: HTTPHeaders, body: ByteBuffer) async throws
    consuming func writeHead(status: Int, headers: HTTPHeaders) async throws -> BodyWriter
}

extension ResponseWriter: AnswerWriter {
    consuming func writeAnswer(status: Int, headers: HTTPHeaders, body: ByteBuffer) async throws {
        try await write(response: Self.response(status: status, headers: headers), body: ResponseBody(byteBuffer: body))
    }

    consuming func writeHead(status: Int, headers: HTTPHeaders) async throws -> some ResponseBodyWriter {
        try await writeHead(Self.response(status: status, headers: headers))
    }

    private static func response(status: Int, headers: HTTPHeaders) -> HTTPResponse {
        HTTPResponse(status: .init(code: status), headerFields: HTTPFields(headers, splitCookie: false))
    }
}

/// Writes an answer straight into the connection's pipeline from the request's task: parts go
/// out through the fast path handler's context on its event loop (no hop when the task already
/// runs there, which it does with Swift concurrency on NIO's loops).
struct PipelineAnswerWriter: AnswerWriter, Sendable {
    let context: NIOLoopBound<ChannelHandlerContext>

    consuming func writeAnswer(status: Int, headers: HTTPHeaders, body: ByteBuffer) async throws {
        let head = Self.head(status: status, headers: headers)
        try await Self.onLoop(context) { context in
            context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
            return context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        }
    }

    consuming func writeHead(status: Int, headers: HTTPHeaders) async throws -> BodyWriter {
        let head = Self.head(status: status, headers: headers)
        try await Self.onLoop(context) { context in context.writeAndFlush(NIOAny(HTTPServerResponsePart.head(head))) }
        return BodyWriter(context: context)
    }

    private static func head(status: Int, headers: HTTPHeaders) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
    }

    struct BodyWriter: ResponseBodyWriter, Sendable {
        let context: NIOLoopBound<ChannelHandlerContext>

        mutating func write(_ buffer: ByteBuffer) async throws {
            try await PipelineAnswerWriter.onLoop(context) { context in
                context.writeAndFlush(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))))
            }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            let trailers = trailingHeaders.map { HTTPHeaders($0) }
            try await PipelineAnswerWriter.onLoop(context) { context in context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(trailers))) }
        }
    }

    /// Runs `write` on the context's event loop and waits for the write to complete (back-pressure:
    /// a caller that does not read holds the stream here, as Hummingbird's writer does).
    static func onLoop(
        _ context: NIOLoopBound<ChannelHandlerContext>, _ write: @escaping @Sendable (ChannelHandlerContext) -> EventLoopFuture<Void>
    ) async throws {
        let loop = context.eventLoop
        if loop.inEventLoop {
            let written = write(context.value)
            // A connection with room takes the bytes while they are flushed, so the write is
            // usually complete here: take its result instead of suspending the task for it.
            if let result = written.resultIfComplete { return try result.get() }
            try await written.get()
        } else {
            try await loop.flatSubmit { write(context.value) }.get()
        }
    }
}

extension EventLoopFuture {
    /// The result when the future is already complete, else nil. On the future's event loop only,
    /// where a complete future runs a new callback at once.
    fileprivate var resultIfComplete: Result<Value, any Error>? {
        var seen: Result<Value, any Error>?
        assumeIsolated().whenComplete { seen = $0 }
        return seen
    }
}
