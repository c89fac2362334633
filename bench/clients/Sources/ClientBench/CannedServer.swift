import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The fake upstream: a one-loop NIO HTTP/1.1 server answering every request with the same
/// short Messages JSON. The benchmark runs it in a child process so that its CPU is not counted.
enum CannedServer {
    static let answer = #"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"Hello! How can I help you today?"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":9}}"#

    /// Binds to a free loopback port, prints it, and serves until killed.
    static func run() async throws -> Never {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let answer = ByteBuffer(string: Self.answer)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(CannedAnswer(answer: answer))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        print(channel.localAddress!.port!)
        fflush(nil)
        try await channel.closeFuture.get()
        exit(0)
    }
}

/// Answers every request with the same JSON.
final class CannedAnswer: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let answer: ByteBuffer
    let headers: HTTPHeaders

    init(answer: ByteBuffer) {
        self.answer = answer
        headers = ["content-type": "application/json", "content-length": String(answer.readableBytes), "request-id": "req_bench"]
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(answer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
