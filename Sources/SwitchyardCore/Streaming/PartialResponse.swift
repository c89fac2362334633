import NIOCore

/// What the caller of a stream has received so far, kept only while the route's
/// `stream_recovery` is on and only as text (never the raw events): enough to ask another model
/// to resume it, and to splice the resumed stream into the open one.
public struct PartialResponse: Sendable, Equatable {
    /// One content block as the caller saw it.
    public struct Block: Sendable, Equatable {
        public var index: Int
        public var text: String
        public var isOpen: Bool
    }

    public private(set) var blocks: [Block] = []
    /// Why this answer cannot be continued (a `tool_use`, `thinking` or `redacted_thinking` block,
    /// a delta that is not text); nil while it is plain text.
    public private(set) var unrecoverableReason: String?
    /// `usage.input_tokens` of the first `message_start`: what the caller's message reports as its
    /// input, whichever model continued it.
    public private(set) var inputTokens: Int?
    /// The output tokens the upstreams reported for what was sent (message_start, message_delta).
    public private(set) var reportedOutputTokens = 0
    /// A `message_delta` with a stop reason went out: the answer itself was complete.
    public private(set) var sawStopReason = false

    public init() {}

    /// Plain text so far, or nothing yet (a failure right after `message_start` or an empty
    /// block's start): the resumption is then the original request itself.
    public var isRecoverable: Bool { unrecoverableReason == nil }

    /// The block the failure interrupted, which a resumed stream carries on.
    public var openBlock: Block? { blocks.last { $0.isOpen } }

    /// The index the next new block gets in the caller's stream.
    public var nextIndex: Int { (blocks.map(\.index).max() ?? -1) + 1 }

    public var text: String { blocks.map(\.text).joined() }

    /// Feeds one event exactly as the caller received it.
    public mutating func observe(name: SSEEventName, data: ByteBuffer) {
        switch name {
        case .messageStart:
            if let usage = AnthropicPayload.usage(inMessageStart: data) {
                if inputTokens == nil { inputTokens = usage.inputTokens }
                reportedOutputTokens = max(reportedOutputTokens, usage.outputTokens ?? 0)
            }
        case .contentBlockStart:
            guard let index = StreamEventFields.int("index", in: data) else { return }
            let type = StreamEventFields.nestedString("content_block", "type", in: data) ?? "unknown"
            guard type == "text" else {
                unrecoverableReason = unrecoverableReason ?? "the answer holds a \(type) block"
                return
            }
            let initial = StreamEventFields.nestedString("content_block", "text", in: data) ?? ""
            blocks.append(Block(index: index, text: initial, isOpen: true))
        case .contentBlockDelta:
            guard let index = StreamEventFields.int("index", in: data), let position = blocks.lastIndex(where: { $0.index == index }) else {
                return
            }
            let type = StreamEventFields.nestedString("delta", "type", in: data)
            guard type == "text_delta", let text = StreamEventFields.nestedString("delta", "text", in: data) else {
                unrecoverableReason = unrecoverableReason ?? "the answer holds a \(type ?? "unknown") delta"
                return
            }
            blocks[position].text += text
        case .contentBlockStop:
            guard let index = StreamEventFields.int("index", in: data), let position = blocks.lastIndex(where: { $0.index == index }) else {
                return
            }
            blocks[position].isOpen = false
        case .messageDelta:
            if let usage = AnthropicPayload.usage(inMessageDelta: data), let output = usage.outputTokens {
                reportedOutputTokens = max(reportedOutputTokens, output)
            }
            if StreamEventFields.nestedString("delta", "stop_reason", in: data) != nil { sawStopReason = true }
        default:
            break
        }
    }

    /// Output tokens of the partial answer as its upstreams reported them; the spliced
    /// `message_delta` reports this plus the resumed stream's own count (the sum: README, "Stream
    /// recovery").
    public var outputTokens: Int { reportedOutputTokens }
}
