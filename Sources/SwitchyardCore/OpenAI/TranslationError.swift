/// A body that cannot be put in the other API's terms: a request field that is missing, of the
/// wrong type or not supported (answered 400 `invalid_request_error`, `field` as OpenAI's
/// `param`), or an upstream answer that does not read as one (an unusable response).
public struct TranslationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The JSON path of the offending field (`messages[2].tool_calls[0].function.arguments`);
    /// nil when the whole body is at fault.
    public var field: String?
    /// Names the field and says what to send instead.
    public var message: String

    public init(field: String?, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { message }

    static func wrongType(_ field: String, expected: String, got value: JSONValue) -> TranslationError {
        TranslationError(field: field, message: "\(field): expected \(expected), got \(value.kindDescription)")
    }

    static func unsupported(_ field: String, _ why: String) -> TranslationError {
        TranslationError(field: field, message: "\(field): \(why)")
    }

    static func missing(_ field: String) -> TranslationError {
        TranslationError(field: field, message: "\(field): required")
    }

    static func notJSON(_ error: JSONValueParser.SyntaxError, what: String) -> TranslationError {
        TranslationError(field: nil, message: "\(what) is not valid JSON: \(error)")
    }

    /// As a 400 in OpenAI's error envelope.
    public var openAIError: OpenAIErrorEnvelope {
        OpenAIErrorEnvelope(message: message, type: "invalid_request_error", param: field, code: nil)
    }
}
