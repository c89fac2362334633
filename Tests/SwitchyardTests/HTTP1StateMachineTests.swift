import NIOCore
import NIOHTTP1
import Testing

@testable import SwitchyardCore

/// The upstream connection's decisions, fed events by hand: no channel, no clock.
@Suite struct HTTP1StateMachineTests {
    typealias Machine = HTTP1ConnectionStateMachine

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let timeouts = Machine.Timeouts(idle: .seconds(2), idleConnection: .seconds(60))

    static func at(_ milliseconds: Int64) -> NIODeadline { start + .milliseconds(milliseconds) }

    static func head(_ status: HTTPResponseStatus = .ok, version: HTTPVersion = .http1_1, headers: HTTPHeaders = [:]) -> HTTPResponseHead {
        HTTPResponseHead(version: version, status: status, headers: headers)
    }

    /// A plain-TCP connection, established and idle.
    static func idleMachine() -> Machine {
        var machine = Machine(connectDeadline: at(1_000), timeouts: timeouts)
        #expect(machine.channelActive(isTLS: false, now: at(10)) == .connectionReady)
        return machine
    }

    @Test func aPlainConnectionIsReadyWhenActive() {
        var machine = Machine(connectDeadline: Self.at(1_000), timeouts: Self.timeouts)
        #expect(!machine.isEstablished)
        // The TCP connect has the bootstrap's timeout.
        #expect(machine.nextDeadline == nil)
        #expect(machine.channelActive(isTLS: false, now: Self.at(10)) == .connectionReady)
        #expect(machine.isEstablished)
        #expect(machine.isIdle)
        #expect(machine.nextDeadline == Self.at(10) + .seconds(60))
    }

    @Test func aTLSConnectionIsReadyAfterTheHandshake() {
        var machine = Machine(connectDeadline: Self.at(1_000), timeouts: Self.timeouts)
        #expect(machine.channelActive(isTLS: true, now: Self.at(10)) == .read)
        #expect(!machine.isEstablished)
        #expect(machine.tlsHandshakeCompleted(now: Self.at(20)) == .connectionReady)
        #expect(machine.isIdle)
    }

    @Test func aHandshakeNotDoneByTheConnectDeadlineFailsTheConnect() {
        var machine = Machine(connectDeadline: Self.at(1_000), timeouts: Self.timeouts)
        _ = machine.channelActive(isTLS: true, now: Self.at(10))
        #expect(machine.nextDeadline == Self.at(1_000))
        #expect(machine.timerFired(now: Self.at(999)) == .none)
        #expect(machine.timerFired(now: Self.at(1_000)) == .connectFailed(.connectTimeout))
        #expect(machine.channelInactive() == .none)
    }

    @Test func aTLSErrorDuringTheHandshakeIsAConnectFailure() {
        var machine = Machine(connectDeadline: Self.at(1_000), timeouts: Self.timeouts)
        _ = machine.channelActive(isTLS: true, now: Self.at(10))
        let error = HTTP1ClientError(.tls, "certificate verify failed")
        #expect(machine.errorCaught(error) == .connectFailed(error))
        #expect(machine.channelInactive() == .none)
    }

    @Test func aClosedHandshakeIsAConnectFailure() {
        var machine = Machine(connectDeadline: Self.at(1_000), timeouts: Self.timeouts)
        _ = machine.channelActive(isTLS: true, now: Self.at(10))
        #expect(machine.channelInactive() == .connectFailed(.closedDuringTLSHandshake))
    }

    @Test func aKeepAliveExchangeReturnsTheConnectionToThePool() {
        var machine = Self.idleMachine()
        #expect(machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true) == .sendRequest)
        #expect(machine.nextDeadline == Self.at(5_000))
        #expect(machine.channelReadComplete(now: Self.at(20)) == .read)
        let head = Self.head()
        #expect(machine.responseHead(head, now: Self.at(30)) == .forwardHead(head))
        #expect(machine.nextDeadline == Self.at(30) + .seconds(2))
        let part = ByteBuffer(string: "{}")
        #expect(machine.responseBodyPart(part) == .forwardBodyPart(part))
        #expect(machine.responseEnd(now: Self.at(40)) == .forwardEnd(reuse: true))
        #expect(machine.isIdle)
        #expect(machine.channelReadComplete(now: Self.at(41)) == .read)
        #expect(machine.nextDeadline == Self.at(40) + .seconds(60))
    }

    @Test func connectionCloseFromTheUpstreamIsNotReused() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        _ = machine.responseHead(Self.head(headers: ["connection": "close"]), now: Self.at(30))
        #expect(machine.responseEnd(now: Self.at(40)) == .forwardEnd(reuse: false))
        #expect(machine.channelInactive() == .none)
    }

    @Test func anHTTP10AnswerIsNotReused() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        _ = machine.responseHead(Self.head(version: .http1_0), now: Self.at(30))
        #expect(machine.responseEnd(now: Self.at(40)) == .forwardEnd(reuse: false))
    }

    @Test func connectionCloseFromTheCallerIsNotReused() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: false)
        _ = machine.responseHead(Self.head(), now: Self.at(30))
        #expect(machine.responseEnd(now: Self.at(40)) == .forwardEnd(reuse: false))
    }

    @Test func noHeadByTheDeadlineIsAHeadTimeout() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        #expect(machine.timerFired(now: Self.at(4_999)) == .none)
        #expect(machine.timerFired(now: Self.at(5_000)) == .failRequest(.headTimeout, retry: false))
        #expect(machine.nextDeadline == nil)
        #expect(machine.channelInactive() == .none)
    }

    @Test func silenceInTheBodyIsAnIdleTimeout() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        _ = machine.responseHead(Self.head(), now: Self.at(100))
        _ = machine.channelReadComplete(now: Self.at(1_000))
        #expect(machine.timerFired(now: Self.at(2_100)) == .none)
        #expect(machine.nextDeadline == Self.at(3_000))
        #expect(machine.timerFired(now: Self.at(3_000)) == .failRequest(.idleTimeout, retry: false))
    }

    @Test func aFullCallerBufferStopsReadingAndTheIdleClock() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        _ = machine.responseHead(Self.head(), now: Self.at(100))
        machine.bodyBufferFull()
        #expect(machine.channelReadComplete(now: Self.at(200)) == .none)
        #expect(machine.nextDeadline == nil)
        #expect(machine.timerFired(now: Self.at(60_000)) == .none)
        #expect(machine.demandMore(now: Self.at(60_000)) == .read)
        #expect(machine.demandMore(now: Self.at(60_001)) == .none)
        #expect(machine.nextDeadline == Self.at(62_000))
    }

    @Test func aConnectionIdleTooLongIsClosed() {
        var machine = Self.idleMachine()
        #expect(machine.timerFired(now: Self.at(10) + .seconds(59)) == .none)
        #expect(machine.timerFired(now: Self.at(10) + .seconds(60)) == .close)
        #expect(machine.channelInactive() == .none)
    }

    @Test func anUpstreamClosingAnIdleConnectionIsReported() {
        var machine = Self.idleMachine()
        #expect(machine.channelInactive() == .connectionClosed)
        #expect(machine.channelInactive() == .none)
    }

    @Test func aCloseBeforeTheHeadOnAFreshConnectionIsNotRetried() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        #expect(machine.channelInactive() == .failRequest(.closedBeforeHead, retry: false))
    }

    @Test func aCloseBeforeTheHeadOnAReusedConnectionIsRetried() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        _ = machine.responseHead(Self.head(), now: Self.at(30))
        _ = machine.responseEnd(now: Self.at(40))
        _ = machine.startRequest(headDeadline: Self.at(6_000), keepAlive: true)
        #expect(machine.channelInactive() == .failRequest(.closedBeforeHead, retry: true))
    }

    @Test func aResetBeforeTheHeadOnAReusedConnectionIsRetriedButNotAParseError() {
        for (error, retry) in [(HTTP1ClientError(.reset, "ECONNRESET"), true), (HTTP1ClientError(.invalidResponse, "bad status line"), false)] {
            var machine = Self.idleMachine()
            _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
            _ = machine.responseHead(Self.head(), now: Self.at(30))
            _ = machine.responseEnd(now: Self.at(40))
            _ = machine.startRequest(headDeadline: Self.at(6_000), keepAlive: true)
            #expect(machine.errorCaught(error) == .failRequest(error, retry: retry))
            #expect(machine.channelInactive() == .none)
        }
    }

    @Test func aCloseInTheBodyIsAResetAndNeverRetried() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        _ = machine.responseHead(Self.head(), now: Self.at(30))
        _ = machine.responseEnd(now: Self.at(40))
        _ = machine.startRequest(headDeadline: Self.at(6_000), keepAlive: true)
        _ = machine.responseHead(Self.head(), now: Self.at(50))
        #expect(machine.channelInactive() == .failRequest(.closedInBody, retry: false))
    }

    @Test func anAbandonedRequestClosesTheConnection() {
        var waiting = Self.idleMachine()
        _ = waiting.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        #expect(waiting.requestAbandoned() == .failRequest(.cancelled, retry: false))

        var streaming = Self.idleMachine()
        _ = streaming.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        _ = streaming.responseHead(Self.head(), now: Self.at(30))
        #expect(streaming.requestAbandoned() == .failRequest(.cancelled, retry: false))
        #expect(streaming.responseEnd(now: Self.at(40)) == .none)
        #expect(streaming.channelInactive() == .none)
    }

    @Test func anAbandonAfterTheEndChangesNothing() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        _ = machine.responseHead(Self.head(), now: Self.at(30))
        _ = machine.responseEnd(now: Self.at(40))
        #expect(machine.requestAbandoned() == .none)
        #expect(machine.isIdle)
    }

    @Test func switchingProtocolsIsRefused() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        #expect(machine.responseHead(Self.head(.switchingProtocols), now: Self.at(30)) == .failRequest(.unexpectedUpgrade, retry: false))
    }

    @Test func shutdownFailsTheRequestUnderWayAndClosesIdleOnes() {
        var busy = Self.idleMachine()
        _ = busy.startRequest(headDeadline: Self.at(5_000), keepAlive: true)
        #expect(busy.shutdown() == .failRequest(.shutdown, retry: false))
        var idle = Self.idleMachine()
        #expect(idle.shutdown() == .close)
        #expect(idle.shutdown() == .none)
    }

    @Test func anErrorOnAnIdleConnectionClosesIt() {
        var machine = Self.idleMachine()
        #expect(machine.errorCaught(HTTP1ClientError(.invalidResponse, "unsolicited response")) == .close)
    }

    // MARK: Body buffer

    @Test func theBodyBufferMergesPartsAndPausesAtItsLimit() {
        var buffer = HTTP1BodyBuffer(limit: 8)
        let first = buffer.append(ByteBuffer(string: "abc"))
        let second = buffer.append(ByteBuffer(string: "defgh"))
        #expect(first)
        #expect(!second)
        #expect(buffer.isPaused)
        let (bytes, resume) = buffer.take()
        #expect(bytes.map { String(buffer: $0) } == "abcdefgh")
        #expect(resume)
        #expect(!buffer.isPaused)
        #expect(buffer.take().bytes == nil)
    }

    @Test func aWaitingReaderResumesAPausedBuffer() {
        var buffer = HTTP1BodyBuffer(limit: 2)
        let keepReading = buffer.append(ByteBuffer(string: "abc"))
        #expect(!keepReading)
        buffer.removeAll()
        let resumed = buffer.resumeIfPaused()
        let resumedAgain = buffer.resumeIfPaused()
        #expect(resumed)
        #expect(!resumedAgain)
    }

    // MARK: Request encoding

    static func encoded(_ head: HTTPRequestHead, body: String) throws -> (String, HTTP1RequestEncoder.Encoded) {
        let encoded = try HTTP1RequestEncoder.encode(head, body: ByteBuffer(string: body), allocator: ByteBufferAllocator())
        return (String(buffer: encoded.bytes), encoded)
    }

    @Test func theRequestIsOneBufferWithTheContentLengthSetFromTheBody() throws {
        let head = HTTPRequestHead(
            version: .http1_1, method: .POST, uri: "/v1/messages?beta=true",
            headers: ["Host": "api.example.com", "Content-Length": "999", "transfer-encoding": "chunked", "x-api-key": "k"]
        )
        let (text, encoded) = try Self.encoded(head, body: #"{"a":1}"#)
        #expect(text == "POST /v1/messages?beta=true HTTP/1.1\r\nHost: api.example.com\r\nx-api-key: k\r\ncontent-length: 7\r\n\r\n{\"a\":1}")
        #expect(encoded.trailingBody == nil)
        #expect(!encoded.closeAfterResponse)
    }

    /// A provider's own lines (its key, its client's `host`) are checked and encoded once, and go
    /// after the request's own headers.
    @Test func presetLinesFollowTheHeadsOwnHeaders() throws {
        let key = try PresetHeaderLines([("x-api-key", "k")])
        let host = try PresetHeaderLines([("host", "api.example.com")])
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/messages", headers: ["anthropic-version": "2023-06-01"])
        let encoded = try HTTP1RequestEncoder.encode(
            head, presetLines: host.followed(by: key), body: ByteBuffer(string: "{}"), allocator: ByteBufferAllocator()
        )
        #expect(
            String(buffer: encoded.bytes)
                == "POST /v1/messages HTTP/1.1\r\nanthropic-version: 2023-06-01\r\nhost: api.example.com\r\nx-api-key: k\r\ncontent-length: 2\r\n\r\n{}"
        )
        #expect(PresetHeaderLines.none.followed(by: key).text == "x-api-key: k\r\n")
        #expect(key.followed(by: .none).text == "x-api-key: k\r\n")
        let refused: [[(String, String)]] = [
            [("x a", "1")], [("x-a", "1\r\nx-b: 2")], [("x-a", "nul\u{0}")], [("Content-Length", "5")], [("transfer-encoding", "chunked")], [("Connection", "close")],
        ]
        for lines in refused {
            #expect(throws: HTTP1ClientError.self, "\(lines)") { try PresetHeaderLines(lines) }
        }
    }

    @Test func aGetWithoutBodyHasNoContentLength() throws {
        let (text, _) = try Self.encoded(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/healthz", headers: ["host": "h"]), body: "")
        #expect(text == "GET /healthz HTTP/1.1\r\nhost: h\r\n\r\n")
    }

    @Test func aLargeBodyFollowsTheHeadUncopied() throws {
        let body = String(repeating: "x", count: HTTP1RequestEncoder.inlineBodyLimit + 1)
        let (text, encoded) = try Self.encoded(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: [:]), body: body)
        #expect(text == "POST / HTTP/1.1\r\ncontent-length: \(body.utf8.count)\r\n\r\n")
        #expect(encoded.trailingBody?.readableBytes == body.utf8.count)
    }

    @Test func connectionCloseFromTheCallerIsNoticed() throws {
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: ["Connection": "keep-alive, Close"])
        #expect(try Self.encoded(head, body: "").1.closeAfterResponse)
    }

    @Test func headerInjectionIsRefused() {
        let cases: [HTTPRequestHead] = [
            HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: ["x-a": "1\r\nx-b: 2"]),
            HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: ["x a": "1"]),
            HTTPRequestHead(version: .http1_1, method: .POST, uri: "/a b", headers: [:]),
            HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "/", headers: [:]),
        ]
        for head in cases {
            #expect(throws: HTTP1ClientError.self) {
                do {
                    _ = try HTTP1RequestEncoder.encode(head, body: ByteBuffer(), allocator: ByteBufferAllocator())
                } catch {
                    #expect((error as? HTTP1ClientError)?.kind == .invalidRequest)
                    throw error
                }
            }
        }
    }
}
