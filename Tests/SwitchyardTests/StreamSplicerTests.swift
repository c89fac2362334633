import NIOCore
import Testing

@testable import SwitchyardCore

/// The pure half of stream recovery over recorded event sequences: what the caller has
/// (PartialResponse), the continuation request (prefill, whitespace), and the splice.
@Suite("Stream splicer")
struct StreamSplicerTests {
    typealias Event = (name: SSEEventName, data: String)

    static func start(input: Int) -> Event {
        (.messageStart, #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","usage":{"input_tokens":\#(input),"output_tokens":1}}}"#)
    }
    static func blockStart(_ index: Int, _ type: String = "text") -> Event {
        let block = type == "text" ? #"{"type":"text","text":""}"# : #"{"type":"\#(type)"}"#
        return (.contentBlockStart, #"{"type":"content_block_start","index":\#(index),"content_block":\#(block)}"#)
    }
    static func text(_ index: Int, _ text: String) -> Event {
        (.contentBlockDelta, #"{"type":"content_block_delta","index":\#(index),"delta":{"type":"text_delta","text":"\#(text)"}}"#)
    }
    static func stop(_ index: Int) -> Event { (.contentBlockStop, #"{"type":"content_block_stop","index":\#(index)}"#) }
    static func delta(output: Int) -> Event {
        (.messageDelta, #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":\#(output)}}"#)
    }
    static let messageStop: Event = (.messageStop, #"{"type":"message_stop"}"#)

    static func partial(_ events: [Event]) -> PartialResponse {
        var partial = PartialResponse()
        for event in events { partial.observe(name: event.name, data: ByteBuffer(string: event.data)) }
        return partial
    }

    /// Runs a continuation through the splicer; returns what the caller gets, as (name, data).
    static func splice(_ partial: PartialResponse, _ continuation: [Event]) -> [(name: SSEEventName, data: String)] {
        var splicer = StreamSplicer(partial: partial, request: ResumeRequest(partial: partial))
        var out: [(SSEEventName, String)] = []
        for event in continuation {
            switch splicer.splice(name: event.name, data: ByteBuffer(string: event.data)) {
            case .forward: out.append((event.name, event.data))
            case .drop: break
            case .replace(let data): out.append((event.name, String(buffer: data)))
            }
        }
        return out
    }

    @Test func theOpenTextBlockContinuesAtItsIndexWithNoSecondMessageStart() {
        let partial = Self.partial([Self.start(input: 10), Self.blockStart(0), Self.text(0, "Hello"), Self.text(0, " wor")])
        #expect(partial.isRecoverable)
        #expect(partial.openBlock?.index == 0)
        let out = Self.splice(partial, [
            Self.start(input: 14), (.ping, #"{"type":"ping"}"#), Self.blockStart(0), Self.text(0, "ld!"), Self.stop(0), Self.delta(output: 3),
            Self.messageStop,
        ])
        #expect(out.map(\.name) == [.ping, .contentBlockDelta, .contentBlockStop, .messageDelta, .messageStop])
        #expect(out[1].data.contains(#""index":0"#) && out[1].data.contains("ld!"))
        // The sum of what each part reported: 1 in the failed stream's message_start, 3 in the continuation's message_delta.
        #expect(out[3].data.contains(#""output_tokens":4"#), "3 of the continuation + 1 of the partial: \(out[3].data)")
    }

    @Test func laterBlocksAreRenumberedAfterTheCallers() {
        // The failure came inside the second text block.
        let partial = Self.partial([
            Self.start(input: 10), Self.blockStart(0), Self.text(0, "First."), Self.stop(0), Self.blockStart(1), Self.text(1, "Second"),
        ])
        #expect(partial.openBlock?.index == 1)
        #expect(partial.nextIndex == 2)
        let out = Self.splice(partial, [
            Self.start(input: 12), Self.blockStart(0), Self.text(0, " half."), Self.stop(0), Self.blockStart(1), Self.text(1, "Third."), Self.stop(1),
            Self.delta(output: 5), Self.messageStop,
        ])
        let indices = out.compactMap { event -> Int? in StreamEventFields.int("index", in: ByteBuffer(string: event.data)) }
        #expect(indices == [1, 1, 2, 2, 2], "block 0 continues the caller's block 1; block 1 becomes 2")
        #expect(out.first?.data.contains(" half.") == true)
    }

    @Test func aFailureBetweenBlocksStartsANewBlockAtTheNextIndex() {
        let partial = Self.partial([Self.start(input: 10), Self.blockStart(0), Self.text(0, "Done."), Self.stop(0)])
        #expect(partial.openBlock == nil)
        let out = Self.splice(partial, [Self.start(input: 12), Self.blockStart(0), Self.text(0, "More."), Self.stop(0)])
        #expect(out.map(\.name) == [.contentBlockStart, .contentBlockDelta, .contentBlockStop])
        #expect(out.allSatisfy { $0.data.contains(#""index":1"#) })
    }

    @Test func trailingWhitespaceIsCutFromThePrefillAndDroppedFromTheContinuation() {
        let partial = Self.partial([Self.start(input: 10), Self.blockStart(0), Self.text(0, "Hello world"), Self.text(0, " \\n")])
        let request = ResumeRequest(partial: partial)
        #expect(request.prefill == ["Hello world"])
        #expect(request.cutWhitespace == " \n")
        // The continuation repeats the cut whitespace, split across deltas, then goes on.
        let out = Self.splice(partial, [Self.start(input: 13), Self.blockStart(0), Self.text(0, " "), Self.text(0, "\\nAnd more"), Self.text(0, " text")])
        #expect(out.count == 2)
        #expect(out[0].data.contains(#""text":"And more""#), "the same whitespace the caller already has is dropped: \(out[0].data)")
        #expect(out[1].data.contains(#""text":" text""#), "whitespace later in the continuation is kept")
    }

    @Test func onlyTheWhitespaceTheCallerHasIsDropped() {
        let partial = Self.partial([Self.start(input: 10), Self.blockStart(0), Self.text(0, "Hello ")])
        let out = Self.splice(partial, [Self.start(input: 12), Self.blockStart(0), Self.text(0, "\\tworld")])
        #expect(out.first?.data.contains(#""text":"\tworld""#) == true, "a different whitespace is not the caller's: kept")
    }

    @Test func thePrefillCoversEveryTextBlockAndIsAppendedAsAnAssistantTurn() throws {
        let partial = Self.partial([Self.start(input: 10), Self.blockStart(0), Self.text(0, "A."), Self.stop(0), Self.blockStart(1), Self.text(1, "B ")])
        let request = ResumeRequest(partial: partial)
        #expect(request.prefill == ["A.", "B"])
        let original = ByteBuffer(string: #"{"model":"default","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        let body = try #require(request.body(original: original))
        #expect(String(buffer: body) == #"{"model":"default","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"A."},{"type":"text","text":"B"}]}]}"#)
    }

    @Test func toolUseThinkingAndOtherDeltasAreNotRecoverable() {
        for type in ["tool_use", "thinking", "redacted_thinking"] {
            let partial = Self.partial([Self.start(input: 10), Self.blockStart(0, type), Self.stop(0), Self.blockStart(1), Self.text(1, "x")])
            #expect(!partial.isRecoverable, "\(type)")
            #expect(partial.unrecoverableReason?.contains(type) == true)
        }
        let citations = Self.partial([
            Self.start(input: 10), Self.blockStart(0),
            (.contentBlockDelta, #"{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}"#),
        ])
        #expect(!citations.isRecoverable)
    }

    @Test func nothingOrOnlyWhitespaceSentYetContinuesWithTheOriginalRequest() throws {
        let original = ByteBuffer(string: #"{"model":"default","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        // A failure right after the empty block's start: the continuation is the original request.
        let empty = Self.partial([Self.start(input: 10), Self.blockStart(0)])
        #expect(empty.isRecoverable)
        #expect(try #require(ResumeRequest(partial: empty).body(original: original)) == original)
        let out = Self.splice(empty, [Self.start(input: 10), Self.blockStart(0), Self.text(0, "Hi"), Self.stop(0)])
        #expect(out.map(\.name) == [.contentBlockDelta, .contentBlockStop], "the open block 0 carries on; no second start")
        // Only whitespace reached the caller: no prefill, and the same whitespace is dropped from the continuation.
        let blank = Self.partial([Self.start(input: 10), Self.blockStart(0), Self.text(0, "\\n")])
        let request = ResumeRequest(partial: blank)
        #expect(request.prefill.isEmpty && request.cutWhitespace == "\n")
        #expect(try #require(request.body(original: original)) == original)
        let rest = Self.splice(blank, [Self.start(input: 10), Self.blockStart(0), Self.text(0, "\\nHi")])
        #expect(rest.first?.data.contains(#""text":"Hi""#) == true, "\(rest)")
        // Before any block: the continuation's blocks start at index 0.
        let none = Self.partial([Self.start(input: 10)])
        #expect(none.isRecoverable)
        #expect(Self.splice(none, [Self.start(input: 10), Self.blockStart(0), Self.text(0, "Hi")]).map(\.name) == [.contentBlockStart, .contentBlockDelta])
    }

    @Test func theSplicedMessageDeltaReportsTheCallersInputTokens() {
        let partial = Self.partial([Self.start(input: 10), Self.blockStart(0), Self.text(0, "Hello")])
        let delta: Event = (.messageDelta, #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":14,"output_tokens":3}}"#)
        let out = Self.splice(partial, [Self.start(input: 14), Self.blockStart(0), Self.text(0, " world"), delta])
        #expect(out.last?.data.contains(#""input_tokens":10"#) == true && out.last?.data.contains(#""output_tokens":4"#) == true, "\(out.last?.data ?? "")")
    }

    @Test func multiLineDataIsWrittenAsOneDataLinePerLine() {
        let event = StreamEventFields.event("content_block_delta", data: ByteBuffer(string: "{\"type\":\"content_block_delta\",\n\"index\":0}"))
        #expect(String(buffer: event) == "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\ndata: \"index\":0}\n\n")
    }

    @Test func aSecondResumeContinuesTheSplicedText() {
        // What the caller received after one splice (caller indices), then a second failure.
        let partial = Self.partial([Self.start(input: 10), Self.blockStart(0), Self.text(0, "one "), Self.text(0, "two "), Self.text(0, "three")])
        #expect(partial.text == "one two three")
        #expect(ResumeRequest(partial: partial).prefill == ["one two three"])
        let out = Self.splice(partial, [Self.start(input: 16), Self.blockStart(0), Self.text(0, " four"), Self.stop(0), Self.delta(output: 2)])
        #expect(out.last?.data.contains(#""output_tokens":3"#) == true, "2 of the continuation + 1 reported by the failed stream")
    }
}
