import NIOCore

/// Token counts read off a response on its way through.
public struct TokenUsage: Sendable, Equatable {
    public var inputTokens: Int?
    public var outputTokens: Int?
    public var cacheReadInputTokens: Int?
    public var cacheCreationInputTokens: Int?

    public init(inputTokens: Int? = nil, outputTokens: Int? = nil, cacheReadInputTokens: Int? = nil, cacheCreationInputTokens: Int? = nil) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cacheReadInputTokens = cacheReadInputTokens
        self.cacheCreationInputTokens = cacheCreationInputTokens
    }

    public var isEmpty: Bool {
        inputTokens == nil && outputTokens == nil && cacheReadInputTokens == nil && cacheCreationInputTokens == nil
    }

    /// Later values win: `message_delta` carries cumulative counts.
    mutating func merge(_ other: TokenUsage) {
        if let value = other.inputTokens { inputTokens = value }
        if let value = other.outputTokens { outputTokens = value }
        if let value = other.cacheReadInputTokens { cacheReadInputTokens = value }
        if let value = other.cacheCreationInputTokens { cacheCreationInputTokens = value }
    }
}

/// Reads the few fields Switchyard needs from Anthropic payloads, without decoding them whole.
public enum AnthropicPayload {
    /// `error.type` and `error.message` of an error body or `event: error` data.
    public static func error(in buffer: ByteBuffer) -> (type: String?, message: String?) {
        buffer.withUnsafeReadableBytes { bytes in
            guard let error = JSONSkimmer.object("error", in: bytes) else { return (nil, nil) }
            let type = error.member("type").flatMap { JSONSkimmer.stringValue($0, bytes: error.bytes) }
            let message = error.member("message").flatMap { JSONSkimmer.stringValue($0, bytes: error.bytes) }
            return (type, message)
        }
    }

    /// Whether a body is Anthropic's error envelope, `{"type":"error","error":{"type":…}}`: what a
    /// caller may be shown as it is.
    public static func isErrorEnvelope(_ buffer: ByteBuffer) -> Bool {
        topLevelString("type", in: buffer) == "error" && error(in: buffer).type != nil
    }

    public static func isJSONObject(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { (try? JSONSkimmer.skim($0))?.topLevel == .object }
    }

    /// The top-level string member `key` of a JSON object (`type` of a stream event or message).
    public static func topLevelString(_ key: StaticString, in buffer: ByteBuffer) -> String? {
        buffer.withUnsafeReadableBytes { bytes in
            guard let skim = try? JSONSkimmer.skim(bytes), let member = JSONSkimmer.member(key, in: skim, bytes: bytes) else { return nil }
            return JSONSkimmer.stringValue(member, bytes: bytes)
        }
    }

    /// What the router reads of a complete (non-streaming) message answer, in one pass over it.
    public struct MessageSummary: Sendable, Equatable {
        public var type: String?
        public var usage: TokenUsage?
    }

    /// The answer's `type` and `usage`; nil when it is not a JSON object. One skim of the body
    /// (plus one of the small `usage` object) serves both the answer's check and the audit's usage.
    public static func summary(ofMessage buffer: ByteBuffer) -> MessageSummary? {
        buffer.withUnsafeReadableBytes { bytes in
            guard let skim = try? JSONSkimmer.skim(bytes), skim.topLevel == .object else { return nil }
            return MessageSummary(
                type: JSONSkimmer.member("type", in: skim, bytes: bytes).flatMap { JSONSkimmer.stringValue($0, bytes: bytes) },
                usage: usage(member: JSONSkimmer.member("usage", in: skim, bytes: bytes), bytes: bytes)
            )
        }
    }

    /// `usage` of a complete (non-streaming) message.
    public static func usage(inMessage buffer: ByteBuffer) -> TokenUsage? {
        buffer.withUnsafeReadableBytes { bytes in
            guard let skim = try? JSONSkimmer.skim(bytes) else { return nil }
            return usage(member: JSONSkimmer.member("usage", in: skim, bytes: bytes), bytes: bytes)
        }
    }

    /// `message.usage` of a `message_start` event.
    public static func usage(inMessageStart buffer: ByteBuffer) -> TokenUsage? {
        buffer.withUnsafeReadableBytes { bytes in
            guard let message = JSONSkimmer.object("message", in: bytes) else { return nil }
            return usage(member: message.member("usage"), bytes: message.bytes)
        }
    }

    /// `message.id` of a `message_start` event.
    public static func messageID(inMessageStart buffer: ByteBuffer) -> String? {
        buffer.withUnsafeReadableBytes { bytes in
            guard let message = JSONSkimmer.object("message", in: bytes), let id = message.member("id") else { return nil }
            return JSONSkimmer.stringValue(id, bytes: message.bytes)
        }
    }

    /// The message id a stream's first events name (its `message_start`).
    public static func messageID(inStreamPrelude prelude: ByteBuffer) -> String? {
        var parser = SSEEventParser()
        parser.append(prelude)
        while let event = try? parser.next() {
            if event.name == .messageStart { return messageID(inMessageStart: event.data) }
        }
        return nil
    }

    /// `usage` of a `message_delta` event.
    public static func usage(inMessageDelta buffer: ByteBuffer) -> TokenUsage? {
        usage(inMessage: buffer)
    }

    private static func usage(member: JSONSkimmer.Member?, bytes: UnsafeRawBufferPointer) -> TokenUsage? {
        guard let member, member.kind == .object else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: bytes[member.value])
        guard let skim = try? JSONSkimmer.skim(inner) else { return nil }
        func int(_ key: StaticString) -> Int? {
            JSONSkimmer.member(key, in: skim, bytes: inner).flatMap { JSONSkimmer.intValue($0, bytes: inner) }
        }
        let usage = TokenUsage(
            inputTokens: int("input_tokens"), outputTokens: int("output_tokens"),
            cacheReadInputTokens: int("cache_read_input_tokens"), cacheCreationInputTokens: int("cache_creation_input_tokens")
        )
        return usage.isEmpty ? nil : usage
    }
}
