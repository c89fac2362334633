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

    static func fresh() -> Machine {
        Machine(connectStarted: start, connectDeadline: at(1_000), timeouts: timeouts)
    }

    /// A plain-TCP connection, established and idle.
    static func idleMachine() -> Machine {
        var machine = fresh()
        #expect(machine.channelActive(waitsForHandshake: false, now: at(10)) == .connectionReady)
        return machine
    }

    /// One whole keep-alive exchange at `at`…`at+10` ms, back to idle.
    static func exchange(_ machine: inout Machine, at start: Int64) {
        _ = machine.startRequest(headDeadline: at(start + 5_000), keepAlive: true, now: at(start))
        _ = machine.responseHead(head(), now: at(start + 5))
        _ = machine.responseEnd(now: at(start + 10))
        #expect(machine.channelReadComplete(now: at(start + 10), pendingBytes: false) == .release(keepAliveTimeout: nil))
    }

    @Test func aPlainConnectionIsReadyWhenActive() {
        var machine = Self.fresh()
        #expect(!machine.isEstablished)
        // The TCP connect has the bootstrap's timeout.
        #expect(machine.nextDeadline == nil)
        #expect(machine.channelActive(waitsForHandshake: false, now: Self.at(10)) == .connectionReady)
        #expect(machine.isEstablished)
        #expect(machine.isIdle)
        #expect(machine.nextDeadline == Self.at(10) + .seconds(60))
    }

    @Test func aTLSConnectionIsReadyAfterTheHandshake() {
        var machine = Self.fresh()
        #expect(machine.channelActive(waitsForHandshake: true, now: Self.at(10)) == .read)
        #expect(!machine.isEstablished)
        #expect(machine.handshakeCompleted(now: Self.at(20)) == .connectionReady)
        #expect(machine.isIdle)
    }

    @Test func aHandshakeNotDoneByTheConnectDeadlineFailsTheConnect() {
        var machine = Self.fresh()
        _ = machine.channelActive(waitsForHandshake: true, now: Self.at(10))
        #expect(machine.nextDeadline == Self.at(1_000))
        #expect(machine.timerFired(now: Self.at(999)) == .none)
        #expect(machine.timerFired(now: Self.at(1_000)) == .connectFailed(.connectTimeout))
        #expect(machine.channelInactive(now: Self.at(1_001)) == .none)
    }

    @Test func aTLSErrorDuringTheHandshakeIsAConnectFailure() {
        var machine = Self.fresh()
        _ = machine.channelActive(waitsForHandshake: true, now: Self.at(10))
        let error = HTTP1ClientError(.tls, "certificate verify failed")
        #expect(machine.errorCaught(error, now: Self.at(11)) == .connectFailed(error))
        #expect(machine.channelInactive(now: Self.at(12)) == .none)
    }

    @Test func aClosedHandshakeIsAConnectFailure() {
        var machine = Self.fresh()
        _ = machine.channelActive(waitsForHandshake: true, now: Self.at(10))
        #expect(machine.channelInactive(now: Self.at(11)) == .connectFailed(.closedDuringTLSHandshake))
    }

    @Test func aKeepAliveExchangeReturnsTheConnectionToThePoolOnceItsReadIsDone() {
        var machine = Self.idleMachine()
        #expect(machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15)) == .sendRequest)
        #expect(machine.nextDeadline == Self.at(5_000))
        #expect(machine.channelReadComplete(now: Self.at(20), pendingBytes: false) == .read)
        let head = Self.head()
        #expect(machine.responseHead(head, now: Self.at(30)) == .forwardHead(head))
        #expect(machine.nextDeadline == Self.at(30) + .seconds(2))
        let part = ByteBuffer(string: "{}")
        #expect(machine.responseBodyPart(part) == .forwardBodyPart(part))
        #expect(machine.responseEnd(now: Self.at(40)) == .forwardEnd(keepAlive: true))
        // Not idle yet: the read that brought the end may bring more.
        #expect(!machine.isIdle)
        #expect(machine.channelReadComplete(now: Self.at(41), pendingBytes: false) == .release(keepAliveTimeout: nil))
        #expect(machine.isIdle)
        #expect(machine.channelReadComplete(now: Self.at(42), pendingBytes: false) == .read)
        #expect(machine.nextDeadline == Self.at(41) + .seconds(60))
    }

    @Test func anExtraAnswerAfterTheEndClosesTheConnection() {
        for extra in ["head", "body", "end"] {
            var machine = Self.idleMachine()
            _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
            _ = machine.responseHead(Self.head(), now: Self.at(30))
            #expect(machine.responseEnd(now: Self.at(40)) == .forwardEnd(keepAlive: true))
            let action =
                switch extra {
                case "head": machine.responseHead(Self.head(), now: Self.at(40))
                case "body": machine.responseBodyPart(ByteBuffer(string: "x"))
                default: machine.responseEnd(now: Self.at(40))
                }
            #expect(action == .close, "\(extra)")
            #expect(machine.channelReadComplete(now: Self.at(41), pendingBytes: false) == .none)
        }
    }

    @Test func bytesLeftInTheDecoderAfterTheEndCloseTheConnection() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = machine.responseHead(Self.head(), now: Self.at(30))
        _ = machine.responseEnd(now: Self.at(40))
        #expect(machine.channelReadComplete(now: Self.at(41), pendingBytes: true) == .close)
    }

    @Test func anErrorOrACloseRightAfterTheEndLosesNothing() {
        var erring = Self.idleMachine()
        _ = erring.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = erring.responseHead(Self.head(), now: Self.at(30))
        _ = erring.responseEnd(now: Self.at(40))
        #expect(erring.errorCaught(HTTP1ClientError(.invalidResponse, "unsolicited response"), now: Self.at(40)) == .close)

        var closing = Self.idleMachine()
        _ = closing.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = closing.responseHead(Self.head(), now: Self.at(30))
        _ = closing.responseEnd(now: Self.at(40))
        #expect(closing.channelInactive(now: Self.at(40)) == .close)
    }

    @Test func theUpstreamsKeepAliveTimeoutGoesWithTheRelease() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = machine.responseHead(Self.head(headers: ["Keep-Alive": "timeout=5, max=100"]), now: Self.at(30))
        _ = machine.responseEnd(now: Self.at(40))
        #expect(machine.channelReadComplete(now: Self.at(41), pendingBytes: false) == .release(keepAliveTimeout: .seconds(5)))
        #expect(Machine.keepAliveTimeout(in: ["keep-alive": "max=5"]) == nil)
        #expect(Machine.keepAliveTimeout(in: ["keep-alive": "timeout=0"]) == nil)
        #expect(Machine.keepAliveTimeout(in: ["keep-alive": " Timeout = 75 "]) == .seconds(75))
    }

    @Test func connectionCloseFromTheUpstreamIsNotReused() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = machine.responseHead(Self.head(headers: ["connection": "close"]), now: Self.at(30))
        #expect(machine.responseEnd(now: Self.at(40)) == .forwardEnd(keepAlive: false))
        #expect(machine.channelInactive(now: Self.at(41)) == .none)
    }

    @Test func anHTTP10AnswerIsNotReused() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = machine.responseHead(Self.head(version: .http1_0), now: Self.at(30))
        #expect(machine.responseEnd(now: Self.at(40)) == .forwardEnd(keepAlive: false))
    }

    @Test func connectionCloseFromTheCallerIsNotReused() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: false, now: Self.at(15))
        _ = machine.responseHead(Self.head(), now: Self.at(30))
        #expect(machine.responseEnd(now: Self.at(40)) == .forwardEnd(keepAlive: false))
    }

    @Test func noHeadByTheDeadlineIsAHeadTimeout() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        #expect(machine.timerFired(now: Self.at(4_999)) == .none)
        #expect(machine.timerFired(now: Self.at(5_000)) == .failRequest(.headTimeout, retry: false))
        #expect(machine.nextDeadline == nil)
        #expect(machine.channelInactive(now: Self.at(5_001)) == .none)
    }

    @Test func silenceInTheBodyIsAnIdleTimeout() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = machine.responseHead(Self.head(), now: Self.at(100))
        _ = machine.channelReadComplete(now: Self.at(1_000), pendingBytes: false)
        #expect(machine.timerFired(now: Self.at(2_100)) == .none)
        #expect(machine.nextDeadline == Self.at(3_000))
        #expect(machine.timerFired(now: Self.at(3_000)) == .failRequest(.idleTimeout, retry: false))
    }

    @Test func aFullCallerBufferStopsReadingAndTheIdleClock() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = machine.responseHead(Self.head(), now: Self.at(100))
        machine.bodyBufferFull()
        #expect(machine.channelReadComplete(now: Self.at(200), pendingBytes: false) == .none)
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
        #expect(machine.channelInactive(now: Self.at(10) + .seconds(61)) == .none)
    }

    @Test func anUpstreamClosingAnIdleConnectionIsReported() {
        var machine = Self.idleMachine()
        #expect(machine.channelInactive(now: Self.at(20)) == .connectionClosed)
        #expect(machine.channelInactive(now: Self.at(21)) == .none)
    }

    @Test func aCloseBeforeTheHeadOnAFreshConnectionIsNotRetried() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        #expect(machine.channelInactive(now: Self.at(16)) == .failRequest(.closedBeforeHead, retry: false))
    }

    @Test func aCloseRightAfterTheWriteOnAReusedConnectionIsTheKeepAliveRaceAndRetried() {
        var machine = Self.idleMachine()
        Self.exchange(&machine, at: 20)
        _ = machine.startRequest(headDeadline: Self.at(6_000), keepAlive: true, now: Self.at(100))
        #expect(machine.channelInactive(now: Self.at(101)) == .failRequest(.closedBeforeHead, retry: true))
    }

    @Test func aCloseLongAfterTheWriteIsAnOrdinaryFailureNotASilentResend() {
        // The upstream read the request and worked on it: resending it would run it twice.
        var closed = Self.idleMachine()
        Self.exchange(&closed, at: 20)
        _ = closed.startRequest(headDeadline: Self.at(6_000), keepAlive: true, now: Self.at(100))
        #expect(closed.channelInactive(now: Self.at(1_100)) == .failRequest(.closedBeforeHead, retry: false))

        var reset = Self.idleMachine()
        Self.exchange(&reset, at: 20)
        _ = reset.startRequest(headDeadline: Self.at(6_000), keepAlive: true, now: Self.at(100))
        let error = HTTP1ClientError(.reset, "ECONNRESET")
        #expect(reset.errorCaught(error, now: Self.at(400)) == .failRequest(error, retry: false))
    }

    @Test func aCloseAfterTheAnswerBeganIsNeverRetried() {
        var machine = Self.idleMachine()
        Self.exchange(&machine, at: 20)
        _ = machine.startRequest(headDeadline: Self.at(6_000), keepAlive: true, now: Self.at(100))
        #expect(machine.channelInactive(now: Self.at(101), answerBegan: true) == .failRequest(.closedBeforeHead, retry: false))
    }

    @Test func theReplayWindowFollowsTheConnectTimeWithinItsBounds() {
        var quick = Self.fresh()
        _ = quick.channelActive(waitsForHandshake: false, now: Self.at(1))
        #expect(quick.replayWindow == .milliseconds(100))
        var slow = Self.fresh()
        _ = slow.channelActive(waitsForHandshake: true, now: Self.at(10))
        _ = slow.handshakeCompleted(now: Self.at(150))
        #expect(slow.replayWindow == .milliseconds(300))
        var verySlow = Self.fresh()
        _ = verySlow.channelActive(waitsForHandshake: true, now: Self.at(10))
        _ = verySlow.handshakeCompleted(now: Self.at(900))
        #expect(verySlow.replayWindow == .seconds(1))
    }

    @Test func aResetBeforeTheHeadOnAReusedConnectionIsRetriedButNotAParseError() {
        for (error, retry) in [(HTTP1ClientError(.reset, "ECONNRESET"), true), (HTTP1ClientError(.invalidResponse, "bad status line"), false)] {
            var machine = Self.idleMachine()
            Self.exchange(&machine, at: 20)
            _ = machine.startRequest(headDeadline: Self.at(6_000), keepAlive: true, now: Self.at(100))
            #expect(machine.errorCaught(error, now: Self.at(102)) == .failRequest(error, retry: retry))
            #expect(machine.channelInactive(now: Self.at(103)) == .none)
        }
    }

    @Test func aCloseInTheBodyIsAResetAndNeverRetried() {
        var machine = Self.idleMachine()
        Self.exchange(&machine, at: 20)
        _ = machine.startRequest(headDeadline: Self.at(6_000), keepAlive: true, now: Self.at(100))
        _ = machine.responseHead(Self.head(), now: Self.at(101))
        #expect(machine.channelInactive(now: Self.at(102)) == .failRequest(.closedInBody, retry: false))
    }

    @Test func anAbandonedRequestClosesTheConnection() {
        var waiting = Self.idleMachine()
        _ = waiting.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        #expect(waiting.requestAbandoned() == .failRequest(.cancelled, retry: false))

        var streaming = Self.idleMachine()
        _ = streaming.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = streaming.responseHead(Self.head(), now: Self.at(30))
        #expect(streaming.requestAbandoned() == .failRequest(.cancelled, retry: false))
        #expect(streaming.responseEnd(now: Self.at(40)) == .none)
        #expect(streaming.channelInactive(now: Self.at(41)) == .none)
    }

    @Test func anAbandonAfterTheEndChangesNothing() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        _ = machine.responseHead(Self.head(), now: Self.at(30))
        _ = machine.responseEnd(now: Self.at(40))
        #expect(machine.requestAbandoned() == .none)
        #expect(machine.channelReadComplete(now: Self.at(41), pendingBytes: false) == .release(keepAliveTimeout: nil))
        #expect(machine.isIdle)
    }

    @Test func switchingProtocolsIsRefused() {
        var machine = Self.idleMachine()
        _ = machine.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        #expect(machine.responseHead(Self.head(.switchingProtocols), now: Self.at(30)) == .failRequest(.unexpectedUpgrade, retry: false))
    }

    @Test func shutdownFailsTheRequestUnderWayAndClosesIdleOnes() {
        var busy = Self.idleMachine()
        _ = busy.startRequest(headDeadline: Self.at(5_000), keepAlive: true, now: Self.at(15))
        #expect(busy.shutdown() == .failRequest(.shutdown, retry: false))
        var idle = Self.idleMachine()
        #expect(idle.shutdown() == .close)
        #expect(idle.shutdown() == .none)
    }

    @Test func anErrorOnAnIdleConnectionClosesIt() {
        var machine = Self.idleMachine()
        #expect(machine.errorCaught(HTTP1ClientError(.invalidResponse, "unsolicited response"), now: Self.at(20)) == .close)
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
