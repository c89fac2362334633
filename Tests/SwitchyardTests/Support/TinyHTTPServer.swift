import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A minimal HTTP/1.1 server on an ephemeral loopback port for tests that need a real far side
/// (token endpoints, STS, metadata servers): every request goes to a handler, and is recorded.
///
/// The handler is async, so it can delay (`try? await Task.sleep`, ended when the server
/// stops) or fail (`.dropConnection` closes without an answer); `setHandler` changes behaviour
/// mid-test. Connections are served by child tasks of one task; `stop()` closes the listener,
/// lets every connection already accepted reach its child task, then cancels them.
final class TinyHTTPServer: Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: [(name: String, value: String)]
        var body: [UInt8]

        var bodyText: String { String(decoding: body, as: UTF8.self) }

        /// The first value of a header, by case-insensitive name.
        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        /// The fields of an `application/x-www-form-urlencoded` body.
        var formFields: [String: String] {
            var fields: [String: String] = [:]
            for pair in bodyText.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map {
                    String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
                }
                fields[parts[0]] = parts.count > 1 ? parts[1] : ""
            }
            return fields
        }
    }

    struct Response: Sendable {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        /// Close the connection without answering.
        var dropsConnection = false

        init(status: Int = 200, headers: [(name: String, value: String)] = [], body: String = "") {
            self.status = status
            self.headers = headers
            self.body = Array(body.utf8)
        }

        static func json(_ body: String, status: Int = 200) -> Response {
            Response(status: status, headers: [("content-type", "application/json")], body: body)
        }

        static func xml(_ body: String, status: Int = 200) -> Response {
            Response(status: status, headers: [("content-type", "text/xml")], body: body)
        }

        static var dropConnection: Response {
            var response = Response(status: 500)
            response.dropsConnection = true
            return response
        }
    }

    typealias Handler = @Sendable (Request) async -> Response

    let port: Int
    private let handler: Mutex<Handler>
    private let recorded = Mutex<[Request]>([])
    private let serving: Mutex<(task: Task<Void, Never>, listener: any Channel)?> = Mutex(nil)

    /// `http://127.0.0.1:PORT`
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Every request received so far, in order.
    var requests: [Request] { recorded.withLock { $0 } }
    var requestCount: Int { recorded.withLock { $0.count } }

    func setHandler(_ newHandler: @escaping Handler) {
        handler.withLock { $0 = newHandler }
    }

    private init(port: Int, handler: @escaping Handler) {
        self.port = port
        self.handler = Mutex(handler)
    }

    /// Starts a server; call `stop()` when done, or use ``withServer(_:_:)``.
    static func start(_ handler: @escaping Handler) async throws -> TinyHTTPServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: child)
                }
            }
        let server = TinyHTTPServer(port: channel.channel.localAddress?.port ?? 0, handler: handler)
        let task = Task<Void, Never> {
            _ = try? await withThrowingDiscardingTaskGroup { group in
                // Not cancelled from outside: an accepted connection dropped unserved (its
                // NIOAsyncChannel never used) is a fatal error in NIO. The loop ends when the
                // listener closes, after every connection it accepted.
                try await channel.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await server.serve(connection) }
                    }
                }
                group.cancelAll()
            }
        }
        server.serving.withLock { $0 = (task, channel.channel) }
        return server
    }

    /// Runs `body` with a started server and stops it afterwards, whatever happens.
    static func withServer<T>(_ handler: @escaping Handler, _ body: (TinyHTTPServer) async throws -> T) async throws -> T {
        let server = try await start(handler)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    /// Stops accepting, cancels the handlers in progress and closes every connection.
    func stop() async {
        guard let (task, listener) = serving.withLock({ $0 }) else { return }
        listener.close(promise: nil)
        await task.value
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body: [UInt8] = []
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    head = requestHead
                    body = []
                case .body(let chunk):
                    body += chunk.readableBytesView
                case .end:
                    guard let requestHead = head else { continue }
                    let request = Request(
                        method: requestHead.method.rawValue, uri: requestHead.uri,
                        headers: requestHead.headers.map { (name: $0.name, value: $0.value) }, body: body
                    )
                    recorded.withLock { $0.append(request) }
                    let response = await handler.withLock { $0 }(request)
                    if response.dropsConnection || Task.isCancelled { return }
                    var headers = HTTPHeaders(response.headers.map { ($0.name, $0.value) })
                    headers.replaceOrAdd(name: "content-length", value: "\(response.body.count)")
                    if !requestHead.isKeepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
                    let status = HTTPResponseStatus(statusCode: response.status)
                    try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
                    try await outbound.write(.end(nil))
                    if !requestHead.isKeepAlive { return }
                }
            }
        }
    }
}
