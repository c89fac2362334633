import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1

/// What the proxy path does differently for a `POST /v1/chat/completions` caller: the body is
/// translated to a Messages request before routing (``ChatRequestToMessages``), and everything
/// the caller gets back — an answer, a stream, Switchyard's own errors, an upstream's relayed
/// error — is put in Chat Completions' terms on the way out. Routing, retries, failover, audit and
/// metrics in between are the Messages path's, unchanged.
struct ChatCompletionsFront: Sendable {
    /// `model` as the caller named it: every answer says it, as OpenAI's do.
    let model: String
    /// Unix seconds, the same for every chunk of a stream.
    let created: Int64
    let includeUsage: Bool

    /// The caller's body as a Messages request, or a 400 naming the field at fault.
    static func translate(_ body: ByteBuffer, createdAtMs: Int64) throws(RouterError) -> (ByteBuffer, ChatCompletionsFront) {
        do {
            let translated = try ChatRequestToMessages.translate(body)
            let front = ChatCompletionsFront(model: translated.model, created: createdAtMs / 1000, includeUsage: translated.includeUsage)
            return (translated.body, front)
        } catch {
            var refusal = RouterError.invalidRequest(error.message)
            refusal.param = error.field
            throw refusal
        }
    }

    /// A whole answer: a message becomes a `chat.completion`, an error (Anthropic's envelope,
    /// upstream's or Switchyard's) OpenAI's envelope with the same status.
    func answer(status: Int, body: ByteBuffer) -> ByteBuffer {
        guard (200..<300).contains(status) else { return OpenAIErrorEnvelope(anthropicBody: body, status: status).body }
        do {
            return try MessagesResponseToChat.translate(body, model: model, created: created)
        } catch {
            // The providers checked the body is a message; one that still does not translate is
            // the upstream's fault, said in the caller's terms.
            return OpenAIErrorEnvelope(message: "the upstream answer could not be translated: \(error.message)", type: "server_error").body
        }
    }

    /// The stream's body writer, translating Anthropic's events into chunks as they pass.
    func streamWriter<Base: ResponseBodyWriter>(_ base: Base) -> ChatStreamBodyWriter<Base> {
        ChatStreamBodyWriter(base: base, translator: ChatStreamTranslator(model: model, created: created, includeUsage: includeUsage))
    }

    /// Switchyard's own refusal in OpenAI's envelope, with the headers `EndpointIO.writeError`
    /// gives an Anthropic caller.
    static func writeError<Writer: ProxyResponseWriter & ~Copyable>(
        _ error: RouterError, requestID: String, to writer: consuming Writer, channel: any Channel
    ) async throws {
        var envelope = OpenAIErrorEnvelope(anthropicType: error.type, message: error.message, status: error.status)
        envelope.param = error.param
        let body = envelope.body
        var headers = error.answerHeaders(requestID: requestID)
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: HeaderPolicy.requestIDName, value: requestID)
        if error.closeConnection { headers.add(name: "connection", value: "close") }
        try await writer.writeResponse(status: error.status, headers: headers, body: body)
        if error.closeConnection { channel.close(promise: nil) }
    }
}

/// Wraps the caller's body writer: Anthropic SSE bytes in (split anywhere), Chat Completions
/// chunks out, and `data: [DONE]` (with the usage chunk first when asked) at the end.
struct ChatStreamBodyWriter<Base: ResponseBodyWriter>: ResponseBodyWriter {
    private var base: Base
    private var translator: ChatStreamTranslator
    private var parser = SSEEventParser()

    init(base: Base, translator: ChatStreamTranslator) {
        self.base = base
        self.translator = translator
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        parser.append(buffer)
        var output = ByteBuffer()
        while true {
            let event: SSEEvent?
            do {
                event = try parser.next()
            } catch {
                // An event over the parser's bound: nothing after it can be trusted.
                event = SSEEvent(name: .error, data: AnthropicErrorEnvelope.body(type: "api_error", message: "upstream stream event too large", requestID: nil))
            }
            guard let event else { break }
            if var chunks = translator.translate(event) { output.writeBuffer(&chunks) }
        }
        if output.readableBytes > 0 { try await base.write(output) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        if let end = translator.finish() { try await base.write(end) }
        try await base.finish(trailingHeaders)
    }
}
