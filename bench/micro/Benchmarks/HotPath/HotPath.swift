import Benchmark
import NIOHTTP1
import SwitchyardCore

/// The per-request decisions Switchyard makes, without I/O: time and allocations per operation.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .instructions],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000
    )

    let yaml = """
        version: 1
        providers:
          anthropic: { type: anthropic, base_url: "https://api.anthropic.com", api_key_env: KEY }
        models:
          opus: { provider: anthropic, model: claude-opus-4-1-20250805 }
          sonnet: { provider: anthropic, model: claude-sonnet-4-20250514 }
          haiku: { provider: anthropic, model: claude-3-5-haiku-20241022 }
        routes:
          default: { models: [sonnet, haiku], aliases: [claude-sonnet-4-20250514, claude-sonnet-4-0] }
          reasoning: { models: [opus, sonnet], aliases: [claude-opus-4-1] }
        """
    let config = try! ConfigLoader(environment: ["KEY": "k"]).load(yaml: yaml, source: "bench").config
    let table = RoutingTable(config: config)
    let now = MonotonicInstant(nanoseconds: 1_000_000_000_000)

    Benchmark("route resolution (alias lookup)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(table.route(named: "claude-sonnet-4-0"))
        }
    }

    Benchmark("routing decision: resolve + select + breaker check + release") { benchmark in
        var decisions: [DecisionEntry] = []
        var transitions: [ObservedTransition] = []
        decisions.reserveCapacity(4)
        transitions.reserveCapacity(2)
        for _ in benchmark.scaledIterations {
            decisions.removeAll(keepingCapacity: true)
            let route = table.route(named: "claude-sonnet-4-0")!
            let result = ModelSelector.select(
                route: route, preferred: nil, left: [], now: now, allowForcedProbe: true, decisions: &decisions, transitions: &transitions
            )
            if case .selected(let selection) = result {
                _ = route.models[selection.index].health.withState { $0.finish(selection.ticket, effect: .neutral, now: now) }
            }
            blackHole(result)
        }
    }

    Benchmark("routing decision with the primary's breaker open") { benchmark in
        let route = table.route(named: "reasoning")!
        route.models[0].health.withState { state in
            for _ in 0..<5 {
                if case .admitted(let ticket) = state.tryAdmit(now: now).0 {
                    _ = state.finish(ticket, effect: .failure(cause: "500"), now: now)
                }
            }
        }
        var decisions: [DecisionEntry] = []
        var transitions: [ObservedTransition] = []
        decisions.reserveCapacity(4)
        transitions.reserveCapacity(2)
        for _ in benchmark.scaledIterations {
            decisions.removeAll(keepingCapacity: true)
            let result = ModelSelector.select(
                route: route, preferred: nil, left: [], now: now, allowForcedProbe: true, decisions: &decisions, transitions: &transitions
            )
            if case .selected(let selection) = result {
                _ = route.models[selection.index].health.withState { $0.finish(selection.ticket, effect: .neutral, now: now) }
            }
            blackHole(result)
        }
    }

    Benchmark("outcome classification") { benchmark in
        let outcomes: [AttemptOutcome] = [
            .response(status: 200, errorType: nil, retryAfter: nil, shouldRetry: nil),
            .response(status: 529, errorType: "overloaded_error", retryAfter: nil, shouldRetry: nil),
            .response(status: 429, errorType: "rate_limit_error", retryAfter: .seconds(3), shouldRetry: nil),
            .transport(.timeout),
        ]
        var index = 0
        for _ in benchmark.scaledIterations {
            blackHole(AttemptVerdict.classify(outcomes[index & 3]))
            index &+= 1
        }
    }

    Benchmark("headroom: read an answer's rate-limit headers and merge them") { benchmark in
        // An Anthropic answer's head as it comes: the twelve rate-limit lines among the others.
        var lines = [("content-type", "application/json"), ("request-id", "req_011CV3kVKFh4p2sH9EnVjXp6"), ("x-should-retry", "false")]
        for kind in ["requests", "tokens", "input-tokens", "output-tokens"] {
            lines.append(("anthropic-ratelimit-\(kind)-limit", "4000000"))
            lines.append(("anthropic-ratelimit-\(kind)-remaining", "3999123"))
            lines.append(("anthropic-ratelimit-\(kind)-reset", "2026-01-31T12:00:05Z"))
        }
        let headers = HTTPHeaders(lines)
        var headroom = Headroom()
        for _ in benchmark.scaledIterations {
            if let reading = AnthropicRateLimitHeaders.read(headers) {
                blackHole(headroom.merge(reading, now: now, wallNowMs: 1_769_860_800_000))
            }
        }
    }

    Benchmark("audit line encoding (one attempt)") { benchmark in
        var record = RequestAuditRecord(timestampMs: 1_795_000_000_000, requestID: "sy_01M88721RVPGPH31GVX34AART0", api: "messages")
        record.route = "default"
        record.requestedModel = "claude-sonnet-4-0"
        record.status = 200
        record.model = "sonnet"
        record.upstreamModel = "claude-sonnet-4-20250514"
        record.upstreamRequestID = "req_011CV3kVKFh4p2sH9EnVjXp6"
        record.decision = [DecisionEntry(model: "sonnet", breaker: .closed, action: .sent, reason: nil)]
        var attempt = AttemptRecord(model: "sonnet")
        attempt.status = 200
        attempt.upstreamRequestID = "req_011CV3kVKFh4p2sH9EnVjXp6"
        attempt.durationMs = 431
        attempt.ttfbMs = 212
        record.attempts = [attempt]
        record.durationMs = 433
        // As the audit writer does: each line onto a batch buffer that keeps its capacity.
        var batch: [UInt8] = []
        for _ in benchmark.scaledIterations {
            record.encode(into: &batch)
            blackHole(batch.count)
            batch.removeAll(keepingCapacity: true)
        }
    }
}
