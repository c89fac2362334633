import NIOCore

/// One `snapshot` event of `/admin/events`: routes and models with their breakers and figures
/// over the last 15 minutes, the latest decisions (downgrades first), and batches in progress.
/// The dashboard page (``DashboardPage``) renders exactly this.
enum DashboardSnapshot {
    static func body(table: RoutingTable, stats: LiveStats, batches: [BatchRecord], now: MonotonicInstant, nowMs: Int64) -> ByteBuffer {
        var json = JSONWriter(capacity: 16 << 10)
        json.beginObject()
        json.field("now_ms", nowMs)
        json.field("bucket_ms", LiveStats.bucketMs)
        json.key("routes")
        json.beginArray()
        for route in table.routes {
            let figures = stats.route(route.name, nowMs: nowMs)
            json.beginObject()
            json.field("name", route.name)
            json.key("models")
            json.beginArray()
            for model in route.models { json.string(model.name) }
            json.endArray()
            write(figures, to: &json)
            json.key("history")
            json.beginObject()
            writeHistory(figures, to: &json)
            json.key("served")
            json.beginObject()
            for model in route.models {
                json.key(dynamic: model.name)
                json.beginArray()
                for count in stats.served(route: route.name, model: model.name, nowMs: nowMs) { json.int(count) }
                json.endArray()
            }
            json.endObject()
            json.endObject()
            json.endObject()
        }
        json.endArray()
        table.writeModels(into: &json) { model, state, json in
            let breaker = state.breaker
            let effective = breaker.effectiveState(now: now)
            let figures = stats.model(model.name, nowMs: nowMs)
            json.field("platform", model.provider.platform.rawValue)
            json.field("breaker", effective.rawValue)
            json.key("open_remaining_ms")
            if effective == .open { json.int((breaker.openUntil - now).milliseconds) } else { json.null() }
            json.field("consecutive_failures", breaker.consecutiveFailures)
            json.field("drained", state.disabledBy != nil)
            json.key("drained_by")
            if let by = state.disabledBy { json.string(by) } else { json.null() }
            json.key("rate_limited_remaining_ms")
            if let until = state.rateLimitedUntil, until > now { json.int((until - now).milliseconds) } else { json.null() }
            json.field("in_flight", state.inFlight)
            write(figures, to: &json)
            json.key("last_error")
            if let last = state.lastError { json.string(last.description) } else { json.null() }
            json.key("history")
            json.beginObject()
            writeHistory(figures, to: &json)
            json.endObject()
        }
        json.key("decisions")
        json.beginArray()
        for decision in stats.decisions(50) {
            json.beginObject()
            json.field("ts_ms", decision.timestampMs)
            json.field("request_id", decision.requestID)
            json.field("route", decision.route)
            json.key("model")
            if let model = decision.model { json.string(model) } else { json.null() }
            json.field("downgraded", decision.downgraded)
            json.field("status", decision.status)
            json.field("outcome", decision.outcome)
            json.key("attempts")
            json.beginArray()
            for attempt in decision.attempts { json.string(attempt) }
            json.endArray()
            json.field("duration_ms", decision.durationMs)
            json.endObject()
        }
        json.endArray()
        json.key("batches")
        json.beginArray()
        for batch in batches {
            json.beginObject()
            json.field("id", batch.id)
            json.field("processing_status", BatchJSON.processingStatus(batch))
            json.field("created_at_ms", batch.createdAtMs)
            BatchJSON.requestCounts(batch.counts, into: &json)
            json.endObject()
        }
        json.endArray()
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }

    private static func write(_ figures: LiveStats.Figures, to json: inout JSONWriter) {
        json.key("rps")
        json.double(rounded(figures.ratePerSecond))
        json.key("error_share")
        json.double(rounded(figures.errorShare))
        json.key("p50_ms")
        if let p50 = figures.p50Ms { json.double(rounded(p50)) } else { json.null() }
        json.key("p99_ms")
        if let p99 = figures.p99Ms { json.double(rounded(p99)) } else { json.null() }
    }

    private static func writeHistory(_ figures: LiveStats.Figures, to json: inout JSONWriter) {
        json.key("rps")
        json.beginArray()
        for value in figures.rate { json.double(rounded(value)) }
        json.endArray()
        json.key("error_share")
        json.beginArray()
        for value in figures.errorShares { json.double(rounded(value)) }
        json.endArray()
        for (name, values) in [("p50_ms", figures.p50), ("p99_ms", figures.p99)] {
            json.key(dynamic: name)
            json.beginArray()
            for value in values {
                if let value { json.double(rounded(value)) } else { json.null() }
            }
            json.endArray()
        }
    }

    private static func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}
