import NIOCore
import NIOHTTP1
import Testing

@testable import SwitchyardCore

/// ``PlainHTTP1Decoder`` on the caller side reads plain requests itself and must pass on exactly
/// what NIO's decoder would for the same bytes, however they are cut; everything else goes to
/// NIO's decoder.
@Suite("Caller request decoder")
struct CallerRequestDecoderTests {
    static let limits: NIOHTTPDecoderLimitConfiguration = {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 600
        limits.maxHeaderListSize = 600
        limits.maxHeaderFieldCount = 12
        return limits
    }()

    static func request(_ head: String, body: String = "") -> [UInt8] {
        Array((head.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n\r\n" + body).utf8)
    }

    /// What an SDK sends, near enough.
    static let sdkRequest = request(
        """
        POST /v1/messages HTTP/1.1
        host: 127.0.0.1:8080
        accept: application/json
        accept-encoding: gzip, deflate
        connection: keep-alive
        user-agent: Anthropic/Python 0.40.0
        x-api-key: sk-ant-test
        anthropic-version: 2023-06-01
        content-type: application/json
        x-stainless-retry-count: 0
        content-length: 20
        """,
        body: #"{"model":"claude-x"}"#
    )

    /// Both decoders on the same pieces; returns whether Switchyard's handed over.
    @discardableResult
    static func expectSame(
        _ pieces: [[UInt8]], _ kind: DecoderDifferential.Kind = .requests, sourceLocation: SourceLocation = #_sourceLocation
    ) -> Bool {
        let ours = DecoderDifferential.run(pieces, kind, ours: true, limits: limits)
        let nio = DecoderDifferential.run(pieces, kind, ours: false, limits: limits)
        #expect(ours.events == nio.events, "pieces \(pieces.map { String(decoding: $0, as: UTF8.self) })", sourceLocation: sourceLocation)
        return ours.handedOver
    }

    /// 1,500 mutations of `seeds` from a seeded generator (the same cases each run), each with
    /// where to cut it in two: a byte changed, dropped or doubled, or one of the bytes framing
    /// depends on put in, one to three times.
    static func mutations(of seeds: [[UInt8]], seed: UInt64) -> [([UInt8], Int)] {
        var generator = SeededRandom(state: seed)
        let specials: [UInt8] = Array(" \t\r\n:;,0123-+/?#%\"\0\u{7F}".utf8) + [0x80, 0xC3, 0xFF]
        return (0..<1500).map { _ in
            var bytes = seeds[Int(generator.next() % UInt64(seeds.count))]
            for _ in 0...(generator.next() % 3) {
                let at = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 4 {
                case 0: bytes[at] = specials[Int(generator.next() % UInt64(specials.count))]
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(bytes[at], at: at)
                default: bytes.insert(specials[Int(generator.next() % UInt64(specials.count))], at: at)
                }
            }
            return (bytes, Int(generator.next() % UInt64(bytes.count + 1)))
        }
    }

    /// Whole, cut in two at every byte from `start` on, and one byte at a time. Async, yielding
    /// between cuts: these comparisons are seconds of CPU in all, and on Swift's cooperative pool
    /// (as wide as the machine's cores) they would hold back the other suites' tasks for as long.
    static func expectSameAtEveryCut(
        _ bytes: [UInt8], _ kind: DecoderDifferential.Kind = .requests, from start: Int = 1,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async -> Set<Bool> {
        var handedOver: Set<Bool> = []
        handedOver.insert(expectSame([bytes], kind, sourceLocation: sourceLocation))
        for cut in max(start, 1)..<max(bytes.count, 1) {
            handedOver.insert(expectSame(DecoderDifferential.pieces(bytes, cuts: [cut]), kind, sourceLocation: sourceLocation))
            if cut % 16 == 0 { await Task.yield() }
        }
        handedOver.insert(expectSame(bytes.map { [$0] }, kind, sourceLocation: sourceLocation))
        return handedOver
    }

    @Test func plainRequestsAreReadWithoutNIOsDecoderAndAlike() async {
        let plain: [[UInt8]] = [
            Self.sdkRequest,
            Self.request("GET /healthz HTTP/1.1\nHost: x"),
            Self.request("POST /v1/messages/count_tokens?beta=true HTTP/1.1\nContent-Length: 0\nX-Empty-Ish: a  b"),
            Self.sdkRequest + Self.sdkRequest + Self.request("GET /metrics HTTP/1.1"),
            Self.request("DELETE /v1/messages/batches/msgbatch_01 HTTP/1.1\ncontent-length:3", body: "abc"),
            // Exactly as many headers as the limit allows.
            Self.request("GET /x HTTP/1.1\n" + (1...12).map { "X-\($0): v" }.joined(separator: "\n")),
        ]
        for bytes in plain {
            #expect(await Self.expectSameAtEveryCut(bytes) == [false], "\(String(decoding: bytes, as: UTF8.self))")
        }
        // And the events are the request, not two empty lists.
        let events = DecoderDifferential.run([Self.sdkRequest], .requests, ours: true, limits: Self.limits).events
        #expect(events.count == 4)
        #expect(events.first?.hasPrefix("head POST /v1/messages HTTP/1.1 keepAlive=true [host=127.0.0.1:8080|") == true)
        #expect(events.dropFirst().first == #"body {"model":"claude-x"}"#)
        #expect(events.last == "inactive")
    }

    /// Every shape the hand parser declines, alone and after a plain request on the same
    /// connection (cut anywhere from the end of that one on): NIO's decoder takes the connection
    /// over at that request and reads it (or refuses it) exactly as it would have from the first
    /// byte.
    @Test func otherShapesGoToNIOsDecoderAtTheirFirstByte() async {
        let other: [[UInt8]] = [
            Self.request("POST /v1/messages HTTP/1.1\nTransfer-Encoding: chunked", body: "3\r\nabc\r\n0\r\n\r\n"),
            Self.request("POST /v1/messages HTTP/1.1\nContent-Length: 3\nTransfer-Encoding: chunked", body: "3\r\nabc\r\n0\r\n\r\n"),
            Self.request("POST /v1/messages HTTP/1.1\nContent-Length: 3\nContent-Length: 3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\nContent-Length: 3\nContent-Length: 4", body: "abcd"),
            Self.request("POST /v1/messages HTTP/1.1\nContent-Length: +3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\nContent-Length: 3 3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\nContent-Length:\t3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\nContent-Length: 3 ", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\nContent-Length : 3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\nX-A: 1\n  folded\nContent-Length: 3", body: "abc"),
            Array("POST /v1/messages HTTP/1.1\nContent-Length: 3\n\nabc".utf8),
            Array("POST /v1/messages HTTP/1.1\r\nX-A: a\rb\r\nContent-Length: 3\r\n\r\nabc".utf8),
            Self.request("POST /v1/messages HTTP/1.1\nX-A: \u{7F}\nContent-Length: 3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\nX-A: caf\u{E9}\nContent-Length: 3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\nX-A:\nContent-Length: 3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\n: empty-name\nContent-Length: 3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.0\nContent-Length: 3", body: "abc"),
            Self.request("POST /v1/messages HTTP/2.0\nContent-Length: 3", body: "abc"),
            Self.request("POST http://example.com/v1/messages HTTP/1.1\nContent-Length: 3", body: "abc"),
            Self.request("OPTIONS * HTTP/1.1"),
            Self.request("post /v1/messages HTTP/1.1\nContent-Length: 3", body: "abc"),
            Self.request("BREW /pot HTTP/1.1"),
            Self.request("POST  /v1/messages HTTP/1.1\nContent-Length: 3", body: "abc"),
            Self.request("POST /v1/messages#frag HTTP/1.1\nContent-Length: 3", body: "abc"),
            Self.request("POST /v1/mess\"ages HTTP/1.1\nContent-Length: 3", body: "abc"),
            Self.request("POST /v1/messages HTTP/1.1\nConnection: close\nContent-Length: 3", body: "abc") + Self.sdkRequest,
            Self.request("GET /ws HTTP/1.1\nConnection: Upgrade\nUpgrade: websocket"),
            Self.request("POST /v1/messages HTTP/1.1\nX-Long: " + String(repeating: "a", count: 700)),
            Self.request("POST /v1/messages HTTP/1.1\n" + (1...13).map { "X-\($0): v" }.joined(separator: "\n")),
            Array("POST /v1/messages HTTP/1.1\r\nX-A: a\0b\r\n\r\n".utf8),
            Array("\r\nGET / HTTP/1.1\r\n\r\n".utf8),
        ]
        for bytes in other {
            #expect(await Self.expectSameAtEveryCut(bytes).contains(true), "\(String(decoding: bytes, as: UTF8.self))")
            #expect(await Self.expectSameAtEveryCut(Self.sdkRequest + bytes, from: Self.sdkRequest.count - 4).contains(true))
        }
    }

    /// A head read with the previous one at hand takes what is the same from it, and must read
    /// exactly as the same bytes read alone, whatever changed: a value, the target, the method,
    /// a line more or fewer, their order.
    @Test func aHeadReadAfterAnotherReadsAsItDoesAlone() throws {
        let limits = SimpleHTTPHead.Limits(Self.limits)
        func parse(_ text: String, after previous: HTTPRequestHead?) throws -> HTTPRequestHead {
            let bytes = Self.request(text)
            guard case .head(let head, let length, _) = bytes.withUnsafeBytes({ SimpleHTTPHead.request($0, limits: limits, previous: previous) })
            else { throw CancellationError() }
            #expect(length == bytes.count)
            return head
        }
        let first = "POST /v1/messages HTTP/1.1\nhost: a\nx-api-key: sk-ant-0123456789abcdef\ncontent-type: application/json\ncontent-length: 2"
        let variants = [
            first,
            first.replacingOccurrences(of: "sk-ant-0123456789abcdef", with: "sk-ant-0123456789abcdeF"),
            first.replacingOccurrences(of: "/v1/messages", with: "/v1/messages/count_tokens"),
            first.replacingOccurrences(of: "POST", with: "PUT"),
            first + "\nanthropic-beta: tools-2024-04-04",
            first.replacingOccurrences(of: "\ncontent-type: application/json", with: ""),
            first.replacingOccurrences(of: "host: a\nx-api-key: sk-ant-0123456789abcdef", with: "x-api-key: sk-ant-0123456789abcdef\nhost: a"),
            "GET /healthz HTTP/1.1",
        ]
        for earlier in variants {
            let previous = try parse(earlier, after: nil)
            for text in variants {
                let alone = try parse(text, after: nil)
                let after = try parse(text, after: previous)
                #expect(after == alone, "\(text) after \(earlier)")
                #expect(after.headers.map { "\($0.name)=\($0.value)" } == alone.headers.map { "\($0.name)=\($0.value)" })
            }
        }
    }

    /// The input ends inside a request: the same error as NIO's decoder, then the close.
    @Test func aRequestCutShortEndsAsWithNIOsDecoder() {
        let whole = Self.sdkRequest
        for end in [1, 30, whole.count - 25, whole.count - 5, whole.count - 1] {
            let events = DecoderDifferential.run([Array(whole[..<end])], .requests, ours: true, limits: Self.limits).events
            #expect(events == DecoderDifferential.run([Array(whole[..<end])], .requests, ours: false, limits: Self.limits).events)
            #expect(events.last == "inactive")
            #expect(events.contains { $0.hasPrefix("error") })
        }
    }

    /// Mutations of plain requests (``mutations(of:seed:)``): whatever the parser makes of each,
    /// NIO's decoder made the same.
    @Test func mutatedRequestsAreReadAsNIOsDecoderReadsThem() async {
        var handedOver = 0
        let seeds = [Self.sdkRequest, Self.request("GET /healthz HTTP/1.1\nHost: x"), Self.sdkRequest + Self.sdkRequest]
        for (bytes, cut) in Self.mutations(of: seeds, seed: 0x5157_1C4D) {
            if Self.expectSame(DecoderDifferential.pieces(bytes, cuts: [cut])) { handedOver += 1 }
            await Task.yield()
        }
        // Both kinds came up: the mutations reach past the parser's checks, and not all of them.
        #expect(handedOver > 100 && handedOver < 1400)
    }
}

/// ``PlainHTTP1Decoder`` on the upstream side likewise against NIO's `HTTPResponseDecoder`, each answer paired
/// with the request it answers.
@Suite("Upstream response decoder")
struct UpstreamResponseDecoderTests {
    static func response(_ head: String, body: String = "") -> [UInt8] {
        CallerRequestDecoderTests.request(head, body: body)
    }

    /// What the Messages API answers, near enough.
    static let answer = response(
        """
        HTTP/1.1 200 OK
        Date: Thu, 26 Nov 2026 12:00:00 GMT
        Content-Type: application/json
        Content-Length: 27
        Connection: keep-alive
        request-id: req_011CTestTestTest
        anthropic-organization-id: 00000000-0000-0000-0000-000000000000
        x-should-retry: false
        """,
        body: #"{"id":"msg_1","type":"msg"}"#
    )

    static func expectSameAtEveryCut(_ bytes: [UInt8], answering methods: [HTTPMethod], from start: Int = 1) async -> Set<Bool> {
        await CallerRequestDecoderTests.expectSameAtEveryCut(bytes, .responses(to: methods), from: start)
    }

    /// A streamed answer as the Messages API sends one: chunked, an event a chunk.
    static func chunkedAnswer(_ body: String) -> [UInt8] {
        response(
            """
            HTTP/1.1 200 OK
            Content-Type: text/event-stream
            Transfer-Encoding: chunked
            Connection: keep-alive
            request-id: req_011CTestTestTest
            """,
            body: body
        )
    }

    /// Each event as one chunk, sizes in lower and upper case hex.
    static let stream = chunkedAnswer(
        ["event: ping\ndata: {\"type\":\"ping\"}\n\n", "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"]
            .enumerated().map { index, event in
                let size = String(event.utf8.count, radix: 16, uppercase: index == 1)
                return size + "\r\n" + event + "\r\n"
            }.joined() + "0\r\n\r\n"
    )

    @Test func plainAnswersAreReadWithoutNIOsDecoderAndAlike() async {
        let plain: [([UInt8], [HTTPMethod])] = [
            (Self.answer, [.POST]),
            (Self.answer + Self.answer, [.POST, .GET]),
            (Self.response("HTTP/1.1 529 \ncontent-length: 2", body: "{}"), [.POST]),
            (Self.response("HTTP/1.1 500 Internal Server Error\nContent-Length: 0"), [.POST]),
            (Self.stream, [.POST]),
            (Self.stream + Self.answer + Self.stream, [.POST, .POST, .POST]),
            (Self.chunkedAnswer("0003\r\nabc\r\n00\r\n\r\n"), [.POST]),
            (Self.chunkedAnswer("0\r\n\r\n"), [.POST]),
            (Self.response("HTTP/1.1 200 OK\ntransfer-encoding: CHUNKED", body: "3\r\nabc\r\n0\r\n\r\n"), [.GET]),
        ]
        for (bytes, methods) in plain {
            #expect(await Self.expectSameAtEveryCut(bytes, answering: methods) == [false], "\(String(decoding: bytes, as: UTF8.self))")
        }
        let events = DecoderDifferential.run([Self.answer], .responses(to: [.POST]), ours: true, limits: CallerRequestDecoderTests.limits).events
        #expect(events.count == 4)
        #expect(events.first?.hasPrefix("head 200 HTTP/1.1 keepAlive=true [Date=Thu, 26 Nov 2026 12:00:00 GMT|") == true)
        #expect(events.dropFirst().first == #"body {"id":"msg_1","type":"msg"}"#)
    }

    /// Answers the hand parser declines, alone and after a plain one (cut anywhere from the end of
    /// that one on): NIO's decoder takes over at that answer, knowing the requests still unanswered.
    @Test func otherShapesGoToNIOsDecoderAtTheirFirstByte() async {
        let other: [([UInt8], [HTTPMethod])] = [
            (Self.response("HTTP/1.1 200 OK\nContent-Length: 3\nTransfer-Encoding: chunked", body: "3\r\nabc\r\n0\r\n\r\n"), [.POST]),
            (Self.response("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nContent-Length: 3", body: "3\r\nabc\r\n0\r\n\r\n"), [.POST]),
            (Self.response("HTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked", body: "3\r\nabc\r\n0\r\n\r\n"), [.POST]),
            (Self.response("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked", body: "3\r\nabc\r\n0\r\n\r\n"), [.POST]),
            (Self.response("HTTP/1.1 200 OK\nContent-Type: text/event-stream"), [.POST]),
            (Self.response("HTTP/1.1 200 OK\nContent-Length: 3\nContent-Length: 3", body: "abc"), [.POST]),
            (Self.response("HTTP/1.1 200 OK\nContent-Length: 3\nConnection: close", body: "abc"), [.POST]),
            (Self.response("HTTP/1.1 204 No Content\nContent-Length: 3", body: "abc"), [.DELETE]),
            (Self.response("HTTP/1.1 304 Not Modified"), [.GET]),
            (Self.response("HTTP/1.1 100 Continue") + Self.answer, [.POST]),
            (Self.response("HTTP/1.1 200 OK\nContent-Length: 3", body: "abc"), [.HEAD, .POST]),
            (Self.response("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: upgrade"), [.GET]),
            (Self.response("HTTP/1.0 200 OK\nContent-Length: 3", body: "abc"), [.POST]),
            (Self.response("HTTP/1.1 200\nContent-Length: 3", body: "abc"), [.POST]),
            (Self.response("HTTP/1.1 2000 OK\nContent-Length: 3", body: "abc"), [.POST]),
            (Self.response("HTTP/1.1 200 OK\nX-A:\tb\nContent-Length: 3", body: "abc"), [.POST]),
            (Array("HTTP/1.1 200 OK\nContent-Length: 3\n\nabc".utf8), [.POST]),
        ]
        for (bytes, methods) in other {
            #expect(await Self.expectSameAtEveryCut(bytes, answering: methods).contains(true), "\(String(decoding: bytes, as: UTF8.self))")
            #expect(await Self.expectSameAtEveryCut(Self.answer + bytes, answering: [.POST] + methods, from: Self.answer.count - 4).contains(true))
        }
    }

    /// Chunked bodies that leave the plain shape part-way (an extension, a trailer, a size NIO's
    /// decoder reads otherwise, a framing error): NIO's decoder takes over from the byte the hand
    /// reader declines, standing where it stood, and the parts and errors are NIO's own, however
    /// the bytes are cut; the answer after is read as NIO reads it.
    @Test func chunkedBodiesOffThePlainShapeGoToNIOsDecoderWhereTheyLeaveIt() async {
        let bodies = [
            "5;ext=1\r\nhello\r\n0\r\n\r\n",
            "5\r\nhello\r\n0;last\r\n\r\n",
            "5\r\nhello\r\n0\r\nX-Trailer: a\r\n\r\n",
            "5\r\nhelloXX\r\n0\r\n\r\n",
            "5\r\nhello\rX0\r\n\r\n",
            "5\r\nhello\n0\r\n\r\n",
            "5\nhello\r\n0\r\n\r\n",
            "5\r\nhello\r\n00000000000000000000005\r\nworld\r\n0\r\n\r\n",
            "5\r\nhello\r\nffffffffffffffffff\r\n",
            "5\r\nhello\r\nzz\r\n",
            "5 \r\nhello\r\n0\r\n\r\n",
            " 5\r\nhello\r\n0\r\n\r\n",
            "\r\n5\r\nhello\r\n0\r\n\r\n",
            "5\r\nhello\r\n0\r\n\rX",
            "5\r\nhello\r\n0\r\nX",
        ]
        for body in bodies {
            let bytes = Self.chunkedAnswer(body)
            #expect(await Self.expectSameAtEveryCut(bytes, answering: [.POST]).contains(true), "\(body.debugDescription)")
            #expect(await Self.expectSameAtEveryCut(bytes + Self.answer, answering: [.POST, .POST], from: bytes.count - 30).contains(true))
        }
    }

    /// The upstream closes inside a chunked body, anywhere: the same parts and error as NIO's.
    @Test func aChunkedAnswerCutShortEndsAsWithNIOsDecoder() {
        let whole = Self.stream
        for end in 1..<whole.count {
            let pieces = [Array(whole[..<end])]
            let ours = DecoderDifferential.run(pieces, .responses(to: [.POST]), ours: true, limits: CallerRequestDecoderTests.limits).events
            let nio = DecoderDifferential.run(pieces, .responses(to: [.POST]), ours: false, limits: CallerRequestDecoderTests.limits).events
            #expect(ours == nio, "cut at \(end)")
            #expect(ours.last == "inactive")
        }
    }

    /// Mutated chunked answers (seeded, the same each run) read as NIO's decoder reads them.
    @Test func mutatedChunkedAnswersAreReadAsNIOsDecoderReadsThem() async {
        let handedOver = await Self.handOversAmongMutations(of: [Self.stream, Self.stream + Self.answer], seed: 0xC4_0A1E)
        #expect(handedOver > 100 && handedOver < 1400)
    }

    /// An answer when no request waits for one: NIO's decoder refuses it once its head is read;
    /// Switchyard's refuses its first byte, so no part of it is ever read as an answer.
    @Test func bytesNobodyAskedForAreRefusedAtTheirFirstByte() {
        for bytes in [Self.answer, Array("HTTP/1.1 2".utf8), Array("x".utf8)] {
            let ours = DecoderDifferential.run([bytes], .responses(to: []), ours: true, limits: CallerRequestDecoderTests.limits).events
            #expect(ours.first == "error \(UpstreamResponseSide.strayBytes)", "\(ours)")
            #expect(!ours.contains { $0.hasPrefix("head") || $0.hasPrefix("body") })
        }
        let nio = DecoderDifferential.run([Self.answer], .responses(to: []), ours: false, limits: CallerRequestDecoderTests.limits).events
        #expect(nio.first?.hasPrefix("error") == true)
    }

    /// The upstream closes inside an answer: the same error as NIO's decoder, then the close.
    @Test func anAnswerCutShortEndsAsWithNIOsDecoder() {
        let whole = Self.answer
        for end in [1, 12, whole.count - 40, whole.count - 27, whole.count - 1] {
            let pieces = [Array(whole[..<end])]
            let events = DecoderDifferential.run(pieces, .responses(to: [.POST]), ours: true, limits: CallerRequestDecoderTests.limits).events
            #expect(events == DecoderDifferential.run(pieces, .responses(to: [.POST]), ours: false, limits: CallerRequestDecoderTests.limits).events)
            #expect(events.last == "inactive")
            #expect(events.contains { $0.hasPrefix("error") })
        }
    }

    /// The state machine reads keep-alive without NIO's allocating split; it must read it alike.
    @Test func keepAliveIsReadAsNIOReadsIt() {
        let values: [[String]] = [
            [], ["keep-alive"], ["close"], ["Close"], ["KEEP-ALIVE"], ["keep-alive, close"], ["close, keep-alive"],
            ["keep-alive, keep-alive"], [" upgrade ,\tKeep-Alive "], ["foo"], [",,"], [""], ["keep-alive", "close"],
            ["keep-alive", "keep-alive"], ["upgrade"], ["closed"], ["keep-alive-ish"],
        ]
        for version in [HTTPVersion.http1_1, .http1_0] {
            for connection in values {
                var headers = HTTPHeaders([("content-length", "0")])
                for value in connection { headers.add(name: "Connection", value: value) }
                let head = HTTPResponseHead(version: version, status: .ok, headers: headers)
                #expect(head.keepsConnectionAlive == head.isKeepAlive, "\(version) \(connection)")
            }
        }
    }

    /// Mutated answers (seeded, the same each run) read as NIO's decoder reads them.
    @Test func mutatedAnswersAreReadAsNIOsDecoderReadsThem() async {
        let handedOver = await Self.handOversAmongMutations(of: [Self.answer, Self.answer + Self.answer], seed: 0xA45E_2D11)
        #expect(handedOver > 100 && handedOver < 1400)
    }

    /// Both decoders on 1,500 mutations of `seeds`, each answering two POSTs and cut in two;
    /// returns how many Switchyard's handed over.
    static func handOversAmongMutations(of seeds: [[UInt8]], seed: UInt64) async -> Int {
        var handedOver = 0
        for (bytes, cut) in CallerRequestDecoderTests.mutations(of: seeds, seed: seed) {
            if CallerRequestDecoderTests.expectSame(DecoderDifferential.pieces(bytes, cuts: [cut]), .responses(to: [.POST, .POST])) {
                handedOver += 1
            }
            await Task.yield()
        }
        return handedOver
    }
}

@Suite("ASCII byte sets")
struct ASCIIByteSetTests {
    /// Every one of the 256 bytes, against a plain membership test of the same characters: the
    /// mask's two halves and the bytes above 127 (never members).
    @Test func membershipIsExactlyTheNamedBytes() {
        let others = "-._~:/?[]@!$&'()*+,;=%"
        let set = ASCIIByteSet(alphanumericsAnd: others)
        for byte in 0...255 {
            let scalar = Unicode.Scalar(UInt8(byte))
            let expected = byte < 128 && (Character(scalar).isLetter || Character(scalar).isNumber || others.unicodeScalars.contains(scalar))
            #expect(set.contains(UInt8(byte)) == expected, "byte \(byte)")
        }
        #expect(!set.contains(UInt8(ascii: " ")) && !set.contains(UInt8(ascii: "#")) && set.contains(UInt8(ascii: "~")))
    }
}
