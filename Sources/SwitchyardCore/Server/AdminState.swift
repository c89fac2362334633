import NIOCore

/// `GET /admin/state`: routes, and per model everything on-call needs to decide what to do.
/// Never a key or a prompt: the last error is the attempt's summary (status, type, request id).
enum AdminState {
    static func body(table: RoutingTable, now: MonotonicInstant, configPath: String?, fleet: FleetOutbox? = nil) -> ByteBuffer {
        let wallNow = WallClock.nowMilliseconds()
        func wall(_ instant: MonotonicInstant) -> String {
            ISO8601.format(milliseconds: wallNow + (instant - now).milliseconds)
        }
        var json = JSONWriter(capacity: 1024)
        json.beginObject()
        json.field("config", configPath)
        json.field("ready", Readiness.evaluate(table: table, now: now).isReady)
        if let fleet {
            json.key("fleet")
            json.beginObject()
            json.field("replica", fleet.replica)
            json.field("connected", fleet.isConnected)
            json.field("pending_events", fleet.pending)
            json.endObject()
        }
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
            json.key("headroom_min_remaining")
            json.double(route.spec.headroom.minRemaining)
            if let budget = route.retryBudget {
                let (active, retries) = budget.withBudget { ($0.activeRequests, $0.activeRetries) }
                json.key("retry_budget")
                json.beginObject()
                json.key("percent")
                json.double((budget.policy.percent * 10_000).rounded() / 100)
                json.key("min_per_second")
                json.double(budget.policy.minPerSecond)
                json.field("active_requests", active)
                json.field("active_retries", retries)
                json.endObject()
            }
            json.endObject()
        }
        json.endArray()
        table.writeModels(into: &json) { model, state, json in
            let breaker = state.breaker
            json.field("breaker", breaker.effectiveState(now: now).rawValue)
            json.field("consecutive_failures", breaker.consecutiveFailures)
            if breaker.state == .open {
                json.field("open_until", wall(breaker.openUntil))
                json.field("open_remaining_ms", max(0, (breaker.openUntil - now).milliseconds))
                json.field("open_from_peer", state.openPeer)
            }
            json.field("trips", breaker.trips)
            json.field("half_open_probes_in_flight", breaker.probesInFlight)
            if let until = state.rateLimitedUntil, until > now {
                json.field("rate_limited_until", wall(until))
                if let peer = state.rateLimitPeer, peer.until == until { json.field("rate_limited_from_peer", peer.replica) }
            }
            writeHeadroom(state.headroom, floor: model.headroomFloor, now: now, wall: wall, into: &json)
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
        }
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }

    /// `headroom`: per kind the upstream reported, its limit, remaining count and share, and
    /// reset; `headroom_skipped_until` while the share is below the highest `min_remaining` of
    /// the model's routes.
    private static func writeHeadroom(_ headroom: Headroom, floor: Double, now: MonotonicInstant, wall: (MonotonicInstant) -> String, into json: inout JSONWriter) {
        guard HeadroomKind.allCases.contains(where: { headroom[$0] != nil }) else { return }
        json.headroom({ headroom[$0] }) { bucket, json in
            json.field("limit", bucket.limit)
            json.field("remaining", bucket.remaining)
            if let share = bucket.share {
                json.key("remaining_ratio")
                json.double((share * 10_000).rounded() / 10_000)
            }
            if let reset = bucket.resetAt {
                json.field("reset", wall(reset))
                json.field("reset_passed", now >= reset)
            }
            json.field("from_peer", bucket.peer)
        }
        if let skip = headroom.skipUntil(now: now, minRemaining: floor) {
            json.field("headroom_skipped_until", wall(skip.until))
        }
    }
}

extension RoutingTable.Model {
    /// Opens a model's object in `/admin/state` and the dashboard's snapshot with the fields
    /// that say which model it is.
    func writeIdentity(into json: inout JSONWriter) {
        json.beginObject()
        json.field("name", name)
        json.field("provider", provider.name)
        json.field("upstream_model", spec.upstreamModel)
    }
}

extension RoutingTable {
    /// `"models": [...]`, one object per model opened with its identity; `body` writes the rest
    /// from the model's health as it stands (`/admin/state` and the dashboard's snapshot).
    func writeModels(into json: inout JSONWriter, _ body: (Model, ModelState, inout JSONWriter) -> Void) {
        json.key("models")
        json.beginArray()
        for model in models {
            model.writeIdentity(into: &json)
            body(model, model.health.snapshot, &json)
            json.endObject()
        }
        json.endArray()
    }
}
