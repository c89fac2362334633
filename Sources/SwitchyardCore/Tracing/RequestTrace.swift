import Instrumentation
import NIOHTTP1
import Tracing

/// The spans of one proxied request: a server span for the request (child of the caller's W3C
/// `traceparent` when it sent one) and a client span per upstream attempt, each attempt's context
/// sent upstream as `traceparent`. Attributes follow OpenTelemetry's GenAI semantic conventions
/// (`gen_ai.*`) plus Switchyard's routing decision (`switchyard.*`); never prompt or completion
/// text, never a key.
struct RequestTrace: Sendable {
    let tracer: any Tracer
    let span: any Span

    /// Starts the request's server span.
    init(tracer: any Tracer, inbound: HTTPHeaders, api: UpstreamAPI, path: String, requestID: String) {
        var context = InstrumentationContext.topLevel
        tracer.extract(inbound, into: &context, using: HeaderExtractor())
        span = tracer.startSpan("\(api.operationName) switchyard", context: context, ofKind: .server)
        self.tracer = tracer
        // A request the sampler left out still gets a span (its context goes upstream, flagged
        // not sampled), but nothing is written into it.
        guard span.isRecording else { return }
        span.attributes["http.request.method"] = "POST"
        span.attributes["url.path"] = path
        span.attributes["gen_ai.operation.name"] = api.operationName
        span.attributes["switchyard.request_id"] = requestID
    }

    /// The request's own attributes once it is over, and the span's end.
    func finish(_ record: RequestAuditRecord) {
        guard span.isRecording else { return span.end() }
        span.attributes["http.response.status_code"] = record.status
        span.attributes["gen_ai.request.model"] = record.requestedModel
        span.attributes["switchyard.route"] = record.route
        span.attributes["switchyard.outcome"] = record.outcome.rawValue
        span.attributes["switchyard.attempts"] = record.attempts.count
        span.attributes["switchyard.downgraded"] = record.downgraded
        span.attributes["switchyard.decision"] = record.decision.map(Self.describe).joined(separator: ", ")
        if let model = record.model { span.attributes["switchyard.model"] = model }
        if let upstream = record.upstreamModel { span.attributes["gen_ai.response.model"] = upstream }
        if let usage = record.usage {
            if let input = usage.inputTokens { span.attributes["gen_ai.usage.input_tokens"] = input }
            if let output = usage.outputTokens { span.attributes["gen_ai.usage.output_tokens"] = output }
        }
        if record.status >= 500 || record.outcome == .streamError {
            span.setStatus(SpanStatus(code: .error, message: record.message ?? record.outcome.rawValue))
        }
        span.end()
    }

    /// Starts an attempt's client span; its context goes upstream in `headers`.
    func startAttempt(model: RoutingTable.Model, breaker: String?, headers: inout HTTPHeaders) -> any Span {
        let attempt = tracer.startSpan("chat \(model.spec.upstreamModel)", context: span.context, ofKind: .client)
        tracer.inject(attempt.context, into: &headers, using: HeaderInjector())
        guard attempt.isRecording else { return attempt }
        attempt.attributes["gen_ai.system"] = Platforms.genAISystem(of: model.provider.platform)
        attempt.attributes["gen_ai.operation.name"] = "chat"
        attempt.attributes["gen_ai.request.model"] = model.spec.upstreamModel
        attempt.attributes["server.address"] = model.provider.baseURL.host
        attempt.attributes["server.port"] = model.provider.baseURL.port
        attempt.attributes["switchyard.model"] = model.name
        attempt.attributes["switchyard.provider"] = model.provider.name
        if let breaker { attempt.attributes["switchyard.breaker"] = breaker }
        return attempt
    }

    /// An attempt's result on its span, and the span's end.
    static func finish(_ attempt: any Span, record: AttemptRecord, responseID: String? = nil, usage: TokenUsage? = nil) {
        guard attempt.isRecording else { return attempt.end() }
        if let status = record.status { attempt.attributes["http.response.status_code"] = status }
        if let upstreamID = record.upstreamRequestID { attempt.attributes["switchyard.upstream_request_id"] = upstreamID }
        if let responseID { attempt.attributes["gen_ai.response.id"] = responseID }
        if let usage {
            if let input = usage.inputTokens { attempt.attributes["gen_ai.usage.input_tokens"] = input }
            if let output = usage.outputTokens { attempt.attributes["gen_ai.usage.output_tokens"] = output }
        }
        if let ttfb = record.ttfbMs { attempt.attributes["switchyard.ttfb_ms"] = Int(ttfb) }
        let failure = record.error ?? record.errorType ?? ((record.status ?? 0) >= 400 ? String(record.status ?? 0) : nil)
        if let failure {
            attempt.attributes["error.type"] = record.errorType ?? failure
            attempt.setStatus(SpanStatus(code: .error, message: record.summary))
        }
        attempt.end()
    }

    private static func describe(_ entry: DecisionEntry) -> String {
        "\(entry.model): \(entry.action.rawValue)\(entry.reason.map { " (\($0))" } ?? "")"
    }
}

private struct HeaderExtractor: Extractor {
    func extract(key: String, from headers: HTTPHeaders) -> String? {
        headers.first(name: key)
    }
}

private struct HeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: key, value: value)
    }
}

extension UpstreamAPI {
    /// GenAI's `gen_ai.operation.name`.
    var operationName: String {
        switch self {
        case .messages: "chat"
        case .countTokens: "count_tokens"
        }
    }
}
