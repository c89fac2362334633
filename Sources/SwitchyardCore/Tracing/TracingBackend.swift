import Logging
import OTel
import ServiceLifecycle
import Tracing

/// The OpenTelemetry tracer of `telemetry:` (swift-otel: OTLP over HTTP/protobuf, a batch span
/// processor, W3C trace context), and the service that exports its spans. The tracer is handed to
/// the request path; it is not made the process-wide one, so tests and several routers in one
/// process never share spans.
public struct TracingBackend: Sendable {
    let tracer: any Tracer
    /// Exports spans in batches; runs beside the router, flushes at shutdown.
    public let service: any Service

    public init(settings: TelemetrySettings, logger: Logger) throws {
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.serviceName
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.propagators = [.traceContext]
        configuration.diagnosticLogger = .custom(logger)
        // A caller's sampled `traceparent` is followed; new traces are sampled at `sample`.
        configuration.traces.sampler = .parentBasedTraceIDRatio(ratio: settings.sample) ?? .parentBasedAlwaysOn
        configuration.traces.otlpExporter.endpoint = settings.tracesURL
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        // Spans leave within a second: an incident is read while it happens.
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        tracer = backend.factory
        service = backend.service
    }
}
