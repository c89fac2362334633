/// `telemetry:`: OpenTelemetry traces over OTLP/HTTP (protobuf). Off when the section is absent.
public struct TelemetrySettings: Sendable, Equatable {
    /// The collector's traces URL: `http://collector:4318` gets `/v1/traces` added, as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` does; a URL with a path is used as it is.
    public var otlpEndpoint: String
    /// The share of requests traced (a caller's `traceparent` that says sampled is followed).
    public var sample: Double
    public var serviceName: String

    /// The URL spans are posted to.
    public var tracesURL: String {
        guard let url = UpstreamURL.parse(otlpEndpoint), url.pathPrefix.isEmpty else { return otlpEndpoint }
        return otlpEndpoint.hasSuffix("/") ? otlpEndpoint + "v1/traces" : otlpEndpoint + "/v1/traces"
    }
}
