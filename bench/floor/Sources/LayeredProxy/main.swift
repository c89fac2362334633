import HTTPTypes
import HummingbirdCore
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SwitchyardCore

/// `own`: NIO's server pipeline, a task per request, Switchyard's HTTP1Client upstream.
final class OwnClientHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let client: HTTP1Client
    let upstreamHost: String
    var head: HTTPRequestHead?
    var body = ByteBuffer()

    init(client: HTTP1Client, upstreamHost: String) {
        self.client = client
        self.upstreamHost = upstreamHost
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard var head else { return }
            head.headers.replaceOrAdd(name: "host", value: upstreamHost)
            head.headers.remove(name: "connection")
            head.headers.remove(name: "content-length")
            let loop = context.eventLoop
            let bound = NIOLoopBound(context, eventLoop: loop)
            let (client, body) = (client, body)
            Task {
                let answer: (HTTPResponseHead, ByteBuffer)
                do {
                    let response = try await client.execute(head, body: body, deadlines: HTTP1Deadlines(queueTimeout: .seconds(10), firstByte: .seconds(10)), on: loop)
                    let bytes = try await response.body.collect(upTo: 1 << 20)
                    answer = (HTTPResponseHead(version: .http1_1, status: response.status, headers: response.headers), bytes)
                } catch {
                    answer = (HTTPResponseHead(version: .http1_1, status: .badGateway, headers: ["content-length": "0"]), ByteBuffer())
                }
                loop.execute {
                    let context = bound.value
                    context.write(NIOAny(HTTPServerResponsePart.head(answer.0)), promise: nil)
                    context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(answer.1))), promise: nil)
                    context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
                }
            }
        }
    }
}

extension OwnClientHandler: @unchecked Sendable {}

/// `httptypes`: as `own`, behind NIO's HTTPTypes codec (HTTP1ToHTTPServerCodec, as Hummingbird's
/// pipeline has it): the request and the answer converted to and from HTTPTypes.
final class HTTPTypesHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    let client: HTTP1Client
    let upstreamHost: String
    var head: HTTPRequest?
    var body = ByteBuffer()

    init(client: HTTP1Client, upstreamHost: String) {
        self.client = client
        self.upstreamHost = upstreamHost
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let request = head else { return }
            var headers = HTTPHeaders()
            for field in request.headerFields where field.name != .contentLength && field.name != .connection {
                headers.add(name: field.name.canonicalName, value: field.value)
            }
            headers.replaceOrAdd(name: "host", value: upstreamHost)
            let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: request.path ?? "/", headers: headers)
            let loop = context.eventLoop
            let bound = NIOLoopBound(context, eventLoop: loop)
            let (client, body) = (client, body)
            Task {
                var answer: (HTTPResponse, ByteBuffer)
                do {
                    let response = try await client.execute(head, body: body, deadlines: HTTP1Deadlines(queueTimeout: .seconds(10), firstByte: .seconds(10)), on: loop)
                    let bytes = try await response.body.collect(upTo: 1 << 20)
                    var fields = HTTPFields()
                    for header in response.headers {
                        if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
                    }
                    answer = (HTTPResponse(status: .init(code: Int(response.status.code)), headerFields: fields), bytes)
                } catch {
                    answer = (HTTPResponse(status: .badGateway, headerFields: [.contentLength: "0"]), ByteBuffer())
                }
                loop.execute {
                    let context = bound.value
                    context.write(NIOAny(HTTPResponsePart.head(answer.0)), promise: nil)
                    context.write(NIOAny(HTTPResponsePart.body(answer.1)), promise: nil)
                    context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil)), promise: nil)
                }
            }
        }
    }
}

extension HTTPTypesHandler: @unchecked Sendable {}

let arguments = CommandLine.arguments
guard arguments.count == 4, ["own", "httptypes", "hummingbird"].contains(arguments[3]) else {
    print("usage: LayeredProxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT own|httptypes|hummingbird")
    exit(2)
}
let listenParts = arguments[1].split(separator: ":")
let upstreamParts = arguments[2].split(separator: ":")
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
let group = MultiThreadedEventLoopGroup.singleton
let client = try HTTP1Client(
    configuration: .init(host: String(upstreamParts[0]), port: Int(upstreamParts[1])!, tls: false, maxConnections: 128), eventLoopGroup: group
)

if arguments[3] == "own" || arguments[3] == "httptypes" {
    let httpTypes = arguments[3] == "httptypes"
    let server = try await ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                if httpTypes {
                    try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                    try channel.pipeline.syncOperations.addHandler(HTTPTypesHandler(client: client, upstreamHost: arguments[2]))
                } else {
                    try channel.pipeline.syncOperations.addHandler(OwnClientHandler(client: client, upstreamHost: arguments[2]))
                }
            }
        }
        .bind(host: String(listenParts[0]), port: Int(listenParts[1])!).get()
    try await server.closeFuture.get()
} else {
    // Hummingbird's HTTP/1 server, as the router's inbound side; the request forwarded as is.
    let upstreamHost = arguments[2]
    let channel = HTTP1Channel { request, responseWriter, channel in
        var body = ByteBuffer()
        for try await var part in request.body { body.writeBuffer(&part) }
        var headers = HTTPHeaders()
        for field in request.headers where field.name != .contentLength && field.name != .connection {
            headers.add(name: field.name.canonicalName, value: field.value)
        }
        headers.replaceOrAdd(name: "host", value: upstreamHost)
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: request.uri.description, headers: headers)
        let response = try await client.execute(head, body: body, deadlines: HTTP1Deadlines(queueTimeout: .seconds(10), firstByte: .seconds(10)), on: channel.eventLoop)
        let bytes = try await response.body.collect(upTo: 1 << 20)
        var fields = HTTPFields()
        for header in response.headers {
            if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
        }
        try await responseWriter.write(response: HTTPResponse(status: .init(code: Int(response.status.code)), headerFields: fields), body: ResponseBody(byteBuffer: bytes))
    }
    var logger = Logger(label: "layered")
    logger.logLevel = .error
    let server = Server(
        childChannelSetup: channel,
        configuration: ServerConfiguration(address: .hostname(String(listenParts[0]), port: Int(listenParts[1])!), backlog: 4096),
        eventLoopGroup: group,
        logger: logger
    )
    try await server.run()
}
