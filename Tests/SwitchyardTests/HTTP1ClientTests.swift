import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing
import UpstreamSim

@testable import SwitchyardCore

#if canImport(Glibc)
import Glibc
#endif

/// Switchyard's own upstream HTTP/1.1 client through real sockets on loopback, against
/// upstream-sim and small NIO servers (below). Serialized: some tests measure the process (RSS,
/// file descriptors) and some count connections at the far side.
@Suite(.serialized) struct HTTP1ClientTests {
    // MARK: Keep-alive and the pool

    @Test func sequentialRequestsReuseOneConnection() async throws {
        try await withHTTP1Sim("ok*") { sim, port in
            let client = try makeHTTP1TestClient(port: port)
            for _ in 0..<20 {
                let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
                #expect(response.status == .ok)
                let body = try await response.body.collect(upTo: 1 << 20)
                #expect(String(buffer: body).contains(#""type":"message""#))
            }
            #expect(sim.requestCount == 20)
            #expect(sim.openConnections == 1)
            #expect(client.statistics.total == 1)
            await client.shutdown()
            #expect(await http1Eventually { sim.openConnections == 0 })
        }
    }

    @Test func concurrentRequestsStayWithinTheConnectionLimit() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await HTTP1TestServer.start { _, _, _ in .respond(body: "slow", delay: .milliseconds(100)) }
        let client = try makeHTTP1TestClient(port: server.port, group: group) { $0.maxConnections = 3 }
        try await withThrowingTaskGroup(of: String.self) { tasks in
            for _ in 0..<24 {
                tasks.addTask {
                    let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(10)))
                    return String(buffer: try await response.body.collect(upTo: 1024))
                }
            }
            var answers = 0
            for try await answer in tasks {
                #expect(answer == "slow")
                answers += 1
            }
            #expect(answers == 24)
        }
        #expect(server.accepted <= 3)
        #expect(server.maxOpen <= 3)
        #expect(server.requests == 24)
        await client.shutdown()
        await server.stop()
        try await group.shutdownGracefully()
    }

    @Test func eachEventLoopServesItsOwnCallersWithoutAHop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        try await withHTTP1Sim("ok*") { sim, port in
            let client = try makeHTTP1TestClient(port: port, group: group)
            let loops = Array(group.makeIterator())
            for loop in loops {
                let caller = LoopBoundCaller(loop: loop)
                #expect(try await caller.send(client: client, count: 5, naming: true))
                #expect(try await caller.send(client: client, count: 5, naming: false))
            }
            // One connection per loop: a caller took its own loop's, never the other's.
            #expect(client.statistics.total == 2)
            #expect(client.statistics.idle == 2)
            #expect(sim.requestCount == 20)
            await client.shutdown()
        }
        try await group.shutdownGracefully()
    }

    @Test func aConnectionTheUpstreamClosedWhileIdleIsDroppedAndTheNextRequestGetsANewOne() async throws {
        let server = try await HTTP1TestServer.start { _, _, _ in .respond(body: "hi", closeIdleAfter: .milliseconds(50)) }
        let client = try makeHTTP1TestClient(port: server.port)
        for _ in 0..<3 {
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "hi")
            #expect(await http1Eventually { server.open == 0 })
            #expect(await http1Eventually { client.statistics.total == 0 })
        }
        #expect(server.accepted == 3)
        await client.shutdown()
        await server.stop()
    }

    @Test func theKeepAliveRaceIsRetriedOnceOnANewConnection() async throws {
        // The second request on the connection meets a close without an answer: what a client
        // sees when the upstream closes an idle connection just as the request goes out.
        let server = try await HTTP1TestServer.start { connection, request, _ in
            connection == 0 && request == 1 ? .close : .respond(body: "c\(connection)r\(request)")
        }
        let client = try makeHTTP1TestClient(port: server.port)
        var answers: [String] = []
        for _ in 0..<3 {
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            answers.append(String(buffer: try await response.body.collect(upTo: 1024)))
        }
        #expect(answers == ["c0r0", "c1r0", "c1r1"])
        #expect(server.accepted == 2)
        await client.shutdown()
        await server.stop()
    }

    @Test func aResetOnAReusedConnectionIsRetriedButOnlyOnce() async throws {
        try await withHTTP1Sim("ok,reset,reset,ok*") { sim, port in
            let client = try makeHTTP1TestClient(port: port)
            let first = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            _ = try await first.body.collect(upTo: 1 << 20)
            // Reused connection, reset: retried on a new connection, reset again: not retried.
            let error = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5))) }
            #expect(error?.kind == .reset)
            #expect(sim.requestCount == 3)
            let after = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            #expect(after.status == .ok)
            await client.shutdown()
        }
    }

    @Test func connectionCloseAnswersAreNotReused() async throws {
        // The server says close but leaves the socket open: the client must close it.
        let server = try await HTTP1TestServer.start { _, _, _ in .respond(headers: [("connection", "close")], body: "bye") }
        let client = try makeHTTP1TestClient(port: server.port)
        for _ in 0..<3 {
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "bye")
        }
        #expect(server.accepted == 3)
        #expect(await http1Eventually { server.open == 0 })
        await client.shutdown()
        await server.stop()
    }

    @Test func http10AnswersAreNotReused() async throws {
        let server = try await HTTP1TestServer.start { _, _, _ in .respond(version: .http1_0, body: "old") }
        let client = try makeHTTP1TestClient(port: server.port)
        for _ in 0..<2 {
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "old")
        }
        #expect(server.accepted == 2)
        #expect(await http1Eventually { server.open == 0 })
        await client.shutdown()
        await server.stop()
    }

    @Test func theRequestArrivesAsSentWithItsContentLength() async throws {
        try await withHTTP1Sim("ok*") { sim, port in
            let client = try makeHTTP1TestClient(port: port)
            var head = http1MessagesHead()
            head.uri = "/v1/messages?beta=true"
            head.headers.add(name: "x-api-key", value: "sk-test")
            let response = try await client.execute(head, body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            _ = try await response.body.collect(upTo: 1 << 20)
            let received = try #require(sim.receivedRequests.first)
            #expect(received.uri == "/v1/messages?beta=true")
            #expect(received.header("x-api-key") == "sk-test")
            #expect(received.header("content-length") == String(http1MessagesBody().readableBytes))
            #expect(received.body == String(buffer: http1MessagesBody()))
            await client.shutdown()
        }
    }

    // MARK: Timeouts and failures

    @Test func noHeadBeforeTheDeadlineIsAHeadTimeoutAndClosesTheConnection() async throws {
        try await withHTTP1Sim("hang") { sim, port in
            let client = try makeHTTP1TestClient(port: port)
            let started = ContinuousClock.now
            let error = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.milliseconds(300))) }
            #expect(error?.kind == .headTimeout)
            #expect(ContinuousClock.now - started < .seconds(2))
            #expect(await http1Eventually { sim.openConnections == 0 })
            await client.shutdown()
        }
    }

    @Test func aWaiterWithoutAConnectionGivesUpAtItsQueueDeadlineAsCapacity() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await withHTTP1Sim("hang*") { sim, port in
            let client = try makeHTTP1TestClient(port: port, group: group) { $0.maxConnections = 1 }
            let busy = Task { await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(3))) } }
            #expect(await http1Eventually { sim.requestCount == 1 })
            let error = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.milliseconds(200))) }
            #expect(error?.kind == .capacity)
            #expect(client.statistics.capacityRejections == 1)
            busy.cancel()
            #expect(await busy.value?.kind == .cancelled)
            await client.shutdown()
        }
        try await group.shutdownGracefully()
    }

    @Test func theWaitForAConnectionIsNotCountedAsFirstByte() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await HTTP1TestServer.start { _, request, _ in .respond(body: "r\(request)", delay: .milliseconds(300)) }
        let client = try makeHTTP1TestClient(port: server.port, group: group) { $0.maxConnections = 1 }
        let deadlines = HTTP1Deadlines(queueTimeout: .seconds(5), firstByte: .milliseconds(450))
        // Both wait 300 ms for their head; the second also waits ~300 ms for the one connection.
        async let first = client.execute(http1MessagesHead(), body: http1MessagesBody(), deadlines: deadlines)
        try await Task.sleep(for: .milliseconds(50))
        let second = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), deadlines: deadlines)
        #expect(second.status == .ok)
        #expect(second.queued >= .milliseconds(200))
        #expect(String(buffer: try await second.body.collect(upTo: 1024)) == "r1")
        #expect(try await first.status == .ok)
        await client.shutdown()
        await server.stop()
        try await group.shutdownGracefully()
    }

    @Test func silenceBetweenBodyPartsIsAnIdleTimeout() async throws {
        try await withHTTP1Sim("stall(2)") { sim, port in
            let client = try makeHTTP1TestClient(port: port) { $0.idleTimeout = .milliseconds(300) }
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(stream: true), headDeadline: .http1In(.seconds(5)))
            #expect(response.status == .ok)
            var received = ""
            var failure: HTTP1ClientError?
            do {
                for try await part in response.body { received += String(buffer: part) }
            } catch {
                failure = error as? HTTP1ClientError
            }
            #expect(failure?.kind == .idleTimeout)
            #expect(received.contains("message_start"))
            #expect(await http1Eventually { sim.openConnections == 0 })
            await client.shutdown()
        }
    }

    @Test func aRefusedConnectionIsAConnectError() async throws {
        let port = try await http1ClosedPort()
        let client = try makeHTTP1TestClient(port: port)
        let error = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5))) }
        #expect(error?.kind == .connect)
        await client.shutdown()
    }

    @Test func aConnectThatHangsIsAConnectTimeout() async throws {
        // A listener whose accept queue is full: the kernel drops further SYNs, so a connect
        // hangs as it would towards an unreachable address (loopback only, by the sandbox's rules).
        let listener = try FullBacklogListener()
        defer { listener.close() }
        let client = try makeHTTP1TestClient(port: listener.port) { $0.connectTimeout = .milliseconds(300) }
        let started = ContinuousClock.now
        let error = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5))) }
        #expect(error?.kind == .connect)
        #expect(ContinuousClock.now - started < .seconds(3))
        await client.shutdown()
    }

    @Test func aResetBeforeTheHeadersIsAReset() async throws {
        try await withHTTP1Sim("reset") { _, port in
            let client = try makeHTTP1TestClient(port: port)
            let error = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5))) }
            #expect(error?.kind == .reset)
            await client.shutdown()
        }
    }

    @Test func garbageInsteadOfAResponseIsAnInvalidResponse() async throws {
        let server = try await HTTP1TestServer.start { _, _, _ in .raw("SPDY/9 200 OK\r\n\r\n") }
        let client = try makeHTTP1TestClient(port: server.port)
        let error = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5))) }
        #expect(error?.kind == .invalidResponse)
        await client.shutdown()
        await server.stop()
    }

    @Test func aCutInTheBodyIsAReset() async throws {
        try await withHTTP1Sim("cut(2)") { _, port in
            let client = try makeHTTP1TestClient(port: port)
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(stream: true), headDeadline: .http1In(.seconds(5)))
            let error = await http1Error { _ = try await response.body.collect(upTo: 1 << 20) }
            #expect(error?.kind == .reset)
            await client.shutdown()
        }
    }

    // MARK: Cancellation

    @Test func cancellingWhileWaitingForTheHeadClosesTheConnection() async throws {
        try await withHTTP1Sim("hang") { sim, port in
            let client = try makeHTTP1TestClient(port: port)
            let call = Task { await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(30))) } }
            #expect(await http1Eventually { sim.requestCount == 1 && sim.openConnections == 1 })
            call.cancel()
            #expect(await call.value?.kind == .cancelled)
            #expect(await http1Eventually { sim.openConnections == 0 })
            #expect(await http1Eventually { client.statistics.total == 0 })
            await client.shutdown()
        }
    }

    @Test func cancellingWhileWaitingForABodyPartClosesTheConnection() async throws {
        try await withHTTP1Sim("stall(1)") { sim, port in
            let client = try makeHTTP1TestClient(port: port) { $0.idleTimeout = .seconds(30) }
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(stream: true), headDeadline: .http1In(.seconds(5)))
            let reader = Task { await http1Error { for try await _ in response.body {} } }
            try await Task.sleep(for: .milliseconds(100))
            reader.cancel()
            #expect(await reader.value?.kind == .cancelled)
            #expect(await http1Eventually { sim.openConnections == 0 })
            await client.shutdown()
        }
    }

    @Test func aBodyDroppedBeforeItsEndClosesTheConnection() async throws {
        try await withHTTP1Sim("huge(8MiB),ok*") { sim, port in
            let client = try makeHTTP1TestClient(port: port)
            do {
                let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
                var iterator = response.body.makeAsyncIterator()
                let first = try await iterator.next()
                #expect((first?.readableBytes ?? 0) > 0)
            }
            #expect(await http1Eventually { sim.openConnections == 0 })
            // The next request gets a new connection and its whole answer.
            let next = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            #expect(String(buffer: try await next.body.collect(upTo: 1 << 20)).contains(#""type":"message""#))
            #expect(sim.openConnections == 1)
            await client.shutdown()
        }
    }

    @Test func aResponseDroppedUnreadButCompleteKeepsItsConnection() async throws {
        try await withHTTP1Sim("ok*") { sim, port in
            let client = try makeHTTP1TestClient(port: port)
            for _ in 0..<3 {
                let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
                #expect(response.status == .ok)
                // The small answer arrives whole meanwhile: the connection goes back to the pool.
                try await Task.sleep(for: .milliseconds(50))
                withExtendedLifetime(response) {}
            }
            #expect(sim.openConnections == 1)
            await client.shutdown()
        }
    }

    @Test func cancellationsAtRandomPointsLeaveThePoolWorking() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        try await withHTTP1Sim("ok(events=20,interval=1ms)*") { sim, port in
            let client = try makeHTTP1TestClient(port: port, group: group) { $0.maxConnections = 8 }
            let loops = Array(group.makeIterator())
            await withTaskGroup(of: Void.self) { tasks in
                for index in 0..<200 {
                    let loop = loops[index % loops.count]
                    let call = Task {
                        let response = try await client.execute(
                            http1MessagesHead(), body: http1MessagesBody(stream: true), headDeadline: .http1In(.seconds(10)), on: index % 3 == 0 ? nil : loop
                        )
                        for try await _ in response.body {}
                    }
                    tasks.addTask {
                        try? await Task.sleep(for: .microseconds(Int64.random(in: 0..<30_000)))
                        call.cancel()
                        _ = await call.result
                    }
                }
            }
            #expect(client.statistics.total <= 8)
            #expect(client.statistics.waiting == 0)
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(stream: true), headDeadline: .http1In(.seconds(5)))
            #expect(String(buffer: try await response.body.collect(upTo: 1 << 20)).contains("message_stop"))
            await client.shutdown()
            #expect(await http1Eventually { sim.openConnections == 0 })
        }
        try await group.shutdownGracefully()
    }

    // MARK: Back-pressure

    @Test func aSlowReaderOfAHugeBodyKeepsMemoryBounded() async throws {
        let size = 80 << 20
        try await withHTTP1Sim("huge(80MiB)") { _, port in
            let client = try makeHTTP1TestClient(port: port)
            let before = http1ResidentBytes()
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            var iterator = response.body.makeAsyncIterator()
            var total = 0
            var peak = before
            // A reader that stalls: without back-pressure the whole body would pile up meanwhile.
            for _ in 0..<10 {
                total += try await iterator.next()?.readableBytes ?? 0
                try await Task.sleep(for: .milliseconds(100))
                peak = max(peak, http1ResidentBytes())
            }
            while let part = try await iterator.next() {
                total += part.readableBytes
                if total % (8 << 20) < part.readableBytes { peak = max(peak, http1ResidentBytes()) }
            }
            #expect(total == size)
            let growth = peak - before
            #expect(growth < 24 << 20, "RSS grew by \(growth >> 20) MiB reading an 80 MiB body slowly")
            await client.shutdown()
        }
    }

    // MARK: TLS

    @Test func tlsWithTheRightTrustRootAndHostnameIsAccepted() async throws {
        let server = try await HTTP1TestServer.start(tls: true) { _, _, _ in .respond(body: "secure") }
        let client = try makeHTTP1TestClient(host: "localhost", port: server.port, tls: .trusting(HTTP1TestCertificate.certificate))
        for _ in 0..<3 {
            let response = try await client.execute(http1MessagesHead(host: "localhost"), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            #expect(String(buffer: try await response.body.collect(upTo: 1024)) == "secure")
        }
        #expect(server.accepted == 1)
        await client.shutdown()
        await server.stop()
    }

    @Test func tlsWithTheWrongHostnameIsRefused() async throws {
        let server = try await HTTP1TestServer.start(tls: true) { _, _, _ in .respond(body: "secure") }
        // The certificate names localhost, not 127.0.0.1.
        let client = try makeHTTP1TestClient(host: "127.0.0.1", port: server.port, tls: .trusting(HTTP1TestCertificate.certificate))
        let error = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5))) }
        #expect(error?.kind == .tls)
        #expect(server.requests == 0)
        await client.shutdown()
        await server.stop()
    }

    @Test func tlsWithoutTrustIsRefused() async throws {
        let server = try await HTTP1TestServer.start(tls: true) { _, _, _ in .respond(body: "secure") }
        let client = try makeHTTP1TestClient(host: "localhost", port: server.port, tls: .systemRoots)
        let error = await http1Error { try await client.execute(http1MessagesHead(host: "localhost"), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5))) }
        #expect(error?.kind == .tls)
        #expect(server.requests == 0)
        await client.shutdown()
        await server.stop()
    }

    @Test func aTLSHandshakeThatHangsIsAConnectTimeout() async throws {
        // Accepts, then never reads: the ClientHello goes unanswered.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.autoRead, value: false)
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try makeHTTP1TestClient(host: "localhost", port: silent.localAddress!.port!, tls: .trusting(HTTP1TestCertificate.certificate)) {
            $0.connectTimeout = .milliseconds(300)
        }
        let started = ContinuousClock.now
        let error = await http1Error { try await client.execute(http1MessagesHead(host: "localhost"), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5))) }
        #expect(error == .connectTimeout)
        #expect(ContinuousClock.now - started < .seconds(3))
        await client.shutdown()
        try await silent.close()
    }

    @Test func aDeadlineAlreadyPastSendsNothing() async throws {
        try await withHTTP1Sim("ok*") { sim, port in
            let client = try makeHTTP1TestClient(port: port)
            let error = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .now() - .seconds(1)) }
            #expect(error?.kind == .headTimeout)
            #expect(sim.requestCount == 0)
            await client.shutdown()
        }
    }

    // MARK: Endurance and shutdown

    @Test func tenThousandSequentialRequestsReuseConnectionsAndLeakNoDescriptors() async throws {
        let server = try await HTTP1TestServer.start { _, _, _ in .respond(body: #"{"ok":true}"#) }
        let client = try makeHTTP1TestClient(port: server.port)
        for _ in 0..<10_000 {
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)))
            _ = try await response.body.collect(upTo: 1024)
        }
        #expect(server.requests == 10_000)
        #expect(server.accepted == 1)
        // Counted per server port, not for the whole process: other suites open files and
        // sockets while this one runs.
        #expect(http1DescriptorsConnected(toPort: server.port) == 1)
        await client.shutdown()
        #expect(await http1Eventually { http1DescriptorsConnected(toPort: server.port) == 0 })
        await server.stop()
    }

    @Test func shutdownFailsWaitingAndLaterRequests() async throws {
        try await withHTTP1Sim("hang*") { sim, port in
            let client = try makeHTTP1TestClient(port: port)
            let call = Task { await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(30))) } }
            #expect(await http1Eventually { sim.requestCount == 1 })
            await client.shutdown()
            #expect(await call.value?.kind == .shutdown)
            let later = await http1Error { try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5))) }
            #expect(later?.kind == .shutdown)
            #expect(await http1Eventually { sim.openConnections == 0 })
        }
    }
}

// MARK: - Support

/// Calls the client from an actor that runs on `loop`, as the router's inbound handlers do.
actor LoopBoundCaller {
    let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }

    /// Sends `count` requests naming the loop (or none: the client takes the current one);
    /// true when every call came back on the loop.
    func send(client: HTTP1Client, count: Int, naming: Bool) async throws -> Bool {
        var stayed = true
        for _ in 0..<count {
            let response = try await client.execute(http1MessagesHead(), body: http1MessagesBody(), headDeadline: .http1In(.seconds(5)), on: naming ? loop : nil)
            stayed = stayed && loop.inEventLoop
            _ = try await response.body.collect(upTo: 1 << 20)
            stayed = stayed && loop.inEventLoop
        }
        return stayed
    }
}

enum HTTP1TestTLS {
    case trusting(NIOSSLCertificate)
    case systemRoots
}

/// One event loop, so that every request of a test meets the same pool (with `on: nil` and a
/// caller off the loops, a client of a larger group spreads requests over its loops' pools).
let http1TestGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

func makeHTTP1TestClient(
    host: String = "127.0.0.1", port: Int, tls: HTTP1TestTLS? = nil, group: any EventLoopGroup = http1TestGroup,
    _ configure: (inout HTTP1Client.Configuration) -> Void = { _ in }
) throws -> HTTP1Client {
    var configuration = HTTP1Client.Configuration(
        host: host, port: port, tls: tls != nil, connectTimeout: .seconds(2), idleTimeout: .seconds(5), maxConnections: 8
    )
    if case .trusting(let certificate) = tls {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        tlsConfiguration.trustRoots = .certificates([certificate])
        configuration.tlsConfiguration = tlsConfiguration
    }
    configure(&configuration)
    return try HTTP1Client(configuration: configuration, eventLoopGroup: group)
}

func http1MessagesHead(host: String = "127.0.0.1") -> HTTPRequestHead {
    HTTPRequestHead(
        version: .http1_1, method: .POST, uri: "/v1/messages",
        headers: ["host": host, "content-type": "application/json", "anthropic-version": "2023-06-01"]
    )
}

func http1MessagesBody(stream: Bool = false) -> ByteBuffer {
    ByteBuffer(string: #"{"model":"claude-test","max_tokens":64,"stream":\#(stream),"messages":[{"role":"user","content":"hello"}]}"#)
}

extension NIODeadline {
    static func http1In(_ duration: Duration) -> NIODeadline { .now() + TimeAmount(duration) }
}

func withHTTP1Sim(_ script: String, _ body: (UpstreamSimulator, Int) async throws -> Void) async throws {
    let sim = UpstreamSimulator(name: "http1", script: try FaultScript.parse(script))
    let port = try await sim.start()
    do {
        try await body(sim, port)
    } catch {
        await sim.stop()
        throw error
    }
    await sim.stop()
}

/// The error `body` throws, as the client's error (nil when it does not throw).
func http1Error<T>(_ body: () async throws -> T) async -> HTTP1ClientError? {
    do {
        _ = try await body()
        return nil
    } catch let error as HTTP1ClientError {
        return error
    } catch {
        return HTTP1ClientError(.invalidResponse, "unexpected error type: \(error)")
    }
}

func http1Eventually(within limit: Duration = .seconds(5), _ condition: () async -> Bool) async -> Bool {
    let end = ContinuousClock.now + limit
    while ContinuousClock.now < end {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

func http1ResidentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
    return kilobytes * 1024
}

/// This process's descriptors that are TCP sockets whose far end is `port` on loopback.
func http1DescriptorsConnected(toPort port: Int) -> Int {
    var inodes = Set<String>()
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        // Read to the end: procfs files report a size of 0, which whole-file readers trust.
        guard let handle = FileHandle(forReadingAtPath: table), let data = try? handle.readToEnd() else { continue }
        try? handle.close()
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            guard fields.count > 9, let remotePort = fields[2].split(separator: ":").last, Int(remotePort, radix: 16) == port else { continue }
            inodes.insert(String(fields[9]))
        }
    }
    let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return descriptors.filter { descriptor in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)"),
            target.hasPrefix("socket:["), target.hasSuffix("]")
        else { return false }
        return inodes.contains(String(target.dropFirst(8).dropLast()))
    }.count
}

/// A port on which nothing listens.
func http1ClosedPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress!.port!
    try await channel.close()
    return port
}

/// A listening socket that never accepts, its queue filled: further connects hang.
final class FullBacklogListener {
    let port: Int
    private var descriptors: [Int32] = []

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        descriptors.append(listener)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        guard bound == 0, listen(listener, 0) == 0 else { throw HTTP1ClientError(.connect, "cannot listen") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
        for _ in 0..<4 {
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = fcntl(filler, F_SETFL, O_NONBLOCK)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, length) } }
            descriptors.append(filler)
        }
        usleep(100_000)
    }

    func close() {
        for descriptor in descriptors { _ = Glibc.close(descriptor) }
        descriptors.removeAll()
    }
}

/// A self-signed certificate for `localhost` (P-256, valid until 2126), made with
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
/// -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost"`. Test data only.
enum HTTP1TestCertificate {
    static let certificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIBlDCCATugAwIBAgIULnwKx8VZqotzZRW1SC2ERtfegNEwCgYIKoZIzj0EAwIw
        FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNTE1MDUzNVoYDzIxMjYxMTAx
        MTUwNTM1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
        PQMBBwNCAAQnhDrW4To4KcfTSS2WsEbk+i7jbIOo+KoAyfqwSyBvvpi4CmdfrAvA
        tGpu2XWowyLvaNX61iS6jB9MHpOG7Kudo2kwZzAdBgNVHQ4EFgQUoVMw+7DVCzqd
        aoY8Ax4V3OExjdEwHwYDVR0jBBgwFoAUoVMw+7DVCzqdaoY8Ax4V3OExjdEwDwYD
        VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
        RwAwRAIgTk5AaxQkjES4UIPT5Bb8dbBdmC0SgRXW32PkvQ6KpB0CIDuioDYeOSBf
        XhW5QkFBq24mQKiLPn+4PGkmC4m8RRfz
        -----END CERTIFICATE-----
        """
    static let privateKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg4OCQ7oaPa8ZaAPdp
        7KEXjE65qM3FmnAeSnidGRphL4qhRANCAAQnhDrW4To4KcfTSS2WsEbk+i7jbIOo
        +KoAyfqwSyBvvpi4CmdfrAvAtGpu2XWowyLvaNX61iS6jB9MHpOG7Kud
        -----END PRIVATE KEY-----
        """
    static let certificate = try! NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)
    static let privateKey = try! NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
}

/// A small HTTP/1.1 server whose every answer the test decides, counting connections.
final class HTTP1TestServer: Sendable {
    enum Answer: Sendable {
        /// An answer; `closeIdleAfter`: the server closes the connection when it has been idle
        /// that long after the answer (as upstreams do with keep-alive connections).
        case respond(
            status: HTTPResponseStatus = .ok, version: HTTPVersion = .http1_1, headers: [(String, String)] = [], body: String = "ok",
            delay: TimeAmount = .zero, closeIdleAfter: TimeAmount? = nil
        )
        /// Closes the connection without an answer.
        case close
        /// These bytes instead of an answer.
        case raw(String)
    }

    /// The answer to the `request`th request (from 0) on the `connection`th connection (from 0).
    typealias Decide = @Sendable (_ connection: Int, _ request: Int, _ head: HTTPRequestHead) -> Answer

    private let counters = Mutex<(accepted: Int, open: Int, maxOpen: Int, requests: Int)>((0, 0, 0, 0))
    private let channel = Mutex<(any Channel)?>(nil)
    let decide: Decide

    var accepted: Int { counters.withLock { $0.accepted } }
    var open: Int { counters.withLock { $0.open } }
    var maxOpen: Int { counters.withLock { $0.maxOpen } }
    var requests: Int { counters.withLock { $0.requests } }
    var port: Int { channel.withLock { $0?.localAddress?.port ?? 0 } }

    private init(decide: @escaping Decide) {
        self.decide = decide
    }

    static func start(tls: Bool = false, _ decide: @escaping Decide) async throws -> HTTP1TestServer {
        let server = HTTP1TestServer(decide: decide)
        let sslContext: NIOSSLContext? =
            tls
            ? try NIOSSLContext(
                configuration: .makeServerConfiguration(certificateChain: [.certificate(HTTP1TestCertificate.certificate)], privateKey: .privateKey(HTTP1TestCertificate.privateKey))
            ) : nil
        let bound = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(Handler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.channel.withLock { $0 = bound }
        return server
    }

    func stop() async {
        let bound = channel.withLock { $0 }
        try? await bound?.close()
    }

    fileprivate func connectionOpened() -> Int {
        counters.withLock { counters in
            counters.accepted += 1
            counters.open += 1
            counters.maxOpen = max(counters.maxOpen, counters.open)
            return counters.accepted - 1
        }
    }

    fileprivate func connectionClosed() {
        counters.withLock { $0.open -= 1 }
    }

    fileprivate func requestReceived() {
        counters.withLock { $0.requests += 1 }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: HTTP1TestServer
        var connection = 0
        var requests = 0
        var head: HTTPRequestHead?
        var idleClose: Scheduled<Void>?

        init(server: HTTP1TestServer) {
            self.server = server
        }

        func channelActive(context: ChannelHandlerContext) {
            connection = server.connectionOpened()
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            server.connectionClosed()
            idleClose?.cancel()
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                idleClose?.cancel()
            case .body:
                break
            case .end:
                guard let head else { return }
                server.requestReceived()
                let answer = server.decide(connection, requests, head)
                requests += 1
                perform(answer, context: context)
            }
        }

        private func perform(_ answer: Answer, context: ChannelHandlerContext) {
            switch answer {
            case .respond(let status, let version, let extra, let text, let delay, let closeIdleAfter):
                let loop = context.eventLoop.assumeIsolated()
                let send = {
                    var headers = HTTPHeaders(extra)
                    headers.add(name: "content-length", value: String(text.utf8.count))
                    context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
                    context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                    context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                    if let closeIdleAfter {
                        self.idleClose = loop.scheduleTask(in: closeIdleAfter) { context.close(promise: nil) }
                    }
                }
                if delay == .zero {
                    send()
                } else {
                    loop.scheduleTask(in: delay) { send() }
                }
            case .close:
                context.close(promise: nil)
            case .raw(let text):
                let encoder = try! context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
                encoder.writeAndFlush(NIOAny(ByteBuffer(string: text)), promise: nil)
            }
        }
    }
}

extension HTTP1Client {
    /// One deadline for the wait for a connection, the head and the whole call.
    func execute(
        _ head: HTTPRequestHead, body: ByteBuffer, headDeadline: NIODeadline, on eventLoop: (any EventLoop)? = nil
    ) async throws(HTTP1ClientError) -> HTTP1ClientResponse {
        let left = headDeadline - .now()
        return try await execute(head, body: body, deadlines: HTTP1Deadlines(queueTimeout: left, firstByte: left, budget: headDeadline), on: eventLoop)
    }
}
