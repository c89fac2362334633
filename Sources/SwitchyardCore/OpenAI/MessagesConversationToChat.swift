/// Anthropic's `system` and `messages` as a Chat Completions `messages` list.
///
/// - `system` (a string or text blocks, joined with a blank line) → a first `system` message.
/// - A user turn's `tool_result` blocks → `tool` messages (`tool_use_id` → `tool_call_id`; text
///   content joined with a blank line), placed before the turn's other content, as OpenAI wants
///   tool answers right after the assistant's calls. `is_error` has no OpenAI form and is dropped;
///   an image inside a tool result cannot be carried by a `tool` message: 400.
/// - Other user content → one `user` message: a string when it is a single text, else parts
///   (`text`; `image` → `image_url` with the URL or a `data:` URL; a base64 PDF `document` →
///   a `file` part with `file_data`; a plain-text `document` → a `text` part).
/// - An assistant turn → one `assistant` message: its text blocks joined with nothing between
///   (as a streamed answer's deltas are), null when it only calls tools; `tool_use` →
///   `tool_calls` with `arguments` = `input` as a JSON string. Thinking blocks are dropped (their
///   signatures mean nothing elsewhere). A last assistant turn (a prefill) is sent as an ordinary
///   assistant message: OpenAI has no way to continue it.
/// - `cache_control` marks are dropped wherever they are.
/// - Server tools' blocks (`server_tool_use`, `web_search_tool_result`, ...), search results and
///   other block types have no Chat Completions form: 400 naming the block's `type`.
enum MessagesConversationToChat {
    static func convert(system: JSONValue?, messages: [JSONFieldReader]) throws(TranslationError) -> [JSONValue] {
        var out: [JSONValue] = []
        if let system, let text = try systemText(system), !text.isEmpty {
            out.append(["role": "system", "content": .string(text)])
        }
        for message in messages {
            let role = try message.requiredString("role")
            switch role {
            case "user": out.append(contentsOf: try userMessages(message))
            case "assistant": out.append(contentsOf: try assistantMessage(message).map { [$0] } ?? [])
            default: throw .unsupported(message.name("role"), "expected 'user' or 'assistant', got '\(role)'")
            }
        }
        return out
    }

    private static func systemText(_ system: JSONValue) throws(TranslationError) -> String? {
        if let text = system.stringValue { return text }
        guard let blocks = system.arrayValue else { throw .wrongType("system", expected: "a string or an array of text blocks", got: system) }
        var texts: [String] = []
        for (index, element) in blocks.enumerated() {
            let block = try JSONFieldReader(element, path: "system[\(index)]")
            let type = try block.requiredString("type")
            guard type == "text" else { throw .unsupported(block.name("type"), "only text blocks are allowed in system, got '\(type)'") }
            texts.append(try block.requiredString("text"))
        }
        return texts.joined(separator: "\n\n")
    }

    private static func userMessages(_ message: JSONFieldReader) throws(TranslationError) -> [JSONValue] {
        guard let content = message.value("content") else { throw .missing(message.name("content")) }
        if let text = content.stringValue { return [["role": "user", "content": .string(text)]] }
        guard content.arrayValue != nil else { throw .wrongType(message.name("content"), expected: "a string or an array of blocks", got: content) }
        var toolMessages: [JSONValue] = []
        var parts: [JSONValue] = []
        for block in try message.objects("content") ?? [] {
            let type = try block.requiredString("type")
            switch type {
            case "text":
                parts.append(["type": "text", "text": .string(try block.requiredString("text"))])
            case "image":
                parts.append(["type": "image_url", "image_url": ["url": .string(try imageURL(block))]])
            case "document":
                parts.append(try documentPart(block))
            case "tool_result":
                toolMessages.append(try toolMessage(block))
            default:
                throw .unsupported(block.name("type"), "'\(type)' blocks have no Chat Completions form")
            }
        }
        var out = toolMessages
        if parts.count == 1, parts[0].objectValue?["type"] == "text", let text = parts[0].objectValue?["text"] {
            out.append(["role": "user", "content": text])
        } else if !parts.isEmpty {
            out.append(["role": "user", "content": .array(parts)])
        }
        return out
    }

    private static func imageURL(_ block: JSONFieldReader) throws(TranslationError) -> String {
        guard let source = try block.object("source") else { throw .missing(block.name("source")) }
        let type = try source.requiredString("type")
        switch type {
        case "base64": return DataURL(mediaType: try source.requiredString("media_type"), base64: try source.requiredString("data")).url
        case "url": return try source.requiredString("url")
        default: throw .unsupported(source.name("type"), "image sources of type '\(type)' are not supported; use base64 or url")
        }
    }

    private static func documentPart(_ block: JSONFieldReader) throws(TranslationError) -> JSONValue {
        guard let source = try block.object("source") else { throw .missing(block.name("source")) }
        let type = try source.requiredString("type")
        switch type {
        case "base64":
            let mediaType = try source.requiredString("media_type")
            guard mediaType == "application/pdf" else { throw .unsupported(source.name("media_type"), "only application/pdf documents are supported") }
            let data = DataURL(mediaType: mediaType, base64: try source.requiredString("data"))
            let title = try block.string("title") ?? "document"
            return ["type": "file", "file": ["filename": .string(title.hasSuffix(".pdf") ? title : title + ".pdf"), "file_data": .string(data.url)]]
        case "text":
            return ["type": "text", "text": .string(try source.requiredString("data"))]
        default:
            throw .unsupported(source.name("type"), "document sources of type '\(type)' are not supported; use base64 (PDF) or text")
        }
    }

    private static func toolMessage(_ block: JSONFieldReader) throws(TranslationError) -> JSONValue {
        let id = try block.requiredString("tool_use_id")
        var text = ""
        if let content = block.value("content") {
            if let string = content.stringValue {
                text = string
            } else if content.arrayValue != nil {
                var texts: [String] = []
                for inner in try block.objects("content") ?? [] {
                    let type = try inner.requiredString("type")
                    guard type == "text" else {
                        throw .unsupported(inner.name("type"), "only text can be returned by a tool to an OpenAI model, got '\(type)'")
                    }
                    texts.append(try inner.requiredString("text"))
                }
                text = texts.joined(separator: "\n\n")
            } else {
                throw .wrongType(block.name("content"), expected: "a string or an array of blocks", got: content)
            }
        }
        return ["role": "tool", "tool_call_id": .string(id), "content": .string(text)]
    }

    private static func assistantMessage(_ message: JSONFieldReader) throws(TranslationError) -> JSONValue? {
        guard let content = message.value("content") else { throw .missing(message.name("content")) }
        if let text = content.stringValue { return ["role": "assistant", "content": .string(text)] }
        guard content.arrayValue != nil else { throw .wrongType(message.name("content"), expected: "a string or an array of blocks", got: content) }
        var text: String?
        var calls: [JSONValue] = []
        for block in try message.objects("content") ?? [] {
            let type = try block.requiredString("type")
            switch type {
            case "text":
                text = (text ?? "") + (try block.requiredString("text"))
            case "tool_use":
                let input = block.value("input") ?? .object(JSONObject())
                calls.append([
                    "id": .string(try block.requiredString("id")), "type": "function",
                    "function": ["name": .string(try block.requiredString("name")), "arguments": .string(input.encodedString)],
                ])
            case "thinking", "redacted_thinking":
                continue
            default:
                throw .unsupported(block.name("type"), "'\(type)' blocks have no Chat Completions form")
            }
        }
        guard text != nil || !calls.isEmpty else { return nil }
        var out = JSONObject([("role", "assistant"), ("content", text.map(JSONValue.string) ?? .null)])
        if !calls.isEmpty { out["tool_calls"] = .array(calls) }
        return .object(out)
    }
}
