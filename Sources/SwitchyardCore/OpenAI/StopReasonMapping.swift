/// Anthropic's `stop_reason` and OpenAI's `finish_reason`, each in the other's terms.
enum StopReasonMapping {
    /// end_turn, stop_sequence and pause_turn (a server tool's pause: the turn ended without a
    /// limit being hit) → `stop`; max_tokens and model_context_window_exceeded → `length`;
    /// tool_use → `tool_calls`; refusal → `content_filter`; any newer reason → `stop`.
    static func finishReason(fromStopReason stopReason: String) -> String {
        switch stopReason {
        case "max_tokens", "model_context_window_exceeded": "length"
        case "tool_use": "tool_calls"
        case "refusal": "content_filter"
        default: "stop"
        }
    }

    /// stop → `end_turn` (OpenAI does not say whether a stop sequence ended the turn, so
    /// `stop_sequence` is never produced); length → `max_tokens`; tool_calls and the legacy
    /// function_call → `tool_use`; content_filter → `refusal`; anything else → `end_turn`.
    static func stopReason(fromFinishReason finishReason: String) -> String {
        switch finishReason {
        case "length": "max_tokens"
        case "tool_calls", "function_call": "tool_use"
        case "content_filter": "refusal"
        default: "end_turn"
        }
    }
}
