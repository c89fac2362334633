import NIOHTTP1

/// A validated caller request, ready to be routed.
struct ProxyRequest: Sendable {
    var requestID: String
    /// Sent upstream as `idempotency-key` on every attempt: the caller's own, or the request id.
    var idempotencyKey: String
    var api: UpstreamAPI
    var body: InboundBody
    var inboundHeaders: HTTPHeaders
    /// The query string, without `?` (the SDK's beta calls add `beta=true`).
    var query: Substring?
}
