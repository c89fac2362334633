import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1

/// Where an answer to a caller goes: Hummingbird's response writer, or the proxy fast path's
/// writer on the connection's pipeline (``ProxyFastPath``). Written once: a whole answer, or a
/// head and then a body writer for a stream. Heads are NIO's HTTP/1 types, which the fast path
/// writes as they are; Hummingbird's writer converts them.
protocol ProxyResponseWriter: ~Copyable {
    associatedtype BodyWriter: ResponseBodyWriter
    consuming func writeResponse(status: Int, headers: HTTPHeaders, body: ByteBuffer) async throws
    consuming func writeHead(status: Int, headers: HTTPHeaders) async throws -> BodyWriter
}

extension ResponseWriter: ProxyResponseWriter {
    consuming func writeResponse(status: Int, headers: HTTPHeaders, body: ByteBuffer) async throws {
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
struct PipelineResponseWriter: ProxyResponseWriter, Sendable {
    let context: NIOLoopBound<ChannelHandlerContext>
    /// Where a whole answer goes as finished bytes.
    let outlet: NIOLoopBound<ResponseOutlet>

    consuming func writeResponse(status: Int, headers: HTTPHeaders, body: ByteBuffer) async throws {
        let outlet = self.outlet
        @Sendable func write(_: ChannelHandlerContext) -> EventLoopFuture<Void> {
            let outlet = outlet.value
            let bytes = ResponseOutlet.encode(status: status, headers: headers, body: body, allocator: outlet.pastEncoder.channel.allocator)
            let written = outlet.pastEncoder.writeAndFlush(NIOAny(IOData.byteBuffer(bytes)))
            outlet.lifecycle.answeredPast(context: outlet.lifecycleContext)
            return written
        }
        // On the loop (the fast path's task always is), called directly: no closure to allocate.
        if context.eventLoop.inEventLoop {
            try await Self.settle(write(context.value))
        } else {
            try await Self.onLoop(context, write)
        }
    }

    consuming func writeHead(status: Int, headers: HTTPHeaders) async throws -> BodyWriter {
        let head = Self.head(status: status, headers: headers)
        try await Self.onLoop(context) { context in context.writeAndFlush(NIOAny(HTTPServerResponsePart.head(head))) }
        // NIO's encoder frames a body in chunks unless the head has a length (it adds
        // `transfer-encoding: chunked` itself); body parts past it must be framed the same way.
        let chunked = headers.first(name: "content-length") == nil && ![204, 304].contains(status)
        return BodyWriter(context: context, outlet: outlet, chunked: chunked)
    }

    private static func head(status: Int, headers: HTTPHeaders) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
    }

    /// A streamed answer's body. Its parts are written framed, as bytes, past NIO's encoder (as
    /// whole answers are): a part through the encoder crossed four handlers as a generic
    /// `HTTPServerResponsePart` and was framed in three writes, most of a relayed event's user
    /// time. The head and the end still go through the encoder and the connection's handlers,
    /// which count the answer; none of them looks at body parts.
    struct BodyWriter: ResponseBodyWriter, Sendable {
        let context: NIOLoopBound<ChannelHandlerContext>
        let outlet: NIOLoopBound<ResponseOutlet>
        let chunked: Bool

        mutating func write(_ buffer: ByteBuffer) async throws {
            // An empty chunk would end the body.
            guard buffer.readableBytes > 0 else { return }
            let outlet = self.outlet
            let chunked = self.chunked
            @Sendable func write(_: ChannelHandlerContext) -> EventLoopFuture<Void> {
                let pastEncoder = outlet.value.pastEncoder
                guard chunked else { return pastEncoder.writeAndFlush(NIOAny(IOData.byteBuffer(buffer))) }
                return pastEncoder.writeAndFlush(NIOAny(IOData.byteBuffer(Self.chunk(buffer, allocator: pastEncoder.channel.allocator))))
            }
            // On the loop (the fast path's task always is), called directly: no closure to
            // allocate for each part of a stream.
            if context.eventLoop.inEventLoop {
                try await PipelineResponseWriter.settle(write(context.value))
            } else {
                try await PipelineResponseWriter.onLoop(context, write)
            }
        }

        /// `buffer` as one HTTP/1.1 chunk: its size in hex, CRLF, the bytes, CRLF.
        static func chunk(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
            let size = String(buffer.readableBytes, radix: 16)
            var framed = allocator.buffer(capacity: size.utf8.count + buffer.readableBytes + 4)
            framed.writeString(size)
            framed.writeStaticString("\r\n")
            framed.writeImmutableBuffer(buffer)
            framed.writeStaticString("\r\n")
            return framed
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            let trailers = trailingHeaders.map { HTTPHeaders($0) }
            try await PipelineResponseWriter.onLoop(context) { context in context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(trailers))) }
        }
    }

    /// Runs `write` on the context's event loop and waits for the write to complete (back-pressure:
    /// a caller that does not read holds the stream here, as Hummingbird's writer does).
    nonisolated(nonsending) static func onLoop(
        _ context: NIOLoopBound<ChannelHandlerContext>, _ write: @escaping @Sendable (ChannelHandlerContext) -> EventLoopFuture<Void>
    ) async throws {
        let loop = context.eventLoop
        if loop.inEventLoop {
            try await settle(write(context.value))
        } else {
            try await loop.flatSubmit { write(context.value) }.get()
        }
    }

    /// Waits for a write made on its loop. A connection with room takes the bytes while they are
    /// flushed, so the write is usually complete here: its result is taken without suspending
    /// the task.
    nonisolated(nonsending) fileprivate static func settle(_ written: EventLoopFuture<Void>) async throws {
        if let result = written.resultIfComplete { return try result.get() }
        try await written.get()
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

/// The fast path's way out for a whole answer: encoded here, head and body in one buffer, and
/// written on the context of NIO's response encoder, which hands it on toward the socket without
/// passing the encoder (its head encoding, framing checks and three pipeline writes per answer
/// were the largest part of the answer's user time: bench/README.md, step 9). The answer is
/// counted by the connection's ``ConnectionLifecycleHandler`` directly. Answers that stream still
/// go through the encoder as parts. The encoder is unpaired for this (``HeadResponseTrimmer``).
struct ResponseOutlet {
    /// The encoder's context: a write on it goes to the handler before the encoder.
    let pastEncoder: ChannelHandlerContext
    let lifecycle: ConnectionLifecycleHandler
    let lifecycleContext: ChannelHandlerContext

    /// The outlet of `context`'s pipeline, when it has both handlers.
    static func find(from context: ChannelHandlerContext) -> ResponseOutlet? {
        let pipeline = context.pipeline.syncOperations
        guard let encoder = try? pipeline.context(handlerType: HTTPResponseEncoder.self),
            let lifecycleContext = try? pipeline.context(handlerType: ConnectionLifecycleHandler.self),
            let lifecycle = lifecycleContext.handler as? ConnectionLifecycleHandler
        else { return nil }
        return ResponseOutlet(pastEncoder: encoder, lifecycle: lifecycle, lifecycleContext: lifecycleContext)
    }

    /// An HTTP/1.1 answer with a body of known length (the caller's `content-length` is among
    /// `headers`), as NIO's encoder would write it.
    static func encode(status: Int, headers: HTTPHeaders, body: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        // "HTTP/1.1 ", the status, a space, the reason, CRLF; the lines; the blank line.
        var headSize = 9 &+ DecimalDigits.count(UInt64(status)) &+ 1 &+ reason.utf8.count &+ 2 &+ 2
        for (name, value) in headers { headSize &+= ByteBuffer.httpHeaderLineSize(name: name, value: value) }
        var buffer = allocator.buffer(capacity: headSize &+ body.readableBytes)
        buffer.writeWire(reserving: headSize) { wire in
            wire.append("HTTP/1.1 ")
            wire.appendDecimal(status)
            wire.append(" ")
            wire.append(reason)
            wire.append("\r\n")
            for (name, value) in headers { wire.appendHeaderLine(name: name, value: value) }
            wire.append("\r\n")
        }
        var body = body
        buffer.writeBuffer(&body)
        return buffer
    }
}
