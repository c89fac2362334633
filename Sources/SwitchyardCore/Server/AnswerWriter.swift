import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// Where an answer to a caller goes: Hummingbird's response writer, or the proxy fast path's
/// writer on the connection's pipeline (``ProxyFastPath``). Written once: a whole answer, or a
/// head and then a body writer for a stream.
protocol AnswerWriter: ~Copyable {
    associatedtype BodyWriter: ResponseBodyWriter
    consuming func writeAnswer(_ head: HTTPResponse, body: ByteBuffer) async throws
    consuming func writeHead(_ head: HTTPResponse) async throws -> BodyWriter
}

extension ResponseWriter: AnswerWriter {
    consuming func writeAnswer(_ head: HTTPResponse, body: ByteBuffer) async throws {
        try await write(response: head, body: ResponseBody(byteBuffer: body))
    }
}

/// Writes an answer straight into the connection's pipeline from the request's task: parts go
/// out through the fast path handler's context on its event loop (no hop when the task already
/// runs there, which it does with Swift concurrency on NIO's loops).
struct PipelineAnswerWriter: AnswerWriter, Sendable {
    let context: NIOLoopBound<ChannelHandlerContext>

    consuming func writeAnswer(_ head: HTTPResponse, body: ByteBuffer) async throws {
        try await Self.onLoop(context) { context in
            context.write(NIOAny(HTTPResponsePart.head(head)), promise: nil)
            context.write(NIOAny(HTTPResponsePart.body(body)), promise: nil)
            return context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil)))
        }
    }

    consuming func writeHead(_ head: HTTPResponse) async throws -> BodyWriter {
        try await Self.onLoop(context) { context in context.writeAndFlush(NIOAny(HTTPResponsePart.head(head))) }
        return BodyWriter(context: context)
    }

    struct BodyWriter: ResponseBodyWriter, Sendable {
        let context: NIOLoopBound<ChannelHandlerContext>

        mutating func write(_ buffer: ByteBuffer) async throws {
            try await PipelineAnswerWriter.onLoop(context) { context in context.writeAndFlush(NIOAny(HTTPResponsePart.body(buffer))) }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            try await PipelineAnswerWriter.onLoop(context) { context in context.writeAndFlush(NIOAny(HTTPResponsePart.end(trailingHeaders))) }
        }
    }

    /// Runs `write` on the context's event loop and waits for the write to complete (back-pressure:
    /// a caller that does not read holds the stream here, as Hummingbird's writer does).
    static func onLoop(
        _ context: NIOLoopBound<ChannelHandlerContext>, _ write: @escaping @Sendable (ChannelHandlerContext) -> EventLoopFuture<Void>
    ) async throws {
        let loop = context.eventLoop
        if loop.inEventLoop {
            try await write(context.value).get()
        } else {
            try await loop.flatSubmit { write(context.value) }.get()
        }
    }
}
