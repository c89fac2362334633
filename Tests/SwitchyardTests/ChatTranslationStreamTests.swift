import NIOCore
import Testing

@testable import SwitchyardCore

/// Both stream translators fed realistic event sequences; outputs compared event by event, as
/// parsed JSON.
@Suite("ChatTranslation: streams, both directions")
struct ChatTranslationStreamTests {
    /// One Anthropic SSE event as a test writes it.
    static func anthropic(_ name: String, _ data: String) -> (SSEEventName, ByteBuffer) {
        (ByteBuffer(string: name).withUnsafeReadableBytes { SSEEventName($0) }, ByteBuffer(string: data))
    }

    static let textEvents = [
        anthropic("message_start", #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"usage":{"input_tokens":20,"cache_read_input_tokens":5,"output_tokens":1}}}"#),
        anthropic("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        anthropic("ping", #"{"type":"ping"}"#),
        anthropic("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#),
        anthropic("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}"#),
        anthropic("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
        anthropic("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}}"#),
        anthropic("message_stop", #"{"type":"message_stop"}"#),
    ]

    /// The `data:` lines of a Chat stream, each parsed (or the literal `[DONE]`).
    static func chatLines(_ output: ByteBuffer) -> [JSONValue] {
        String(buffer: output).components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { line -> JSONValue in
            #expect(line.hasPrefix("data: "), "not a data line: \(line)")
            let payload = String(line.dropFirst(6))
            return payload == "[DONE]" ? "[DONE]" : ChatJSON.parse(payload)
        }
    }

    static func run(_ events: [(SSEEventName, ByteBuffer)], includeUsage: Bool) -> [JSONValue] {
        var translator = ChatStreamTranslator(model: "gpt-4o", created: 7, includeUsage: includeUsage)
        var output = ByteBuffer()
        for (name, data) in events {
            if var chunk = translator.translate(event: name, data: data) { output.writeBuffer(&chunk) }
        }
        if var end = translator.finish() { output.writeBuffer(&end) }
        return chatLines(output)
    }

    static func chunk(_ delta: String, finish: String = "null", usageNull: Bool = false) -> JSONValue {
        let usage = usageNull ? #","usage":null"# : ""
        return ChatJSON.parse(#"{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":7,"model":"gpt-4o","choices":[{"index":0,"delta":\#(delta),"logprobs":null,"finish_reason":\#(finish)}]\#(usage)}"#)
    }

    @Test func aTextStreamBecomesRoleContentFinishAndDone() {
        let expected: [JSONValue] = [
            Self.chunk(#"{"role":"assistant","content":""}"#), Self.chunk(#"{"content":"Hel"}"#), Self.chunk(#"{"content":"lo"}"#),
            Self.chunk("{}", finish: #""stop""#), "[DONE]",
        ]
        #expect(Self.run(Self.textEvents, includeUsage: false) == expected)
    }

    @Test func includeUsageAddsAFinalChunkWithEmptyChoicesAndTheUsage() {
        let lines = Self.run(Self.textEvents, includeUsage: true)
        let usage = ChatJSON.parse(#"{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":7,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":7,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":5}}}"#)
        #expect(lines.suffix(2) == [usage, "[DONE]"])
        #expect(lines.first == Self.chunk(#"{"role":"assistant","content":""}"#, usageNull: true))
    }

    @Test func toolUseBecomesIndexedToolCallDeltasAndThinkingIsIgnored() {
        let events = [
            Self.anthropic("message_start", #"{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":3,"output_tokens":0}}}"#),
            Self.anthropic("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#),
            Self.anthropic("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#),
            Self.anthropic("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}"#),
            Self.anthropic("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
            Self.anthropic("content_block_start", #"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#),
            Self.anthropic("content_block_delta", #"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking."}}"#),
            Self.anthropic("content_block_stop", #"{"type":"content_block_stop","index":1}"#),
            Self.anthropic("content_block_start", #"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_a","name":"weather","input":{}}}"#),
            Self.anthropic("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#),
            Self.anthropic("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#),
            Self.anthropic("content_block_delta", #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"Oslo\"}"}}"#),
            Self.anthropic("content_block_stop", #"{"type":"content_block_stop","index":2}"#),
            Self.anthropic("content_block_start", #"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_b","name":"now","input":{}}}"#),
            Self.anthropic("content_block_stop", #"{"type":"content_block_stop","index":3}"#),
            Self.anthropic("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}"#),
            Self.anthropic("message_stop", #"{"type":"message_stop"}"#),
        ]
        let expected: [JSONValue] = [
            Self.chunk(#"{"role":"assistant","content":""}"#),
            Self.chunk(#"{"content":"Checking."}"#),
            Self.chunk(#"{"tool_calls":[{"index":0,"id":"toolu_a","type":"function","function":{"name":"weather","arguments":""}}]}"#),
            Self.chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}"#),
            Self.chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]}"#),
            Self.chunk(#"{"tool_calls":[{"index":1,"id":"toolu_b","type":"function","function":{"name":"now","arguments":""}}]}"#),
            Self.chunk("{}", finish: #""tool_calls""#),
            "[DONE]",
        ]
        #expect(Self.run(events, includeUsage: false) == expected)
    }

    @Test func anErrorMidStreamBecomesAnOpenAIErrorChunkAndEndsTheStream() {
        let events = Array(Self.textEvents.prefix(4)) + [
            Self.anthropic("error", #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
            Self.anthropic("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}"#),
        ]
        let expected: [JSONValue] = [
            Self.chunk(#"{"role":"assistant","content":""}"#, usageNull: true), Self.chunk(#"{"content":"Hel"}"#, usageNull: true),
            ["error": ["message": "Overloaded", "type": "server_error", "param": nil, "code": nil]],
        ]
        #expect(Self.run(events, includeUsage: true) == expected)
    }

    @Test func anUnreadableEventEndsTheStreamWithAServerError() {
        let events = [Self.textEvents[0], Self.anthropic("content_block_delta", "{not json")]
        let lines = Self.run(events, includeUsage: false)
        #expect(lines.count == 2)
        #expect(lines.last?.objectValue?["error"]?.objectValue?["type"] == "server_error")
    }

    // MARK: Chat SSE → Anthropic SSE

    static let chatTextStream = """
        data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

        : keep-alive

        data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hé"},"finish_reason":null}]}

        data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"llo"},"finish_reason":null}]}

        data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

        data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}

        data: [DONE]


        """

    static let chatToolStream = """
        data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"On it."}}]}\r
        \r
        data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]}}]}\r
        \r
        data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\":"}}]}}]}\r
        \r
        data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\\"Oslo\\"}"}}]}}]}\r
        \r
        data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"now","arguments":"{}"}}]}}]}\r
        \r
        data: {"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":40,"completion_tokens":12}}\r
        \r
        data: [DONE]\r
        \r

        """

    /// `(event name, parsed data)` of an Anthropic SSE byte stream.
    static func anthropicEvents(_ output: ByteBuffer) -> [String] {
        String(buffer: output).components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
            let lines = event.components(separatedBy: "\n")
            #expect(lines.count == 2 && lines[0].hasPrefix("event: ") && lines[1].hasPrefix("data: "), "malformed event \(event)")
            let data = ChatJSON.parse(String(lines.last?.dropFirst(6) ?? ""))
            #expect(data.objectValue?["type"]?.stringValue == String(lines[0].dropFirst(7)), "event name and type differ: \(event)")
            return "\(lines[0].dropFirst(7)) \(data.encodedString)"
        }
    }

    /// Feeds `stream` cut at `cuts`; the output, or the failure.
    static func translate(_ stream: [UInt8], cuts: [Int]) -> Result<ByteBuffer, UpstreamError> {
        var translator = ChatStreamToMessages()
        var output = ByteBuffer()
        var start = 0
        do {
            for end in cuts + [stream.count] where end >= start {
                if var piece = try translator.translate(ByteBuffer(bytes: stream[start..<end])) { output.writeBuffer(&piece) }
                start = end
            }
            if var rest = try translator.finish() { output.writeBuffer(&rest) }
            return .success(output)
        } catch {
            return .failure(error)
        }
    }

    static func whole(_ stream: String) throws -> [String] {
        anthropicEvents(try translate(Array(stream.utf8), cuts: []).get())
    }

    @Test func aChatTextStreamBecomesAnthropicEventsWithUsageInMessageDelta() throws {
        #expect(try Self.whole(Self.chatTextStream) == [
            #"message_start {"type":"message_start","message":{"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"gpt-4o","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}"#,
            #"content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            #"content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hé"}}"#,
            #"content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"llo"}}"#,
            #"content_block_stop {"type":"content_block_stop","index":0}"#,
            #"message_delta {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":9,"output_tokens":2}}"#,
            #"message_stop {"type":"message_stop"}"#,
        ])
    }

    @Test func chatToolCallsBecomeToolUseBlocksWithInputJSONDeltas() throws {
        #expect(try Self.whole(Self.chatToolStream) == [
            #"message_start {"type":"message_start","message":{"id":"msg_chatcmpl-2","type":"message","role":"assistant","model":"gpt-4o","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}"#,
            #"content_block_start {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            #"content_block_delta {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"On it."}}"#,
            #"content_block_stop {"type":"content_block_stop","index":0}"#,
            #"content_block_start {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_a","name":"weather","input":{}}}"#,
            #"content_block_delta {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#,
            #"content_block_delta {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Oslo\"}"}}"#,
            #"content_block_stop {"type":"content_block_stop","index":1}"#,
            #"content_block_start {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_b","name":"now","input":{}}}"#,
            #"content_block_delta {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            #"content_block_stop {"type":"content_block_stop","index":2}"#,
            #"message_delta {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":40,"output_tokens":12}}"#,
            #"message_stop {"type":"message_stop"}"#,
        ])
    }

    @Test(arguments: [chatTextStream, chatToolStream])
    func theAnthropicEventsAreTheSameWhereverTheChatStreamIsSplit(_ stream: String) throws {
        let bytes = Array(stream.utf8)
        let reference = try Self.translate(bytes, cuts: []).get()
        #expect(Self.anthropicEvents(reference).count > 5)
        // Byte-identical output, which is stricter than the same events.
        let differing = (0...bytes.count).filter { cut in (try? Self.translate(bytes, cuts: [cut]).get()) != reference }
        #expect(differing.isEmpty, "output differs when split at \(differing.prefix(10))")
        for step in [1, 2, 3, 7] {
            let cuts = Array(stride(from: step, to: bytes.count, by: step))
            #expect((try? Self.translate(bytes, cuts: cuts).get()) == reference, "in pieces of \(step) bytes")
        }
    }

    @Test func anErrorObjectInTheChatStreamBecomesAnAnthropicErrorEvent() throws {
        let stream = """
            data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}

            data: {"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}

            data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"late"}}]}


            """
        let events = try Self.whole(stream)
        #expect(events.count == 4)
        #expect(events.last == #"error {"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}"#)
    }

    @Test(arguments: [
        ("a stream cut before [DONE] and any finish_reason", #"data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}"# + "\n\n"),
        ("an empty body", ""),
        ("[DONE] before any chunk", "data: [DONE]\n\n"),
        ("a chunk that is not JSON", "data: {\"id\":\n\n"),
        ("a tool call resumed after another began",
         #"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f"}}]}}]}"# + "\n\n"
            + #"data: {"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g"}}]}}]}"# + "\n\n"
            + #"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"# + "\n\n"),
    ])
    func aBrokenChatStreamIsAReset(_ name: String, _ stream: String) {
        guard case .failure(let error) = Self.translate(Array(stream.utf8), cuts: []) else {
            Issue.record("\(name) was accepted")
            return
        }
        #expect(error.failure == .reset, "\(name)")
    }

    @Test func aFirstChunkWithNoChoiceDoesNotNameTheMessage() throws {
        let stream = #"data: {"id":"","object":"","created":0,"model":"","choices":[],"prompt_filter_results":[{"prompt_index":0}]}"# + "\n\n"
            + #"data: {"id":"chatcmpl-3","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"# + "\n\ndata: [DONE]\n\n"
        let events = try Self.whole(stream)
        #expect(events.first?.contains(#""id":"msg_chatcmpl-3""#) == true && events.first?.contains(#""model":"gpt-4o""#) == true, "\(events)")
        #expect(events.count == 6)
    }

    @Test func aStreamWithAFinishReasonButNoDoneIsClosedAsIfDoneHadCome() throws {
        let stream = #"data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"length"}]}"#
        let events = try Self.whole(stream)
        #expect(events.suffix(2) == [
            #"message_delta {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":0}}"#,
            #"message_stop {"type":"message_stop"}"#,
        ])
    }
}
