import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import SwitchyardCore

/// What every contender sends: the same small Messages POST.
struct BenchRequest: Sendable {
    /// `http://127.0.0.1:<port>`; the router joins its provider's base URL and the path per request.
    var baseURL: String
    var path: String
    /// `host` included, as the own client needs it (AsyncHTTPClient keeps a `host` it is given).
    var headers: HTTPHeaders
    var body: ByteBuffer
}

/// One of the benchmark's event loops, as a worker (standing for an inbound connection) sees it.
struct WorkerLoop: Sendable {
    /// Position in the group, for the contenders that keep something per loop.
    var index: Int
    var eventLoop: any EventLoop
}

/// A client under test: sends one request from a worker running on `worker.eventLoop` and reads
/// the whole response body.
protocol Contender: Sendable {
    /// Short id for the command line and the ratio table ("1", "2", …).
    var id: String { get }
    var label: String { get }
    /// Returns the length of the response body.
    func send(from worker: WorkerLoop) async throws -> Int
    func shutdown() async throws
}

/// The most a response body may be (the router's JSON limit is larger; this one never binds).
let responseLimit = 1 << 20

/// AsyncHTTPClient configured as Switchyard's `UpstreamClient` configures it.
func routerLikeConfiguration(maxConnections: Int) -> HTTPClient.Configuration {
    var configuration = HTTPClient.Configuration(
        redirectConfiguration: .disallow,
        timeout: .init(connect: .seconds(5), read: .seconds(30)),
        decompression: .disabled
    )
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = maxConnections
    configuration.connectionPool.idleTimeout = .seconds(60)
    configuration.connectionPool.retryConnectionEstablishment = false
    configuration.tracing.tracer = nil
    return configuration
}

/// Either one client on the whole group, or one client per event loop (each on a one-loop
/// group: `.shared(eventLoop)`, an `EventLoop` being an `EventLoopGroup` of itself), the total
/// connection limit split evenly.
struct AHCClients: Sendable {
    let clients: [HTTPClient]

    init(perLoop: Bool, loops: [any EventLoop], group: any EventLoopGroup, maxConnections: Int) {
        if perLoop {
            let share = max(1, maxConnections / loops.count)
            clients = loops.map { HTTPClient(eventLoopGroupProvider: .shared($0), configuration: routerLikeConfiguration(maxConnections: share)) }
        } else {
            clients = [HTTPClient(eventLoopGroupProvider: .shared(group), configuration: routerLikeConfiguration(maxConnections: maxConnections))]
        }
    }

    func client(for worker: WorkerLoop) -> HTTPClient {
        clients.count == 1 ? clients[0] : clients[worker.index]
    }

    func shutdown() async throws {
        for client in clients { try await client.shutdown() }
    }
}

/// AsyncHTTPClient's async API: `execute(_: HTTPClientRequest, deadline:)`, the response body
/// read through its `AsyncSequence`. With one shared client this is `UpstreamClient.send` today.
/// The API takes no event-loop preference: the request goes to the current loop's pool entry
/// but may run on an idle connection of any loop, and the task resumes where it completes.
struct AsyncAPI: Contender {
    let id: String
    let label: String
    let clients: AHCClients
    let request: BenchRequest

    func send(from worker: WorkerLoop) async throws -> Int {
        var outbound = HTTPClientRequest(url: request.baseURL + request.path)
        outbound.method = .POST
        outbound.headers = request.headers
        outbound.body = .bytes(request.body)
        let response = try await clients.client(for: worker).execute(outbound, deadline: .now() + .seconds(30))
        return try await response.body.collect(upTo: responseLimit).readableBytes
    }

    func shutdown() async throws { try await clients.shutdown() }
}

/// AsyncHTTPClient's delegate API: `execute(request: HTTPClient.Request, delegate:, eventLoop:)`,
/// the body collected by ``BodyCollector`` on the task's loop, the result awaited through the
/// task's future. Options, one at a time: an event-loop preference naming the caller's loop, a
/// client per loop, and an `HTTPClient.Request` built from a template whose URL was parsed once
/// (only `headers` and `body` are set per request: `method` and `url` are `let`s, so a template
/// is the only way to skip the per-request URL parse).
struct DelegateAPI: Contender {
    enum Preference {
        /// `.indifferent`: AsyncHTTPClient picks the loop (the current one when it is the
        /// client's) and takes an idle connection of any loop.
        case indifferent
        /// `.delegate(on: caller's loop)`: the task and delegate there; an idle connection there
        /// when there is one, else an idle one elsewhere; new connections are made there and pooled.
        case delegate
        /// `.delegateAndChannel(on: caller's loop)`: the connection must be there too. In 1.37 a
        /// request that finds no idle pooled connection on that loop gets an "overflow"
        /// connection, which is closed as soon as no request for that loop waits (never pooled),
        /// and such requests never create pooled ones.
        case delegateAndChannel
    }

    let id: String
    let label: String
    let clients: AHCClients
    let request: BenchRequest
    let preference: Preference
    /// Built once at start-up when the contender reuses it.
    let template: HTTPClient.Request?

    init(id: String, label: String, clients: AHCClients, request: BenchRequest, preference: Preference, useTemplate: Bool) throws {
        self.id = id
        self.label = label
        self.clients = clients
        self.request = request
        self.preference = preference
        template = useTemplate ? try HTTPClient.Request(url: request.baseURL + request.path, method: .POST, headers: request.headers) : nil
    }

    func send(from worker: WorkerLoop) async throws -> Int {
        let outbound: HTTPClient.Request
        if var copy = template {
            copy.headers = request.headers
            copy.body = .byteBuffer(request.body)
            outbound = copy
        } else {
            outbound = try HTTPClient.Request(
                url: request.baseURL + request.path, method: .POST, headers: request.headers, body: .byteBuffer(request.body)
            )
        }
        let eventLoop: HTTPClient.EventLoopPreference
        switch preference {
        case .indifferent: eventLoop = .indifferent
        case .delegate: eventLoop = .delegate(on: worker.eventLoop)
        case .delegateAndChannel: eventLoop = .delegateAndChannel(on: worker.eventLoop)
        }
        let task = clients.client(for: worker).execute(
            request: outbound, delegate: BodyCollector(limit: responseLimit), eventLoop: eventLoop, deadline: .now() + .seconds(30)
        )
        return try await task.futureResult.get().readableBytes
    }

    func shutdown() async throws { try await clients.shutdown() }
}

/// The smallest body-collecting delegate (AsyncHTTPClient's `ResponseAccumulator` also keeps the
/// redirect history behind a lock and builds an `HTTPClient.Response`).
final class BodyCollector: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = ByteBuffer

    struct TooLarge: Error {}

    // Unchecked: AsyncHTTPClient calls every method of a request's delegate on that request's
    // task event loop, one at a time.
    private var body: ByteBuffer?
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    func didReceiveBodyPart(task: HTTPClient.Task<ByteBuffer>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        if body == nil {
            body = part
        } else {
            body!.writeImmutableBuffer(part)
        }
        guard body!.readableBytes <= limit else { return task.eventLoop.makeFailedFuture(TooLarge()) }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<ByteBuffer>) throws -> ByteBuffer {
        body ?? ByteBuffer()
    }
}

/// Switchyard's own client, the request run on the caller's loop's pool.
struct OwnClient: Contender {
    let id: String
    let label: String
    let client: HTTP1Client
    let head: HTTPRequestHead
    let body: ByteBuffer

    init(id: String, label: String, client: HTTP1Client, request: BenchRequest) {
        self.id = id
        self.label = label
        self.client = client
        head = HTTPRequestHead(version: .http1_1, method: .POST, uri: request.path, headers: request.headers)
        body = request.body
    }

    func send(from worker: WorkerLoop) async throws -> Int {
        let response = try await client.execute(head, body: body, headDeadline: .now() + .seconds(30), on: worker.eventLoop)
        return try await response.body.collect(upTo: responseLimit).readableBytes
    }

    func shutdown() async throws { await client.shutdown() }
}
