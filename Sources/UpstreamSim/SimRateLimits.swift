import Foundation
import Synchronization

/// The rate limits an Anthropic-mode simulator reports on every Messages answer, as Anthropic
/// does: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`.
/// Each kind is a bucket with a fixed window: requests count down by one per answer, tokens by
/// the answer's usage, and the bucket is whole again at its reset. A request that finds no
/// request left is answered 429 with `retry-after` until the reset. The `drain(...)` script
/// step sets a bucket's remaining count (and optionally its limit and reset) for a scene.
public final class SimRateLimits: Sendable {
    public enum Kind: Int, CaseIterable, Sendable {
        case requests
        case tokens
        case inputTokens
        case outputTokens

        /// The header infix and the `drain(...)` argument name.
        public var name: String {
            switch self {
            case .requests: "requests"
            case .tokens: "tokens"
            case .inputTokens: "input-tokens"
            case .outputTokens: "output-tokens"
            }
        }
    }

    struct Bucket {
        var limit: Int64
        var remaining: Int64
        var resetAtMs: Int64 {
            didSet { resetText = SimRateLimits.rfc3339(milliseconds: resetAtMs) }
        }
        /// Formatted once per window, not once per answer.
        var resetText = ""
    }

    /// Large enough that no test or benchmark meets them by accident: only a `drain` step does.
    public static let defaultLimits: [Kind: Int64] = [.requests: 1_000_000, .tokens: 400_000_000, .inputTokens: 320_000_000, .outputTokens: 80_000_000]
    public static let window = Duration.seconds(60)

    private let buckets: Mutex<[Bucket]>

    public init(limits: [Kind: Int64] = SimRateLimits.defaultLimits) {
        buckets = Mutex(Kind.allCases.map { Bucket(limit: limits[$0] ?? Self.defaultLimits[$0]!, remaining: limits[$0] ?? Self.defaultLimits[$0]!, resetAtMs: 0) })
    }

    /// One Messages request arrives: true when a request is left (and taken), false when the
    /// requests bucket is empty until its reset.
    func admit(nowMs: Int64) -> Bool {
        buckets.withLock { buckets in
            Self.refill(&buckets, nowMs: nowMs)
            guard buckets[Kind.requests.rawValue].remaining > 0 else { return false }
            buckets[Kind.requests.rawValue].remaining -= 1
            return true
        }
    }

    /// An answer's tokens are spent.
    func spend(inputTokens: Int64, outputTokens: Int64, nowMs: Int64) {
        buckets.withLock { buckets in
            Self.refill(&buckets, nowMs: nowMs)
            for (kind, amount) in [(Kind.tokens, inputTokens + outputTokens), (.inputTokens, inputTokens), (.outputTokens, outputTokens)] {
                buckets[kind.rawValue].remaining = max(0, buckets[kind.rawValue].remaining - amount)
            }
        }
    }

    /// `drain(requests=3%,limit=100,reset=2s)`: the bucket's remaining count (a number, or a
    /// share of its limit), and its limit and reset when given.
    func drain(_ drain: RateLimitDrain, nowMs: Int64) {
        buckets.withLock { buckets in
            Self.refill(&buckets, nowMs: nowMs)
            var bucket = buckets[drain.kind.rawValue]
            if let limit = drain.limit { bucket.limit = limit }
            switch drain.remaining {
            case .count(let count): bucket.remaining = min(count, bucket.limit)
            case .share(let share): bucket.remaining = Int64((Double(bucket.limit) * share).rounded(.down))
            }
            if let reset = drain.reset { bucket.resetAtMs = nowMs + reset.components.seconds * 1000 + reset.components.attoseconds / 1_000_000_000_000_000 }
            buckets[drain.kind.rawValue] = bucket
        }
    }

    /// The header lines of an answer now, and the milliseconds until the requests bucket resets.
    func headers(nowMs: Int64) -> (lines: [(String, String)], requestsResetInMs: Int64) {
        buckets.withLock { buckets in
            Self.refill(&buckets, nowMs: nowMs)
            var lines: [(String, String)] = []
            lines.reserveCapacity(12)
            for kind in Kind.allCases {
                let bucket = buckets[kind.rawValue]
                lines.append(("anthropic-ratelimit-\(kind.name)-limit", String(bucket.limit)))
                lines.append(("anthropic-ratelimit-\(kind.name)-remaining", String(bucket.remaining)))
                lines.append(("anthropic-ratelimit-\(kind.name)-reset", bucket.resetText))
            }
            return (lines, max(0, buckets[Kind.requests.rawValue].resetAtMs - nowMs))
        }
    }

    /// The requests bucket's remaining count, for tests.
    public func remaining(_ kind: Kind) -> Int64 {
        buckets.withLock { $0[kind.rawValue].remaining }
    }

    /// A bucket whose window has passed is whole again, for a new window from now.
    private static func refill(_ buckets: inout [Bucket], nowMs: Int64) {
        for index in buckets.indices where nowMs >= buckets[index].resetAtMs {
            buckets[index].remaining = buckets[index].limit
            buckets[index].resetAtMs = nowMs + window.components.seconds * 1000
        }
    }

    static func rfc3339(milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}

/// A `drain(KIND=AMOUNT,limit=N,reset=DURATION)` step's arguments.
public struct RateLimitDrain: Sendable, Equatable {
    public enum Amount: Sendable, Equatable {
        case count(Int64)
        /// A share of the limit, in [0, 1].
        case share(Double)
    }

    public var kind: SimRateLimits.Kind
    public var remaining: Amount
    public var limit: Int64? = nil
    public var reset: Duration? = nil
}
