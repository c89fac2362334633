import Foundation
import NIOCore
import Testing

@testable import SwitchyardCore

/// Seeded mutations (byte flips, insertions of JSON and SSE tokens, deletions, truncations,
/// splices) of sample requests and streams, in both directions. Nothing may crash; a request
/// either translates into a well-formed body or is refused naming a field (or the body); a Chat
/// stream either translates into well-formed Anthropic events or fails as a typed reset.
/// 4 × 500 inputs by default; longer:
///   FUZZ_ITERATIONS=20000 FUZZ_SEED=7 swift test --filter ChatTranslationFuzz
@Suite("ChatTranslation: seeded mutation fuzzing")
struct ChatTranslationFuzzTests {
    static let iterations = ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 500
    static let seed = ProcessInfo.processInfo.environment["FUZZ_SEED"].flatMap { UInt64($0) } ?? 20261201

    static let tokens: [[UInt8]] = [
        "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "\\ud800", "null", "true", "false", "0", "-1", "2.5", "1e999", "\"\"",
        #""role":"tool""#, #""role":"system""#, #""n":2"#, #""type":"image_url""#, #""tool_calls":[]"#, #""arguments":"{""#,
        #""content":null"#, #""type":"tool_use""#, #""type":"tool_result""#, #""stream":true"#, "data: ", "data: [DONE]\n\n", "\n\n",
        "\r", "\n", ": comment\n", #"{"error":{"message":"x"}}"#, #""finish_reason":"stop""#, #""index":1"#, "é", "\u{0}",
    ].map { Array($0.utf8) }

    static func mutate(_ input: [UInt8], using random: inout SeededRandom) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + Int(random.next() % 4)) {
            let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
            switch random.next() % 6 {
            case 0 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: random.next())
            case 1: bytes.insert(contentsOf: tokens[Int(random.next() % UInt64(tokens.count))], at: position)
            case 2 where !bytes.isEmpty: bytes.removeSubrange(position..<min(bytes.count, position + 1 + Int(random.next() % 16)))
            case 3: bytes = Array(bytes.prefix(position))
            case 4 where !bytes.isEmpty:
                let from = Int(random.next() % UInt64(bytes.count))
                let chunk = bytes[from..<min(bytes.count, from + Int(random.next() % 48))]
                bytes.insert(contentsOf: chunk, at: position)
            default: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: position)
            }
        }
        return bytes
    }

    static let chatRequests = [
        #"{"model":"gpt-4o","max_completion_tokens":300,"temperature":1.2,"stop":["END"],"user":"u","stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"auto","parallel_tool_calls":false,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"12C"}]}"#,
        #"{"model":"m","seed":1,"n":1,"messages":[{"role":"developer","content":[{"type":"text","text":"x"}]},{"role":"user","content":"a"},{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]}],"response_format":{"type":"text"}}"#,
    ].map { Array($0.utf8) }

    static let messagesRequests = [
        #"{"model":"claude","max_tokens":64,"system":[{"type":"text","text":"S"}],"stream":true,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true},"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}}]},{"role":"assistant","content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"r"}]}]}]}"#,
        #"{"model":"claude","max_tokens":10,"top_k":5,"metadata":{"user_id":"u"},"stop_sequences":["X"],"messages":[{"role":"user","content":"hello"}]}"#,
    ].map { Array($0.utf8) }

    static let chatStreams = [ChatTranslationStreamTests.chatTextStream, ChatTranslationStreamTests.chatToolStream].map { Array($0.utf8) }

    static func yieldSometimes(_ iteration: Int) async {
        if iteration % 50 == 0 { await Task.yield() }
    }

    /// A refusal names its field first, or says the body itself is at fault.
    static func expectNamesAField(_ error: TranslationError) {
        if let field = error.field {
            #expect(error.message.hasPrefix(field), "\(error.message)")
        } else {
            #expect(error.message.hasPrefix("the request body"), "\(error.message)")
        }
    }

    @Test func chatRequestsTranslateOrAreRefusedNamingAField() async {
        var random = SeededRandom(state: Self.seed)
        var outcomes = (translated: 0, refused: 0)
        for iteration in 0..<Self.iterations {
            await Self.yieldSometimes(iteration)
            let input = Self.mutate(Self.chatRequests[iteration % Self.chatRequests.count], using: &random)
            do {
                let translated = try ChatRequestToMessages.translate(input)
                outcomes.translated += 1
                let body = (try? JSONValueParser.parse(translated.body))?.objectValue
                #expect(body?["model"]?.stringValue == translated.model)
                #expect((body?["max_tokens"]?.intValue ?? 0) >= 1)
                #expect(body?["messages"]?.arrayValue != nil)
            } catch {
                outcomes.refused += 1
                Self.expectNamesAField(error)
            }
        }
        #expect(outcomes.translated > 0 && outcomes.refused > 0, "\(outcomes)")
    }

    @Test func messagesRequestsTranslateOrAreRefusedNamingAField() async {
        var random = SeededRandom(state: Self.seed &+ 1)
        var outcomes = (translated: 0, refused: 0)
        for iteration in 0..<Self.iterations {
            await Self.yieldSometimes(iteration)
            let input = Self.mutate(Self.messagesRequests[iteration % Self.messagesRequests.count], using: &random)
            do {
                let body = try MessagesRequestToChat.translate(input, model: "gpt-4o")
                outcomes.translated += 1
                let object = (try? JSONValueParser.parse(body))?.objectValue
                #expect(object?["model"] == "gpt-4o")
                #expect(object?["messages"]?.arrayValue != nil)
            } catch {
                outcomes.refused += 1
                Self.expectNamesAField(error)
            }
        }
        #expect(outcomes.translated > 0 && outcomes.refused > 0, "\(outcomes)")
    }

    @Test func chatStreamsTranslateOrFailAsATypedReset() async {
        var random = SeededRandom(state: Self.seed &+ 2)
        var outcomes = (translated: 0, failed: 0)
        for iteration in 0..<Self.iterations {
            await Self.yieldSometimes(iteration)
            let input = Self.mutate(Self.chatStreams[iteration % Self.chatStreams.count], using: &random)
            let cuts = (0..<Int(random.next() % 4)).map { _ in Int(random.next() % UInt64(input.count + 1)) }.sorted()
            switch ChatTranslationStreamTests.translate(input, cuts: cuts) {
            case .success(let output):
                outcomes.translated += 1
                Self.expectWellFormedAnthropicStream(output)
            case .failure(let error):
                outcomes.failed += 1
                #expect(error.failure == .reset && !error.detail.isEmpty, "\(error)")
            }
        }
        #expect(outcomes.translated > 0 && outcomes.failed > 0, "\(outcomes)")
    }

    /// Every event is `event: <type>` with a JSON object of that type; a stream opens with
    /// `message_start` and ends with `message_stop` or `error`.
    static func expectWellFormedAnthropicStream(_ output: ByteBuffer) {
        let events = String(buffer: output).components(separatedBy: "\n\n").filter { !$0.isEmpty }
        var names: [String] = []
        for event in events {
            let lines = event.components(separatedBy: "\n")
            guard lines.count == 2, lines[0].hasPrefix("event: "), lines[1].hasPrefix("data: ") else {
                Issue.record("malformed event: \(event)")
                return
            }
            let name = String(lines[0].dropFirst(7))
            let data = try? JSONValueParser.parse(String(lines[1].dropFirst(6)))
            #expect(data?.objectValue?["type"]?.stringValue == name, "\(event)")
            names.append(name)
        }
        guard let first = names.first else { return }
        #expect(first == "message_start" || first == "error", "\(names)")
        #expect(names.last == "message_stop" || names.last == "error", "\(names)")
    }

    @Test func anthropicStreamsAlwaysBecomeWellFormedChatChunks() async throws {
        let seeds = [ChatTranslationStreamTests.textEvents].map { events in
            Array(events.map { "event: \($0.0.wireName ?? "other")\ndata: \(String(buffer: $0.1))\n\n" }.joined().utf8)
        }
        var random = SeededRandom(state: Self.seed &+ 3)
        for iteration in 0..<Self.iterations {
            await Self.yieldSometimes(iteration)
            var parser = SSEEventParser()
            parser.append(ByteBuffer(bytes: Self.mutate(seeds[iteration % seeds.count], using: &random)))
            var translator = ChatStreamTranslator(model: "m", created: 1, includeUsage: iteration % 2 == 0)
            var output = ByteBuffer()
            while let event = try parser.next() {
                if var chunk = translator.translate(event) { output.writeBuffer(&chunk) }
            }
            if var end = translator.finish() { output.writeBuffer(&end) }
            for line in String(buffer: output).components(separatedBy: "\n\n") where !line.isEmpty {
                #expect(line.hasPrefix("data: "), "\(line)")
                let payload = String(line.dropFirst(6))
                #expect(payload == "[DONE]" || (try? JSONValueParser.parse(payload))?.objectValue != nil, "\(line)")
            }
        }
    }
}
