import DequeModule
import NIOCore
import NIOHTTP1

/// The upstream side of ``PlainHTTP1Decoder``: answers, each paired with the request it answers,
/// as NIO's `HTTPResponseDecoder` pairs them (an answer to HEAD has no body; an answer nobody
/// asked for is an error). Those cases, and informational answers, are NIO's decoder's.
final class UpstreamResponseSide: PlainHTTP1Side {
    let limits: NIOHTTPDecoderLimitConfiguration
    let headLimits: SimpleHTTPHead.Limits
    /// Requests sent whose answer has not begun.
    private var awaiting = Deque<HTTPRequestHead>()
    /// NIO's decoder, once it has the connection.
    private var decoder: HTTPResponseDecoder?
    /// The last answer head read here (``SimpleHTTPHead`` takes what is the same from it).
    private var previous: HTTPResponseHead?
    /// Requests sent whose answer has not ended: bytes may arrive only while there is one.
    private var answersDue = 0
    /// Bytes arrived since the current request was sent.
    private(set) var answerBegan = false
    /// NIO's decoder passed an answer's end and may have read on past it (``HeldBytesWatch``).
    fileprivate var bytesAfterEnd = false
    /// Answers NIO's decoder ended, and whether the last one was chunked.
    fileprivate var answersEnded = 0
    fileprivate var lastAnswerChunked = false

    init(limits: NIOHTTPDecoderLimitConfiguration = .init()) {
        self.limits = limits
        headLimits = SimpleHTTPHead.Limits(limits)
    }

    /// A request went out on this connection: its answer comes next (after those of any before it).
    func requestSent(_ head: HTTPRequestHead) {
        answersDue += 1
        answerBegan = false
        bytesAfterEnd = false
        if let decoder {
            decoder.write(data: .head(head))
        } else {
            awaiting.append(head)
        }
    }

    func head(_ buffer: ByteBuffer) -> SimpleHTTPHead.Parsed<NIOAny> {
        guard let request = awaiting.first, request.method != .HEAD, request.method != .CONNECT else { return .declined }
        return SimpleHTTPHead.response(buffer, limits: headLimits, previous: previous).map { head in
            awaiting.removeFirst()
            previous = head
            return NIOAny(HTTPClientResponsePart.head(head))
        }
    }

    func body(_ bytes: ByteBuffer) -> NIOAny { NIOAny(HTTPClientResponsePart.body(bytes)) }
    var end: NIOAny { NIOAny(HTTPClientResponsePart.end(nil)) }

    func handOver(insideChunkedBody replay: ChunkedBodyReader.Replay?) -> (handlers: [any ChannelHandler], standIn: ByteBuffer?) {
        let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop, limitConfiguration: limits)
        var standIn: ByteBuffer?
        if let replay {
            // The answer being read was paired with its request here; the stand-in head the
            // decoder reads first pairs with a stand-in request.
            decoder.write(data: .head(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/")))
            standIn = ByteBuffer(string: Self.chunkedStandInHead + replay.bytes)
            lastAnswerChunked = true
        }
        for request in awaiting { decoder.write(data: .head(request)) }
        awaiting.removeAll()
        self.decoder = decoder
        let watch = ByteToMessageHandler(HeldBytesWatch(decoder: decoder, side: self))
        guard let replay else { return ([watch], nil) }
        return ([watch, StandInFilter(bodyBytes: replay.bodyBytes)], standIn)
    }

    /// What NIO's decoder reads before the replay of a chunked body it takes over in the middle.
    static let chunkedStandInHead = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"

    /// The connection read an answer's head (from either decoder).
    func headArrived(_ head: HTTPResponseHead) {
        guard decoder != nil else { return }
        lastAnswerChunked = head.headers[canonicalForm: "transfer-encoding"].last?.lowercased() == "chunked"
    }

    /// The connection passed the end of the current answer on to its caller.
    func answerEnded() {
        answersDue = max(0, answersDue - 1)
        answersEnded += 1
    }

    /// Bytes arrived from the upstream. Between answers none may: they are refused (the
    /// connection closes) before they can be read as the next request's answer.
    func bytesArrived() -> HTTP1ClientError? {
        guard answersDue > 0 else { return Self.strayBytes }
        answerBegan = true
        return nil
    }

    /// Bytes came after the end of the last answer, in the read that brought the end.
    var hasPendingBytes: Bool { bytesAfterEnd }

    /// Bytes refused between answers.
    static let strayBytes = HTTP1ClientError(.invalidResponse, "the upstream sent bytes while no request was waiting for an answer")
}

/// NIO's response decoder, watched for bytes after an answer's end in the pass that ends it.
///
/// NIO's decoder reads on past a message's end in the same pass, and keeps in its own state what
/// it read (a partial status line leaves no trace in the buffer): those bytes would become the
/// next request's answer. So a pass that ends an answer must end exactly where it does. A chunked
/// body always ends with an empty line, so a pass whose bytes end otherwise read past it; the
/// end of any other framing cannot be told from the bytes, and such a connection is not reused.
private struct HeldBytesWatch: ByteToMessageDecoder {
    typealias InboundOut = HTTPClientResponsePart

    let decoder: HTTPResponseDecoder
    let side: UpstreamResponseSide

    mutating func decoderAdded(context: ChannelHandlerContext) {
        decoder.decoderAdded(context: context)
    }

    mutating func decoderRemoved(context: ChannelHandlerContext) {
        decoder.decoderRemoved(context: context)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let ended = side.answersEnded
        let endsWithEmptyLine = Self.endsWithEmptyLine(buffer)
        defer {
            if side.answersEnded != ended, buffer.readableBytes > 0 || !side.lastAnswerChunked || !endsWithEmptyLine {
                side.bytesAfterEnd = true
            }
        }
        return try decoder.decode(context: context, buffer: &buffer)
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
    }

    private static func endsWithEmptyLine(_ buffer: ByteBuffer) -> Bool {
        let view = buffer.readableBytesView
        guard view.count >= 4 else { return false }
        let end = view.endIndex
        return view[end - 4] == 13 && view[end - 3] == 10 && view[end - 2] == 13 && view[end - 1] == 10
    }
}

/// Keeps the stand-in parts of a hand-over inside a chunked body (``ChunkedBodyReader/Replay``)
/// from the connection: the stand-in head, and the stand-in body bytes. Everything after passes.
private final class StandInFilter: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart

    private var headLeft = true
    private var bodyBytesLeft: Int

    init(bodyBytes: Int) {
        bodyBytesLeft = bodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard headLeft || bodyBytesLeft > 0 else { return context.fireChannelRead(data) }
        switch unwrapInboundIn(data) {
        case .head where headLeft:
            headLeft = false
        case .body(var bytes) where !headLeft && bodyBytesLeft > 0:
            let dropped = min(bodyBytesLeft, bytes.readableBytes)
            bodyBytesLeft -= dropped
            bytes.moveReaderIndex(forwardBy: dropped)
            if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(bytes))) }
        default:
            context.fireChannelRead(data)
        }
    }
}
