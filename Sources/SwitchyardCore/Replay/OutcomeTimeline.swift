/// What each upstream model answered over time, as the recording shows it: every recorded attempt
/// that says something about its upstream, by model, in order of its start on the recorded clock.
///
/// The rule for "what would model M have answered at time t": the latest recorded attempt on M that
/// started at or before t (of two that started at the same instant, the later line of the log), or
/// else the first one after t. A model the recording never tried has no answer: nil, and the replay
/// reports it as unknown instead of guessing.
public struct OutcomeTimeline: Sendable {
    public struct Entry: Sendable {
        public var start: MonotonicInstant
        public var outcome: RecordedOutcome
        public var duration: Duration
        /// When the answer's head came, after the start (`ttfb_ms`).
        public var ttfb: Duration?
        /// The rate-limit reading the answer carried, when the audit line kept it (`headroom`).
        public var headroom: HeadroomReading?
    }

    private var byModel: [String: [Entry]] = [:]

    public init(_ requests: [RecordedRequest]) {
        for request in requests {
            for attempt in request.attempts where attempt.outcome.answer(forStream: request.stream) != nil {
                byModel[attempt.model, default: []].append(
                    Entry(start: attempt.start, outcome: attempt.outcome, duration: attempt.duration, ttfb: attempt.ttfb, headroom: attempt.headroom)
                )
            }
        }
        for model in byModel.keys {
            // Stable: of two entries with the same start, the one read later stays later.
            byModel[model] = byModel[model]!.enumerated().sorted { ($0.element.start, $0.offset) < ($1.element.start, $1.offset) }.map(\.element)
        }
    }

    /// Models with at least one recorded answer.
    public var models: Set<String> { Set(byModel.keys) }

    /// The recorded answer nearest in time by the rule above, adjusted for whether the asking
    /// request streams, with the attempt's duration; nil when the model was never tried.
    public func answer(model: String, at time: MonotonicInstant, stream: Bool) -> (outcome: RecordedOutcome, duration: Duration)? {
        entry(model: model, at: time, stream: stream).map { ($0.outcome, $0.duration) }
    }

    /// The whole recorded entry nearest in time, its outcome adjusted as in ``answer(model:at:stream:)``.
    func entry(model: String, at time: MonotonicInstant, stream: Bool) -> Entry? {
        guard let entries = byModel[model], !entries.isEmpty else { return nil }
        // The first entry that starts after `time`; the one before it is the latest at or before.
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].start <= time { low = middle + 1 } else { high = middle }
        }
        var entry = low > 0 ? entries[low - 1] : entries[0]
        guard let outcome = entry.outcome.answer(forStream: stream) else { return nil }
        entry.outcome = outcome
        return entry
    }
}
