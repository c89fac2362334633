import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import SwitchyardCore

@Suite("JSON skimmer, request body, SSE parser")
struct ParsingTests {
    func skim(_ text: String) -> Result<JSONSkimmer.Skim, JSONSkimmer.SyntaxError> {
        do throws(JSONSkimmer.SyntaxError) {
            return .success(try JSONSkimmer.skim(Array(text.utf8)))
        } catch {
            return .failure(error)
        }
    }

    /// The writer's output read back by Foundation: escapes for every byte that needs one,
    /// everything else (multi-byte UTF-8 included) as it was; integers at both ends of Int64.
    @Test func jsonWriterOutputIsWhatFoundationReadsBack() throws {
        let strings = [
            "", "plain", "quote \" and backslash \\", "\n\r\t", "\u{0}\u{1}\u{1F}\u{7F}", "naïve 日本 🚦",
            "ends with escape\"", "\"starts with escape", String(repeating: "long run ", count: 200) + "\u{8}",
        ]
        let numbers: [Int64] = [0, 7, -1, 10, 1_234_567_890, .max, .min]
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("strings")
        writer.beginArray()
        for string in strings { writer.string(string) }
        writer.endArray()
        writer.key("numbers")
        writer.beginArray()
        for number in numbers { writer.int(number) }
        writer.int(UInt64.max)
        writer.endArray()
        writer.endObject()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: Any])
        #expect(object["strings"] as? [String] == strings)
        let read = try #require(object["numbers"] as? [NSNumber])
        #expect(read.dropLast().map(\.int64Value) == numbers)
        #expect(read.last?.uint64Value == UInt64.max)
        #expect(String(decoding: writer.bytes, as: UTF8.self).contains(#""\u0000\u0001\u001f\u007f""#))
    }

    /// A writer continuing a buffer (the audit writer's batch) leaves what was there, grows past
    /// its room, and hands back exactly what it wrote; timestamps are what Foundation writes.
    @Test func jsonWriterContinuesABufferAndWritesTimestampsAsFoundationDoes() throws {
        var batch = Array("line one\n".utf8)
        let stamps: [Int64] = [0, 1_795_000_000_123, 1_764_000_000_999, 253_402_300_799_999]
        for round in 0..<40 {
            var writer = JSONWriter(continuing: &batch)
            writer.beginObject()
            writer.key("round")
            writer.int(round)
            writer.key("ts")
            writer.timestamp(milliseconds: stamps[round % stamps.count])
            writer.key("text")
            writer.string(String(repeating: "x\"y", count: round * 7))
            writer.endObject()
            writer.newline()
            writer.finish(into: &batch)
        }
        let lines = String(decoding: batch, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 41)
        #expect(lines.first == "line one")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        for (round, line) in lines.dropFirst().enumerated() {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["round"] as? Int == round)
            #expect(object["text"] as? String == String(repeating: "x\"y", count: round * 7))
            let milliseconds = stamps[round % stamps.count]
            #expect(object["ts"] as? String == formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000)))
        }
    }

    /// The skimmer's word-at-a-time scan of plain string bytes stops where a byte-at-a-time one
    /// does, for every start in buffers that put each kind of stop byte at every position.
    @Test func plainRunsStopWhereAByteLoopStops() {
        func naive(_ bytes: [UInt8], from start: Int) -> Int {
            var position = start
            while position < bytes.count, bytes[position] >= 0x20, bytes[position] < 0x80, bytes[position] != 0x22, bytes[position] != 0x5C {
                position += 1
            }
            return position
        }
        let stops: [UInt8] = [0x00, 0x01, 0x1F, 0x22, 0x5C, 0x80, 0xC3, 0xFF]
        let fillers: [UInt8] = [0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7E, 0x7F, UInt8(ascii: "a")]
        var generator = SystemRandomNumberGenerator()
        for length in 0..<40 {
            for stopAt in -1..<length {
                for stop in stops {
                    var bytes = (0..<length).map { _ in fillers.randomElement(using: &generator)! }
                    if stopAt >= 0 { bytes[stopAt] = stop }
                    bytes.withUnsafeBytes { raw in
                        for start in 0...length {
                            let ours = JSONSkimmer.plainRun(in: raw, from: start)
                            #expect(ours == naive(bytes, from: start), "\(bytes) from \(start)")
                        }
                    }
                }
            }
        }
    }

    @Test func acceptsWhatFoundationAccepts() throws {
        let documents = [
            #"{}"#, #"[]"#, #"{"a":1,"b":[true,false,null],"c":{"d":"e\n\u00e9\ud83d\ude00"},"f":-1.5e+10}"#,
            #"  {"model" : "x" , "stream":true}  "#, #""just a string""#, "0", "-0.0", #"{"a":{"b":{"c":[[[]]]}}}"#,
        ]
        for document in documents {
            let ours = try? skim(document).get()
            let foundation = try? JSONSerialization.jsonObject(with: Data(document.utf8), options: [.fragmentsAllowed])
            #expect((ours != nil) == (foundation != nil), "\(document)")
        }
    }

    @Test func rejectsInvalidDocumentsWithAPosition() {
        let documents = [
            "", "{", #"{"a":}"#, #"{"a" 1}"#, "[1,]", "{,}", #"{"a":1,}"#, "01", "1.", "-", "tru", "nul",
            #""unterminated"#, #""bad \x escape""#, "{} {}", #"{"a":"control\u{01}char"}"#,
            "[" + String(repeating: "[", count: 600) + String(repeating: "]", count: 601),
        ]
        for document in documents {
            guard case .failure(let error) = skim(document) else {
                Issue.record("accepted invalid JSON: \(document.debugDescription.prefix(60))")
                continue
            }
            #expect(error.offset >= 0 && error.offset <= document.utf8.count)
        }
    }

    @Test func rejectsInvalidUTF8() {
        var bytes = Array(#"{"model":""#.utf8)
        bytes += [0xC3, 0x28]  // invalid continuation
        bytes += Array(#""}"#.utf8)
        #expect(throws: JSONSkimmer.SyntaxError.self) { try JSONSkimmer.skim(bytes) }
    }

    @Test func deepNestingDoesNotOverflowTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        guard case .failure(let error) = skim(deep) else {
            Issue.record("nesting beyond \(JSONSkimmer.maxDepth) accepted")
            return
        }
        #expect(error.reason.contains("deep"))
    }

    @Test func bodyPatchChangesOnlyModel() throws {
        let text = #"{"messages":[{"role":"user","content":"model \"x\""}],"model":"claude-sonnet-4-0","stream":true,"max_tokens":5}"#
        let body = try InboundBody.parse(ByteBuffer(string: text), requireMessages: true)
        #expect(body.model == "claude-sonnet-4-0")
        #expect(body.stream)
        let patched = String(buffer: body.withModel(Array(#""claude-sonnet-4-20250514""#.utf8)))
        #expect(patched == text.replacingOccurrences(of: #""model":"claude-sonnet-4-0""#, with: #""model":"claude-sonnet-4-20250514""#))
        // The same name: the body as it came; a shorter or longer one: spliced in its place.
        #expect(String(buffer: body.withModel(Array(#""claude-sonnet-4-0""#.utf8))) == text)
        #expect(String(buffer: body.withModel(Array(#""m""#.utf8))) == text.replacingOccurrences(of: #""claude-sonnet-4-0""#, with: #""m""#))
        // Read from the buffer's readable part, wherever that starts.
        var offset = ByteBuffer(string: "xx" + text)
        offset.moveReaderIndex(forwardBy: 2)
        let shifted = try InboundBody.parse(offset, requireMessages: true)
        #expect(String(buffer: shifted.withModel(Array(#""claude-sonnet-4-0""#.utf8))) == text)
        #expect(String(buffer: shifted.withModel(Array(#""claude-sonnet-4-1""#.utf8))) == text.replacingOccurrences(of: "4-0", with: "4-1"))
    }

    @Test func escapedModelNamesAreDecoded() throws {
        let body = try InboundBody.parse(ByteBuffer(string: #"{"model":"def\u0061ult","messages":[]}"#), requireMessages: true)
        #expect(body.model == "default")
        #expect(!body.stream)
    }

    @Test func bodyValidationMessages() {
        func reason(_ text: String) -> String? {
            do {
                _ = try InboundBody.parse(ByteBuffer(string: text), requireMessages: true)
                return nil
            } catch {
                return error.message
            }
        }
        #expect(reason(#"{"model":"x","messages":[]}"#) == nil)
        #expect(reason(#"[1,2]"#)?.contains("JSON object") == true)
        #expect(reason(#"{"messages":[]}"#)?.contains("model") == true)
        #expect(reason(#"{"model":null,"messages":[]}"#)?.contains("model") == true)
        #expect(reason(#"{"model":"x","stream":"yes","messages":[]}"#)?.contains("stream") == true)
        #expect(reason(#"{"model":"x"}"#)?.contains("messages") == true)
        #expect(reason(#"{"model":"x","messages":{}}"#)?.contains("messages") == true)
        #expect(reason(#"{"model":"x","messages":[}"#)?.contains("not valid JSON") == true)
    }

    // MARK: SSE

    func events(_ chunks: [String]) throws -> [(SSEEventName, String)] {
        var parser = SSEEventParser()
        var out: [(SSEEventName, String)] = []
        for chunk in chunks {
            parser.append(ByteBuffer(string: chunk))
            while let event = try parser.next() {
                out.append((event.name, String(buffer: event.data)))
            }
        }
        return out
    }

    @Test func sseEventsSplitAcrossChunksInAnyPlace() throws {
        let stream = "event: message_start\ndata: {\"a\":1}\n\nevent: ping\ndata: {}\n\n: comment\n\nevent: content_block_delta\r\ndata: line1\r\ndata: line2\r\n\r\n"
        let whole = try events([stream])
        #expect(whole.map(\.0) == [.messageStart, .ping, .contentBlockDelta])
        #expect(whole[2].1 == "line1\nline2")
        // Every split point, including between CR and LF, gives the same events.
        let bytes = Array(stream.utf8)
        for split in 1..<bytes.count {
            let parts = [String(decoding: bytes[..<split], as: UTF8.self), String(decoding: bytes[split...], as: UTF8.self)]
            let again = try events(parts)
            #expect(again.map(\.0) == whole.map(\.0), "split at \(split)")
            #expect(again.map(\.1) == whole.map(\.1), "split at \(split)")
        }
    }

    @Test func sseParsedBytesAreForwardedUnchanged() throws {
        var parser = SSEEventParser()
        let text = "event: a\ndata: 1\n\nevent: b\ndata: 2\n\nevent: partial\nda"
        parser.append(ByteBuffer(string: text))
        while try parser.next() != nil {}
        let forwarded = parser.takeParsedBytes().map { String(buffer: $0) }
        #expect(forwarded == "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n")
        #expect(parser.hasUnparsedBytes)
    }

    @Test func sseOversizedEventIsAnError() {
        var parser = SSEEventParser(maxEventSize: 1024)
        parser.append(ByteBuffer(string: "data: " + String(repeating: "x", count: 4096)))
        #expect(throws: SSEEventParser.EventTooLarge.self) { try parser.next() }
    }

    @Test func usageIsReadFromStreamEvents() {
        let start = ByteBuffer(string: #"{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}"#)
        let delta = ByteBuffer(string: #"{"type":"message_delta","delta":{},"usage":{"output_tokens":15}}"#)
        var usage = AnthropicPayload.usage(inMessageStart: start) ?? TokenUsage()
        usage.merge(AnthropicPayload.usage(inMessageDelta: delta) ?? TokenUsage())
        #expect(usage.inputTokens == 25)
        #expect(usage.outputTokens == 15)
    }

    /// One pass over a complete answer gives what the answer's check needs (a JSON object, its
    /// `type`) and what the audit needs (`usage`), escapes and key order notwithstanding.
    @Test func aMessageAnswerIsSummarisedInOnePass() {
        let answer = ByteBuffer(
            string: #"{"id":"msg_1","usage":{"output_tokens":7,"cache_read_input_tokens":3,"input_tokens":12},"content":[{"type":"text","text":"hi \"there\""}],"type":"message"}"#
        )
        #expect(
            AnthropicPayload.summary(ofMessage: answer)
                == .init(type: "message", usage: TokenUsage(inputTokens: 12, outputTokens: 7, cacheReadInputTokens: 3))
        )
        #expect(AnthropicPayload.summary(ofMessage: answer)?.usage == AnthropicPayload.usage(inMessage: answer))
        #expect(AnthropicPayload.summary(ofMessage: ByteBuffer(string: #"{"type":"error"}"#)) == .init(type: "error", usage: nil))
        #expect(AnthropicPayload.summary(ofMessage: ByteBuffer(string: #"{"type":7,"usage":[]}"#)) == .init(type: nil, usage: nil))
        for notAnObject in [#"["message"]"#, #""message""#, #"{"type":"message""#, "<html>bad gateway</html>", ""] {
            #expect(AnthropicPayload.summary(ofMessage: ByteBuffer(string: notAnObject)) == nil, "\(notAnObject)")
        }
    }

    /// The caller's headers that go upstream are matched as HTTP matches names (any case), come
    /// out under their lower-case names in the caller's order, repeated ones each, and nothing else.
    @Test func forwardedHeadersAreMatchedWithoutRegardToCase() {
        let inbound: HTTPHeaders = [
            "Content-Type": "application/json", "X-Other": "no", "ANTHROPIC-BETA": "a", "Anthropic-Version": "2023-06-01",
            "anthropic-beta": "b", "Accept": "application/json", "x-api-key": "sk-ant-caller", "Anthropic-Versio": "no",
        ]
        let upstream = HeaderPolicy.upstreamHeaders(from: inbound, credential: .providerKey("sk-ant-provider"))
        #expect(upstream.map { "\($0.name): \($0.value)" } == [
            "content-type: application/json", "anthropic-beta: a", "anthropic-version: 2023-06-01", "anthropic-beta: b",
            "accept: application/json", "x-api-key: sk-ant-provider",
        ])
        // A provider without a key of its own passes the caller's first key and authorization on;
        // one with a preset key passes neither.
        let callers: HTTPHeaders = [
            "x-api-key": "first", "Authorization": "Bearer one", "X-Api-Key": "second", "authorization": "Bearer two",
            "anthropic-version": "2023-06-01",
        ]
        #expect(HeaderPolicy.upstreamHeaders(from: callers, credential: .callers).map { "\($0.name): \($0.value)" } == [
            "x-api-key: first", "authorization: Bearer one", "anthropic-version: 2023-06-01",
        ])
        #expect(HeaderPolicy.upstreamHeaders(from: callers, credential: .preset).map { "\($0.name): \($0.value)" } == [
            "anthropic-version: 2023-06-01"
        ])
        #expect("Content-Type".equalsLowercasedASCII("content-type"))
        #expect(!"content-type".equalsLowercasedASCII("content_type"))
        // Only ASCII letters fold: `[` is not `{`, `@` is not a backquote.
        #expect(!"[".equalsLowercasedASCII("{") && !"@".equalsLowercasedASCII("`"))
    }

    /// The upstream's answer headers reach the caller under lower-case names, in order, without
    /// the connection's own headers and those Switchyard sets itself, whatever their case.
    @Test func relayedAnswerHeadersDropTheConnectionsAndSwitchyardsOwn() {
        let dropped = [
            "Connection", "keep-alive", "Proxy-Connection", "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Content-Length",
            "Server", "Request-Id", "X-Request-ID", "x-switchyard-route", "X-Switchyard-Model", "x-switchyard-ATTEMPTS",
        ]
        let kept = [
            ("Content-Type", "application/json"), ("anthropic-ratelimit-requests-limit", "50"), ("Retry-After", "3"),
            ("X-Custom", "Mixed Case Value"), ("Date", "Thu, 26 Nov 2026 10:00:00 GMT"), ("Servers", "kept: not `server`"),
        ]
        var upstream = HTTPHeaders()
        for (index, pair) in kept.enumerated() {
            upstream.add(name: pair.0, value: pair.1)
            upstream.add(name: dropped[index], value: "x")
        }
        for name in dropped.dropFirst(kept.count) { upstream.add(name: name, value: "x") }
        let relayed = HeaderPolicy.relayedHeaders(from: upstream)
        #expect(relayed.map { "\($0.name): \($0.value)" } == kept.map { "\($0.0.lowercased()): \($0.1)" })
        #expect("X-ÄB".lowercasedASCII() == "x-Äb", "only ASCII letters change")
        #expect("already-lower".lowercasedASCII() == "already-lower")
    }
}
