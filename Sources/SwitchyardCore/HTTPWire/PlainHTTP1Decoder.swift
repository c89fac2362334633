import NIOCore
import NIOHTTP1

/// An HTTP/1 decoder that reads plain messages itself (``SimpleHTTPHead``, and an answer's chunks
/// with ``ChunkedBodyReader``) and hands the connection to NIO's decoder at the first byte that is
/// not plain, for good: NIO's decoder is added right after this handler and gets every byte from
/// there on. At a message boundary NIO's decoder starts where a message starts, as if it had read
/// the connection from its first byte. Inside a chunked body it is first fed a stand-in head and
/// the framing read so far (``ChunkedBodyReader/Replay``), whose parts are kept from the handlers
/// after; either way they see the same parts and errors for the same bytes.
///
/// One class for both sides; ``PlainHTTP1Side`` is what differs (``CallerRequestSide``,
/// ``UpstreamResponseSide``). Not generic over it: NIO calls a handler through its protocol, and
/// a generic class's methods would run unspecialized, looking up type metadata for every part.
final class PlainHTTP1Decoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    /// The side's parts, already wrapped.
    typealias InboundOut = NIOAny

    let side: any PlainHTTP1Side
    /// Bytes of a head still arriving.
    private var pending: ByteBuffer?
    /// Bytes read while a part was being passed on (see `channelRead`).
    private var arrived: ByteBuffer?
    /// Body bytes the current message still has to bring.
    private var bodyLeft = 0
    /// The framing of the current message's chunked body, while one is read.
    private var chunks: ChunkedBodyReader?
    private(set) var handedOver = false
    private var decoding = false

    init(side: any PlainHTTP1Side) {
        self.side = side
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let refusal = side.bytesArrived() {
            context.fireErrorCaught(refusal)
            return
        }
        if handedOver { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        if decoding {
            // A handler after this one made the channel read again from within a part: the bytes
            // are taken when the parts before them have been passed on.
            if arrived == nil { arrived = bytes } else { arrived!.writeBuffer(&bytes) }
            return
        }
        decoding = true
        defer { decoding = false }
        var next: ByteBuffer? = bytes
        while var buffer = next {
            if var held = pending {
                pending = nil
                held.writeBuffer(&buffer)
                buffer = held
            }
            decode(&buffer, context: context)
            next = arrived
            arrived = nil
            if handedOver, let rest = next { return context.fireChannelRead(NIOAny(rest)) }
        }
    }

    private func decode(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        while buffer.readableBytes > 0 {
            if bodyLeft > 0 {
                let length = min(bodyLeft, buffer.readableBytes)
                bodyLeft -= length
                context.fireChannelRead(side.body(buffer.readSlice(length: length)!))
                if bodyLeft == 0 { context.fireChannelRead(side.end) }
                continue
            }
            if chunks != nil {
                switch chunks!.next(&buffer) {
                case .data(let bytes):
                    context.fireChannelRead(side.body(bytes))
                case .end:
                    chunks = nil
                    context.fireChannelRead(side.end)
                case .needMore:
                    return
                case .declined:
                    handOver(buffer, context: context, insideChunkedBody: chunks!.replay)
                    buffer.clear()
                    return
                }
                continue
            }
            if let refusal = side.bytesArrived() {
                // The message before ended and nothing else is due: these bytes are nobody's.
                buffer.clear()
                context.fireErrorCaught(refusal)
                return
            }
            switch side.head(buffer) {
            case .head(let head, let length, .length(let bodyLength)):
                buffer.moveReaderIndex(forwardBy: length)
                bodyLeft = bodyLength
                context.fireChannelRead(head)
                if bodyLength == 0 { context.fireChannelRead(side.end) }
            case .head(let head, let length, .chunked):
                buffer.moveReaderIndex(forwardBy: length)
                chunks = ChunkedBodyReader()
                context.fireChannelRead(head)
            case .incomplete:
                pending = buffer
                buffer.clear()
                return
            case .declined:
                handOver(buffer, context: context)
                buffer.clear()
                return
            }
        }
    }

    /// Gives the connection to NIO's decoder from `buffer`'s first byte on. Inside a chunked body,
    /// the decoder is first brought to where ``ChunkedBodyReader`` stopped (`replay`).
    private func handOver(_ buffer: ByteBuffer, context: ChannelHandlerContext, insideChunkedBody replay: ChunkedBodyReader.Replay? = nil) {
        handedOver = true
        pending = nil
        chunks = nil
        let decoder = side.handOver(insideChunkedBody: replay)
        do {
            try context.pipeline.syncOperations.addHandlers(decoder.handlers, position: .after(self))
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        if let standIn = decoder.standIn { context.fireChannelRead(NIOAny(standIn)) }
        if buffer.readableBytes > 0 || decoder.standIn == nil { context.fireChannelRead(NIOAny(buffer)) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        endOfInput(context: context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent { endOfInput(context: context) }
        context.fireUserInboundEventTriggered(event)
    }

    /// The input ends inside a message: part of a head goes to NIO's decoder, which refuses it as
    /// it would have (an unknown method, or the stream ending early); a body cut short is the
    /// error NIO's decoder gives for one.
    private func endOfInput(context: ChannelHandlerContext) {
        guard !handedOver else { return }
        if let held = pending, held.readableBytes > 0 {
            handOver(held, context: context)
        } else if let chunks {
            // NIO's decoder, standing where the reader stood, says how a body cut short ends.
            handOver(ByteBuffer(), context: context, insideChunkedBody: chunks.replay)
        } else if bodyLeft > 0 {
            bodyLeft = 0
            context.fireErrorCaught(HTTPParserError.invalidEOFState)
        }
    }
}

/// What one side of ``PlainHTTP1Decoder`` reads, and the NIO decoder it hands over to. A class:
/// the decoder's side keeps state (the requests an answer may pair with) that others update while
/// the decoder passes a part on.
protocol PlainHTTP1Side: AnyObject {
    /// The head at the start of `buffer` as a part, or why there is none yet.
    func head(_ buffer: ByteBuffer) -> SimpleHTTPHead.Parsed<NIOAny>
    func body(_ bytes: ByteBuffer) -> NIOAny
    var end: NIOAny { get }
    /// NIO's decoder for the rest of the connection, told what it needs to know; inside a chunked
    /// body, with the bytes that bring it there (`standIn`), whose parts it must not pass on.
    func handOver(insideChunkedBody replay: ChunkedBodyReader.Replay?) -> (handlers: [any ChannelHandler], standIn: ByteBuffer?)
    /// Bytes arrived; an error when none may now (they are not read).
    func bytesArrived() -> HTTP1ClientError?
}

/// The caller side: requests.
final class CallerRequestSide: PlainHTTP1Side {
    let limits: NIOHTTPDecoderLimitConfiguration
    let headLimits: SimpleHTTPHead.Limits

    init(limits: NIOHTTPDecoderLimitConfiguration) {
        self.limits = limits
        headLimits = SimpleHTTPHead.Limits(limits)
    }

    /// The last request head read here (``SimpleHTTPHead`` takes what is the same from it).
    private var previous: HTTPRequestHead?

    func head(_ buffer: ByteBuffer) -> SimpleHTTPHead.Parsed<NIOAny> {
        SimpleHTTPHead.request(buffer, limits: headLimits, previous: previous).map { head in
            previous = head
            return NIOAny(HTTPServerRequestPart.head(head))
        }
    }

    func body(_ bytes: ByteBuffer) -> NIOAny { NIOAny(HTTPServerRequestPart.body(bytes)) }
    var end: NIOAny { NIOAny(HTTPServerRequestPart.end(nil)) }

    /// A request's chunked body is never read here (``SimpleHTTPHead`` declines its head), so there
    /// is nothing to stand in for.
    func handOver(insideChunkedBody _: ChunkedBodyReader.Replay?) -> (handlers: [any ChannelHandler], standIn: ByteBuffer?) {
        ([ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits))], nil)
    }

    func bytesArrived() -> HTTP1ClientError? { nil }
}

extension PlainHTTP1Decoder {
    /// The caller side's decoder: NIO's `HTTPRequestDecoder` but for plain requests.
    static func callerRequests(limits: NIOHTTPDecoderLimitConfiguration) -> PlainHTTP1Decoder {
        PlainHTTP1Decoder(side: CallerRequestSide(limits: limits))
    }
}

extension SimpleHTTPHead.Limits {
    /// A head within both of NIO's size limits and its count.
    init(_ limits: NIOHTTPDecoderLimitConfiguration) {
        self.init(maxHeadLength: min(limits.maxHeaderFieldSize, limits.maxHeaderListSize), maxHeaderCount: limits.maxHeaderFieldCount)
    }
}
