import Yams

extension ConfigSchema {
    /// `telemetry: { otlp_endpoint, sample, service_name }`.
    func readTelemetry(_ node: Node) -> TelemetrySettings? {
        guard let fields = reader.fields(node, path: "telemetry", known: ["otlp_endpoint", "sample", "service_name"]) else { return nil }
        var endpoint: String?
        if let endpointNode = fields.required("otlp_endpoint"), let text = reader.string(endpointNode, path: fields.path("otlp_endpoint")) {
            if UpstreamURL.parse(text) == nil {
                reader.report("invalid URL '\(text)' (expected http:// or https:// with a host, e.g. http://otel-collector:4318)", at: endpointNode, path: fields.path("otlp_endpoint"))
            } else {
                endpoint = text
            }
        }
        let sample = fields["sample"].flatMap { reader.parsed($0, path: fields.path("sample"), ConfigValues.fraction) } ?? 1.0
        let serviceName = fields["service_name"].flatMap { reader.string($0, path: fields.path("service_name")) } ?? "switchyard"
        guard let endpoint else { return nil }
        return TelemetrySettings(otlpEndpoint: endpoint, sample: sample, serviceName: serviceName)
    }
}
