import NIOCore
import NIOEmbedded
import NIOHTTP1

@testable import SwitchyardCore

/// Feeds the same bytes, cut into the same pieces, to one of Switchyard's HTTP/1 decoders
/// (``PlainHTTP1Decoder`` on either side) and to NIO's own, and records what
/// each passes on. Shared by the decoder tests and the fuzz target `FuzzHead` (fuzz/Sources/FuzzHead
/// links this file).
enum DecoderDifferential {
    enum Kind {
        case requests
        /// Answers to these requests, sent before the first byte comes.
        case responses(to: [HTTPMethod])
    }

    struct Outcome: Equatable, CustomStringConvertible {
        var events: [String]
        /// Whether Switchyard's decoder gave the connection to NIO's.
        var handedOver: Bool
        var description: String { events.joined(separator: "\n") + (handedOver ? "\n(handed over)" : "") }
    }

    static func run(_ pieces: [[UInt8]], _ kind: Kind, ours: Bool, limits: NIOHTTPDecoderLimitConfiguration) -> Outcome {
        let channel = EmbeddedChannel()
        let requests = Recorder<HTTPServerRequestPart>(event)
        let responses = Recorder<HTTPClientResponsePart>(event)
        let pipeline = channel.pipeline.syncOperations
        do {
            switch (kind, ours) {
            case (.requests, true):
                try pipeline.addHandler(PlainHTTP1Decoder.callerRequests(limits: limits))
            case (.requests, false):
                try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)))
            case (.responses(let methods), true):
                let answers = UpstreamResponseSide(limits: limits)
                for method in methods { answers.requestSent(HTTPRequestHead(version: .http1_1, method: method, uri: "/")) }
                try pipeline.addHandler(PlainHTTP1Decoder(side: answers))
            case (.responses(let methods), false):
                let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop, limitConfiguration: limits)
                for method in methods { decoder.write(data: .head(HTTPRequestHead(version: .http1_1, method: method, uri: "/"))) }
                try pipeline.addHandler(ByteToMessageHandler(decoder))
            }
            switch kind {
            case .requests: try pipeline.addHandler(requests)
            case .responses: try pipeline.addHandler(responses)
            }
        } catch {
            fatalError("pipeline setup: \(error)")
        }
        for piece in pieces {
            do {
                try channel.writeInbound(ByteBuffer(bytes: piece))
            } catch {
                requests.events.append("thrown \(error)")
                responses.events.append("thrown \(error)")
            }
        }
        let handedOver: Bool
        handedOver = ours && (try? pipeline.handler(type: PlainHTTP1Decoder.self))?.handedOver == true
        _ = try? channel.finish(acceptAlreadyClosed: true)
        switch kind {
        case .requests: return Outcome(events: requests.events, handedOver: handedOver)
        case .responses: return Outcome(events: responses.events, handedOver: handedOver)
        }
    }

    /// The input cut into pieces at `cuts` (positions into it, in any order).
    static func pieces(_ bytes: [UInt8], cuts: [Int]) -> [[UInt8]] {
        var pieces: [[UInt8]] = []
        var start = 0
        for cut in Set(cuts.map { min(max($0, 0), bytes.count) }).sorted() where cut > start {
            pieces.append(Array(bytes[start..<cut]))
            start = cut
        }
        pieces.append(Array(bytes[start...]))
        return pieces
    }

    private enum Event {
        case head(String)
        case body(ByteBuffer)
        case end(HTTPHeaders?)
    }

    private static func event(_ part: HTTPServerRequestPart) -> Event {
        switch part {
        case .head(let head):
            let headers = head.headers.map { "\($0.name)=\($0.value)" }.joined(separator: "|")
            return .head("head \(head.method) \(head.uri) \(head.version) keepAlive=\(head.isKeepAlive) [\(headers)]")
        case .body(let body): return .body(body)
        case .end(let trailers): return .end(trailers)
        }
    }

    private static func event(_ part: HTTPClientResponsePart) -> Event {
        switch part {
        case .head(let head):
            let headers = head.headers.map { "\($0.name)=\($0.value)" }.joined(separator: "|")
            return .head("head \(head.status.code) \(head.version) keepAlive=\(head.isKeepAlive) [\(headers)]")
        case .body(let body): return .body(body)
        case .end(let trailers): return .end(trailers)
        }
    }

    private final class Recorder<Part>: ChannelInboundHandler {
        typealias InboundIn = Part
        let describe: (Part) -> Event
        var events: [String] = []
        private var failed = false

        init(_ describe: @escaping (Part) -> Event) {
            self.describe = describe
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch describe(unwrapInboundIn(data)) {
            case .head(let text):
                events.append(text)
            case .body(let body):
                // Where a body is cut depends on the reads; what it holds must not.
                let bytes = String(decoding: body.readableBytesView, as: UTF8.self)
                if let last = events.last, last.hasPrefix("body ") {
                    events[events.count - 1] = last + bytes
                } else {
                    events.append("body " + bytes)
                }
            case .end(let trailers):
                events.append("end \(trailers.map { "\($0)" } ?? "-")")
            }
        }

        /// The first error only: after it the decoder is done (NIO's reports each later read as
        /// `dataReceivedInErrorState`, as many times as there are reads, which depends on where
        /// the bytes were cut), and the connection is closed by the handlers after it.
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            guard !failed else { return }
            failed = true
            events.append("error \(error)")
        }

        func channelInactive(context: ChannelHandlerContext) {
            events.append("inactive")
        }
    }
}
