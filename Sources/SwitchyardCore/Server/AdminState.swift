import NIOCore

/// `GET /admin/state`: routes, and per model everything on-call needs to decide what to do.
/// Never a key or a prompt: the last error is the attempt's summary (status, type, request id).
enum AdminState {
    static func body(table: RoutingTable, now: MonotonicInstant, configPath: String?) -> ByteBuffer {
        let wallNow = WallClock.nowMilliseconds()
        func wall(_ instant: MonotonicInstant) -> String {
            ISO8601.format(milliseconds: wallNow + (instant - now).milliseconds)
        }
        var json = JSONWriter(capacity: 1024)
        json.beginObject()
        json.field("config", configPath)
        json.field("ready", Readiness.evaluate(table: table, now: now).isReady)
        json.key("routes")
        json.beginArray()
        for route in table.routes {
            json.beginObject()
            json.field("name", route.name)
            json.key("aliases")
            json.beginArray()
            for alias in route.spec.aliases { json.string(alias) }
            json.endArray()
            json.key("models")
            json.beginArray()
            for model in route.models { json.string(model.name) }
            json.endArray()
            json.field("strategy", "priority")
            json.field("when_all_unavailable", route.spec.whenAllUnavailable.rawValue)
            json.endObject()
        }
        json.endArray()
        json.key("models")
        json.beginArray()
        for model in table.models {
            let state = model.health.snapshot
            let breaker = state.breaker
            json.beginObject()
            json.field("name", model.name)
            json.field("provider", model.provider.name)
            json.field("upstream_model", model.spec.upstreamModel)
            json.field("breaker", breaker.effectiveState(now: now).rawValue)
            json.field("consecutive_failures", breaker.consecutiveFailures)
            if breaker.state == .open {
                json.field("open_until", wall(breaker.openUntil))
                json.field("open_remaining_ms", max(0, (breaker.openUntil - now).milliseconds))
            }
            json.field("trips", breaker.trips)
            json.field("half_open_probes_in_flight", breaker.probesInFlight)
            if let until = state.rateLimitedUntil, until > now {
                json.field("rate_limited_until", wall(until))
            }
            json.field("in_flight", state.inFlight)
            if let ewma = state.latencyEWMA {
                json.key("latency_ewma_ms")
                json.double((ewma * 10).rounded() / 10)
            }
            json.field("disabled", state.disabledBy != nil)
            json.field("disabled_by", state.disabledBy)
            if let last = state.lastError {
                json.key("last_error")
                json.beginObject()
                json.field("at", ISO8601.format(milliseconds: last.wallMilliseconds))
                json.field("description", last.description)
                json.field("upstream_request_id", last.upstreamRequestID)
                json.endObject()
            }
            json.endObject()
        }
        json.endArray()
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }
}
