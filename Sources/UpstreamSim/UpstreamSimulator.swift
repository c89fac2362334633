import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A fake model API server — Anthropic's Messages API, or Bedrock's, Vertex's or OpenAI's form
/// (``SimPlatform``) — that follows a ``FaultScript``. Tests, the demo and the benchmarks put it
/// behind Switchyard to produce exactly the failures they need.
///
/// A request may pick its own fault with the `x-sim-fault` header (same syntax as one script step);
/// otherwise requests take the script's steps in arrival order.
public final class UpstreamSimulator: Sendable {
    /// What the simulator saw of one request (for assertions).
    public struct ReceivedRequest: Sendable {
        public var method: String
        public var uri: String
        public var headers: [(String, String)]
        public var body: String
        public var model: String?

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    public let name: String
    public let platform: SimPlatform
    /// Temporary credentials and tokens this simulator issued, and how often it was asked.
    public let issuer: SimIssuer
    /// The Message Batches API it serves (Anthropic mode).
    public let batches = SimBatches()
    /// The rate limits its Anthropic answers report (Anthropic mode).
    public let rateLimits = SimRateLimits()
    let dialect: any SimDialect
    private let script: Mutex<FaultScript>
    private let counter = Atomic<Int>(0)
    let connections = Atomic<Int>(0)
    private let received = Mutex<[ReceivedRequest]>([])
    private let blocks = Mutex<[String]>(["text"])
    private let faultPacing = Mutex<(deltas: Int, interval: Duration)>((5, .zero))
    private let channel: Mutex<(any Channel)?> = Mutex(nil)
    private let group: any EventLoopGroup
    /// How many received requests are kept for ``receivedRequests``.
    private let keep: Int

    public init(
        name: String = "sim", script: FaultScript = FaultScript(steps: []), platform: SimPlatform = .anthropic,
        options: SimPlatformOptions = SimPlatformOptions(), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, keep: Int = 10_000
    ) {
        self.name = name
        self.platform = platform
        let offset = options.clockOffsetSeconds
        issuer = SimIssuer(lifetimeSeconds: options.issuedLifetimeSeconds, now: { Int64(Date().timeIntervalSince1970) + offset })
        switch platform {
        case .anthropic: dialect = AnthropicDialect(name: name)
        case .bedrock: dialect = BedrockDialect(options: options, issuer: issuer)
        case .vertex: dialect = VertexDialect(options: options, issuer: issuer)
        case .openai: dialect = OpenAIDialect(options: options)
        }
        self.script = Mutex(script)
        self.group = group
        self.keep = keep
    }

    /// Binds and starts serving; returns the bound port.
    @discardableResult
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(SimConnectionHandler(simulator: self))
                }
            }
        let bound = try await bootstrap.bind(host: host, port: port).get()
        channel.withLock { $0 = bound }
        return bound.localAddress?.port ?? port
    }

    public var port: Int? { channel.withLock { $0?.localAddress?.port } }

    public func stop() async {
        let bound = channel.withLock { channel -> (any Channel)? in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
    }

    /// Replaces the script and restarts its step count.
    public func setScript(_ newScript: FaultScript) {
        script.withLock { $0 = newScript }
        counter.store(0, ordering: .sequentiallyConsistent)
    }

    /// Requests that reached the simulator (the most recent `keep`).
    public var receivedRequests: [ReceivedRequest] { received.withLock { $0 } }

    public var requestCount: Int { received.withLock { $0.count } }

    /// Connections currently open to the simulator (a cancelled upstream call shows up here as a
    /// closed connection).
    public var openConnections: Int { connections.load(ordering: .relaxed) }

    /// The content blocks of streamed answers, in order: `text` (default), `thinking`, `tool_use`.
    /// Each block gets the step's number of deltas.
    public var streamBlocks: [String] {
        get { blocks.withLock { $0 } }
        set { blocks.withLock { $0 = newValue } }
    }

    /// Content deltas per block, and the pause between events, of the streams that fault steps
    /// (`sse-error`, `cut`, `stall`, `exception`, `crc`, `truncate`) send. Default: 5, none.
    public var faultStream: (deltas: Int, interval: Duration) {
        get { faultPacing.withLock { $0 } }
        set { faultPacing.withLock { $0 = newValue } }
    }

    public func resetReceived() {
        received.withLock { $0.removeAll() }
    }

    func nextFault(override: String?) -> Fault {
        if let override, let parsed = try? FaultScript.parse(override), let first = parsed.steps.first {
            return first.fault
        }
        let index = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        return script.withLock { $0.fault(forRequest: index) }
    }

    func record(_ request: ReceivedRequest) {
        received.withLock { list in
            list.append(request)
            if list.count > keep { list.removeFirst(list.count - keep) }
        }
    }

    func requestID() -> String {
        "req_\(name)_\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// Serves one connection of the simulator, on its event loop.
final class SimConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let simulator: UpstreamSimulator
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var scheduled: [Scheduled<Void>] = []
    private var active = true
    /// The rate-limit header lines of the answer being written (Anthropic Messages answers).
    private var rateLimitLines: [(String, String)] = []

    init(simulator: UpstreamSimulator) {
        self.simulator = simulator
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            respond(context: context, head: head, body: body)
            self.head = nil
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        simulator.connections.add(1, ordering: .relaxed)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        simulator.connections.subtract(1, ordering: .relaxed)
        active = false
        scheduled.forEach { $0.cancel() }
        scheduled.removeAll()
        context.fireChannelInactive()
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        if head.method == .GET, path == "/healthz" {
            writeJSON(context: context, status: .ok, json: #"{"status":"ok"}"#, extraHeaders: [])
            return
        }
        let dialect = simulator.dialect
        let classified = dialect.classify(method: head.method, uri: head.uri, headers: head.headers, body: body, requestID: "")
        var model: String?
        switch classified {
        case .messages(let name, _, _): model = name
        case .countTokens, .respond: model = (SimJSON.object(body)?["model"] as? String)
        case .credentials, .batches: break
        }
        if case .credentials = classified {
            // Token and credential endpoints are not model traffic: they are counted by the issuer.
        } else {
            simulator.record(
                .init(method: "\(head.method)", uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: String(buffer: body), model: model)
            )
        }
        switch classified {
        case .respond(let response), .credentials(let response):
            write(response, context: context)
        case .batches(let segments):
            if head.method == .POST, segments.isEmpty,
                case .status(let code, let retryAfter, let shouldRetry) = simulator.nextFault(override: head.headers.first(name: "x-sim-fault"))
            {
                writeError(context: context, status: code, name: nil, retryAfter: retryAfter, shouldRetry: shouldRetry)
                return
            }
            write(simulator.batches.handle(method: head.method, segments: segments, body: body), context: context)
        case .countTokens:
            switch simulator.nextFault(override: head.headers.first(name: "x-sim-fault")) {
            case .status(let code, let retryAfter, let shouldRetry):
                writeError(context: context, status: code, name: nil, retryAfter: retryAfter, shouldRetry: shouldRetry)
            case .platformError(let name, let code):
                writeError(context: context, status: code, name: name, retryAfter: nil, shouldRetry: nil)
            case let fault where fault.isBareError:
                perform(fault, context: context, answer: AnthropicAnswer(model: "count-tokens"), stream: false)
            default:
                writeJSON(context: context, status: .ok, json: dialect.countTokensAnswer(), extraHeaders: [])
            }
        case .messages(_, let stream, let answer):
            var fault = simulator.nextFault(override: head.headers.first(name: "x-sim-fault"))
            rateLimitLines = []
            if simulator.platform == .anthropic {
                let limits = simulator.rateLimits
                let nowMs = Int64((Date().timeIntervalSince1970 * 1000).rounded())
                guard limits.admit(nowMs: nowMs) else {
                    let (lines, resetIn) = limits.headers(nowMs: nowMs)
                    rateLimitLines = lines
                    writeError(context: context, status: 429, name: nil, retryAfter: .milliseconds(max(1000, resetIn)), shouldRetry: nil)
                    return
                }
                if case .drain(let drain) = fault { limits.drain(drain, nowMs: nowMs) }
                limits.spend(inputTokens: 12, outputTokens: 24, nowMs: nowMs)
                rateLimitLines = limits.headers(nowMs: nowMs).lines
            }
            if case .drain = fault { fault = FaultScript.defaultOK }
            perform(fault, context: context, answer: answer, stream: stream)
        }
    }

    private func perform(_ fault: Fault, context: ChannelHandlerContext, answer: any SimAnswer, stream: Bool) {
        let (faultDeltas, faultInterval) = simulator.faultStream
        switch fault {
        case .ok(let events, let interval):
            if stream {
                streamEvents(context: context, answer: answer, deltas: events, interval: interval, ending: .complete)
            } else {
                writeJSON(context: context, status: .ok, json: answer.json(deltas: events), extraHeaders: [])
            }
        case .status(let code, let retryAfter, let shouldRetry):
            writeError(context: context, status: code, name: nil, retryAfter: retryAfter, shouldRetry: shouldRetry)
        case .platformError(let name, let code):
            writeError(context: context, status: code, name: name, retryAfter: nil, shouldRetry: nil)
        case .untypedError(let code):
            write(simulator.dialect.untypedError(status: code, message: "simulated \(code) from \(simulator.name)"), context: context)
        case .htmlError(let code):
            let page = "<html><head><title>\(code) Bad Gateway</title></head><body><center><h1>\(code) Bad Gateway</h1></center></body></html>"
            writeJSON(context: context, status: HTTPResponseStatus(statusCode: code), json: page, contentType: "text/html", extraHeaders: [])
        case .emptyError(let code):
            writeJSON(context: context, status: HTTPResponseStatus(statusCode: code), json: "", contentType: "text/plain", extraHeaders: [])
        case .slowFirstByte(let delay):
            schedule(context: context, after: delay) { [self] in
                perform(.ok(events: 3, interval: .zero), context: context, answer: answer, stream: stream)
            }
        case .resetBeforeHeaders:
            reset(context: context)
        case .hang:
            break
        case .sseError(let after, let type):
            streamEvents(context: context, answer: answer, deltas: faultDeltas, interval: faultInterval, ending: .error(after: after, type: type, name: nil))
        case .exception(let after, let name):
            streamEvents(context: context, answer: answer, deltas: faultDeltas, interval: faultInterval, ending: .error(after: after, type: "api_error", name: name))
        case .cut(let after):
            streamEvents(context: context, answer: answer, deltas: faultDeltas, interval: faultInterval, ending: .cut(after: after))
        case .stall(let after):
            streamEvents(context: context, answer: answer, deltas: faultDeltas, interval: faultInterval, ending: .stall(after: after))
        case .corruptFrame(let after):
            streamEvents(context: context, answer: answer, deltas: faultDeltas, interval: faultInterval, ending: .corrupt(after: after))
        case .truncatedFrame(let after):
            streamEvents(context: context, answer: answer, deltas: faultDeltas, interval: faultInterval, ending: .truncate(after: after))
        case .invalidJSON:
            writeJSON(context: context, status: .ok, json: "this is not JSON {", extraHeaders: [])
        case .notAMessage:
            writeJSON(context: context, status: .ok, json: #"{"type":"completion","completion":"this is not a message"}"#, extraHeaders: [])
        case .huge(let bytes):
            writeHuge(context: context, bytes: bytes)
        case .malformedSSE:
            writeHead(context: context, status: .ok, contentType: simulator.dialect.streamContentType, length: nil, extraHeaders: [])
            let text = "event: message_start\ndata: {not json\n\nevent\ndata\n: comment\n\ndata: {\"type\":\"content_block_delta\"\n\n"
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .endlessHeaders:
            writeEndlessHeaders(context: context)
        case .drain:
            // Set aside for Anthropic Messages answers before this point; elsewhere a plain answer.
            perform(FaultScript.defaultOK, context: context, answer: answer, stream: stream)
        }
    }

    // MARK: Writing

    private func writeHead(context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String, length: Int?, extraHeaders: [(String, String)]) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        if let length { headers.add(name: "content-length", value: String(length)) }
        headers.add(name: simulator.dialect.requestIDHeader, value: simulator.requestID())
        headers.add(name: "x-sim-name", value: simulator.name)
        for (name, value) in simulator.dialect.responseHeaders { headers.add(name: name, value: value) }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        for (name, value) in rateLimitLines { headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
    }

    private func writeJSON(
        context: ChannelHandlerContext, status: HTTPResponseStatus, json: String, contentType: String = "application/json", extraHeaders: [(String, String)]
    ) {
        let buffer = ByteBuffer(string: json)
        writeHead(context: context, status: status, contentType: contentType, length: buffer.readableBytes, extraHeaders: extraHeaders)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func writeError(context: ChannelHandlerContext, status: Int, name: String?, retryAfter: Duration?, shouldRetry: Bool?) {
        var response = simulator.dialect.error(status: status, name: name, message: "simulated \(status) from \(simulator.name)", requestID: "")
        if let retryAfter {
            // The script's value wins over a platform's default one.
            response.headers.removeAll { $0.0 == "retry-after" }
            let seconds = Double(retryAfter.components.seconds) + Double(retryAfter.components.attoseconds) / 1e18
            response.headers.append(("retry-after", seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)))
        }
        if let shouldRetry { response.headers.append(("x-should-retry", shouldRetry ? "true" : "false")) }
        write(response, context: context)
    }

    private func write(_ response: SimResponse, context: ChannelHandlerContext) {
        let contentType = response.headers.first { $0.0 == "content-type" }?.1 ?? "application/json"
        writeJSON(
            context: context, status: HTTPResponseStatus(statusCode: response.status), json: response.body, contentType: contentType,
            extraHeaders: response.headers.filter { $0.0 != "content-type" }
        )
    }

    private enum StreamEnding {
        case complete
        /// `type`: Anthropic's error type; `name`: the platform's own exception, when the fault named one.
        case error(after: Int, type: String, name: String?)
        case cut(after: Int)
        case stall(after: Int)
        /// The next event's frame goes out with a broken CRC (event-stream platforms; a cut elsewhere).
        case corrupt(after: Int)
        /// Half of the next event's frame, then the body ends cleanly.
        case truncate(after: Int)
    }

    private func streamEvents(context: ChannelHandlerContext, answer: any SimAnswer, deltas: Int, interval: Duration, ending: StreamEnding) {
        let dialect = simulator.dialect
        writeHead(context: context, status: .ok, contentType: dialect.streamContentType, length: nil, extraHeaders: [("cache-control", "no-cache")])
        context.flush()
        let events = answer.streamEvents(deltas: deltas, blocks: simulator.streamBlocks)
        var index = 0
        func send(_ buffer: ByteBuffer) {
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        func sendNext() {
            guard active else { return }
            switch ending {
            case .error(let after, let type, let name) where index == after:
                send(dialect.streamFailure(anthropicType: type, name: name))
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            case .cut(let after) where index == after:
                // Let the events already written arrive first: a reset discards data the peer
                // has not read yet, which would turn a cut mid-stream into a cut before it. 50 ms
                // was once too short for a client on two cores busy with the whole test suite.
                schedule(context: context, after: .milliseconds(200)) { [self] in reset(context: context) }
                return
            case .stall(let after) where index == after:
                return
            case .corrupt(let after) where index == after && index < events.count:
                var frame = dialect.streamEvent(name: events[index].name, data: events[index].data)
                let last = frame.writerIndex - 1
                frame.setInteger(frame.getInteger(at: last, as: UInt8.self)! ^ 0x01, at: last)
                send(frame)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            case .truncate(let after) where index == after && index < events.count:
                let frame = dialect.streamEvent(name: events[index].name, data: events[index].data)
                send(frame.getSlice(at: frame.readerIndex, length: frame.readableBytes / 2)!)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            default:
                break
            }
            guard index < events.count else {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            send(dialect.streamEvent(name: events[index].name, data: events[index].data))
            index += 1
            if interval > .zero {
                schedule(context: context, after: interval) { sendNext() }
            } else {
                sendNext()
            }
        }
        sendNext()
    }

    private func writeHuge(context: ChannelHandlerContext, bytes: Int) {
        writeHead(context: context, status: .ok, contentType: "application/json", length: bytes, extraHeaders: [])
        let prefix = #"{"type":"message","content":[{"type":"text","text":""#
        let suffix = #""}]}"#
        var remaining = bytes - prefix.utf8.count - suffix.utf8.count
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: prefix)))), promise: nil)
        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 << 10)
        func writeMore() {
            guard active else { return }
            while remaining > 0 && context.channel.isWritable {
                let size = min(remaining, chunk.readableBytes)
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk.getSlice(at: 0, length: size)!))), promise: nil)
                remaining -= size
            }
            if remaining > 0 {
                context.flush()
                schedule(context: context, after: .milliseconds(1)) { writeMore() }
                return
            }
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: suffix)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        writeMore()
    }

    private func writeEndlessHeaders(context: ChannelHandlerContext) {
        // Bypass the HTTP encoder: write raw bytes from the encoder's position in the pipeline.
        guard let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) else { return }
        encoder.writeAndFlush(NIOAny(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")), promise: nil)
        func drip() {
            guard active else { return }
            encoder.writeAndFlush(NIOAny(ByteBuffer(string: "x-filler: \(String(repeating: "a", count: 64))\r\n")), promise: nil)
            schedule(context: context, after: .milliseconds(50)) { drip() }
        }
        drip()
    }

    private func reset(context: ChannelHandlerContext) {
        // SO_LINGER 0 makes close send RST: a real reset, not a clean FIN.
        if let provider = context.channel as? SocketOptionProvider {
            _ = provider.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        }
        context.close(promise: nil)
    }

    private func schedule(context: ChannelHandlerContext, after delay: Duration, _ body: @escaping () -> Void) {
        let task = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: .nanoseconds(Int64(delay.components.seconds) * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)) {
            body()
        }
        scheduled.append(task)
        if scheduled.count > 64 { scheduled.removeFirst(32) }
    }
}
