/// The counts `switchyard replay` compares, made the same way from the recording and from a
/// candidate's replay.
public struct ReplaySummary: Sendable, Equatable {
    public var requests = 0
    /// Answered 2xx.
    public var answered = 0
    /// What callers were told when it was not a 2xx: by status, and `stream_error` for an
    /// `event: error` after a 200.
    public var callerErrors: [String: Int] = [:]
    /// The caller left before the answer.
    public var cancelled = 0
    /// Reached a model the recording never tried.
    public var unknown = 0
    /// Served by a model other than the route's first.
    public var downgrades = 0
    public var attempts = 0
    public var maxAttempts = 0
    /// Requests whose answer (success or error) came from each model.
    public var served: [String: Int] = [:]
    public var attemptsOn: [String: Int] = [:]
    /// Time on each model: the sum of its attempts' durations (a stream's until its end).
    public var timeOn: [String: Duration] = [:]
    /// Breaker transitions of each model, in order.
    public var transitions: [String: [TimedTransition]] = [:]

    public init(results: [RequestResult], transitions: [TimedTransition]) {
        for result in results {
            requests += 1
            switch result.answerKey {
            case "ok": answered += 1
            case "cancelled": cancelled += 1
            case RequestResult.unknownOutcome: unknown += 1
            case let key: callerErrors[key, default: 0] += 1
            }
            if result.downgraded { downgrades += 1 }
            attempts += result.attempts.count
            maxAttempts = max(maxAttempts, result.attempts.count)
            if let model = result.model { served[model, default: 0] += 1 }
            for attempt in result.attempts {
                attemptsOn[attempt.model, default: 0] += 1
                timeOn[attempt.model, default: .zero] += attempt.duration
            }
        }
        for transition in transitions {
            self.transitions[transition.model, default: []].append(transition)
        }
    }

    public var callerErrorCount: Int { callerErrors.values.reduce(0, +) }
    public var transitionCount: Int { transitions.values.reduce(0) { $0 + $1.count } }
    public var meanAttempts: Double { requests == 0 ? 0 : Double(attempts) / Double(requests) }

    /// Whether another summary has the same counts: requests, answers and errors by status,
    /// downgrades, attempts, what each model served, and each model's breaker transitions in the
    /// same order (instants and reason texts aside).
    public func sameCounts(as other: ReplaySummary) -> Bool {
        func sequences(_ summary: ReplaySummary) -> [String: [String]] {
            summary.transitions.mapValues { $0.map { "\($0.from.rawValue)>\($0.to.rawValue)" } }
        }
        return requests == other.requests && answered == other.answered && callerErrors == other.callerErrors && cancelled == other.cancelled
            && unknown == other.unknown && downgrades == other.downgrades && attempts == other.attempts && maxAttempts == other.maxAttempts
            && served == other.served && attemptsOn == other.attemptsOn && sequences(self) == sequences(other)
    }
}
