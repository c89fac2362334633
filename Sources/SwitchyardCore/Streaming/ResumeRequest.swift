import NIOCore

/// The request that asks a model to carry on a partial answer: the original request plus an
/// assistant turn holding the text sent so far as prefill (README, "Stream recovery").
public struct ResumeRequest: Sendable, Equatable {
    /// The prefill, one entry per text block of the partial answer.
    public var prefill: [String]
    /// Trailing whitespace cut from the prefill (the API refuses a prefill that ends in
    /// whitespace); the same whitespace is dropped from the start of the resumed stream, since the
    /// caller already has it.
    public var cutWhitespace: String

    public init(partial: PartialResponse) {
        var texts = partial.blocks.map(\.text)
        var cut = ""
        while let last = texts.last {
            let kept = last.reversed().drop { $0.isWhitespace }
            cut = String(last.suffix(last.count - kept.count)) + cut
            if kept.isEmpty {
                texts.removeLast()
            } else {
                texts[texts.count - 1] = String(kept.reversed())
                break
            }
        }
        prefill = texts.filter { !$0.isEmpty }
        cutWhitespace = cut
    }

    /// The original body with one more `assistant` turn at the end of `messages`; the original
    /// as it is when there is no prefill (no text, or only whitespace, reached the caller). nil
    /// when the body has no `messages` list.
    public func body(original: ByteBuffer) -> ByteBuffer? {
        guard !prefill.isEmpty else { return original }
        var turn = JSONWriter(capacity: 64 + prefill.reduce(0) { $0 + $1.utf8.count + 24 })
        turn.beginObject()
        turn.field("role", "assistant")
        turn.key("content")
        turn.beginArray()
        for text in prefill {
            turn.beginObject()
            turn.field("type", "text")
            turn.field("text", text)
            turn.endObject()
        }
        turn.endArray()
        turn.endObject()
        return original.withUnsafeReadableBytes { bytes -> ByteBuffer? in
            guard let skim = try? JSONSkimmer.skim(bytes), let messages = JSONSkimmer.member("messages", in: skim, bytes: bytes),
                messages.kind == .array
            else { return nil }
            let close = messages.value.upperBound - 1
            let isEmpty = bytes[(messages.value.lowerBound + 1)..<close].allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
            var output = ByteBufferAllocator().buffer(capacity: bytes.count + turn.bytes.count + 1)
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[..<close]))
            if !isEmpty { output.writeInteger(UInt8(ascii: ",")) }
            output.writeBytes(turn.bytes)
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[close...]))
            return output
        }
    }
}
