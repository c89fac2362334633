import NIOCore
import SwitchyardCore

/// One libFuzzer input for the Chat Completions ↔ Messages translation: the first byte picks the
/// direction, the rest is the body (or stream). Nothing may crash; a request that translates must
/// come out as a Messages (or Chat) body the other side parses; a stream is fed in two reads
/// split where the second byte says.
func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    let buffer = ByteBuffer(bytes: bytes)
    let split = min(bytes.count, Int(data[1]) * bytes.count / 255)
    switch data[0] % 6 {
    case 0:
        if let translated = try? ChatRequestToMessages.translate(bytes) {
            guard let body = try? InboundBody.parse(translated.body, requireMessages: true), body.model == translated.model else {
                fatalError("a translated Chat request is not a Messages request the router parses")
            }
            _ = try? MessagesRequestToChat.translate(translated.body, model: "gpt-4o")
        }
    case 1:
        _ = try? MessagesRequestToChat.translate(bytes, model: "gpt-4o")
    case 2:
        if let message = try? ChatResponseToMessages.translate(buffer) {
            guard (try? MessagesResponseToChat.translate(message, model: "m", created: 0)) != nil else {
                fatalError("a translated chat.completion does not translate back")
            }
        }
    case 3:
        _ = try? MessagesResponseToChat.translate(buffer, model: "m", created: 0)
    case 4:
        var translator = ChatStreamToMessages()
        _ = try? translator.translate(ByteBuffer(bytes: bytes[..<split]))
        _ = try? translator.translate(ByteBuffer(bytes: bytes[split...]))
        _ = try? translator.finish()
    default:
        var parser = SSEEventParser(maxEventSize: 1 << 16)
        var translator = ChatStreamTranslator(model: "m", created: 0, includeUsage: data[1] & 1 == 1)
        for part in [bytes[..<split], bytes[split...]] {
            parser.append(ByteBuffer(bytes: part))
            while let event = try? parser.next() { _ = translator.translate(event) }
        }
        _ = translator.finish()
    }
    return 0
}
