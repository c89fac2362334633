import NIOCore

/// A successful answer to one model request, in its platform's wire shape: the JSON body, or the
/// events of the stream. The fault script decides how many deltas and how they are paced; the
/// answer decides what they say, from what the request asked.
protocol SimAnswer {
    /// The body of a non-streamed answer whose text comes in `deltas` pieces.
    func json(deltas: Int) -> String
    /// The events of a streamed answer, as (event name, data): `deltas` content deltas per block.
    /// `blocks` is ``UpstreamSimulator/streamBlocks``, for platforms that have such blocks.
    func streamEvents(deltas: Int, blocks: [String]) -> [(name: String, data: String)]
}

/// Anthropic's Messages answer, which Bedrock and Vertex carry too: canned text, or the
/// continuation of a prefill.
struct AnthropicAnswer: SimAnswer {
    var model: String
    /// The request's last turn was the assistant's (a prefill), so the answer goes on from it.
    var continuing = false

    func json(deltas: Int) -> String { SimPayloads.message(model: model, deltas: deltas) }

    func streamEvents(deltas: Int, blocks: [String]) -> [(name: String, data: String)] {
        SimPayloads.streamEvents(model: model, deltas: deltas, blocks: blocks, continuing: continuing)
    }

    /// The text of a message's content (a string, or its text blocks).
    static func text(of message: [String: Any]) -> String {
        if let text = message["content"] as? String { return text }
        let blocks = message["content"] as? [[String: Any]] ?? []
        return blocks.compactMap { $0["type"] as? String == "text" ? $0["text"] as? String : nil }.joined()
    }
}

extension SimDialect {
    /// A Messages API request as Anthropic reads it: a prefill that ends in whitespace is refused
    /// (as the API does), any other prefill is continued.
    func anthropicMessages(model: String, stream: Bool, body: ByteBuffer) -> SimRequest {
        let messages = SimJSON.object(body)?["messages"] as? [[String: Any]]
        let prefill = messages?.last.flatMap { $0["role"] as? String == "assistant" ? AnthropicAnswer.text(of: $0) : nil }
        if let prefill, prefill.last?.isWhitespace == true {
            let message = "messages: final assistant content cannot end with trailing whitespace"
            return .respond(error(status: 400, name: self is AnthropicDialect ? "invalid_request_error" : nil, message: message, requestID: ""))
        }
        return .messages(model: model, stream: stream, answer: AnthropicAnswer(model: model, continuing: prefill != nil))
    }
}

/// The simulator's canned Anthropic payloads.
public enum SimPayloads {
    public static func errorType(status: Int) -> String {
        switch status {
        case 400: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 408: "timeout_error"
        case 409: "conflict_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 504: "timeout_error"
        case 529: "overloaded_error"
        default: "api_error"
        }
    }

    public static func message(model: String, deltas: Int) -> String {
        let text = (0..<max(1, deltas)).map { "chunk\($0) " }.joined()
        return #"{"id":"msg_sim","type":"message","role":"assistant","model":"\#(model)","content":[{"type":"text","text":"\#(text)"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":\#(deltas + 1)}}"#
    }

    /// The events of a streamed message, as (event name, data JSON): one block per entry of
    /// `blocks` (`text`, `thinking`, `tool_use`), `deltas` deltas each. A continuation of a
    /// prefill (`continuing`) goes on with " cont0", " cont1", … as a model would after a prefill
    /// whose trailing space was cut.
    public static func streamEvents(model: String, deltas: Int, blocks: [String] = ["text"], continuing: Bool = false) -> [(name: String, data: String)] {
        var events: [(name: String, data: String)] = []
        func event(_ name: String, _ data: String) { events.append((name, data)) }
        let input = continuing ? 20 : 12
        event("message_start", #"{"type":"message_start","message":{"id":"msg_sim","type":"message","role":"assistant","model":"\#(model)","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":\#(input),"output_tokens":1}}}"#)
        event("ping", #"{"type": "ping"}"#)
        for (index, kind) in blocks.enumerated() {
            switch kind {
            case "thinking":
                event("content_block_start", #"{"type":"content_block_start","index":\#(index),"content_block":{"type":"thinking","thinking":"","signature":""}}"#)
                for step in 0..<deltas {
                    event("content_block_delta", #"{"type":"content_block_delta","index":\#(index),"delta":{"type":"thinking_delta","thinking":"step\#(step) "}}"#)
                }
                event("content_block_delta", #"{"type":"content_block_delta","index":\#(index),"delta":{"type":"signature_delta","signature":"c2ln"}}"#)
            case "tool_use":
                event("content_block_start", #"{"type":"content_block_start","index":\#(index),"content_block":{"type":"tool_use","id":"toolu_sim","name":"lookup","input":{}}}"#)
                for step in 0..<deltas {
                    event("content_block_delta", #"{"type":"content_block_delta","index":\#(index),"delta":{"type":"input_json_delta","partial_json":"{\"k\#(step)\":1"}}"#)
                }
            default:
                event("content_block_start", #"{"type":"content_block_start","index":\#(index),"content_block":{"type":"text","text":""}}"#)
                for step in 0..<deltas {
                    let text = continuing ? " cont\(step)" : "chunk\(step) "
                    event("content_block_delta", #"{"type":"content_block_delta","index":\#(index),"delta":{"type":"text_delta","text":"\#(text)"}}"#)
                }
            }
            event("content_block_stop", #"{"type":"content_block_stop","index":\#(index)}"#)
        }
        let stopReason = blocks.last == "tool_use" ? "tool_use" : "end_turn"
        event("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"\#(stopReason)","stop_sequence":null},"usage":{"output_tokens":\#(deltas * blocks.count + 1)}}"#)
        event("message_stop", #"{"type":"message_stop"}"#)
        return events
    }
}
