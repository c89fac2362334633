import NIOCore
import NIOHTTP1
import Testing

@testable import SwitchyardCore

@Suite("ChatTranslation: answers and errors, both directions")
struct ChatTranslationResponseTests {
    static let baseMessage = #"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":3}}"#
    static let baseCompletion = #"{"id":"chatcmpl-msg_01","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}"#

    static func completion(message: String = #"{"role":"assistant","content":"Hi."}"#, finish: String = #""stop""#, usage: String? = nil) -> String {
        let usage = usage ?? #"{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}"#
        return #"{"choices":[{"index":0,"message":\#(message),"logprobs":null,"finish_reason":\#(finish)}],"usage":\#(usage)}"#
    }

    static let messagesToChatRows: [TranslationRow] = [
        TranslationRow(name: "id, object, created, model, text content, end_turn → stop, usage", input: "{}", expected: "{}"),
        TranslationRow(
            name: "text blocks joined; tool_use → tool_calls with arguments as JSON text; thinking dropped",
            input: #"{"content":[{"type":"thinking","thinking":"x","signature":"s"},{"type":"text","text":"Let me "},{"type":"text","text":"check."},{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Oslo"}}],"stop_reason":"tool_use"}"#,
            expected: completion(message: #"{"role":"assistant","content":"Let me check.","tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]}"#, finish: #""tool_calls""#)),
        TranslationRow(
            name: "only tool_use → content null",
            input: #"{"content":[{"type":"tool_use","id":"t","name":"now","input":{}}],"stop_reason":"tool_use"}"#,
            expected: completion(message: #"{"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"now","arguments":"{}"}}]}"#, finish: #""tool_calls""#)),
        TranslationRow(name: "stop_sequence → stop", input: #"{"stop_reason":"stop_sequence"}"#, expected: "{}"),
        TranslationRow(name: "max_tokens → length", input: #"{"stop_reason":"max_tokens"}"#, expected: completion(finish: #""length""#)),
        TranslationRow(name: "refusal → content_filter", input: #"{"stop_reason":"refusal"}"#, expected: completion(finish: #""content_filter""#)),
        TranslationRow(name: "pause_turn → stop", input: #"{"stop_reason":"pause_turn"}"#, expected: "{}"),
        TranslationRow(
            name: "usage: prompt_tokens adds cache reads and writes, cached_tokens reported",
            input: #"{"usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":5,"output_tokens":3}}"#,
            expected: completion(usage: #"{"prompt_tokens":115,"completion_tokens":3,"total_tokens":118,"prompt_tokens_details":{"cached_tokens":100}}"#)),
    ]

    @Test(arguments: messagesToChatRows)
    func eachMessagesAnswerFieldBecomesItsChatCompletionField(_ row: TranslationRow) throws {
        let body = try MessagesResponseToChat.translate(ChatJSON.bytes(ChatJSON.merged(Self.baseMessage, row.input)), model: "gpt-4o", created: 1_700_000_000)
        ChatJSON.expect(body, equals: ChatJSON.merged(Self.baseCompletion, row.expected))
    }

    @Test func aMessagesAnswerThatIsNotAMessageIsAnError() {
        #expect(throws: TranslationError.self) {
            try MessagesResponseToChat.translate(ByteBuffer(string: #"{"type":"error","error":{"type":"api_error","message":"x"}}"#), model: "m", created: 0)
        }
    }

    static let baseChat = #"{"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}"#
    static let baseAnthropic = #"{"id":"msg_chatcmpl-9","type":"message","role":"assistant","model":"gpt-4o-2024-08-06","content":[{"type":"text","text":"Hi."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":4}}"#

    static func chatChoice(_ message: String, finish: String) -> String {
        #"{"choices":[{"index":0,"message":\#(message),"finish_reason":\#(finish)}]}"#
    }

    static let chatToMessagesRows: [TranslationRow] = [
        TranslationRow(name: "id msg_ + id, type, role, model, text, stop → end_turn, usage", input: "{}", expected: "{}"),
        TranslationRow(
            name: "tool_calls → tool_use with parsed input, empty arguments → {}, tool_calls → tool_use",
            input: chatChoice(#"{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}},{"id":"call_2","type":"function","function":{"name":"now","arguments":""}}]}"#, finish: #""tool_calls""#),
            expected: #"{"content":[{"type":"tool_use","id":"call_1","name":"weather","input":{"city":"Oslo"}},{"type":"tool_use","id":"call_2","name":"now","input":{}}],"stop_reason":"tool_use"}"#),
        TranslationRow(
            name: "text and a tool call → text then tool_use",
            input: chatChoice(#"{"role":"assistant","content":"Checking.","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}"#, finish: #""tool_calls""#),
            expected: #"{"content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"c","name":"f","input":{}}],"stop_reason":"tool_use"}"#),
        TranslationRow(name: "length → max_tokens", input: chatChoice(#"{"role":"assistant","content":"Hi."}"#, finish: #""length""#), expected: #"{"stop_reason":"max_tokens"}"#),
        TranslationRow(name: "function_call → tool_use", input: chatChoice(#"{"role":"assistant","content":"Hi."}"#, finish: #""function_call""#), expected: #"{"stop_reason":"tool_use"}"#),
        TranslationRow(name: "content_filter → refusal", input: chatChoice(#"{"role":"assistant","content":"Hi."}"#, finish: #""content_filter""#), expected: #"{"stop_reason":"refusal"}"#),
        TranslationRow(name: "null finish_reason → end_turn", input: chatChoice(#"{"role":"assistant","content":"Hi."}"#, finish: "null"), expected: "{}"),
        TranslationRow(
            name: "refusal text → text block", input: chatChoice(#"{"role":"assistant","content":null,"refusal":"I can't."}"#, finish: #""stop""#),
            expected: #"{"content":[{"type":"text","text":"I can't."}]}"#),
        TranslationRow(
            name: "empty content → no block", input: chatChoice(#"{"role":"assistant","content":""}"#, finish: #""stop""#), expected: #"{"content":[]}"#),
        TranslationRow(name: "no usage → zeros", input: #"{"usage":null}"#, expected: #"{"usage":{"input_tokens":0,"output_tokens":0}}"#),
    ]

    @Test(arguments: chatToMessagesRows)
    func eachChatCompletionFieldBecomesItsMessagesAnswerField(_ row: TranslationRow) throws {
        let body = try ChatResponseToMessages.translate(ChatJSON.bytes(ChatJSON.merged(Self.baseChat, row.input)))
        ChatJSON.expect(body, equals: ChatJSON.merged(Self.baseAnthropic, row.expected))
    }

    @Test(arguments: [
        (#"{"choices":[]}"#, "choices"),
        (#"{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}}]}"#, "choices[0].message.tool_calls[0].function.arguments"),
    ])
    func aChatCompletionWithNoUsableChoiceIsAnUnusableAnswer(_ body: String, field: String) {
        do {
            _ = try ChatResponseToMessages.translate(ByteBuffer(string: body))
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.field == field)
        }
    }

    struct ErrorRow: Sendable, CustomTestStringConvertible {
        var anthropicType: String
        var message: String = "boom"
        var status: Int
        var type: String
        var code: String?
        var testDescription: String { "\(anthropicType) → \(type)" }
    }

    static let errorRows: [ErrorRow] = [
        ErrorRow(anthropicType: "invalid_request_error", status: 400, type: "invalid_request_error"),
        ErrorRow(anthropicType: "authentication_error", status: 401, type: "authentication_error", code: "invalid_api_key"),
        ErrorRow(anthropicType: "permission_error", status: 403, type: "permission_error"),
        ErrorRow(anthropicType: "not_found_error", message: "model: claude-x not found", status: 404, type: "not_found_error", code: "model_not_found"),
        ErrorRow(anthropicType: "not_found_error", message: "batch not found", status: 404, type: "not_found_error"),
        ErrorRow(anthropicType: "request_too_large", status: 413, type: "invalid_request_error"),
        ErrorRow(anthropicType: "rate_limit_error", status: 429, type: "rate_limit_error", code: "rate_limit_exceeded"),
        ErrorRow(anthropicType: "billing_error", status: 402, type: "insufficient_quota", code: "insufficient_quota"),
        ErrorRow(anthropicType: "api_error", status: 500, type: "server_error"),
        ErrorRow(anthropicType: "overloaded_error", status: 529, type: "server_error"),
        ErrorRow(anthropicType: "timeout_error", status: 504, type: "timeout"),
        ErrorRow(anthropicType: "brand_new_error", status: 418, type: "invalid_request_error"),
        ErrorRow(anthropicType: "brand_new_error", status: 502, type: "server_error"),
    ]

    @Test(arguments: errorRows)
    func anAnthropicErrorBodyBecomesOpenAIsEnvelope(_ row: ErrorRow) {
        let anthropic = ByteBuffer(string: #"{"type":"error","error":{"type":"\#(row.anthropicType)","message":"\#(row.message)"},"request_id":"req_1"}"#)
        let envelope = OpenAIErrorEnvelope(anthropicBody: anthropic, status: row.status)
        let code: JSONValue = row.code.map(JSONValue.string) ?? .null
        ChatJSON.expect(envelope.body, equals: ["error": ["message": .string(row.message), "type": .string(row.type), "param": nil, "code": code]])
    }

    @Test func aBodyThatIsNotAnthropicsEnvelopeIsDescribedByItsStatus() {
        let envelope = OpenAIErrorEnvelope(anthropicBody: ByteBuffer(string: "<html>502 Bad Gateway</html>"), status: 502)
        #expect(envelope == OpenAIErrorEnvelope(message: "upstream answered with status 502", type: "server_error"))
    }

    struct UpstreamRow: Sendable, CustomTestStringConvertible {
        var status: Int
        var body: String
        var expectedStatus: Int
        var type: String
        var row: OutcomeRow
        var quota = false
        var testDescription: String { "\(status) \(body)" }
    }

    static let upstreamRows: [UpstreamRow] = [
        UpstreamRow(status: 429, body: #"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#, expectedStatus: 429, type: "rate_limit_error", row: .quotaExhausted, quota: true),
        UpstreamRow(status: 429, body: #"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#, expectedStatus: 429, type: "rate_limit_error", row: .rateLimited),
        UpstreamRow(status: 500, body: #"{"error":{"message":"oops","type":"server_error","param":null,"code":null}}"#, expectedStatus: 500, type: "api_error", row: .serverError),
        UpstreamRow(status: 502, body: "<html>bad gateway</html>", expectedStatus: 502, type: "api_error", row: .serverError),
        UpstreamRow(status: 503, body: #"{"error":{"message":"overloaded","type":"server_error"}}"#, expectedStatus: 503, type: "overloaded_error", row: .overloaded),
        UpstreamRow(status: 504, body: "", expectedStatus: 504, type: "timeout_error", row: .serverError),
        UpstreamRow(status: 400, body: #"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#, expectedStatus: 400, type: "invalid_request_error", row: .clientError),
        UpstreamRow(status: 413, body: #"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens","type":"BadRequestError","code":413}"#, expectedStatus: 400, type: "invalid_request_error", row: .clientError),
        UpstreamRow(status: 400, body: #"{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error"}}"#, expectedStatus: 400, type: "invalid_request_error", row: .clientError),
        UpstreamRow(status: 422, body: #"{"detail":"validation"}"#, expectedStatus: 422, type: "invalid_request_error", row: .clientError),
        UpstreamRow(status: 401, body: #"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#, expectedStatus: 401, type: "authentication_error", row: .clientError),
        UpstreamRow(status: 403, body: #"{"error":"forbidden"}"#, expectedStatus: 403, type: "permission_error", row: .clientError),
        UpstreamRow(status: 404, body: #"{"error":{"message":"The model `gpt-9` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#, expectedStatus: 404, type: "not_found_error", row: .clientError),
        UpstreamRow(status: 408, body: "", expectedStatus: 408, type: "api_error", row: .retrySameModel),
    ]

    @Test(arguments: upstreamRows)
    func anOpenAIUpstreamErrorIsReadIntoItsOutcomeRow(_ row: UpstreamRow) {
        let read = OpenAIUpstreamErrors.read(status: row.status, headers: HTTPHeaders(), body: ByteBuffer(string: row.body))
        #expect(read.error.status == row.expectedStatus)
        #expect(read.error.type == row.type)
        #expect(read.error.row == row.row)
        #expect(read.quotaExhausted == row.quota)
        #expect(!read.error.bodyIsEnvelope)
    }

    @Test func quotaExhaustionMovesOnAtOnceAndSkipsTheModelLongerThanARateLimit() {
        let read = OpenAIUpstreamErrors.read(
            status: 429, headers: HTTPHeaders(), body: ByteBuffer(string: #"{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"q"}}"#))
        let verdict = AttemptVerdict.classify(.response(status: 429, errorType: read.error.type, retryAfter: nil, shouldRetry: nil, row: read.error.row))
        // The next model at once, never this one again within the request, and skipped for the
        // longest rate-limit period (a plain 429's default is 10 s).
        #expect(verdict.next == .nextModelOnly)
        #expect(verdict.breaker == .neutral)
        #expect(read.quotaExhausted)
        #expect(verdict.rateLimitFor == OpenAIUpstreamErrors.quotaSkip)
        #expect(OpenAIUpstreamErrors.quotaSkip > AttemptVerdict.defaultRateLimit)
        #expect(read.error.platformCode == "insufficient_quota")
    }
}
