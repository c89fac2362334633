import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SwitchyardCore

/// The fast path writes a whole answer as bytes of its own making (``ResponseOutlet``): they must be
/// what NIO's response encoder writes for the same head and body.
@Suite struct ResponseEncodingTests {
    static func nioBytes(status: Int, headers: HTTPHeaders, body: ByteBuffer) throws -> ByteBuffer {
        let channel = EmbeddedChannel(handler: HTTPResponseEncoder())
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
        try channel.writeOutbound(HTTPServerResponsePart.head(head))
        try channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(body)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        let written = try drain(channel)
        _ = try channel.finish()
        return written
    }

    /// Everything the encoder wrote since the last drain, as one buffer.
    static func drain(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        var written = ByteBuffer()
        while let part = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(var bytes) = part else {
                Issue.record("NIO's encoder wrote a file region")
                break
            }
            written.writeBuffer(&bytes)
        }
        return written
    }

    @Test(arguments: [200, 201, 400, 404, 429, 500, 529, 599])
    func aWholeAnswerIsTheBytesNIOsEncoderWrites(status: Int) throws {
        let body = ByteBuffer(string: #"{"type":"message","content":[{"type":"text","text":"\u00e9 \"quoted\""}]}"#)
        let headerSets: [HTTPHeaders] = [
            ["content-length": "\(body.readableBytes)"],
            [
                "content-type": "application/json", "request-id": "req_01", "x-request-id": "sy_0123456789abcdef",
                "x-switchyard-route": "default", "x-switchyard-model": "sonnet", "x-switchyard-attempts": "3",
                "Content-Length": "\(body.readableBytes)", "retry-after": "",
            ],
            ["content-length": "\(body.readableBytes)", "x-long": String(repeating: "v", count: 5000), "anthropic-ratelimit-requests-remaining": "99"],
        ]
        for headers in headerSets {
            let ours = ResponseOutlet.encode(status: status, headers: headers, body: body, allocator: ByteBufferAllocator())
            let nio = try Self.nioBytes(status: status, headers: headers, body: body)
            #expect(String(buffer: ours) == String(buffer: nio))
        }
    }

    /// A stream's body parts are framed by the fast path too (``PipelineResponseWriter/BodyWriter``):
    /// each part must be the bytes NIO's encoder writes for it after a head without a length.
    @Test(arguments: [1, 15, 16, 255, 4096, 70_000])
    func aStreamedPartIsTheChunkNIOsEncoderWrites(size: Int) throws {
        let part = ByteBuffer(string: String(repeating: "e", count: size))
        let channel = EmbeddedChannel(handler: HTTPResponseEncoder())
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-type": "text/event-stream"])
        try channel.writeOutbound(HTTPServerResponsePart.head(head))
        _ = try Self.drain(channel)
        try channel.writeOutbound(HTTPServerResponsePart.body(.byteBuffer(part)))
        let nio = try Self.drain(channel)
        _ = try channel.finish()
        let ours = PipelineResponseWriter.BodyWriter.chunk(part, allocator: ByteBufferAllocator())
        #expect(ours == nio)
        #expect(String(buffer: ours).hasPrefix(String(size, radix: 16) + "\r\n"))
    }

    @Test func anEmptyBodyEndsAtTheBlankLine() throws {
        let headers: HTTPHeaders = ["content-length": "0", "x-request-id": "sy_1"]
        let ours = ResponseOutlet.encode(status: 200, headers: headers, body: ByteBuffer(), allocator: ByteBufferAllocator())
        #expect(String(buffer: ours) == "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-request-id: sy_1\r\n\r\n")
        #expect(String(buffer: ours) == String(buffer: try Self.nioBytes(status: 200, headers: headers, body: ByteBuffer())))
    }
}
