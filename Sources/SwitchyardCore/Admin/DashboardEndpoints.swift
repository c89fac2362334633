import HummingbirdCore
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// `GET /admin`, the dashboard page, and `GET /admin/events`, its live data: a `snapshot` event
/// once a second (``DashboardSnapshot``). The page holds no data and is served to anyone; the
/// events need what every admin call needs (``AdminEndpoints``). The stream ends when the caller
/// leaves or the router begins to drain, so an open dashboard never holds a shutdown back.
struct DashboardEndpoints: Sendable {
    let configuration: LiveConfiguration
    let observability: Observability
    let batches: BatchMachinery
    let clock: any RouterClock
    let wallClock: @Sendable () -> Int64
    let admin: AdminEndpoints
    let io: EndpointIO

    static let interval = Duration.seconds(1)

    func page(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        let body = ByteBuffer(string: DashboardPage.html)
        let headers: HTTPHeaders = [
            "content-type": "text/html; charset=utf-8", "content-length": String(body.readableBytes), "cache-control": "no-store",
            "content-security-policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'",
            "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
        ]
        try await writer.writeResponse(status: 200, headers: headers, body: body)
    }

    func events(_ request: EndpointRequest, _ writer: consuming ResponseWriter) async throws {
        guard case .success = admin.authorize(request.request, channel: request.channel) else { return try await admin.refuse(request, writer) }
        let headers: HTTPHeaders = ["content-type": "text/event-stream", "cache-control": "no-store", "x-accel-buffering": "no"]
        var body = try await writer.writeHead(status: 200, headers: headers)
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            var event = ByteBuffer(string: "event: snapshot\ndata: ")
            var snapshot = await snapshot()
            event.writeBuffer(&snapshot)
            event.writeString("\n\n")
            do {
                try await body.write(event)
                // Wall time, not the router clock: a test's manual clock must not make this spin.
                try await Task.sleep(for: Self.interval)
            } catch {
                return
            }
        }
        try? await body.finish(nil)
    }

    private func snapshot() async -> ByteBuffer {
        var recent: [BatchRecord] = []
        if let store = batches.currentStore, let page = try? await store.list(client: nil, limit: 10, afterID: nil, beforeID: nil) {
            recent = page.batches
        }
        return DashboardSnapshot.body(table: configuration.table, stats: observability.live, batches: recent, now: clock.now(), nowMs: wallClock())
    }
}
