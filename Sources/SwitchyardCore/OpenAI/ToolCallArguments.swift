/// A tool call's `arguments`, which OpenAI carries as JSON text, as the object Anthropic's
/// `tool_use.input` is.
enum ToolCallArguments {
    /// Empty text (a tool without parameters, as some servers send it) reads as `{}`; anything
    /// but a JSON object fails, naming `field`.
    static func parse(_ arguments: String, field: String) throws(TranslationError) -> JSONValue {
        guard !arguments.allSatisfy(\.isWhitespace) else { return .object(JSONObject()) }
        guard let parsed = try? JSONValueParser.parse(arguments), parsed.objectValue != nil else {
            throw .unsupported(field, "tool call arguments must be a JSON object encoded as a string")
        }
        return parsed
    }
}
