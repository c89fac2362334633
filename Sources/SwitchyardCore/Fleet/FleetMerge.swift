/// How a model's health and the fleet's events meet, as pure functions on ``ModelState``: which
/// local changes are told to the other replicas, and how their events are merged in. The merge
/// rule is one rule: a later deadline wins over an earlier one (an open period, a rate limit, a
/// headroom reset); an earlier one changes nothing.
extension ModelState {
    /// What applying a peer's event did.
    public struct PeerApplication: Sendable, Equatable {
        /// The state changed (a deadline moved later, a breaker closed).
        public var changed: Bool
        /// A breaker transition, for the audit log (its reason names the peer).
        public var transition: CircuitBreaker.Transition?

        static let nothing = PeerApplication(changed: false, transition: nil)
    }

    /// Merges another replica's event into this model's state. `now`/`wallNowMs`: this replica's
    /// monotonic and wall clocks, read together, to put the event's deadlines on the monotonic one.
    public mutating func apply(_ change: FleetEvent.Change, from replica: String, now: MonotonicInstant, wallNowMs: Int64) -> PeerApplication {
        func local(_ wallMs: Int64, cap: Duration) -> MonotonicInstant {
            now + .milliseconds(min(max(wallMs - wallNowMs, 0), cap.milliseconds))
        }
        switch change {
        case .breakerOpened(let untilMs, let reason):
            let until = local(untilMs, cap: breaker.policy.maxOpenFor)
            let (changed, transition) = breaker.adoptOpen(until: until, now: now, reason: "from replica \(replica): \(reason)")
            guard changed else { return .nothing }
            breakerPeer = PeerMark(replica: replica, until: until)
            return PeerApplication(changed: true, transition: transition)
        case .breakerClosed(let reason):
            guard let transition = breaker.adoptClose(now: now, reason: "from replica \(replica): \(reason)") else { return .nothing }
            breakerPeer = nil
            return PeerApplication(changed: true, transition: transition)
        case .rateLimited(let untilMs):
            let until = local(untilMs, cap: AttemptVerdict.maxRateLimit)
            guard until > max(rateLimitedUntil ?? now, now) else { return .nothing }
            rateLimitedUntil = until
            rateLimitPeer = PeerMark(replica: replica, until: until)
            return PeerApplication(changed: true, transition: nil)
        case .headroom(let kind, let report):
            let bucket = Headroom.bucket(report, now: now, wallNowMs: wallNowMs, peer: replica)
            return headroom.merge(kind, bucket, now: now) ? PeerApplication(changed: true, transition: nil) : .nothing
        }
    }

    /// What this replica tells its peers after it applied an attempt's result: a breaker that
    /// opened (until when) or closed after a probe, a rate limit that now ends later, and the
    /// kinds whose headroom fell below `floor` or whose low period now ends later. A half-open
    /// breaker is not told: each replica reaches it from the deadline it already has.
    ///
    /// - Parameters:
    ///   - rateLimitedBefore: `rateLimitedUntil` before the result was applied.
    ///   - headroomSkipBefore: the headroom skip at `floor` before the result was applied.
    public func announcements(
        transition: CircuitBreaker.Transition?, rateLimitedBefore: MonotonicInstant?, headroomSkipBefore: MonotonicInstant?, floor: Double,
        now: MonotonicInstant, wallNowMs: Int64
    ) -> [FleetEvent.Change] {
        func wall(_ instant: MonotonicInstant) -> Int64 { wallNowMs + (instant - now).milliseconds }
        var changes: [FleetEvent.Change] = []
        if let transition {
            switch transition.to {
            case .open where breaker.state == .open:
                changes.append(.breakerOpened(untilMs: wall(breaker.openUntil), reason: transition.reason))
            case .closed where transition.from == .halfOpen:
                changes.append(.breakerClosed(reason: transition.reason))
            default:
                break
            }
        }
        if let until = rateLimitedUntil, until > now, until > (rateLimitedBefore ?? now), rateLimitPeer?.until != until {
            changes.append(.rateLimited(untilMs: wall(until)))
        }
        if floor > 0, let skip = headroom.skipUntil(now: now, minRemaining: floor), skip.until > (headroomSkipBefore ?? now) {
            for kind in HeadroomKind.allCases {
                guard let bucket = headroom[kind], bucket.peer == nil, bucket.isLow(now: now, minRemaining: floor), let reset = bucket.resetAt else { continue }
                changes.append(.headroom(kind: kind, report: HeadroomReport(limit: bucket.limit, remaining: bucket.remaining, resetWallMs: wall(reset))))
            }
        }
        return changes
    }
}
