import AWSWire
import Foundation
import NIOCore
import Testing

@testable import SwitchyardCore

/// The AWS event-stream codec against code that is not ours: frames written by an encoder in
/// Tests/crosscheck/eventstream_independent.py (struct and zlib only), our frames read back by
/// botocore's EventStreamBuffer, AWS's published test vectors, then hostile bytes of every kind.
@Suite("AWS event stream")
struct EventStreamTests {
    /// FUZZ_SEED and FUZZ_ITERATIONS as in FuzzTests; 10,000 mutations by default.
    static let seed = ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_261_125
    static let iterations = ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 10_000
    static let script = "eventstream_independent.py"

    @Test func crc32MatchesZlibAndContinuesFromASeed() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        var random = EventStreamTestRandom(state: Self.seed)
        for length in 0..<300 {
            let bytes = random.bytes(length)
            let split = length == 0 ? 0 : Int(random.next() % UInt64(length))
            #expect(CRC32.checksum(bytes) == bitwiseCRC32(bytes), "length \(length)")
            #expect(CRC32.checksum(Array(bytes[split...]), seed: CRC32.checksum(Array(bytes[..<split]))) == CRC32.checksum(bytes))
        }
    }

    @Test func decodesFramesFromAnIndependentEncoderInAnyChunking() async throws {
        guard await CrossCheckPython.require(modules: ["botocore"]) else { return }
        let output = try await CrossCheckPython.run(script: Self.script, arguments: ["frames", "\(Self.seed)"])
        try #require(output.status == 0, "\(Self.script) frames failed: \(output.stderr)")
        let frames = try JSONDecoder().decode(ScriptOutput.self, from: Data(output.stdout.utf8))
        let stream = try #require(frames.stream.flatMap { Data(base64Encoded: $0) }).map { $0 }
        let expected = try #require(frames.messages)
        #expect(expected.count == 17 && expected.compactMap(\.anthropicEvent).count == 7)

        let decoded = try decodeAll(stream)
        try #require(decoded.count == expected.count)
        for (message, expected) in zip(decoded, expected) {
            #expect(message.headers.map(typedWire) == expected.headers)
            #expect(Data(message.payload.readableBytesView).base64EncodedString() == expected.payload)
        }
        for maxChunk in [1, 64, 100_000] {
            #expect(try decodeAll(stream, maxChunk: maxChunk, seed: Self.seed) == decoded, "chunks of 1...\(maxChunk) bytes")
        }
        // The encoding is canonical: ours writes the independent encoder's bytes exactly.
        #expect(decoded.flatMap(encoded) == stream)

        // Bedrock's framing inside the frame: base64 of one Anthropic event in a JSON chunk.
        for (message, expected) in zip(decoded, expected) {
            guard let event = expected.anthropicEvent else { continue }
            #expect(message.stringHeader(":message-type") == "event" && message.stringHeader(":event-type") == "chunk")
            let chunk = try JSONSerialization.jsonObject(with: Data(message.payload.readableBytesView)) as? [String: Any]
            let bytes = try #require((chunk?["bytes"] as? String).flatMap { Data(base64Encoded: $0) })
            #expect(String(decoding: bytes, as: UTF8.self) == event)
        }
        #expect(decoded[7].stringHeader(":exception-type") == "throttlingException")
        #expect(decoded[9].stringHeader(":error-code") == "InternalFailure" && decoded[9].payload.readableBytes == 0)
    }

    @Test func botocoreDecodesFramesFromOurEncoder() async throws {
        guard await CrossCheckPython.require(modules: ["botocore"]) else { return }
        var random = EventStreamTestRandom(state: Self.seed)
        let messages = sampleMessages(&random)
        var stream = ByteBuffer()
        messages.forEach { EventStreamEncoder.encode($0, into: &stream) }
        let output = try await CrossCheckPython.run(
            script: Self.script, arguments: ["decode", "\(Self.seed)"], input: Data(stream.readableBytesView))
        try #require(output.status == 0, "\(Self.script) decode failed: \(output.stderr)")
        let decoded = try JSONDecoder().decode(ScriptOutput.self, from: Data(output.stdout.utf8))
        let botocore = try #require(decoded.botocore)
        let independent = try #require(decoded.independent)
        try #require(botocore.count == messages.count && independent.count == messages.count)
        for (index, message) in messages.enumerated() {
            let payload = Data(message.payload.readableBytesView).base64EncodedString()
            let crc = be32(encoded(message), encoded(message).count - 4)
            #expect(botocore[index].headers == message.headers.map(botocoreWire), "message \(index)")
            #expect(botocore[index].payload == payload && botocore[index].crc == crc, "message \(index)")
            #expect(independent[index].headers == message.headers.map(typedWire), "message \(index)")
            #expect(independent[index].payload == payload, "message \(index)")
        }
    }

    /// AWS's shared positive vectors (aws-c-event-stream, also in botocore's unit tests): we read them
    /// and write them back bit for bit.
    @Test(arguments: [
        "000000100000000005c248eb7d98c8ff",
        "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b27666f6f273a27626172277d8d9c08b1",
        "000000620000005203b5cb9c01300001310101320202013303000301340400000004013505000000000000000501360600056279746573013707000475746638"
            + "01380800000000000000080139093031323334353637383961626364656663353671",
        "0000005200000042bf23637e0d3a6d6573736167652d747970650700056572726f720b3a6572726f722d636f6465070004636f64650e3a6572726f722d6d65"
            + "73736167650700076d6573736167656b6cea3d",
    ])
    func awsTestVectorsDecodeAndEncodeBitForBit(hex: String) throws {
        let bytes = hexBytes(hex)
        let decoded = try decodeAll(bytes, maxChunk: 1)
        try #require(decoded.count == 1)
        #expect(encoded(decoded[0]) == bytes)
        if bytes.count == 98 {
            #expect(decoded[0].headers.map(\.value) == [
                .bool(true), .bool(false), .byte(2), .int16(3), .int32(4), .int64(5), .bytes(Array("bytes".utf8)),
                .string("utf8"), .timestamp(8), .uuid(Array("0123456789abcdef".utf8)),
            ])
        }
    }

    @Test func everyHeaderTypeRoundTrips() throws {
        let message = EventStreamMessage(headers: allHeaderTypes, payload: ByteBuffer(bytes: [0, 0xFF, 0x80]))
        #expect(try decodeAll(encoded(message), maxChunk: 1) == [message])
        for header in message.headers {
            let single = EventStreamMessage(headers: [header])
            #expect(try decodeAll(encoded(single), maxChunk: 5, seed: Self.seed) == [single])
        }
        #expect(message.stringHeader("string") == "héllo ☃ 🎉" && message.stringHeader("int32") == nil)
        #expect(message.header("timestamp") == .timestamp(1_732_543_200_123))
    }

    @Test func payloadsAreSlicesOfTheInputNotCopies() throws {
        let message = EventStreamMessage(headers: [(":event-type", .string("chunk"))], payload: ByteBuffer(repeating: 7, count: 4096))
        var input = EventStreamEncoder.encode(message)
        EventStreamEncoder.encode(message, into: &input)
        var decoder = EventStreamDecoder()
        decoder.append(input)
        let first = try #require(try decoder.next())
        let second = try #require(try decoder.next())
        input.withUnsafeReadableBytes { whole in
            for payload in [first.payload, second.payload] {
                payload.withUnsafeReadableBytes { slice in
                    #expect(slice.baseAddress! >= whole.baseAddress! && slice.baseAddress! + slice.count <= whole.baseAddress! + whole.count)
                }
            }
        }
        try decoder.finish()
    }

    @Test func aFlippedBitInEachRegionIsReportedAsTheRightError() {
        let frame = encoded(EventStreamMessage(headers: [(":message-type", .string("event"))], payload: ByteBuffer(string: #"{"bytes":"e30="}"#)))
        let payload = 12 + Int(be32(frame, 4))
        let regions = [
            ("total length", 2), ("headers length", 7), ("prelude CRC", 9), ("header", 20), ("payload", payload + 3),
            ("message CRC", frame.count - 2),
        ]
        for (region, index) in regions {
            var corrupt = frame
            corrupt[index] ^= 0x10
            let expected: EventStreamError =
                index < 12
                ? .preludeChecksumMismatch(expected: be32(corrupt, 8), computed: CRC32.checksum(Array(corrupt[0..<8])))
                : .messageChecksumMismatch(
                    expected: be32(corrupt, corrupt.count - 4), computed: CRC32.checksum(Array(corrupt.dropLast(4))))
            #expect(firstError(corrupt) == expected, "bit flipped in the \(region)")
        }
        #expect(firstError(frame) == nil)
        #expect(
            EventStreamError.messageChecksumMismatch(expected: 0xAB, computed: 0x1234_5678).description
                == "event-stream frame failed its message CRC (expected 0x000000ab, computed 0x12345678); "
                + "its headers or payload were damaged in transit")
    }

    @Test func aStreamThatEndsInsideAFrameIsTruncated() throws {
        let frame = encoded(EventStreamMessage(headers: allHeaderTypes, payload: ByteBuffer(string: "abc")))
        for cut in 1..<frame.count {
            var decoder = EventStreamDecoder()
            decoder.append(ByteBuffer(bytes: frame + frame[..<cut]))
            #expect(try decoder.next() != nil)
            #expect(try decoder.next() == nil)
            #expect(throws: EventStreamError.truncated(bufferedBytes: cut)) { try decoder.finish() }
        }
        var empty = EventStreamDecoder()
        #expect(try empty.next() == nil)
        try empty.finish()
    }

    @Test func impossibleLengthsAreRejectedAsSoonAsThePreludeArrives() {
        let cases: [(total: UInt32, headers: UInt32, max: Int, why: String)] = [
            (0xFFFF_FFFF, 0, 24 << 20, "total length 4294967295 exceeds the limit of 25165824 bytes"),
            (15, 0, 24 << 20, "total length 15 is below the 16-byte minimum (prelude and message CRC)"),
            (0, 0, 24 << 20, "total length 0 is below the 16-byte minimum (prelude and message CRC)"),
            (1025, 0, 1024, "total length 1025 exceeds the limit of 1024 bytes"),
            (100, 85, 24 << 20, "headers length 85 does not fit in a frame of 100 bytes"),
            (20, 0xFFFF_FFFF, 24 << 20, "headers length 4294967295 does not fit in a frame of 20 bytes"),
            (200_000, 131_073, 24 << 20, "headers length 131073 exceeds the limit of 131072 bytes"),
        ]
        for (total, headers, max, why) in cases {
            // Only the prelude, with a correct CRC: the verdict must not wait for the rest.
            var prelude = be32Bytes(total) + be32Bytes(headers)
            prelude += be32Bytes(CRC32.checksum(prelude))
            var decoder = EventStreamDecoder(maxMessageSize: max)
            decoder.append(ByteBuffer(bytes: prelude))
            #expect(throws: EventStreamError.invalidLength(why)) { try decoder.next() }
        }
    }

    // MARK: Bedrock's framing inside the frames

    static func frame(messageType: String, _ headers: [(String, String)], payload: String) -> ByteBuffer {
        let all = [(":message-type", messageType), (":content-type", "application/json")] + headers
        let message = EventStreamMessage(headers: all.map { ($0.0, EventStreamHeaderValue.string($0.1)) }, payload: ByteBuffer(string: payload))
        return EventStreamEncoder.encode(message)
    }

    @Test func aChunkWhoseBase64IsWrittenWithJSONEscapesIsDecoded() throws {
        // Characters whose base64 holds `/`, which JSON encoders may write as `\/`.
        let event = #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"???>>>???"}}"#
        let base64 = Data(event.utf8).base64EncodedString()
        try #require(base64.contains("/") && base64.hasPrefix("e"))
        for escaped in [base64.replacingOccurrences(of: "/", with: #"\/"#), #"\u0065"# + base64.dropFirst()] {
            var translator = BedrockEventStreamTranslator()
            let output = try translator.translate(Self.frame(messageType: "event", [(":event-type", "chunk")], payload: #"{"bytes":"\#(escaped)"}"#))
            #expect(output.map { String(buffer: $0) } == "event: content_block_delta\ndata: \(event)\n\n", "\(escaped.prefix(12))…")
        }
        // Still refused: an escape that is not JSON, and a value that is not base64 once unescaped.
        for bytes in [#"\q"# + base64, #"\u0021"# + base64] {
            var translator = BedrockEventStreamTranslator()
            #expect(throws: UpstreamError.self) {
                try translator.translate(Self.frame(messageType: "event", [(":event-type", "chunk")], payload: #"{"bytes":"\#(bytes)"}"#))
            }
        }
    }

    @Test func anExceptionFrameNamesItselfAndItsOriginalStatusForTheAudit() throws {
        func translated(_ type: String, _ payload: String) throws -> ByteBuffer {
            var translator = BedrockEventStreamTranslator()
            let output = try #require(try translator.translate(Self.frame(messageType: "exception", [(":exception-type", type)], payload: payload)))
            let text = String(buffer: output)
            let data = try #require(text.split(separator: "\n").first { $0.hasPrefix("data: ") }?.dropFirst(6))
            return ByteBuffer(string: String(data))
        }
        let withStatus = try translated("modelStreamErrorException", #"{"message":"Overloaded","originalStatusCode":529,"originalMessage":"x"}"#)
        #expect(AnthropicPayload.error(in: withStatus).type == "api_error")
        #expect(AnthropicPayload.error(in: withStatus).message == "ModelStreamErrorException (status 529): Overloaded")
        let named = try #require(BedrockEventStreamTranslator.platformError(inErrorEvent: withStatus))
        #expect(named.code == "ModelStreamErrorException" && named.status == 529)

        let throttled = try translated("throttlingException", #"{"message":"slow down: please"}"#)
        let plain = try #require(BedrockEventStreamTranslator.platformError(inErrorEvent: throttled))
        #expect(plain.code == "ThrottlingException" && plain.status == nil)

        // Anthropic's own error event, or a message that only looks like one, names nothing.
        for data in [#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                     #"{"type":"error","error":{"type":"api_error","message":"Internal server error: retry"}}"#] {
            #expect(BedrockEventStreamTranslator.platformError(inErrorEvent: ByteBuffer(string: data)) == nil, "\(data)")
        }
    }

    @Test func malformedHeaderBlocksAreRejectedWithTheReason() {
        let name = [UInt8(5)] + Array("hello".utf8)
        let cases: [([UInt8], String)] = [
            (name + [7, 0, 100] + Array("short".utf8), "string value of header 'hello' (100 bytes) runs past the end of the header block"),
            ([40] + Array("hello".utf8), "name of the header at offset 0 (40 bytes) runs past the end of the header block"),
            (name, "header 'hello' has no type byte before the end of the 6-byte header block"),
            (name + [4, 0, 0], "value of header 'hello' runs past the end of the header block"),
            (name + [6, 0, 9, 1, 2], "value of header 'hello' runs past the end of the header block"),
            (name + [9] + [UInt8](repeating: 1, count: 15), "value of header 'hello' runs past the end of the header block"),
            (name + [10], "header 'hello' has unknown value type 10 (known types are 0 to 9)"),
            (name + [0] + name + [255], "header 'hello' has unknown value type 255 (known types are 0 to 9)"),
            ([2, 0xC3, 0x28, 0], "name of the header at offset 0 is not valid UTF-8"),
            (name + [7, 0, 3, 0xED, 0xA0, 0x80], "string value of header 'hello' is not valid UTF-8"),
            (name + [0] + name + [1], "header 'hello' appears twice in one frame"),
            ((0..<40).flatMap { [1, UInt8($0)] + [0] } + [1, 39, 1], "header '\u{27}' appears twice in one frame"),
        ]
        for (block, why) in cases {
            #expect(firstError(rawFrame(headerBlock: block, payload: Array("{}".utf8))) == .malformedHeader(why), "\(block.prefix(12))")
        }
    }

    @Test func aDecoderThatFailedStaysFailed() throws {
        var frame = encoded(EventStreamMessage(headers: [], payload: ByteBuffer(string: "x")))
        let valid = frame
        frame[13] ^= 1
        var decoder = EventStreamDecoder()
        decoder.append(ByteBuffer(bytes: frame))
        let error = try #require(throws: EventStreamError.self) { try decoder.next() }
        decoder.append(ByteBuffer(bytes: valid))
        #expect(throws: error) { try decoder.next() }
        #expect(throws: error) { try decoder.finish() }
    }

    /// Seeded mutations fed in random chunks: of whole frames (flips, deletions, truncations, splices),
    /// of a header block re-framed with correct CRCs so that the parser itself is attacked, and of
    /// preludes with random lengths and a correct CRC. Nothing may crash, and whatever is accepted must
    /// re-encode to exactly the bytes it came from.
    @Test func tenThousandRandomMutationsNeverCrash() async {
        var random = EventStreamTestRandom(state: Self.seed)
        let frame = encoded(EventStreamMessage(headers: allHeaderTypes, payload: ByteBuffer(string: #"{"bytes":"e30="}"#)))
        let stream = frame + encoded(EventStreamMessage(headers: [(":message-type", .string("event"))])) + encoded(EventStreamMessage(headers: []))
        let headerBlock = Array(frame[12..<(12 + Int(be32(frame, 4)))])
        var outcomes = [[0, 0], [0, 0], [0, 0]]  // accepted, rejected: per kind of mutation
        for iteration in 0..<Self.iterations {
            await FuzzTests.yieldSometimes(iteration)
            let kind = iteration % 3
            var input = kind == 0 ? random.mutate(stream) : rawFrame(headerBlock: random.mutate(headerBlock), payload: [1, 2])
            if kind == 2 {
                input = be32Bytes(UInt32(random.next() % 300)) + be32Bytes(UInt32(random.next() % 300))
                input += be32Bytes(CRC32.checksum(input)) + random.bytes(Int(random.next() % 300))
            }
            var accepted: [UInt8] = []
            do throws(EventStreamError) {
                try feed(input, maxChunk: 300, seed: random.next(), maxMessageSize: 4096) { accepted += encoded($0) }
                #expect(accepted == input)
                outcomes[kind][0] += 1
            } catch {
                #expect(!error.description.isEmpty && accepted == Array(input.prefix(accepted.count)))
                outcomes[kind][1] += 1
            }
        }
        #expect(outcomes[0][1] > Self.iterations * 3 / 10, "almost every mutation of a whole frame breaks a CRC")
        #expect(outcomes[1][0] > 0 && outcomes[1][1] > 0 && outcomes[2][1] > 0, "\(outcomes)")
    }
}

private let allHeaderTypes: [(name: String, value: EventStreamHeaderValue)] = [
    ("true", .bool(true)), ("false", .bool(false)), ("byte", .byte(-128)), ("int16", .int16(.min)), ("int32", .int32(.max)),
    ("int64", .int64(.min)), ("bytes", .bytes(Array(0...255))), ("empty bytes", .bytes([])), ("string", .string("héllo ☃ 🎉")),
    ("empty string", .string("")), ("timestamp", .timestamp(1_732_543_200_123)), ("uuid", .uuid(Array(0x10..<0x20))),
]

/// What our Bedrock mode would send, plus every edge the format has.
private func sampleMessages(_ random: inout EventStreamTestRandom) -> [EventStreamMessage] {
    let events = [
        #"{"type":"message_start","message":{"id":"msg_bdrk_01","type":"message","role":"assistant","content":[]}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Grüße 👋"}}"#, #"{"type":"message_stop"}"#,
    ]
    let chunk: [(name: String, value: EventStreamHeaderValue)] = [
        (":event-type", .string("chunk")), (":content-type", .string("application/json")), (":message-type", .string("event")),
    ]
    return events.map { event in
        EventStreamMessage(headers: chunk, payload: ByteBuffer(string: #"{"bytes":"\#(Data(event.utf8).base64EncodedString())","p":"abcd"}"#))
    } + [
        EventStreamMessage(
            headers: [(":exception-type", .string("throttlingException")), (":content-type", .string("application/json")),
                      (":message-type", .string("exception"))],
            payload: ByteBuffer(string: #"{"message":"Too many requests, please wait before trying again."}"#)),
        EventStreamMessage(headers: [(":message-type", .string("error")), (":error-code", .string("InternalFailure")),
                                     (":error-message", .string("An internal error occurred."))]),
        EventStreamMessage(headers: allHeaderTypes, payload: ByteBuffer(bytes: [0, 1, 0xFF])), EventStreamMessage(headers: []),
        EventStreamMessage(headers: [(String(repeating: "n", count: 255), .string(String(repeating: "x", count: 65_533) + "é"))]),
        EventStreamMessage(headers: [("largest bytes", .bytes(random.bytes(65_535)))]),
        EventStreamMessage(headers: chunk, payload: ByteBuffer(bytes: random.bytes(1 << 20))),
    ]
}

private struct WireHeader: Decodable, Equatable, CustomStringConvertible {
    var name: String
    var type: String
    var value: String
    var description: String { "\(name): \(type) \(value.prefix(40))" }
}

private struct WireMessage: Decodable {
    var headers: [WireHeader]
    var payload: String
    var crc: UInt32?
    /// For Bedrock chunks: the Anthropic event JSON inside the base64.
    var anthropicEvent: String?
}

/// `frames` prints the stream and the messages in it; `decode` prints botocore's reading and the script's own.
private struct ScriptOutput: Decodable {
    var stream: String?
    var messages: [WireMessage]?
    var botocore: [WireMessage]?
    var independent: [WireMessage]?
}

/// The script's spelling of a header with its wire type.
private func typedWire(_ header: (name: String, value: EventStreamHeaderValue)) -> WireHeader {
    let (type, value): (String, String) =
        switch header.value {
        case .bool(let flag): ("bool", flag ? "true" : "false")
        case .byte(let number): ("byte", String(number))
        case .int16(let number): ("int16", String(number))
        case .int32(let number): ("int32", String(number))
        case .int64(let number): ("int64", String(number))
        case .bytes(let bytes): ("bytes", Data(bytes).base64EncodedString())
        case .string(let text): ("string", text)
        case .timestamp(let ms): ("timestamp", String(ms))
        case .uuid(let bytes): ("uuid", Data(bytes).base64EncodedString())
        }
    return WireHeader(name: header.name, type: type, value: value)
}

/// botocore keeps only a Python value, so the integer widths, timestamp and uuid lose their type.
private func botocoreWire(_ header: (name: String, value: EventStreamHeaderValue)) -> WireHeader {
    var wire = typedWire(header)
    wire.type = ["byte": "int", "int16": "int", "int32": "int", "int64": "int", "timestamp": "int", "uuid": "bytes"][wire.type] ?? wire.type
    return wire
}

/// Feeds `bytes` to a decoder in seeded random chunks of 1...maxChunk bytes, draining it after each.
private func feed(
    _ bytes: [UInt8], maxChunk: Int, seed: UInt64, maxMessageSize: Int = 24 << 20, _ body: (EventStreamMessage) -> Void
) throws(EventStreamError) {
    var random = EventStreamTestRandom(state: seed)
    let input = ByteBuffer(bytes: bytes)
    var decoder = EventStreamDecoder(maxMessageSize: maxMessageSize)
    var offset = 0
    while offset < bytes.count {
        let size = min(bytes.count - offset, 1 + Int(random.next() % UInt64(maxChunk)))
        decoder.append(input.getSlice(at: offset, length: size)!)
        offset += size
        while let message = try decoder.next() { body(message) }
    }
    try decoder.finish()
}

private func decodeAll(_ bytes: [UInt8], maxChunk: Int = .max, seed: UInt64 = 0) throws(EventStreamError) -> [EventStreamMessage] {
    var messages: [EventStreamMessage] = []
    try feed(bytes, maxChunk: maxChunk, seed: seed) { messages.append($0) }
    return messages
}

/// The error a decoder reports for `bytes`, or nil when they decode cleanly.
private func firstError(_ bytes: [UInt8]) -> EventStreamError? {
    do throws(EventStreamError) { _ = try decodeAll(bytes) } catch { return error }
    return nil
}

/// A frame around any header block, with both CRCs right, so that only the block is wrong.
private func rawFrame(headerBlock: [UInt8], payload: [UInt8]) -> [UInt8] {
    var frame = be32Bytes(UInt32(16 + headerBlock.count + payload.count)) + be32Bytes(UInt32(headerBlock.count))
    frame += be32Bytes(CRC32.checksum(frame))
    frame += headerBlock + payload
    return frame + be32Bytes(CRC32.checksum(frame))
}

private func encoded(_ message: EventStreamMessage) -> [UInt8] { Array(EventStreamEncoder.encode(message).readableBytesView) }
private func be32Bytes(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) } }
private func be32(_ bytes: [UInt8], _ at: Int) -> UInt32 { bytes[at..<(at + 4)].reduce(0) { $0 << 8 | UInt32($1) } }

private func hexBytes(_ hex: String) -> [UInt8] {
    stride(from: 0, to: hex.utf8.count, by: 2).map { UInt8(hex.dropFirst($0).prefix(2), radix: 16)! }
}

/// The textbook one-bit-at-a-time CRC-32, to check the table-driven one.
private func bitwiseCRC32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// SplitMix64, so chunk sizes and mutations are random but repeatable.
private struct EventStreamTestRandom: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }

    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + Int(next() % 3)) {
            let position = bytes.isEmpty ? 0 : Int(next() % UInt64(bytes.count))
            switch next() % 5 {
            case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1) << (next() % 8)
            case 1 where !bytes.isEmpty: bytes.removeSubrange(position..<min(bytes.count, position + 1 + Int(next() % 8)))
            case 2: bytes = Array(bytes.prefix(position))
            case 3 where !bytes.isEmpty:
                let from = Int(next() % UInt64(bytes.count))
                bytes.insert(contentsOf: bytes[from..<min(bytes.count, from + Int(next() % 40))], at: position)
            default: bytes.insert(UInt8(truncatingIfNeeded: next()), at: position)
            }
        }
        return bytes
    }
}
