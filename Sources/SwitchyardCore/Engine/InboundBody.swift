import NIOCore

/// A validated Messages (or count_tokens) request body: where `model` sits, and whether the
/// caller asked for a stream. The body itself is forwarded byte for byte except for `model`.
public struct InboundBody: Sendable {
    public let buffer: ByteBuffer
    /// The caller's `model` value.
    public let model: String
    /// Byte range (within the readable bytes) of the `model` value, quotes included.
    let modelRange: Range<Int>
    public let stream: Bool

    /// Validates the JSON and the fields routing depends on; everything else is the upstream's to judge.
    public static func parse(_ buffer: ByteBuffer, requireMessages: Bool) throws(RouterError) -> InboundBody {
        let outcome: Result<(String, Range<Int>, Bool), RouterError> = buffer.withUnsafeReadableBytes { bytes in
            let skim: JSONSkimmer.Skim
            do {
                skim = try JSONSkimmer.skim(bytes)
            } catch {
                return .failure(.invalidRequest("request body is not valid JSON: \(error)"))
            }
            guard skim.topLevel == .object else {
                return .failure(.invalidRequest("request body must be a JSON object"))
            }
            guard let modelMember = JSONSkimmer.member("model", in: skim, bytes: bytes) else {
                return .failure(.invalidRequest("model: Field required"))
            }
            guard let model = JSONSkimmer.stringValue(modelMember, bytes: bytes) else {
                return .failure(.invalidRequest("model: Input should be a valid string"))
            }
            var stream = false
            if let streamMember = JSONSkimmer.member("stream", in: skim, bytes: bytes) {
                switch streamMember.kind {
                case .true: stream = true
                case .false, .null: stream = false
                default: return .failure(.invalidRequest("stream: Input should be a valid boolean"))
                }
            }
            if requireMessages {
                guard let messages = JSONSkimmer.member("messages", in: skim, bytes: bytes) else {
                    return .failure(.invalidRequest("messages: Field required"))
                }
                guard messages.kind == .array else {
                    return .failure(.invalidRequest("messages: Input should be a valid list"))
                }
            }
            return .success((model, modelMember.value, stream))
        }
        switch outcome {
        case .success(let (model, range, stream)):
            return InboundBody(buffer: buffer, model: model, modelRange: range, stream: stream)
        case .failure(let error):
            throw error
        }
    }

    /// The body with `model` replaced by an already JSON-encoded string; the body as it came when
    /// the caller already named the upstream model (an alias that is the model's own name): no
    /// copy then.
    public func withModel(_ encoded: [UInt8]) -> ByteBuffer {
        let unchanged = buffer.withUnsafeReadableBytes { bytes in bytes[modelRange].elementsEqual(encoded) }
        if unchanged { return buffer }
        var patched = ByteBufferAllocator().buffer(capacity: buffer.readableBytes - modelRange.count + encoded.count)
        let start = buffer.readerIndex
        patched.writeImmutableBuffer(buffer.getSlice(at: start, length: modelRange.lowerBound)!)
        patched.writeBytes(encoded)
        patched.writeImmutableBuffer(buffer.getSlice(at: start + modelRange.upperBound, length: buffer.readableBytes - modelRange.upperBound)!)
        return patched
    }
}
