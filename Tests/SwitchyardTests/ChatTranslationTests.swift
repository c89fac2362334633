import Foundation
import NIOCore
import Testing

@testable import SwitchyardCore

/// JSON helpers for the translation tables: expected bodies are written as JSON text and compared
/// structurally (member order aside, `1` equal to `1.0`, `true` never equal to `1`).
enum ChatJSON {
    static func parse(_ text: String) -> JSONValue {
        do {
            return try JSONValueParser.parse(text)
        } catch {
            Issue.record("test fixture is not JSON: \(error)\n\(text)")
            return .null
        }
    }

    /// `base` with `overrides`' top-level members set over it (a `null` override removes one).
    static func merged(_ base: String, _ overrides: String) -> JSONValue {
        guard var object = parse(base).objectValue, let extra = parse(overrides).objectValue else { return .null }
        for member in extra.members {
            object[member.key] = member.value.isNull ? nil : member.value
        }
        return .object(object)
    }

    static func bytes(_ value: JSONValue) -> ByteBuffer { ByteBuffer(bytes: value.encoded) }

    /// `actual` is JSON that Foundation reads too, and structurally `expected`.
    static func expect(_ actual: ByteBuffer, equals expected: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) {
        let data = Data(actual.readableBytesView)
        #expect((try? JSONSerialization.jsonObject(with: data)) != nil, "Foundation cannot read \(String(decoding: data, as: UTF8.self))", sourceLocation: sourceLocation)
        let equal = (try? JSONValueParser.parse(actual)) == expected
        #expect(equal, "got \(String(decoding: data, as: UTF8.self))\nwant \(expected.encodedString)", sourceLocation: sourceLocation)
    }
}

/// One row of a translation table: the fields added to a small request, and the fields the
/// translation must then hold.
struct TranslationRow: Sendable, CustomTestStringConvertible {
    var name: String
    var input: String
    var expected: String
    var testDescription: String { name }
}

/// One request that must be refused with 400 naming `field`.
struct RefusalRow: Sendable, CustomTestStringConvertible {
    var input: String
    var field: String?
    var testDescription: String { "\(field ?? "body"): \(input)" }
}

@Suite("ChatTranslation: Chat Completions request → Messages request")
struct ChatTranslationRequestTests {
    static let baseChat = #"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#
    static let baseMessages = #"{"model":"gpt-4o","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#
    static let weatherTool = #"{"type":"function","function":{"name":"weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}"#
    static let weatherAnthropic = #"{"name":"weather","description":"Weather now","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}"#

    static let rows: [TranslationRow] = [
        TranslationRow(name: "model kept, max_tokens defaults to 4096, user string → text block", input: "{}", expected: "{}"),
        TranslationRow(
            name: "system message → system",
            input: #"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}"#,
            expected: #"{"system":"Be brief."}"#),
        TranslationRow(
            name: "system and developer messages, strings and text parts, joined in order with a blank line",
            input: #"{"messages":[{"role":"system","content":[{"type":"text","text":"A"},{"type":"text","text":"B"}]},{"role":"developer","content":"C"},{"role":"user","content":"hi"}]}"#,
            expected: #"{"system":"A\n\nB\n\nC"}"#),
        TranslationRow(
            name: "a system message mid-conversation is hoisted to system",
            input: #"{"messages":[{"role":"user","content":"hi"},{"role":"system","content":"Late."}]}"#,
            expected: #"{"system":"Late."}"#),
        TranslationRow(
            name: "user text parts → text blocks, empty text dropped",
            input: #"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":""},{"type":"text","text":"b"}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}"#),
        TranslationRow(
            name: "image_url https → url image source",
            input: #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x.test/a.png","detail":"high"}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x.test/a.png"}}]}]}"#),
        TranslationRow(
            name: "image_url data URL → base64 image source",
            input: #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0K"}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0K"}}]}]}"#),
        TranslationRow(
            name: "file part with a PDF data URL → document block",
            input: #"{"messages":[{"role":"user","content":[{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0x"}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0x"}}]}]}"#),
        TranslationRow(
            name: "assistant tool_calls → tool_use with parsed input; content \"\" beside them dropped",
            input: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\",\"days\":[1,2]}"}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"weather","input":{"city":"Oslo","days":[1,2]}}]}]}"#),
        TranslationRow(
            name: "assistant text then tool call; empty arguments → {}",
            input: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Looking.","tool_calls":[{"id":"c","type":"function","function":{"name":"now","arguments":""}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":[{"type":"text","text":"Looking."},{"type":"tool_use","id":"c","name":"now","input":{}}]}]}"#),
        TranslationRow(
            name: "consecutive tool messages → one user turn of tool_results, merged with the next user message",
            input: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"b","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"1"},{"role":"tool","tool_call_id":"b","content":[{"type":"text","text":"2"}]},{"role":"user","content":"and?"}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":{}},{"type":"tool_use","id":"b","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"1"},{"type":"tool_result","tool_use_id":"b","content":[{"type":"text","text":"2"}]},{"type":"text","text":"and?"}]}]}"#),
        TranslationRow(
            name: "consecutive same-role messages are merged",
            input: #"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"assistant","content":"c"},{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":[{"type":"text","text":"c"},{"type":"text","text":"no"}]}]}"#),
        TranslationRow(name: "max_tokens → max_tokens", input: #"{"max_tokens":100}"#, expected: #"{"max_tokens":100}"#),
        TranslationRow(
            name: "max_completion_tokens preferred over max_tokens", input: #"{"max_tokens":100,"max_completion_tokens":200}"#,
            expected: #"{"max_tokens":200}"#),
        TranslationRow(name: "stop string → stop_sequences", input: #"{"stop":"END"}"#, expected: #"{"stop_sequences":["END"]}"#),
        TranslationRow(name: "stop array → stop_sequences", input: #"{"stop":["A","B"]}"#, expected: #"{"stop_sequences":["A","B"]}"#),
        TranslationRow(name: "temperature up to 1 passes through", input: #"{"temperature":0.7}"#, expected: #"{"temperature":0.7}"#),
        TranslationRow(name: "temperature above 1 is clamped to 1", input: #"{"temperature":1.8}"#, expected: #"{"temperature":1}"#),
        TranslationRow(name: "top_p passes through", input: #"{"top_p":0.9}"#, expected: #"{"top_p":0.9}"#),
        TranslationRow(
            name: "tools → tools with input_schema; no parameters → {type: object}",
            input: #"{"tools":[\#(weatherTool),{"type":"function","function":{"name":"now"}}]}"#,
            expected: #"{"tools":[\#(weatherAnthropic),{"name":"now","input_schema":{"type":"object"}}]}"#),
        TranslationRow(
            name: "tool_choice auto → auto", input: #"{"tools":[\#(weatherTool)],"tool_choice":"auto"}"#,
            expected: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"auto"}}"#),
        TranslationRow(
            name: "tool_choice required → any", input: #"{"tools":[\#(weatherTool)],"tool_choice":"required"}"#,
            expected: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"any"}}"#),
        TranslationRow(
            name: "tool_choice none → none", input: #"{"tools":[\#(weatherTool)],"tool_choice":"none","parallel_tool_calls":false}"#,
            expected: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"none"}}"#),
        TranslationRow(
            name: "tool_choice function → tool", input: #"{"tools":[\#(weatherTool)],"tool_choice":{"type":"function","function":{"name":"weather"}}}"#,
            expected: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"tool","name":"weather"}}"#),
        TranslationRow(
            name: "parallel_tool_calls false → disable_parallel_tool_use on the choice",
            input: #"{"tools":[\#(weatherTool)],"tool_choice":"required","parallel_tool_calls":false}"#,
            expected: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}"#),
        TranslationRow(
            name: "parallel_tool_calls false with no tool_choice → auto with disable_parallel_tool_use",
            input: #"{"tools":[\#(weatherTool)],"parallel_tool_calls":false}"#,
            expected: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}"#),
        TranslationRow(
            name: "tool_choice without tools is dropped", input: #"{"tool_choice":"required","parallel_tool_calls":false}"#, expected: "{}"),
        TranslationRow(name: "user → metadata.user_id", input: #"{"user":"u-1"}"#, expected: #"{"metadata":{"user_id":"u-1"}}"#),
        TranslationRow(name: "safety_identifier → metadata.user_id", input: #"{"safety_identifier":"s-1"}"#, expected: #"{"metadata":{"user_id":"s-1"}}"#),
        TranslationRow(name: "stream true → stream true", input: #"{"stream":true,"stream_options":{"include_usage":true}}"#, expected: #"{"stream":true}"#),
        TranslationRow(
            name: "defaults and bookkeeping the SDKs send are ignored",
            input: #"{"seed":42,"store":false,"metadata":{"k":"v"},"service_tier":"auto","frequency_penalty":0,"presence_penalty":0,"n":1,"logprobs":false,"top_logprobs":0,"response_format":{"type":"text"},"logit_bias":{},"modalities":["text"],"reasoning_effort":"low","parallel_tool_calls":true,"stream":false}"#,
            expected: "{}"),
    ]

    @Test(arguments: rows)
    func eachChatFieldTranslatesToItsMessagesField(_ row: TranslationRow) throws {
        let input = ChatJSON.merged(Self.baseChat, row.input)
        let translated = try ChatRequestToMessages.translate(ChatJSON.bytes(input))
        ChatJSON.expect(translated.body, equals: ChatJSON.merged(Self.baseMessages, row.expected))
        #expect(translated.model == "gpt-4o")
    }

    @Test func streamAndIncludeUsageAreReturnedToTheCallerNotSentUpstream() throws {
        let plain = try ChatRequestToMessages.translate(ChatJSON.bytes(ChatJSON.parse(Self.baseChat)))
        #expect(!plain.stream && !plain.includeUsage)
        let streaming = try ChatRequestToMessages.translate(ChatJSON.bytes(ChatJSON.merged(Self.baseChat, #"{"stream":true,"stream_options":{"include_usage":true}}"#)))
        #expect(streaming.stream && streaming.includeUsage)
        #expect(!String(buffer: streaming.body).contains("include_usage"))
    }

    @Test func toolSchemaKeepsItsPropertyOrderAndNumbersTheirText() throws {
        let input = ChatJSON.merged(
            Self.baseChat, #"{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"number","maximum":1.50}}}}}]}"#)
        let body = String(buffer: try ChatRequestToMessages.translate(ChatJSON.bytes(input)).body)
        #expect(body.contains(#""properties":{"z":{"type":"string"},"a":{"type":"number","maximum":1.50}}"#))
    }

    static let refusals: [RefusalRow] = [
        RefusalRow(input: #"{"n":2}"#, field: "n"),
        RefusalRow(input: #"{"logprobs":true}"#, field: "logprobs"),
        RefusalRow(input: #"{"top_logprobs":3}"#, field: "top_logprobs"),
        RefusalRow(input: #"{"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}}"#, field: "response_format"),
        RefusalRow(input: #"{"response_format":{"type":"json_object"}}"#, field: "response_format"),
        RefusalRow(input: #"{"audio":{"voice":"alloy","format":"wav"}}"#, field: "audio"),
        RefusalRow(input: #"{"modalities":["text","audio"]}"#, field: "modalities"),
        RefusalRow(input: #"{"prediction":{"type":"content","content":"x"}}"#, field: "prediction"),
        RefusalRow(input: #"{"logit_bias":{"50256":-100}}"#, field: "logit_bias"),
        RefusalRow(input: #"{"functions":[{"name":"f"}]}"#, field: "functions"),
        RefusalRow(input: #"{"function_call":"auto"}"#, field: "function_call"),
        RefusalRow(input: #"{"frequency_penalty":0.5}"#, field: "frequency_penalty"),
        RefusalRow(input: #"{"presence_penalty":-1}"#, field: "presence_penalty"),
        RefusalRow(input: #"{"web_search_options":{}}"#, field: "web_search_options"),
        RefusalRow(input: #"{"temperature":2.5}"#, field: "temperature"),
        RefusalRow(input: #"{"temperature":"hot"}"#, field: "temperature"),
        RefusalRow(input: #"{"model":5}"#, field: "model"),
        RefusalRow(input: #"{"model":null}"#, field: "model"),
        RefusalRow(input: #"{"messages":"hi"}"#, field: "messages"),
        RefusalRow(input: #"{"messages":[]}"#, field: "messages"),
        RefusalRow(input: #"{"messages":[{"content":"hi"}]}"#, field: "messages[0].role"),
        RefusalRow(input: #"{"messages":[{"role":"function","name":"f","content":"x"}]}"#, field: "messages[0].role"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":5}]}"#, field: "messages[0].content"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#, field: "messages[0].content[0].type"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:text/plain;base64,aGk="}}]}]}"#, field: "messages[0].content[0].image_url.url"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/a.png"}}]}]}"#, field: "messages[0].content[0].image_url.url"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}"#, field: "messages[0].content[0].file.file_id"),
        RefusalRow(input: #"{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]}"#, field: "messages[0].content[0].type"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]}"#, field: "messages[1].tool_calls[0].function.arguments"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}"#, field: "messages[1].tool_calls[0].function.arguments"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}]}"#, field: "messages[1].function_call"),
        RefusalRow(input: #"{"messages":[{"role":"tool","content":"x"}]}"#, field: "messages[0].tool_call_id"),
        RefusalRow(input: #"{"max_tokens":"10"}"#, field: "max_tokens"),
        RefusalRow(input: #"{"max_completion_tokens":0}"#, field: "max_completion_tokens"),
        RefusalRow(input: #"{"stop":5}"#, field: "stop"),
        RefusalRow(input: #"{"stop":["a",1]}"#, field: "stop[1]"),
        RefusalRow(input: #"{"stream":"yes"}"#, field: "stream"),
        RefusalRow(input: #"{"tools":[{"type":"custom","custom":{"name":"x"}}]}"#, field: "tools[0].type"),
        RefusalRow(input: #"{"tools":[{"type":"function","function":{"description":"no name"}}]}"#, field: "tools[0].function.name"),
        RefusalRow(input: #"{"tools":[\#(weatherTool)],"tool_choice":"sometimes"}"#, field: "tool_choice"),
        RefusalRow(input: #"{"tools":[\#(weatherTool)],"tool_choice":{"type":"allowed_tools"}}"#, field: "tool_choice.type"),
    ]

    @Test(arguments: refusals)
    func unsupportedOrMalformedFieldsAre400sNamingTheField(_ row: RefusalRow) {
        let input = ChatJSON.merged(Self.baseChat, row.input)
        do {
            _ = try ChatRequestToMessages.translate(ChatJSON.bytes(input))
            Issue.record("accepted \(row.input)")
        } catch {
            #expect(error.field == row.field)
            if let field = row.field { #expect(error.message.hasPrefix(field), "\(error.message)") }
            let envelope = error.openAIError
            ChatJSON.expect(
                envelope.body,
                equals: ["error": ["message": .string(error.message), "type": "invalid_request_error", "param": .string(row.field ?? ""), "code": nil]])
        }
    }

    @Test(arguments: ["not json", "[1,2]", "", #"{"model":"m","messages":[{"role":"user","content":"hi"}]"#])
    func aBodyThatIsNotAJSONObjectIsA400ForTheWholeBody(_ text: String) {
        do {
            _ = try ChatRequestToMessages.translate(ByteBuffer(string: text))
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.field == nil)
            #expect(error.message.hasPrefix("the request body"))
        }
    }
}
