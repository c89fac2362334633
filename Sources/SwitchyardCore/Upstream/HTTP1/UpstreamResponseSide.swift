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

    init(limits: NIOHTTPDecoderLimitConfiguration = .init()) {
        self.limits = limits
        headLimits = SimpleHTTPHead.Limits(limits)
    }

    /// A request went out on this connection: its answer comes next (after those of any before it).
    func requestSent(_ head: HTTPRequestHead) {
        if let decoder {
            decoder.write(data: .head(head))
        } else {
            awaiting.append(head)
        }
    }

    func head(_ buffer: ByteBuffer) -> SimpleHTTPHead.Parsed<NIOAny> {
        guard let request = awaiting.first, request.method != .HEAD, request.method != .CONNECT else { return .declined }
        switch SimpleHTTPHead.response(buffer, limits: headLimits, previous: previous) {
        case .head(let head, let length, let bodyLength):
            awaiting.removeFirst()
            previous = head
            return .head(NIOAny(HTTPClientResponsePart.head(head)), length: length, bodyLength: bodyLength)
        case .incomplete: return .incomplete
        case .declined: return .declined
        }
    }

    func body(_ bytes: ByteBuffer) -> NIOAny { NIOAny(HTTPClientResponsePart.body(bytes)) }
    var end: NIOAny { NIOAny(HTTPClientResponsePart.end(nil)) }

    func handOver() -> any ChannelHandler {
        let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop, limitConfiguration: limits)
        for request in awaiting { decoder.write(data: .head(request)) }
        awaiting.removeAll()
        self.decoder = decoder
        return ByteToMessageHandler(decoder)
    }
}
