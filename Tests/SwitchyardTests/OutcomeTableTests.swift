import Testing

@testable import SwitchyardCore

/// Every row of the attempt-outcome table (README, "Routing, retries and failover"), as the pure classifier says it.
@Suite("Attempt outcome table")
struct OutcomeTableTests {
    func verdict(_ status: Int, retryAfter: Duration? = nil, shouldRetry: Bool? = nil, type: String? = nil) -> AttemptVerdict {
        AttemptVerdict.classify(.response(status: status, errorType: type, retryAfter: retryAfter, shouldRetry: shouldRetry))
    }

    @Test(arguments: [200, 201, 204, 299])
    func row2xxIsDoneAndASuccess(status: Int) {
        let v = verdict(status)
        #expect(v.next == .done)
        #expect(v.breaker == .success)
    }

    @Test(arguments: [400, 401, 403, 404, 405, 413, 422, 451, 499])
    func row4xxIsReturnedAsIsAndLeavesTheBreaker(status: Int) {
        let v = verdict(status)
        #expect(v.next == .returnAsIs)
        #expect(v.breaker == .neutral)
        #expect(v.rateLimitFor == nil)
    }

    @Test(arguments: [408, 409])
    func row408And409RetryOnTheSameModelWithoutBlame(status: Int) {
        let v = verdict(status, retryAfter: .seconds(2))
        #expect(v.next == .retrySameModel)
        #expect(v.breaker == .neutral)
        #expect(v.retryAfter == .seconds(2))
    }

    @Test func row429MovesOnAndRateLimitsTheModel() {
        let v = verdict(429, retryAfter: .seconds(7))
        #expect(v.next == .nextModel)
        #expect(v.breaker == .neutral)
        #expect(v.rateLimitFor == .seconds(7))
        #expect(verdict(429).rateLimitFor == .seconds(10), "default skip without retry-after")
        #expect(verdict(429, retryAfter: .seconds(3600)).rateLimitFor == .seconds(300), "capped at 5 minutes")
    }

    @Test(arguments: [500, 502, 503, 504])
    func row5xxRetriesAndCountsAsAFailure(status: Int) {
        let v = verdict(status)
        #expect(v.next == .retrySameModel)
        #expect(v.breaker == .failure(cause: String(status)))
    }

    @Test func row529MovesOnAtOnceAndCountsAsAFailure() {
        let v = verdict(529, type: "overloaded_error")
        #expect(v.next == .nextModel)
        #expect(v.breaker == .failure(cause: "529"))
        #expect(v.rateLimitFor == nil)
    }

    @Test(arguments: [TransportFailure.connect, .tls, .reset, .timeout])
    func rowTransportFailuresRetryAndCountAsFailures(failure: TransportFailure) {
        let v = AttemptVerdict.classify(.transport(failure))
        #expect(v.next == .retrySameModel)
        #expect(v.breaker == .failure(cause: failure.rawValue))
    }

    @Test(arguments: [400, 408, 429, 500, 503, 529])
    func rowShouldRetryFalseStopsButKeepsTheBreakerEffect(status: Int) {
        let plain = verdict(status)
        let v = verdict(status, shouldRetry: false)
        #expect(v.next == .returnAsIs)
        #expect(v.breaker == plain.breaker, "breaker as its status says")
        #expect(v.rateLimitFor == nil)
        #expect(verdict(200, shouldRetry: false).next == .done)
    }

    @Test func rowStreamErrorBeforeCommitMovesOnAsAFailure() {
        let overloaded = AttemptVerdict.classify(.streamFailedBeforeCommit(errorType: "overloaded_error", failure: nil))
        #expect(overloaded.next == .nextModel)
        #expect(overloaded.breaker == .failure(cause: "overloaded_error"))
        let cut = AttemptVerdict.classify(.streamFailedBeforeCommit(errorType: nil, failure: .reset))
        #expect(cut.next == .nextModel)
        #expect(cut.breaker == .failure(cause: "reset"))
        // A rate limit reported inside the stream is a rate limit, not a health problem.
        let limited = AttemptVerdict.classify(.streamFailedBeforeCommit(errorType: "rate_limit_error", failure: nil))
        #expect(limited.breaker == .neutral)
        #expect(limited.rateLimitFor != nil)
    }

    @Test func invalidSuccessBodyIsAFailure() {
        let v = AttemptVerdict.classify(.invalidResponse(reason: "not JSON"))
        #expect(v.next == .retrySameModel)
        #expect(v.breaker == .failure(cause: "invalid_response"))
    }
}
