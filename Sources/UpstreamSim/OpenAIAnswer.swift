import Foundation

/// A Chat Completions answer: a `chat.completion` object, or `chat.completion.chunk`s ending in
/// `[DONE]`. It says what a test needs to see arrive: a tool call when the request offers tools
/// and the user spoke last, the tool result quoted when a tool spoke last, how many images came.
struct OpenAIAnswer: SimAnswer {
    let request: OpenAIChatRequest
    let id = "chatcmpl-sim\(UUID().uuidString.prefix(12).lowercased())"
    let callID = "call_sim\(UUID().uuidString.prefix(12).lowercased())"
    let created = Int(Date().timeIntervalSince1970)

    func json(deltas: Int) -> String {
        let count = max(1, deltas)
        var message: [String: Any] = ["role": "assistant", "refusal": NSNull()]
        if let call = request.toolCall {
            message["content"] = NSNull()
            message["tool_calls"] = [["id": callID, "type": "function", "function": ["name": call.name, "arguments": call.arguments]]]
        } else {
            message["content"] = textPieces(count).joined()
        }
        let choice: [String: Any] = ["index": 0, "message": message, "logprobs": NSNull(), "finish_reason": finishReason]
        return SimJSON.string([
            "id": id, "object": "chat.completion", "created": created, "model": request.model, "choices": [choice],
            "usage": usage(completionTokens: count + 1), "system_fingerprint": NSNull(),
        ])
    }

    /// A role chunk, `deltas` content chunks (or a tool call's header chunk and its arguments in
    /// up to `deltas` pieces), the chunk with the finish reason, the usage chunk when asked for,
    /// and `[DONE]`. `blocks` is Anthropic's notion: unused.
    func streamEvents(deltas: Int, blocks: [String]) -> [(name: String, data: String)] {
        var events: [(name: String, data: String)] = []
        let role: [String: Any] = ["role": "assistant", "content": SimJSON.orNull(request.toolCall == nil ? "" : nil), "refusal": NSNull()]
        events.append(("chunk", chunk(delta: role)))
        if let call = request.toolCall {
            let header: [String: Any] = ["index": 0, "id": callID, "type": "function", "function": ["name": call.name, "arguments": ""]]
            events.append(("chunk", chunk(delta: ["tool_calls": [header]])))
            for piece in Self.split(call.arguments, into: deltas) {
                events.append(("chunk", chunk(delta: ["tool_calls": [["index": 0, "function": ["arguments": piece]]]])))
            }
        } else {
            for piece in textPieces(deltas) { events.append(("chunk", chunk(delta: ["content": piece]))) }
        }
        events.append(("chunk", chunk(delta: [:], finishReason: finishReason)))
        if request.includeUsage {
            let usage: [String: Any] = [
                "id": id, "object": "chat.completion.chunk", "created": created, "model": request.model, "system_fingerprint": NSNull(),
                "choices": [Any](), "usage": usage(completionTokens: deltas + 1),
            ]
            events.append(("usage", SimJSON.string(usage)))
        }
        events.append(("done", "[DONE]"))
        return events
    }

    private var finishReason: String { request.toolCall == nil ? "stop" : "tool_calls" }

    private func chunk(delta: [String: Any], finishReason: String? = nil) -> String {
        let choice: [String: Any] = ["index": 0, "delta": delta, "logprobs": NSNull(), "finish_reason": SimJSON.orNull(finishReason)]
        var chunk: [String: Any] = [
            "id": id, "object": "chat.completion.chunk", "created": created, "model": request.model, "system_fingerprint": NSNull(),
            "choices": [choice],
        ]
        // With include_usage every chunk carries "usage": null until the last.
        if request.includeUsage { chunk["usage"] = NSNull() }
        return SimJSON.string(chunk)
    }

    private func usage(completionTokens: Int) -> [String: Any] {
        ["prompt_tokens": request.promptTokens, "completion_tokens": completionTokens, "total_tokens": request.promptTokens + completionTokens]
    }

    /// `chunk0 `, `chunk1 `, … as in the Anthropic mode, the first one led by what the request
    /// brought: `saw 2 images.`, `tool said: "…".`
    func textPieces(_ count: Int) -> [String] {
        var notes: [String] = []
        if request.images > 0 { notes.append("saw \(request.images) image\(request.images == 1 ? "" : "s"). ") }
        if let result = request.toolResult { notes.append("tool said: \"\(result)\". ") }
        return (0..<count).map { ($0 == 0 ? notes.joined() : "") + "chunk\($0) " }
    }

    /// `text` cut into up to `count` pieces (at least one).
    static func split(_ text: String, into count: Int) -> [String] {
        let characters = Array(text)
        let pieces = max(1, min(count, characters.count))
        return (0..<pieces).map { String(characters[$0 * characters.count / pieces..<($0 + 1) * characters.count / pieces]) }
    }
}
