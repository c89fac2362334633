import NIOCore

/// Splices a resumed stream into the caller's open stream (README, "Stream recovery"): no
/// second `message_start`, the interrupted text block continues at its own index, later blocks
/// are renumbered after the caller's, the whitespace cut from the prefill is dropped from the
/// start of the resumed stream, and `message_delta`'s `output_tokens` is the sum of both parts.
/// Pure: events in, what the caller gets out.
public struct StreamSplicer: Sendable {
    public enum Output: Sendable, Equatable {
        /// The event's bytes go to the caller unchanged.
        case forward
        /// The caller must not see it.
        case drop
        /// The same event with this data instead.
        case replace(ByteBuffer)
    }

    /// The caller's index for the resumed stream's block 0.
    let base: Int
    /// The resumed stream's block 0 carries on the caller's open block (its start is dropped).
    let continuesOpenBlock: Bool
    private let partial: PartialResponse
    private var pendingWhitespace: Substring
    public private(set) var partialOutputTokens: Int

    public init(partial: PartialResponse, request: ResumeRequest) {
        self.partial = partial
        if let open = partial.openBlock {
            base = open.index
            continuesOpenBlock = true
        } else {
            base = partial.nextIndex
            continuesOpenBlock = false
        }
        pendingWhitespace = Substring(request.cutWhitespace)
        partialOutputTokens = partial.outputTokens
    }

    public mutating func splice(name: SSEEventName, data: ByteBuffer) -> Output {
        switch name {
        case .messageStart:
            return .drop
        case .contentBlockStart:
            guard let index = StreamEventFields.int("index", in: data) else { return .forward }
            if index == 0, continuesOpenBlock { return .drop }
            return renumbered(index: index, data: data)
        case .contentBlockDelta:
            guard let index = StreamEventFields.int("index", in: data) else { return .forward }
            if index == 0, !pendingWhitespace.isEmpty, let text = StreamEventFields.nestedString("delta", "text", in: data) {
                var remaining = Substring(text)
                while let first = remaining.first, first == pendingWhitespace.first {
                    remaining.removeFirst()
                    pendingWhitespace.removeFirst()
                }
                // Only whitespace the caller already has is dropped; anything else ends the dropping.
                if !remaining.isEmpty { pendingWhitespace = "" }
                if remaining.isEmpty { return .drop }
                if remaining.count != text.count {
                    let patched = StreamEventFields.settingNested("delta", "text", to: JSONWriter.encodedString(String(remaining)), in: data)
                    return .replace(StreamEventFields.settingIndex(base, in: patched))
                }
            } else if index == 0 {
                pendingWhitespace = ""
            }
            return renumbered(index: index, data: data)
        case .contentBlockStop:
            guard let index = StreamEventFields.int("index", in: data) else { return .forward }
            return renumbered(index: index, data: data)
        case .messageDelta:
            var patched = data
            if let output = StreamEventFields.nestedInt("usage", "output_tokens", in: data) {
                patched = StreamEventFields.settingNested("usage", "output_tokens", to: Array(String(output + partialOutputTokens).utf8), in: patched)
            }
            // The resumed stream's input holds the prefill; the caller's message reports its own.
            if let original = partial.inputTokens, StreamEventFields.nestedInt("usage", "input_tokens", in: patched) != nil {
                patched = StreamEventFields.settingNested("usage", "input_tokens", to: Array(String(original).utf8), in: patched)
            }
            return patched == data ? .forward : .replace(patched)
        default:
            return .forward
        }
    }

    private func renumbered(index: Int, data: ByteBuffer) -> Output {
        let mapped = base + index
        guard mapped != index else { return .forward }
        return .replace(StreamEventFields.settingIndex(mapped, in: data))
    }
}
