/// What the caller is told when a request's walk ends without an answer to relay: every attempt
/// failed, the budget ran out, or nothing admitted it. Pure: the attempts in, the error out.
enum ExhaustedRoute {
    /// The last upstream error's status and type, with a message naming every model tried — or,
    /// when no upstream answered, 502 (connection failures), 504 (timeouts), or 529 when the
    /// router's own connection limit stood in the way; an error after spent attempts tells SDKs
    /// not to retry.
    static func error(
        route: RoutingTable.Route, attempts: [AttemptRecord], decisions: [DecisionEntry], reason: RetryPlanner.StopReason, requestTimeout: Duration
    ) -> RouterError {
        let triedModels = attempts.reduce(into: [String]()) { if !$0.contains($1.model) { $0.append($1.model) } }
        var message: String
        if attempts.isEmpty {
            message = "route '\(route.name)' sent no attempt"
        } else if triedModels.count == route.models.count {
            message = "all \(triedModels.count) models of route '\(route.name)' failed: "
        } else {
            message = "\(attempts.count) attempt\(attempts.count == 1 ? "" : "s") on route '\(route.name)' failed: "
        }
        message += attempts.map(\.summary).joined(separator: "; ")
        let skipped = skippedSummary(decisions, excluding: Set(triedModels))
        if !skipped.isEmpty { message += "; not tried: \(skipped)" }
        if reason == .deadline { message += "; request_timeout of \(requestTimeout.configNotation) reached" }
        if reason == .retryBudget { message += "; no retry: the retry budget of route '\(route.name)' is spent (retry_budget)" }

        var routerError: RouterError
        // An upstream error status is passed on; a 2xx that could not be used (invalid body,
        // broken stream) is not an answer and must never reach the caller as a success status.
        if let refused = attempts.last, refused.credentialsRefused, let platformStatus = refused.platformStatus {
            // The last word was a platform refusing Switchyard's own credentials: the caller
            // learns it as Anthropic's authentication or permission error, not as a bare 502.
            let (status, type) = platformStatus == 403 ? (403, "permission_error") : (401, "authentication_error")
            let platform = refused.platform.map { "\($0) " } ?? ""
            let refusal = "the \(platform)platform refused Switchyard's credentials for provider '\(refused.provider ?? refused.model)' "
                + "(\(refused.platformError.map { "\($0), " } ?? "")HTTP \(platformStatus)); "
            routerError = RouterError(status: status, type: type, message: refusal + message, outcome: .upstreamError)
        } else if attempts.allSatisfy({ $0.status == nil }), attempts.contains(where: { $0.error == TransportFailure.capacity.rawValue }) {
            // No upstream answered and the router's own connection limit stood in the way: the
            // caller may come back shortly, which is not so after an upstream's failure.
            return RouterError.capacityExhausted(route: route.name, detail: message)
        } else if let answered = attempts.last(where: { ($0.status ?? 0) >= 300 }), let status = answered.status {
            routerError = RouterError(
                status: status, type: answered.errorType ?? AnthropicErrorEnvelope.type(forStatus: status), message: message, outcome: .upstreamError
            )
        } else if attempts.last?.error == TransportFailure.timeout.rawValue || (reason == .deadline && attempts.last?.status == nil) {
            routerError = RouterError(status: 504, type: "timeout_error", message: message, outcome: .upstreamError)
        } else {
            routerError = RouterError(status: 502, type: "api_error", message: message, outcome: .upstreamError)
        }
        routerError.shouldRetry = false
        return routerError
    }

    /// `haiku (breaker open), opus (drained)`: the models the decision skipped, once each.
    static func skippedSummary(_ decisions: [DecisionEntry], excluding tried: Set<String>) -> String {
        var seen: Set<String> = tried
        var parts: [String] = []
        for entry in decisions where entry.action == .skipped && !seen.contains(entry.model) {
            seen.insert(entry.model)
            parts.append("\(entry.model) (\(entry.reason ?? "skipped"))")
        }
        return parts.joined(separator: ", ")
    }
}
