import NIOCore
import NIOHTTP1
import NIOPosix

/// One caller connection: requests are read whole, sent on this connection's own upstream
/// connection (opened on first use, on the same event loop), and the answer is written back part
/// by part as it arrives. One request at a time per connection, as wrk and SDK callers send them.
final class CallerHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let upstream: SocketAddress
    let upstreamHost: String
    var head: HTTPRequestHead?
    var body: ByteBuffer?
    lazy var upstreamConnection = LazyUpstream<HTTPClientRequestPart>(upstream: upstream)
    /// Set in task mode: the answer is collected and handed to the waiting task.
    var collected: CheckedContinuation<[HTTPServerResponsePart], Never>?
    let taskPerRequest: Bool

    init(upstream: SocketAddress, upstreamHost: String, taskPerRequest: Bool) {
        self.taskPerRequest = taskPerRequest
        self.upstream = upstream
        self.upstreamHost = upstreamHost
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
        case .body(var part):
            if body == nil { body = part } else { body!.writeBuffer(&part) }
        case .end:
            guard var head else { return }
            head.headers.replaceOrAdd(name: "host", value: upstreamHost)
            head.headers.remove(name: "connection")
            let parts: [HTTPClientRequestPart] = [.head(head), .body(.byteBuffer(body ?? ByteBuffer())), .end(nil)]
            guard taskPerRequest else {
                send(context: context, parts)
                return
            }
            // The same request through a Swift task: the upstream answer is awaited, as an async
            // router does, then written from the event loop.
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            Task {
                let answer = await withCheckedContinuation { (continuation: CheckedContinuation<[HTTPServerResponsePart], Never>) in
                    loop.execute {
                        let (handler, context) = bound.value
                        handler.collected = continuation
                        handler.send(context: context, parts)
                    }
                }
                loop.execute {
                    let (_, context) = bound.value
                    for part in answer.dropLast() { context.write(NIOAny(part), promise: nil) }
                    context.writeAndFlush(NIOAny(answer.last!), promise: nil)
                }
            }
        }
    }

    private func send(context: ChannelHandlerContext, _ parts: [HTTPClientRequestPart]) {
        let answer = AnswerHandler(caller: context.channel, callerContext: context, owner: self)
        upstreamConnection.send(parts, context: context) { pipeline in
            try pipeline.addHTTPClientHandlers()
            try pipeline.addHandler(answer)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstreamConnection.close()
        context.fireChannelInactive()
    }
}

/// The upstream side: every response part goes straight to the caller's pipeline.
final class AnswerHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let caller: Channel
    let callerContext: ChannelHandlerContext
    let owner: CallerHandler
    var parts: [HTTPServerResponsePart] = []

    init(caller: Channel, callerContext: ChannelHandlerContext, owner: CallerHandler) {
        self.caller = caller
        self.callerContext = callerContext
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let waiting = owner.collected {
            switch unwrapInboundIn(data) {
            case .head(let head):
                parts = [.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: head.headers))]
            case .body(let bytes):
                parts.append(.body(.byteBuffer(bytes)))
            case .end:
                parts.append(.end(nil))
                owner.collected = nil
                waiting.resume(returning: parts)
            }
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            let out = HTTPResponseHead(version: .http1_1, status: head.status, headers: head.headers)
            callerContext.write(NIOAny(HTTPServerResponsePart.head(out)), promise: nil)
        case .body(let bytes):
            callerContext.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(bytes))), promise: nil)
        case .end:
            callerContext.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        caller.close(promise: nil)
    }
}

/// `raw` and `lite` modes: no NIO HTTP codec. `raw` pipes the caller's bytes to its upstream
/// connection and the upstream's back (a TCP proxy, as nginx's `stream` module is): what is left
/// when the codec is taken away — NIO's channels, the event loop and the kernel. `lite` frames
/// each message with ``LiteFraming`` and forwards it whole: what framing costs without llhttp,
/// `HTTPHeaders` and part events.
final class PipeCallerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let upstream: SocketAddress
    let framed: Bool
    let upstreamConnection: LazyUpstream<ByteBuffer>
    var framer = LiteFraming()

    init(upstream: SocketAddress, framed: Bool) {
        self.upstream = upstream
        self.framed = framed
        upstreamConnection = LazyUpstream(upstream: upstream)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard framed else { return forward(bytes, context: context) }
        framer.append(bytes)
        while let message = framer.nextMessage() { forward(message, context: context) }
    }

    private func forward(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        let pipe = PipeAnswerHandler(to: context.channel, framed: framed)
        upstreamConnection.send([bytes], context: context) { pipeline in try pipeline.addHandler(pipe) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        upstreamConnection.close()
        context.fireChannelInactive()
    }
}

/// A caller connection's own upstream connection, opened on first use on the caller's loop;
/// what is sent before it is up waits for it.
final class LazyUpstream<Part> {
    let upstream: SocketAddress
    var channel: Channel?
    var pending: [Part] = []
    var connecting = false

    init(upstream: SocketAddress) {
        self.upstream = upstream
    }

    /// `handlers` sets up the upstream channel's pipeline when it is opened.
    func send(
        _ parts: [Part], context: ChannelHandlerContext, handlers: @escaping (ChannelPipeline.SynchronousOperations) throws -> Void
    ) {
        if let channel {
            for part in parts { channel.write(part, promise: nil) }
            channel.flush()
            return
        }
        pending.append(contentsOf: parts)
        guard !connecting else { return }
        connecting = true
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try handlers(channel.pipeline.syncOperations) } }
            .connect(to: upstream)
            .assumeIsolated()
            .whenComplete { result in
                self.connecting = false
                switch result {
                case .success(let channel):
                    self.channel = channel
                    for part in self.pending { channel.write(part, promise: nil) }
                    self.pending = []
                    channel.flush()
                case .failure:
                    context.close(promise: nil)
                }
            }
    }

    func close() {
        channel?.close(promise: nil)
    }
}

/// The upstream side of `raw` and `lite` modes: each read (`raw`) or each whole answer (`lite`)
/// goes to the caller as it came.
final class PipeAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let caller: Channel
    let framed: Bool
    var framer = LiteFraming()

    init(to caller: Channel, framed: Bool) {
        self.caller = caller
        self.framed = framed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard framed else { return caller.writeAndFlush(bytes, promise: nil) }
        framer.append(bytes)
        while let message = framer.nextMessage() { caller.writeAndFlush(message, promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        caller.close(promise: nil)
    }
}

/// HTTP/1.1 framing by a minimal hand parser: each head's lines split into name and value ranges
/// (no strings), `content-length` read, the message cut out whole. A measure, not a parser to
/// serve with (no chunked bodies, no limits, no validation).
struct LiteFraming {
    private var received = ByteBuffer()

    mutating func append(_ bytes: ByteBuffer) {
        if received.readableBytes == 0 {
            received = bytes
        } else {
            var bytes = bytes
            received.writeBuffer(&bytes)
        }
    }

    mutating func nextMessage() -> ByteBuffer? {
        guard let length = Self.messageLength(received) else { return nil }
        return received.readSlice(length: length)
    }

    /// The length of the whole message at the start of `bytes` (head and body), once complete.
    static func messageLength(_ bytes: ByteBuffer) -> Int? {
        bytes.withUnsafeReadableBytes { raw -> Int? in
            let count = raw.count
            var lineStart = 0
            var contentLength = 0
            var index = 0
            var fields: [(Range<Int>, Range<Int>)] = []
            fields.reserveCapacity(16)
            while index + 1 < count {
                guard raw[index] == 13, raw[index + 1] == 10 else {
                    index += 1
                    continue
                }
                if index == lineStart {
                    let total = index + 2 + contentLength
                    return total <= count ? total : nil
                }
                if lineStart > 0, let colon = raw[lineStart..<index].firstIndex(of: UInt8(ascii: ":")) {
                    var valueStart = colon + 1
                    while valueStart < index, raw[valueStart] == 32 { valueStart += 1 }
                    fields.append((lineStart..<colon, valueStart..<index))
                    // `content-length`, by its length and two of its letters: enough for a measure.
                    if colon - lineStart == 14, raw[lineStart] | 0x20 == UInt8(ascii: "c"), raw[lineStart + 8] | 0x20 == UInt8(ascii: "l") {
                        var value = 0
                        for byte in raw[valueStart..<index] where byte >= 48 && byte <= 57 { value = value * 10 + Int(byte - 48) }
                        contentLength = value
                    }
                }
                index += 2
                lineStart = index
            }
            return nil
        }
    }
}

extension PipeCallerHandler: @unchecked Sendable {}
extension PipeAnswerHandler: @unchecked Sendable {}
extension LazyUpstream: @unchecked Sendable {}
extension CallerHandler: @unchecked Sendable {}
extension AnswerHandler: @unchecked Sendable {}

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4 else {
    print("usage: NIOProxyFloor LISTEN_HOST:PORT UPSTREAM_HOST:PORT [task|raw|lite]")
    exit(2)
}
func address(_ text: String) throws -> SocketAddress {
    let parts = text.split(separator: ":")
    return try SocketAddress(ipAddress: String(parts[0]), port: Int(parts[1])!)
}
let listen = try address(arguments[1])
let upstream = try address(arguments[2])
let taskPerRequest = arguments.count == 4 && arguments[3] == "task"
let raw = arguments.count == 4 && arguments[3] == "raw"
let lite = arguments.count == 4 && arguments[3] == "lite"
// As the router does: Swift concurrency runs on the event loops.
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
let group = MultiThreadedEventLoopGroup.singleton
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            if raw || lite {
                try channel.pipeline.syncOperations.addHandler(PipeCallerHandler(upstream: upstream, framed: lite))
                return
            }
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
            try channel.pipeline.syncOperations.addHandler(CallerHandler(upstream: upstream, upstreamHost: arguments[2], taskPerRequest: taskPerRequest))
        }
    }
    .bind(to: listen).wait()
print("listening on \(server.localAddress!)")
try server.closeFuture.wait()
