/// A Chat Completions `messages` list as Anthropic's `system` and `messages`.
///
/// - `system` and `developer` messages, wherever they stand, go to the top-level `system`, their
///   texts (each string, each text part) joined with a blank line in order.
/// - `user` content: a string or `text`, `image_url` and `file` parts. An `image_url` of http(s)
///   becomes a `url` image source, a `data:` URL a `base64` one; a `file` part's `file_data`
///   (a PDF data URL) a `document` block. Audio and uploaded file ids have no Anthropic form: 400.
/// - `assistant` content (a string, `text` or `refusal` parts) becomes text blocks, its
///   `tool_calls` `tool_use` blocks with `input` parsed from `arguments` ("" reads as `{}`).
/// - `tool` messages become `tool_result` blocks in a user turn (`tool_call_id` → `tool_use_id`).
/// - Empty text is dropped (Anthropic refuses empty text blocks, and the SDKs send `content: ""`
///   beside tool calls); a message left with nothing is dropped.
/// - Consecutive turns of one role are merged into one, as Anthropic's alternation asks; a run of
///   tool messages thus becomes one user turn, followed by the next user message's blocks.
/// - The legacy `function` role and `function_call` are refused: the SDKs have sent `tools` for
///   years, and half a mapping would be worse than a clear 400.
struct ChatConversationToMessages {
    private(set) var systemTexts: [String] = []
    private var turns: [(role: String, blocks: [JSONValue])] = []

    /// The top-level `system` value, nil when no system text was given.
    var system: String? { systemTexts.isEmpty ? nil : systemTexts.joined(separator: "\n\n") }

    /// The `messages` value: `{"role":…,"content":[blocks]}` for each turn.
    var messages: [JSONValue] {
        turns.map { .object(JSONObject([("role", .string($0.role)), ("content", .array($0.blocks))])) }
    }

    static func convert(_ messages: [JSONFieldReader]) throws(TranslationError) -> ChatConversationToMessages {
        var conversation = ChatConversationToMessages()
        for message in messages {
            try conversation.add(message)
        }
        return conversation
    }

    private mutating func add(_ message: JSONFieldReader) throws(TranslationError) {
        let role = try message.requiredString("role")
        switch role {
        case "system", "developer":
            systemTexts.append(contentsOf: try Self.texts(of: message).filter { !$0.isEmpty })
        case "user":
            append("user", try Self.userBlocks(of: message))
        case "assistant":
            append("assistant", try Self.assistantBlocks(of: message))
        case "tool":
            append("user", [try Self.toolResult(of: message)])
        case "function":
            throw .unsupported(message.name("role"), "the legacy 'function' role is not supported; use 'tool' messages")
        default:
            throw .unsupported(message.name("role"), "unknown role '\(role)'")
        }
    }

    private mutating func append(_ role: String, _ blocks: [JSONValue]) {
        guard !blocks.isEmpty else { return }
        if let last = turns.indices.last, turns[last].role == role {
            turns[last].blocks.append(contentsOf: blocks)
        } else {
            turns.append((role, blocks))
        }
    }

    private static func textBlock(_ text: String) -> JSONValue {
        ["type": "text", "text": .string(text)]
    }

    /// The texts of a message whose content may only be text: a string, or `text` parts.
    private static func texts(of message: JSONFieldReader) throws(TranslationError) -> [String] {
        guard let content = message.value("content") else { return [] }
        if let text = content.stringValue { return [text] }
        guard content.arrayValue != nil else { throw .wrongType(message.name("content"), expected: "a string or an array of parts", got: content) }
        var texts: [String] = []
        for part in try message.objects("content") ?? [] {
            let type = try part.requiredString("type")
            guard type == "text" else { throw .unsupported(part.name("type"), "only 'text' parts are allowed in this message, got '\(type)'") }
            texts.append(try part.requiredString("text"))
        }
        return texts
    }

    private static func userBlocks(of message: JSONFieldReader) throws(TranslationError) -> [JSONValue] {
        guard let content = message.value("content") else { throw .missing(message.name("content")) }
        if let text = content.stringValue { return text.isEmpty ? [] : [textBlock(text)] }
        guard content.arrayValue != nil else { throw .wrongType(message.name("content"), expected: "a string or an array of parts", got: content) }
        var blocks: [JSONValue] = []
        for part in try message.objects("content") ?? [] {
            let type = try part.requiredString("type")
            switch type {
            case "text":
                let text = try part.requiredString("text")
                if !text.isEmpty { blocks.append(textBlock(text)) }
            case "image_url":
                blocks.append(try imageBlock(of: part))
            case "file":
                blocks.append(try documentBlock(of: part))
            case "input_audio":
                throw .unsupported(part.name("type"), "audio input is not supported")
            default:
                throw .unsupported(part.name("type"), "unknown content part type '\(type)'")
            }
        }
        return blocks
    }

    /// `{"type":"image_url","image_url":{"url":…,"detail":…}}`; `detail` has no Anthropic
    /// counterpart and is ignored.
    private static func imageBlock(of part: JSONFieldReader) throws(TranslationError) -> JSONValue {
        guard let image = try part.object("image_url") else { throw .missing(part.name("image_url")) }
        let url = try image.requiredString("url")
        let field = image.name("url")
        if url.hasPrefix("data:") {
            guard let data = DataURL(url) else { throw .unsupported(field, "a data URL must have the form data:<media type>;base64,<data>") }
            guard DataURL.imageMediaTypes.contains(data.mediaType) else {
                throw .unsupported(field, "image type '\(data.mediaType)' is not supported; use image/jpeg, image/png, image/gif or image/webp")
            }
            return ["type": "image", "source": ["type": "base64", "media_type": .string(data.mediaType), "data": .string(data.base64)]]
        }
        let lowered = url.lowercased()
        guard lowered.hasPrefix("https://") || lowered.hasPrefix("http://") else {
            throw .unsupported(field, "expected an http(s) URL or a base64 data URL")
        }
        return ["type": "image", "source": ["type": "url", "url": .string(url)]]
    }

    /// `{"type":"file","file":{"file_data":"data:application/pdf;base64,…","filename":…}}`.
    private static func documentBlock(of part: JSONFieldReader) throws(TranslationError) -> JSONValue {
        guard let file = try part.object("file") else { throw .missing(part.name("file")) }
        guard let fileData = try file.string("file_data") else {
            if file.has("file_id") { throw .unsupported(file.name("file_id"), "uploaded file ids are not supported; send file_data") }
            throw .missing(file.name("file_data"))
        }
        guard let data = DataURL(fileData), data.mediaType == "application/pdf" else {
            throw .unsupported(file.name("file_data"), "only base64 PDF data URLs (data:application/pdf;base64,…) are supported")
        }
        return ["type": "document", "source": ["type": "base64", "media_type": "application/pdf", "data": .string(data.base64)]]
    }

    private static func assistantBlocks(of message: JSONFieldReader) throws(TranslationError) -> [JSONValue] {
        if message.has("function_call") {
            throw .unsupported(message.name("function_call"), "the legacy function_call is not supported; use tool_calls")
        }
        var blocks: [JSONValue] = []
        if let content = message.value("content") {
            if let text = content.stringValue {
                if !text.isEmpty { blocks.append(textBlock(text)) }
            } else if content.arrayValue != nil {
                for part in try message.objects("content") ?? [] {
                    let type = try part.requiredString("type")
                    guard type == "text" || type == "refusal" else {
                        throw .unsupported(part.name("type"), "assistant content parts must be 'text' or 'refusal', got '\(type)'")
                    }
                    let text = try part.requiredString(type)
                    if !text.isEmpty { blocks.append(textBlock(text)) }
                }
            } else {
                throw .wrongType(message.name("content"), expected: "a string, an array of parts or null", got: content)
            }
        }
        for call in try message.objects("tool_calls") ?? [] {
            blocks.append(try toolUse(of: call))
        }
        return blocks
    }

    private static func toolUse(of call: JSONFieldReader) throws(TranslationError) -> JSONValue {
        let id = try call.requiredString("id")
        if let type = try call.string("type"), type != "function" {
            throw .unsupported(call.name("type"), "only 'function' tool calls are supported, got '\(type)'")
        }
        guard let function = try call.object("function") else { throw .missing(call.name("function")) }
        let name = try function.requiredString("name")
        let input = try ToolCallArguments.parse(try function.string("arguments") ?? "", field: function.name("arguments"))
        return ["type": "tool_use", "id": .string(id), "name": .string(name), "input": input]
    }

    /// A string stays a string; text parts become text blocks.
    private static func toolResult(of message: JSONFieldReader) throws(TranslationError) -> JSONValue {
        let id = try message.requiredString("tool_call_id")
        var result: JSONObject = JSONObject([("type", "tool_result"), ("tool_use_id", .string(id))])
        if let content = message.value("content"), content.arrayValue != nil {
            let blocks = try texts(of: message).filter { !$0.isEmpty }.map(textBlock)
            if !blocks.isEmpty { result["content"] = .array(blocks) }
        } else if let text = try texts(of: message).first, !text.isEmpty {
            result["content"] = .string(text)
        }
        return .object(result)
    }
}
