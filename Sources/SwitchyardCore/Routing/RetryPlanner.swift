/// The attempt budget of one request: which model the next attempt may use and how long to wait.
/// Pure: the engine feeds it verdicts and the time, and carries out the step it returns.
public struct RetryPlanner: Sendable {
    public enum Step: Sendable, Equatable {
        /// Another attempt on the same model after `delay`.
        case retrySameModel(delay: Duration)
        /// Select among the models not yet left, with no wait.
        case moveOn
        case stop(StopReason)
    }

    public enum StopReason: Sendable, Equatable {
        /// The attempt's answer goes to the caller (success or non-retryable).
        case answered
        /// `max_attempts` spent, or every model left.
        case exhausted
        /// Waiting would overrun `request_timeout`.
        case deadline
        /// The route's `retry_budget` refused the next attempt (the engine's word, from ``RetryBudget``).
        case retryBudget
    }

    public let policy: RetryPolicy
    public let modelCount: Int
    public let deadline: MonotonicInstant
    public private(set) var attempts = 0
    public private(set) var attemptsOnCurrent = 0
    public private(set) var current: Int?
    /// Route positions the request has left; it never returns to them.
    public private(set) var left: Set<Int> = []

    public init(policy: RetryPolicy, modelCount: Int, deadline: MonotonicInstant) {
        self.policy = policy
        self.modelCount = modelCount
        self.deadline = deadline
    }

    public var hasAttemptsLeft: Bool { attempts < policy.maxAttempts }

    /// Records that an attempt is being sent to the model at `index` of the route.
    public mutating func willAttempt(modelAt index: Int) {
        if current != index {
            if let current { left.insert(current) }
            current = index
            attemptsOnCurrent = 0
        }
        attempts += 1
        attemptsOnCurrent += 1
    }

    /// The current model could not take a retry (its breaker opened, it got rate-limited):
    /// leave it.
    public mutating func leaveCurrent() {
        if let current { left.insert(current) }
        current = nil
    }

    public mutating func next(after verdict: AttemptVerdict, now: MonotonicInstant, using random: inout some RandomNumberGenerator) -> Step {
        switch verdict.next {
        case .done, .returnAsIs:
            return .stop(.answered)
        case .retrySameModel, .nextModel, .nextModelOnly:
            break
        }
        guard attempts < policy.maxAttempts else { return .stop(.exhausted) }
        guard now < deadline else { return .stop(.deadline) }
        let othersRemain = (0..<modelCount).contains { $0 != current && !left.contains($0) }
        let wantsToMove = verdict.next == .nextModel || verdict.next == .nextModelOnly || attemptsOnCurrent >= policy.perModel
        if wantsToMove, othersRemain {
            leaveCurrent()
            return .moveOn
        }
        if verdict.next == .nextModelOnly {
            leaveCurrent()
            return .stop(.exhausted)
        }
        guard attemptsOnCurrent < policy.perModel else {
            leaveCurrent()
            return .stop(.exhausted)
        }
        let delay = Backoff.delay(
            policy: policy.backoff, retryIndex: attemptsOnCurrent - 1, retryAfter: verdict.retryAfter, using: &random
        )
        guard now + delay < deadline else { return .stop(.deadline) }
        return .retrySameModel(delay: delay)
    }
}
