/// The resolved routing table as `switchyard check` prints it.
public enum RoutingTableDescription {
    public static func render(_ config: SwitchyardConfig) -> String {
        var lines: [String] = []
        let s = config.server
        lines.append(
            "\(config.source): OK — \(config.routes.count) route\(config.routes.count == 1 ? "" : "s"), "
                + "\(config.models.count) model\(config.models.count == 1 ? "" : "s"), "
                + "\(config.providers.count) provider\(config.providers.count == 1 ? "" : "s")"
        )
        lines.append(
            "server: listen \(s.listen), max_body \(ConfigValues.sizeNotation(s.maxBody)), request_timeout \(s.requestTimeout.configNotation), "
                + "drain_timeout \(s.drainTimeout.configNotation), admin token \(s.adminTokenEnv.map { "from $\($0)" } ?? "none (loopback only)")"
        )
        if config.clients.isEmpty {
            lines.append("clients: none (callers are not authenticated by Switchyard)")
        } else {
            for client in config.clients {
                let routes = client.allowedRoutes.map { $0.sorted().joined(separator: ", ") } ?? "all routes"
                lines.append("client \(client.name): key from $\(client.keyEnv), \(routes)")
            }
        }
        if let batches = config.batches {
            lines.append(
                "batches: \(batches.mode.rawValue) mode, store \(batches.storeDescription), concurrency \(batches.concurrency), "
                    + "expires_after \(batches.expiresAfter.configNotation), probe_grace \(batches.probeGrace.configNotation), "
                    + "max_backoff \(batches.maxBackoff.configNotation)"
            )
        } else {
            lines.append("batches: off (no batches: section; the Message Batches endpoints answer 404)")
        }
        if let telemetry = config.telemetry {
            lines.append(
                "telemetry: OTLP/HTTP traces to \(telemetry.tracesURL), sample \(formatNumber(telemetry.sample * 100))%, service \(telemetry.serviceName)"
            )
        } else {
            lines.append("telemetry: off (no telemetry: section)")
        }
        if let fleet = config.fleet {
            lines.append(
                "fleet: shared health on PostgreSQL (the batch store's database, LISTEN/NOTIFY), replica \(fleet.replica)"
            )
        } else {
            lines.append("fleet: off (each replica keeps its models' health to itself)")
        }
        for provider in config.providers {
            let t = provider.timeouts
            lines.append(
                "provider \(provider.name): \(provider.platform) at \(provider.baseURL), \(provider.settings.credentialDescription), "
                    + (provider.settings.settingsDescription.map { "\($0), " } ?? "")
                    + "timeouts connect \(t.connect.configNotation) first_byte \(t.firstByte.configNotation) idle \(t.idle.configNotation), "
                    + "max_connections \(provider.maxConnections), queue_timeout \(provider.queueTimeout.configNotation)"
            )
            var egress = [provider.proxy?.description ?? "direct (no proxy)"]
            if provider.baseURL.isTLS { egress.append("trust: \(provider.trust.description)") }
            lines.append("  egress: " + egress.joined(separator: ", "))
        }
        lines.append("")
        for route in config.routes {
            let aliases = route.aliases.isEmpty ? "no aliases" : "aliases: \(route.aliases.joined(separator: ", "))"
            let recovery = route.streamRecovery.map { "continue, max_resumes \($0.maxResumes)" } ?? "off"
            lines.append(
                "route \(route.name) (\(aliases); strategy \(route.strategy.rawValue); when_all_unavailable \(route.whenAllUnavailable.rawValue); "
                    + "stream_recovery \(recovery))"
            )
            let r = route.retry
            let b = r.backoff
            lines.append(
                "  retry: max_attempts \(r.maxAttempts), per_model \(r.perModel), backoff \(b.initial.configNotation) ×\(formatNumber(b.multiplier)) "
                    + "up to \(b.max.configNotation), jitter \(b.jitter.rawValue)"
            )
            lines.append("  headroom: \(describe(route.headroom)); retry_budget: \(route.retryBudget.map { describe($0) } ?? "off (every retry is made)")")
            let width = route.models.map(\.count).max() ?? 0
            for (index, name) in route.models.enumerated() {
                guard let model = config.model(named: name), let provider = config.provider(named: model.provider) else { continue }
                let padded = name.padding(toLength: width, withPad: " ", startingAt: 0)
                lines.append("  \(index + 1). \(padded) → \(provider.name) (\(provider.platform)) \(model.upstreamModel)")
                let url = provider.settings.url(base: provider.baseURL, upstreamModel: model.upstreamModel, api: .messages, stream: false)
                let streamURL = provider.settings.url(base: provider.baseURL, upstreamModel: model.upstreamModel, api: .messages, stream: true)
                lines.append("     POST \(url)\(streamURL == url ? "" : " (streams: \(streamURL))")")
                lines.append("     breaker: \(describe(model.breaker))")
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    static func describe(_ breaker: BreakerPolicy) -> String {
        var text = "opens after \(breaker.failureThreshold) consecutive failures"
        if let rate = breaker.failureRate {
            text += " or \(Int((rate.threshold * 100).rounded()))% failed over \(rate.window.configNotation) (min \(rate.minRequests) requests)"
        }
        text += "; open \(breaker.openFor.configNotation) doubling to \(breaker.maxOpenFor.configNotation); \(breaker.halfOpenProbes) half-open probe"
        if breaker.halfOpenProbes != 1 { text += "s" }
        return text
    }

    static func describe(_ headroom: HeadroomPolicy) -> String {
        headroom.minRemaining == 0
            ? "min_remaining 0% (never skipped for headroom)"
            : "skip a model below \(formatNumber((headroom.minRemaining * 10_000).rounded() / 100))% of a rate limit remaining until its reset"
    }

    static func describe(_ budget: RetryBudgetPolicy) -> String {
        "retries in flight up to \(formatNumber((budget.percent * 10_000).rounded() / 100))% of active requests, or \(formatNumber(budget.minPerSecond)) a second"
    }

    private static func formatNumber(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

extension String {
    func padding(toLength length: Int, withPad pad: String, startingAt _: Int) -> String {
        count >= length ? self : self + String(repeating: pad, count: length - count)
    }
}
