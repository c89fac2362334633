import Foundation

/// What `switchyard replay` prints: the recording's counts beside the candidate's, as a table or
/// as one JSON object.
public struct ReplayReport: Sendable {
    public var auditSource: String
    public var configSource: String
    public var seed: UInt64
    public var recorded: ReplaySummary
    public var candidate: ReplaySummary
    /// Request lines not replayed (refused before routing, batch work).
    public var notReplayed: Int
    /// From the first replayed request's `ts` to the last.
    public var span: Duration
    /// Requests whose caller was told something else, or served by another model.
    public var changed: Int
    /// Models the candidate reached that the recording never tried.
    public var unknownModels: [String]
    /// Models in the order the candidate configures them, then any only the recording knows.
    public var models: [String]

    /// Replays `recording` with `config` and compares.
    public init(recording: AuditRecording, config: SwitchyardConfig, seed: UInt64, auditSource: String, configSource: String) {
        let run = ReplaySimulator.run(recording, config: config, seed: seed)
        let recordedResults = recording.requests.map(RequestResult.init(recorded:))
        self.auditSource = auditSource
        self.configSource = configSource
        self.seed = seed
        recorded = ReplaySummary(results: recordedResults, transitions: recording.transitions)
        candidate = ReplaySummary(results: run.results, transitions: run.transitions)
        notReplayed = recording.notReplayed
        span = (recording.requests.last?.arrival ?? MonotonicInstant(nanoseconds: 0)) - MonotonicInstant(nanoseconds: 0)
        changed = zip(recordedResults, run.results).filter { $0.answerKey != $1.answerKey || $0.model != $1.model }.count
        unknownModels = Array(Set(run.results.compactMap(\.unknownModel))).sorted()
        var models = config.models.map(\.name)
        let known = Set(models)
        let others = Set(recorded.attemptsOn.keys).union(recorded.transitions.keys).subtracting(known)
        models += others.sorted()
        self.models = models
    }

    /// The candidate reproduces the recording's counts (``ReplaySummary/sameCounts(as:)``).
    public var sameCounts: Bool { recorded.sameCounts(as: candidate) }

    // MARK: Table

    public func table() -> String {
        var rows: [(String, String, String)] = []
        func row(_ label: String, _ recorded: String, _ candidate: String) { rows.append((label, recorded, candidate)) }
        func count(_ label: String, _ value: (ReplaySummary) -> Int) { row(label, String(value(recorded)), String(value(candidate))) }
        count("requests", \.requests)
        count("answered 2xx", \.answered)
        count("caller errors", \.callerErrorCount)
        for key in Self.errorKeys(recorded, candidate) {
            count("  \(key)", { $0.callerErrors[key] ?? 0 })
        }
        if recorded.cancelled + candidate.cancelled > 0 { count("cancelled by the caller", \.cancelled) }
        count("unknown (model never tried)", \.unknown)
        count("downgrades", \.downgrades)
        count("attempts", \.attempts)
        row("  per request, mean", Self.decimal(recorded.meanAttempts), Self.decimal(candidate.meanAttempts))
        count("  per request, max", \.maxAttempts)
        for (title, value) in [("served by", \ReplaySummary.served), ("attempts on", \ReplaySummary.attemptsOn)] {
            row(title, "", "")
            for model in models { count("  \(model)", { $0[keyPath: value][model] ?? 0 }) }
        }
        row("time on model, s", "", "")
        for model in models {
            row("  \(model)", Self.seconds(recorded.timeOn[model] ?? .zero), Self.seconds(candidate.timeOn[model] ?? .zero))
        }
        count("breaker transitions", \.transitionCount)
        for model in models { count("  \(model)", { $0.transitions[model]?.count ?? 0 }) }

        let labelWidth = max(28, rows.map(\.0.count).max() ?? 0)
        let valueWidth = max(9, rows.map { max($0.1.count, $0.2.count) }.max() ?? 0)
        func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
            let room = String(repeating: " ", count: max(0, width - text.count))
            return left ? text + room : room + text
        }
        var text = "switchyard replay: \(recorded.requests) requests over \(Self.seconds(span)) s from \(auditSource)"
        if notReplayed > 0 { text += " (\(notReplayed) not replayed: refused before routing, or batch work)" }
        text += "\ncandidate \(configSource), seed \(seed)\n\n"
        text += pad("", labelWidth, left: true) + "  " + pad("recorded", valueWidth) + "  " + pad("candidate", valueWidth) + "\n"
        for (label, recordedValue, candidateValue) in rows {
            let differs = recordedValue != candidateValue ? "  *" : ""
            let line = pad(label, labelWidth, left: true) + "  " + pad(recordedValue, valueWidth) + "  " + pad(candidateValue, valueWidth) + differs
            text += line.trimmingCharacters(in: .whitespaces) == label.trimmingCharacters(in: .whitespaces) ? label + "\n" : line + "\n"
        }
        text += "\n"
        if sameCounts {
            text += "same counts as recorded: every count above, and each model's breaker transitions in the same order\n"
        } else {
            text += "* differs; \(changed) of \(recorded.requests) requests answered differently or by another model\n"
        }
        if !unknownModels.isEmpty {
            text += "unknown: the recording never tried \(unknownModels.joined(separator: ", ")); "
            text += "\(candidate.unknown) requests reached it and are not counted as answered or failed\n"
        }
        text += "\nbreaker transitions (s from the first request)\n"
        for model in models where recorded.transitions[model] != nil || candidate.transitions[model] != nil {
            text += "  \(model)\n"
            text += "    recorded:  \(Self.sequence(recorded.transitions[model] ?? []))\n"
            text += "    candidate: \(Self.sequence(candidate.transitions[model] ?? []))\n"
        }
        return text
    }

    static func sequence(_ transitions: [TimedTransition]) -> String {
        guard !transitions.isEmpty else { return "none" }
        return transitions.map { "\(seconds($0.at - MonotonicInstant(nanoseconds: 0))) \(name($0.from))→\(name($0.to))" }.joined(separator: ", ")
    }

    private static func name(_ state: CircuitBreaker.State) -> String {
        state == .halfOpen ? "half-open" : state.rawValue
    }

    static func errorKeys(_ a: ReplaySummary, _ b: ReplaySummary) -> [String] {
        Set(a.callerErrors.keys).union(b.callerErrors.keys).sorted { (Int($0) ?? 1000, $0) < (Int($1) ?? 1000, $1) }
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.3f", Double(duration.nanoseconds) / 1e9)
    }

    static func decimal(_ value: Double) -> String {
        String(format: "%.2f", value)
    }

    // MARK: JSON

    /// The same as one JSON object: `recorded` and `candidate` summaries side by side.
    public func json() -> String {
        var json = JSONWriter(capacity: 4096)
        json.beginObject()
        json.field("audit", auditSource)
        json.field("config", configSource)
        json.key("seed")
        json.int(seed)
        json.field("span_ms", span.milliseconds)
        json.field("not_replayed", notReplayed)
        json.field("same_counts", sameCounts)
        json.field("changed_requests", changed)
        json.key("unknown_models")
        json.beginArray()
        for model in unknownModels { json.string(model) }
        json.endArray()
        json.key("recorded")
        write(recorded, to: &json)
        json.key("candidate")
        write(candidate, to: &json)
        json.endObject()
        return String(decoding: json.bytes, as: UTF8.self)
    }

    private func write(_ summary: ReplaySummary, to json: inout JSONWriter) {
        func counts(_ values: [String: Int], keys: [String]) {
            json.beginObject()
            for key in keys where values[key] != nil {
                json.key(dynamic: key)
                json.int(values[key]!)
            }
            json.endObject()
        }
        json.beginObject()
        json.field("requests", summary.requests)
        json.field("answered", summary.answered)
        json.key("caller_errors")
        counts(summary.callerErrors, keys: Self.errorKeys(summary, summary))
        json.field("cancelled", summary.cancelled)
        json.field("unknown", summary.unknown)
        json.field("downgrades", summary.downgrades)
        json.key("attempts")
        json.beginObject()
        json.field("total", summary.attempts)
        json.key("mean")
        json.double((summary.meanAttempts * 100).rounded() / 100)
        json.field("max", summary.maxAttempts)
        json.endObject()
        json.key("served")
        counts(summary.served, keys: models)
        json.key("attempts_on")
        counts(summary.attemptsOn, keys: models)
        json.key("time_on_ms")
        counts(summary.timeOn.mapValues { Int($0.milliseconds) }, keys: models)
        json.key("breaker_transitions")
        json.beginObject()
        for model in models {
            guard let transitions = summary.transitions[model] else { continue }
            json.key(dynamic: model)
            json.beginArray()
            for transition in transitions {
                json.beginObject()
                json.field("at_ms", (transition.at - MonotonicInstant(nanoseconds: 0)).milliseconds)
                json.field("from", transition.from.rawValue)
                json.field("to", transition.to.rawValue)
                json.field("reason", transition.reason)
                json.endObject()
            }
            json.endArray()
        }
        json.endObject()
        json.endObject()
    }
}
