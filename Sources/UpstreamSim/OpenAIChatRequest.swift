import Foundation
import NIOCore

/// What the simulator reads of a Chat Completions request: enough to answer it in kind, and the
/// mistakes OpenAI refuses with a 400 that a translating router could make (a tool result with no
/// tool call before it, a tool call left unanswered, an image that is not an image URL).
struct OpenAIChatRequest {
    /// Why OpenAI would refuse a request: its 400's message, `param` and `code`.
    struct Problem: Error {
        var message: String
        var param: String? = nil
        var code: String? = nil
    }

    /// The tool the answer calls, and the arguments it calls it with.
    struct ToolCall {
        var name: String
        var arguments: String
    }

    var model: String
    var stream: Bool
    var includeUsage: Bool
    /// Set when the request offers tools and its last message is the user's.
    var toolCall: ToolCall?
    /// The content of the last message, when it is a tool result.
    var toolResult: String?
    /// `image_url` parts across all messages.
    var images: Int
    /// A rough count: a token per four characters of text, 85 per image.
    var promptTokens: Int

    /// Reads a request body; on Azure's path the deployment is the model.
    static func read(_ body: ByteBuffer, deployment: String?) throws(Problem) -> OpenAIChatRequest {
        guard let json = SimJSON.object(body) else {
            throw Problem(message: "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.")
        }
        guard let model = deployment ?? json["model"] as? String, !model.isEmpty else {
            throw Problem(message: "you must provide a model parameter")
        }
        guard let messages = json["messages"] as? [[String: Any]] else {
            throw Problem(message: "Missing required parameter: 'messages'.", param: "messages", code: "missing_required_parameter")
        }
        guard !messages.isEmpty else {
            let message = "Invalid 'messages': empty array. Expected an array with minimum length 1."
            throw Problem(message: message, param: "messages", code: "empty_array")
        }
        let stream = json["stream"] as? Bool ?? false
        let streamOptions = json["stream_options"] as? [String: Any]
        if streamOptions != nil, !stream {
            throw Problem(message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param: "stream_options")
        }
        let content = try readMessages(messages)
        let lastRole = messages.last?["role"] as? String
        let tool = try chosenTool(json, lastRole: lastRole)
        return OpenAIChatRequest(
            model: model, stream: stream, includeUsage: streamOptions?["include_usage"] as? Bool ?? false,
            toolCall: tool.map { ToolCall(name: $0.name, arguments: arguments(for: $0.parameters)) },
            toolResult: lastRole == "tool" ? content.lastText : nil, images: content.images,
            promptTokens: max(1, content.characters / 4 + 85 * content.images)
        )
    }

    /// Walks the conversation: roles, content parts, and that tool results answer the tool calls
    /// just before them, each of them.
    private static func readMessages(_ messages: [[String: Any]]) throws(Problem) -> (lastText: String, images: Int, characters: Int) {
        var images = 0
        var characters = 0
        var lastText = ""
        var unanswered: [String] = []
        for (index, message) in messages.enumerated() {
            let role = message["role"] as? String ?? ""
            guard ["system", "developer", "user", "assistant", "tool", "function"].contains(role) else {
                throw Problem(
                    message: "Invalid value: '\(role)'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function', and 'developer'.",
                    param: "messages[\(index)].role", code: "invalid_value"
                )
            }
            if role == "tool" {
                guard let id = message["tool_call_id"] as? String else {
                    throw Problem(
                        message: "Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'.",
                        param: "messages.[\(index)].tool_call_id"
                    )
                }
                guard let answered = unanswered.firstIndex(of: id) else {
                    throw Problem(
                        message: "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                        param: "messages.[\(index)].role"
                    )
                }
                unanswered.remove(at: answered)
            } else {
                try requireAnswered(unanswered, before: index)
                let calls = message["tool_calls"] as? [[String: Any]] ?? []
                unanswered = role == "assistant" ? calls.compactMap { $0["id"] as? String } : []
            }
            let parts = try readContent(message["content"], role: role, at: index)
            images += parts.images
            characters += parts.text.count
            lastText = parts.text
        }
        try requireAnswered(unanswered, before: messages.count)
        return (lastText, images, characters)
    }

    private static func requireAnswered(_ unanswered: [String], before index: Int) throws(Problem) {
        guard unanswered.isEmpty else {
            throw Problem(
                message: "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. "
                    + "The following tool_call_ids did not have response messages: \(unanswered.joined(separator: ", "))",
                param: "messages.[\(index)].role"
            )
        }
    }

    /// A message's text and images: its content is a string, an array of parts, or absent.
    private static func readContent(_ content: Any?, role: String, at index: Int) throws(Problem) -> (text: String, images: Int) {
        if let text = content as? String { return (text, 0) }
        guard let parts = content as? [[String: Any]] else { return ("", 0) }
        var text = ""
        var images = 0
        for (partIndex, part) in parts.enumerated() {
            let location = "messages[\(index)].content[\(partIndex)]"
            switch part["type"] as? String {
            case "text", "refusal":
                text += part["text"] as? String ?? part["refusal"] as? String ?? ""
            case "image_url":
                guard role == "user" else {
                    throw Problem(
                        message: "Image URLs are only allowed for messages with role 'user', "
                            + "but this message with role '\(role)' contains an image URL.",
                        param: "\(location).type", code: "invalid_value"
                    )
                }
                let url = (part["image_url"] as? [String: Any])?["url"] as? String ?? ""
                guard isImageURL(url) else {
                    throw Problem(
                        message: "Invalid '\(location).image_url.url'. Expected a URL or a base64-encoded data URL with an image MIME type "
                            + "(e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU=').",
                        param: "\(location).image_url.url", code: "invalid_value"
                    )
                }
                images += 1
            case "input_audio", "file", "audio":
                break
            case let other:
                throw Problem(
                    message: "Invalid value: '\(other ?? "")'. "
                        + "Supported values are: 'text', 'image_url', 'input_audio', 'refusal', 'audio', and 'file'.",
                    param: "\(location).type", code: "invalid_value"
                )
            }
        }
        return (text, images)
    }

    /// An http(s) URL, or a data URL of a PNG, JPEG, GIF or WebP whose base64 decodes.
    static func isImageURL(_ url: String) -> Bool {
        if url.hasPrefix("https://") || url.hasPrefix("http://") { return url.count > 8 }
        for type in ["png", "jpeg", "jpg", "gif", "webp"] {
            let prefix = "data:image/\(type);base64,"
            if url.hasPrefix(prefix), let data = Data(base64Encoded: String(url.dropFirst(prefix.count))), !data.isEmpty { return true }
        }
        return false
    }

    /// The tool to call: none unless the request offers tools and the user spoke last; then the
    /// one `tool_choice` names, else the first (`tool_choice: "none"`: none).
    private static func chosenTool(_ json: [String: Any], lastRole: String?) throws(Problem) -> (name: String, parameters: [String: Any])? {
        let tools = json["tools"] as? [[String: Any]] ?? []
        var functions: [(name: String, parameters: [String: Any])] = []
        for (index, tool) in tools.enumerated() {
            guard tool["type"] as? String == "function", let function = tool["function"] as? [String: Any],
                let name = function["name"] as? String, !name.isEmpty
            else {
                let param = "tools[\(index)].function.name"
                throw Problem(message: "Missing required parameter: '\(param)'.", param: param, code: "missing_required_parameter")
            }
            functions.append((name, function["parameters"] as? [String: Any] ?? [:]))
        }
        let choice = json["tool_choice"]
        if let choice, !(choice is NSNull), functions.isEmpty {
            throw Problem(message: "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", param: "tool_choice")
        }
        guard lastRole == "user", let first = functions.first, choice as? String != "none" else { return nil }
        guard let named = ((choice as? [String: Any])?["function"] as? [String: Any])?["name"] as? String else { return first }
        guard let function = functions.first(where: { $0.name == named }) else {
            let message = "Invalid value for 'tool_choice': no function named '\(named)' was specified in the 'tools' parameter."
            throw Problem(message: message, param: "tool_choice")
        }
        return function
    }

    /// Arguments that fit the tool's JSON schema: each required property (or, with none
    /// required, each property) with a value of its type, so a client can decode them.
    static func arguments(for parameters: [String: Any]) -> String {
        let properties = parameters["properties"] as? [String: Any] ?? [:]
        let required = parameters["required"] as? [String] ?? []
        var arguments: [String: Any] = [:]
        for name in required.isEmpty ? properties.keys.sorted() : required {
            switch (properties[name] as? [String: Any])?["type"] as? String {
            case "integer", "number": arguments[name] = 1
            case "boolean": arguments[name] = true
            case "array": arguments[name] = [Any]()
            case "object": arguments[name] = [String: Any]()
            default: arguments[name] = "sim"
            }
        }
        return SimJSON.string(arguments)
    }
}
