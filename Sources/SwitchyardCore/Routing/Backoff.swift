/// How long to wait before another attempt on the same model.
public enum Backoff {
    /// `initial × multiplier^retryIndex`, capped at `max`, jittered, and never shorter than the
    /// upstream's `retry-after`.
    /// - Parameter retryIndex: 0 before the first retry on a model, 1 before the second, ...
    public static func delay(
        policy: BackoffPolicy,
        retryIndex: Int,
        retryAfter: Duration?,
        using random: inout some RandomNumberGenerator
    ) -> Duration {
        let cap = Double(policy.max.nanoseconds)
        var base = Double(policy.initial.nanoseconds)
        for _ in 0..<max(0, retryIndex) {
            base *= policy.multiplier
            if base >= cap { break }
        }
        base = min(base, cap)
        let jittered: Double
        switch policy.jitter {
        case .none: jittered = base
        case .full: jittered = base * Double.random(in: 0...1, using: &random)
        case .equal: jittered = base / 2 + base / 2 * Double.random(in: 0...1, using: &random)
        }
        let delay = Duration.nanoseconds(Int64(jittered))
        guard let retryAfter else { return delay }
        return max(delay, retryAfter)
    }
}
