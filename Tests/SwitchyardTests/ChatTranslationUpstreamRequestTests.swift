import NIOCore
import Testing

@testable import SwitchyardCore

@Suite("ChatTranslation: Messages request → Chat Completions request (OpenAI upstream)")
struct ChatTranslationUpstreamRequestTests {
    static let baseMessages = #"{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"hi"}]}"#
    static let baseChat = #"{"model":"gpt-4o-mini","max_tokens":256,"messages":[{"role":"user","content":"hi"}]}"#
    static let weatherAnthropic = #"{"name":"weather","description":"Weather now","input_schema":{"type":"object","properties":{"city":{"type":"string"}}},"cache_control":{"type":"ephemeral"}}"#
    static let weatherChat = #"{"type":"function","function":{"name":"weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}"#

    static let rows: [TranslationRow] = [
        TranslationRow(name: "model → the upstream's model id, max_tokens → max_tokens, user string → user message", input: "{}", expected: "{}"),
        TranslationRow(
            name: "system string → a first system message", input: #"{"system":"Be brief."}"#,
            expected: #"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}"#),
        TranslationRow(
            name: "system text blocks → one system message joined with a blank line, cache_control dropped",
            input: #"{"system":[{"type":"text","text":"A"},{"type":"text","text":"B","cache_control":{"type":"ephemeral"}}]}"#,
            expected: #"{"messages":[{"role":"system","content":"A\n\nB"},{"role":"user","content":"hi"}]}"#),
        TranslationRow(
            name: "a single text block → string content",
            input: #"{"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":"hi"}]}"#),
        TranslationRow(
            name: "text and images → parts; base64 → data URL, url → url",
            input: #"{"messages":[{"role":"user","content":[{"type":"text","text":"see"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},{"type":"image","source":{"type":"url","url":"https://x.test/a.jpg"}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"text","text":"see"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}},{"type":"image_url","image_url":{"url":"https://x.test/a.jpg"}}]}]}"#),
        TranslationRow(
            name: "PDF document → file part with file_data; text document → text part",
            input: #"{"messages":[{"role":"user","content":[{"type":"document","title":"report","source":{"type":"base64","media_type":"application/pdf","data":"JVBER"}},{"type":"document","source":{"type":"text","media_type":"text/plain","data":"plain"}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":[{"type":"file","file":{"filename":"report.pdf","file_data":"data:application/pdf;base64,JVBER"}},{"type":"text","text":"plain"}]}]}"#),
        TranslationRow(
            name: "assistant text and tool_use → content and tool_calls with arguments as a JSON string; thinking dropped",
            input: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"s"},{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Oslo"}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Checking.","tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]}]}"#),
        TranslationRow(
            name: "assistant with only tool_use → content null",
            input: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"now","input":{}}]}]}"#,
            expected: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"now","arguments":"{}"}}]}]}"#),
        TranslationRow(
            name: "assistant string content → assistant message",
            input: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hello"}]}"#,
            expected: #"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hello"}]}"#),
        TranslationRow(
            name: "tool_result → tool messages before the turn's text; text blocks joined; is_error dropped",
            input: #"{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"12C"},{"type":"tool_result","tool_use_id":"t2","is_error":true,"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"type":"tool_result","tool_use_id":"t3"},{"type":"text","text":"thanks"}]}]}"#,
            expected: #"{"messages":[{"role":"tool","tool_call_id":"t1","content":"12C"},{"role":"tool","tool_call_id":"t2","content":"a\n\nb"},{"role":"tool","tool_call_id":"t3","content":""},{"role":"user","content":"thanks"}]}"#),
        TranslationRow(name: "stop_sequences → stop", input: #"{"stop_sequences":["END","STOP"]}"#, expected: #"{"stop":["END","STOP"]}"#),
        TranslationRow(name: "temperature → temperature", input: #"{"temperature":0.25}"#, expected: #"{"temperature":0.25}"#),
        TranslationRow(name: "top_p → top_p", input: #"{"top_p":0.5}"#, expected: #"{"top_p":0.5}"#),
        TranslationRow(
            name: "top_k, thinking, service_tier and unknown fields are dropped",
            input: #"{"top_k":40,"thinking":{"type":"enabled","budget_tokens":1024},"service_tier":"auto","anthropic_version":"x"}"#, expected: "{}"),
        TranslationRow(name: "metadata.user_id → user", input: #"{"metadata":{"user_id":"u-9"}}"#, expected: #"{"user":"u-9"}"#),
        TranslationRow(
            name: "tools → function tools; no input_schema → {type: object}",
            input: #"{"tools":[\#(weatherAnthropic),{"name":"now","type":"custom"}]}"#,
            expected: #"{"tools":[\#(weatherChat),{"type":"function","function":{"name":"now","parameters":{"type":"object"}}}]}"#),
        TranslationRow(
            name: "tool_choice auto → auto", input: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"auto"}}"#,
            expected: #"{"tools":[\#(weatherChat)],"tool_choice":"auto"}"#),
        TranslationRow(
            name: "tool_choice any → required", input: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"any"}}"#,
            expected: #"{"tools":[\#(weatherChat)],"tool_choice":"required"}"#),
        TranslationRow(
            name: "tool_choice none → none", input: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"none"}}"#,
            expected: #"{"tools":[\#(weatherChat)],"tool_choice":"none"}"#),
        TranslationRow(
            name: "tool_choice tool → function", input: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"tool","name":"weather"}}"#,
            expected: #"{"tools":[\#(weatherChat)],"tool_choice":{"type":"function","function":{"name":"weather"}}}"#),
        TranslationRow(
            name: "disable_parallel_tool_use → parallel_tool_calls false",
            input: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}"#,
            expected: #"{"tools":[\#(weatherChat)],"tool_choice":"auto","parallel_tool_calls":false}"#),
        TranslationRow(
            name: "stream → stream with stream_options.include_usage", input: #"{"stream":true}"#,
            expected: #"{"stream":true,"stream_options":{"include_usage":true}}"#),
        TranslationRow(name: "stream false → nothing", input: #"{"stream":false}"#, expected: "{}"),
    ]

    @Test(arguments: rows)
    func eachMessagesFieldTranslatesToItsChatField(_ row: TranslationRow) throws {
        let input = ChatJSON.merged(Self.baseMessages, row.input)
        let body = try MessagesRequestToChat.translate(ChatJSON.bytes(input), model: "gpt-4o-mini")
        ChatJSON.expect(body, equals: ChatJSON.merged(Self.baseChat, row.expected))
    }

    /// A Chat request taken to Messages and back keeps its meaning (the two tables are inverses
    /// where both APIs have the field).
    @Test func aChatRequestSurvivesTheRoundTrip() throws {
        let chat = #"{"model":"m","max_tokens":50,"stop":["X"],"temperature":0.5,"top_p":0.9,"user":"u","tools":[\#(Self.weatherChat)],"tool_choice":"required","parallel_tool_calls":false,"messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"12C"}]}"#
        let messages = try ChatRequestToMessages.translate(ByteBuffer(string: chat)).body
        let back = try MessagesRequestToChat.translate(messages, model: "m")
        ChatJSON.expect(back, equals: ChatJSON.parse(chat))
    }

    static let refusals: [RefusalRow] = [
        RefusalRow(input: #"{"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#, field: "tools[0].type"),
        RefusalRow(input: #"{"mcp_servers":[{"type":"url","url":"https://x","name":"x"}]}"#, field: "mcp_servers"),
        RefusalRow(input: #"{"container":"c-1"}"#, field: "container"),
        RefusalRow(input: #"{"output_format":{"type":"json_schema","schema":{}}}"#, field: "output_format"),
        RefusalRow(input: #"{"messages":null}"#, field: "messages"),
        RefusalRow(input: #"{"messages":[{"role":"system","content":"x"}]}"#, field: "messages[0].role"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":[{"type":"search_result","source":"s","title":"t","content":[]}]}]}"#, field: "messages[0].content[0].type"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"x"}}]}]}]}"#, field: "messages[0].content[0].content[0].type"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#, field: "messages[0].content[0].source.type"),
        RefusalRow(input: #"{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}"#, field: "messages[0].content[0].source.type"),
        RefusalRow(input: #"{"messages":[{"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}]}"#, field: "messages[0].content[0].type"),
        RefusalRow(input: #"{"system":[{"type":"image"}]}"#, field: "system[0].type"),
        RefusalRow(input: #"{"system":5}"#, field: "system"),
        RefusalRow(input: #"{"max_tokens":"many"}"#, field: "max_tokens"),
        RefusalRow(input: #"{"stop_sequences":[1]}"#, field: "stop_sequences[0]"),
        RefusalRow(input: #"{"tools":[\#(weatherAnthropic)],"tool_choice":{"type":"maybe"}}"#, field: "tool_choice.type"),
    ]

    @Test(arguments: refusals)
    func whatAnOpenAIUpstreamCannotTakeIsRefusedNamingTheField(_ row: RefusalRow) {
        do {
            _ = try MessagesRequestToChat.translate(ChatJSON.bytes(ChatJSON.merged(Self.baseMessages, row.input)), model: "gpt-4o-mini")
            Issue.record("accepted \(row.input)")
        } catch {
            #expect(error.field == row.field)
            if let field = row.field { #expect(error.message.hasPrefix(field), "\(error.message)") }
        }
    }
}
