/// The rate-limit kinds an upstream reports its remaining share of (Anthropic's
/// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-*`).
public enum HeadroomKind: Int, Sendable, CaseIterable {
    case requests
    case tokens
    case inputTokens
    case outputTokens

    /// The name in metrics, `/admin/state` and fleet messages.
    public var name: String {
        switch self {
        case .requests: "requests"
        case .tokens: "tokens"
        case .inputTokens: "input_tokens"
        case .outputTokens: "output_tokens"
        }
    }

    /// The four kinds without the array `allCases` builds (the answer path reads them).
    static let each: [HeadroomKind] = [.requests, .tokens, .inputTokens, .outputTokens]

    public init?(name: String) {
        guard let kind = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = kind
    }
}

/// What one answer said about one rate limit, on the wall clock (as the platform says it).
public struct HeadroomReport: Sendable, Equatable {
    public var limit: Int64
    public var remaining: Int64
    /// When the limit is whole again, Unix milliseconds; nil when the answer did not say.
    public var resetWallMs: Int64?

    public init(limit: Int64, remaining: Int64, resetWallMs: Int64?) {
        self.limit = limit
        self.remaining = remaining
        self.resetWallMs = resetWallMs
    }
}

/// Every rate limit one answer reported: four fixed slots, so that reading an answer allocates
/// nothing.
public struct HeadroomReading: Sendable, Equatable {
    public var requests: HeadroomReport?
    public var tokens: HeadroomReport?
    public var inputTokens: HeadroomReport?
    public var outputTokens: HeadroomReport?

    public init() {}

    public subscript(kind: HeadroomKind) -> HeadroomReport? {
        get {
            switch kind {
            case .requests: requests
            case .tokens: tokens
            case .inputTokens: inputTokens
            case .outputTokens: outputTokens
            }
        }
        set {
            switch kind {
            case .requests: requests = newValue
            case .tokens: tokens = newValue
            case .inputTokens: inputTokens = newValue
            case .outputTokens: outputTokens = newValue
            }
        }
    }

    public var isEmpty: Bool { requests == nil && tokens == nil && inputTokens == nil && outputTokens == nil }
}

/// A model's rate-limit headroom as the router knows it: per kind, the last limit and remaining
/// count and when the limit resets, on the monotonic clock. A pure value: the selector asks
/// ``skipUntil(now:minRemaining:)``; this replica's answers come in with
/// ``merge(_:now:wallNowMs:)`` (the newest answer is the truth: limits replenish, resets move),
/// other replicas' reports with ``merge(_:_:now:)`` (a later reset wins).
///
/// The rule: a kind whose `remaining / limit` is below `min_remaining` keeps the model out of
/// selection until that kind's reset. A kind without a reset time never does (there would be no
/// end to the skip); a 429 still rate-limits the model as before.
public struct Headroom: Sendable, Equatable {
    public struct Bucket: Sendable, Equatable {
        public var limit: Int64
        public var remaining: Int64
        public var resetAt: MonotonicInstant?
        /// The replica that reported it, when it came from a peer.
        public var peer: String?

        public init(limit: Int64, remaining: Int64, resetAt: MonotonicInstant?, peer: String? = nil) {
            self.limit = limit
            self.remaining = remaining
            self.resetAt = resetAt
            self.peer = peer
        }

        /// `remaining / limit`, in [0, 1]; nil without a usable limit.
        public var share: Double? {
            guard limit > 0 else { return nil }
            return Double(min(max(remaining, 0), limit)) / Double(limit)
        }

        /// Whether this bucket keeps the model out at `now`.
        func isLow(now: MonotonicInstant, minRemaining: Double) -> Bool {
            guard let resetAt, now < resetAt, let share else { return false }
            return share < minRemaining
        }

        /// The merge rule: a later reset wins (a new window, or a peer that saw more spent);
        /// for the same reset the lower remaining count wins (counts only fall within a window);
        /// a bucket whose reset has passed is replaced by anything.
        func isSuperseded(by newer: Bucket, now: MonotonicInstant) -> Bool {
            guard let old = resetAt, now < old else { return true }
            guard let new = newer.resetAt else { return false }
            if new != old { return new > old }
            return newer.remaining < remaining || (newer.remaining == remaining && newer.limit != limit)
        }
    }

    private var buckets: (Bucket?, Bucket?, Bucket?, Bucket?) = (nil, nil, nil, nil)

    public init() {}

    /// A skip ends at the latest this long after the answer that caused it, whatever reset time an
    /// upstream gave (the same cap as a 429's `retry-after`).
    public static let longestSkip = AttemptVerdict.maxRateLimit

    public subscript(kind: HeadroomKind) -> Bucket? {
        get {
            switch kind {
            case .requests: buckets.0
            case .tokens: buckets.1
            case .inputTokens: buckets.2
            case .outputTokens: buckets.3
            }
        }
        set {
            switch kind {
            case .requests: buckets.0 = newValue
            case .tokens: buckets.1 = newValue
            case .inputTokens: buckets.2 = newValue
            case .outputTokens: buckets.3 = newValue
            }
        }
    }

    public static func == (lhs: Headroom, rhs: Headroom) -> Bool {
        HeadroomKind.allCases.allSatisfy { lhs[$0] == rhs[$0] }
    }

    /// The bucket an answer's report becomes: its reset on the monotonic clock, capped at
    /// ``longestSkip`` from now.
    public static func bucket(_ report: HeadroomReport, now: MonotonicInstant, wallNowMs: Int64, peer: String? = nil) -> Bucket {
        let resetAt = report.resetWallMs.map { reset in
            now + .milliseconds(min(max(reset - wallNowMs, 0), longestSkip.milliseconds))
        }
        return Bucket(limit: report.limit, remaining: report.remaining, resetAt: resetAt, peer: peer)
    }

    /// Merges a peer's bucket by the rule of ``Bucket/isSuperseded(by:now:)``; true when it changed.
    @discardableResult
    public mutating func merge(_ kind: HeadroomKind, _ bucket: Bucket, now: MonotonicInstant) -> Bool {
        guard let current = self[kind] else {
            self[kind] = bucket
            return true
        }
        guard current.isSuperseded(by: bucket, now: now) else { return false }
        self[kind] = bucket
        return true
    }

    /// Takes every report of one of this replica's answers; the kinds that changed, as a bit mask
    /// of raw values. The answer replaces what earlier answers said (a limit replenishes, a reset
    /// moves, a new window starts); what a peer reported gives way only by the merge rule, so
    /// that an answer already under way when a peer saw the limit run low does not undo that.
    @discardableResult
    public mutating func merge(_ reading: HeadroomReading, now: MonotonicInstant, wallNowMs: Int64) -> UInt8 {
        var changed: UInt8 = 0
        for kind in HeadroomKind.each {
            guard let report = reading[kind] else { continue }
            let bucket = Self.bucket(report, now: now, wallNowMs: wallNowMs)
            if let current = self[kind], current.peer != nil {
                if merge(kind, bucket, now: now) { changed |= 1 << kind.rawValue }
            } else if self[kind] != bucket {
                self[kind] = bucket
                changed |= 1 << kind.rawValue
            }
        }
        return changed
    }

    /// nil when the model may take requests at `minRemaining`; otherwise until when it may not
    /// (the latest reset among the kinds below it) and whether a peer reported that kind.
    public func skipUntil(now: MonotonicInstant, minRemaining: Double) -> (until: MonotonicInstant, peer: String?)? {
        var result: (until: MonotonicInstant, peer: String?)?
        for kind in HeadroomKind.allCases {
            guard let bucket = self[kind], bucket.isLow(now: now, minRemaining: minRemaining), let reset = bucket.resetAt else { continue }
            if reset > (result?.until ?? MonotonicInstant(nanoseconds: .min)) { result = (reset, bucket.peer) }
        }
        return result
    }

    /// Whether any kind has nothing left at all: a request there is sure to be refused.
    public func isSpent(now: MonotonicInstant) -> Bool {
        HeadroomKind.allCases.contains { kind in
            guard let bucket = self[kind], let reset = bucket.resetAt, now < reset else { return false }
            return bucket.limit > 0 && bucket.remaining <= 0
        }
    }

    /// The lowest share among the kinds still within their window, for the state page.
    public func lowestShare(now: MonotonicInstant) -> Double? {
        var lowest: Double?
        for kind in HeadroomKind.allCases {
            guard let bucket = self[kind], let share = bucket.share else { continue }
            if let reset = bucket.resetAt, now >= reset { continue }
            lowest = min(lowest ?? share, share)
        }
        return lowest
    }
}
