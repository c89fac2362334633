import Foundation

/// An audit log read back for `switchyard replay`: the requests that walked a route, each with its
/// attempts placed on the recorded clock, the breaker transitions, and the operators' drains.
///
/// The recorded clock: a request starts at its `ts_us` (or `ts`); attempt k starts at `start_us`
/// after it, or, in a log without the microsecond fields, after the attempts before it and the
/// waits before each (`backoff_ms`): `ts + Σ duration_ms[j<k] + Σ backoff_ms[j≤k]`. Durations are
/// `duration_us` where given. Instants are nanoseconds from the first replayed request's arrival
/// (whole millisecond).
public struct AuditRecording: Sendable {
    public var requests: [RecordedRequest]
    public var transitions: [TimedTransition]
    public var drains: [RecordedDrain]
    /// Request lines that are not replayed: refused before routing (`outcome: rejected`, no route)
    /// and batch work (it follows its own scheduler).
    public var notReplayed: Int
    /// Unix milliseconds of the first replayed request: instant zero.
    public var originMs: Int64

    /// - Throws: ``ReplayError/unreadableLine(_:reason:)`` for a line that is not an audit line.
    public init(jsonLines text: String) throws(ReplayError) {
        var requests: [RecordedRequest] = []
        var transitions: [(ms: Int64, TimedTransition)] = []
        var drains: [(ms: Int64, RecordedDrain)] = []
        var notReplayed = 0
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            let data = Data(line.utf8)
            let head: LineHead
            do {
                head = try decoder.decode(LineHead.self, from: data)
            } catch {
                throw .unreadableLine(number, reason: "not a JSON audit line")
            }
            guard let ms = CredentialTimestamp.unixMilliseconds(head.ts) else {
                throw .unreadableLine(number, reason: "ts '\(head.ts.prefix(40))' is not an ISO 8601 instant")
            }
            switch head.event {
            case "request":
                guard let line = try? decoder.decode(RequestLine.self, from: data) else {
                    throw .unreadableLine(number, reason: "a request line without its fields")
                }
                guard line.batchId == nil, let route = line.route, let requested = line.requestedModel, line.outcome != "rejected" else {
                    notReplayed += 1
                    continue
                }
                requests.append(RecordedRequest(line: line, number: number, timestampMs: ms, route: route, requestedModel: requested))
            case "batch.retry":
                notReplayed += 1
            case "breaker":
                guard let line = try? decoder.decode(BreakerLine.self, from: data),
                    let from = CircuitBreaker.State(rawValue: line.from), let to = CircuitBreaker.State(rawValue: line.to)
                else { throw .unreadableLine(number, reason: "a breaker line without model, from and to") }
                transitions.append((ms, TimedTransition(at: MonotonicInstant(nanoseconds: 0), model: line.model, from: from, to: to, reason: line.reason ?? "")))
            case "admin.model_disabled", "admin.model_enabled":
                guard let line = try? decoder.decode(DrainLine.self, from: data) else { continue }
                drains.append((ms, RecordedDrain(at: MonotonicInstant(nanoseconds: 0), model: line.model, disabled: head.event == "admin.model_disabled", by: line.by ?? "admin")))
            default:
                continue
            }
        }
        requests.sort { ($0.timestampUs, $0.lineNumber) < ($1.timestampUs, $1.lineNumber) }
        let origin = requests.first?.timestampMs ?? transitions.first?.ms ?? 0
        func instant(_ ms: Int64) -> MonotonicInstant { MonotonicInstant(nanoseconds: (ms - origin) * 1_000_000) }
        for index in requests.indices {
            requests[index].place(arrival: MonotonicInstant(nanoseconds: (requests[index].timestampUs - origin * 1000) * 1000))
        }
        self.requests = requests
        self.transitions = transitions.map { ms, transition in
            var placed = transition
            placed.at = instant(ms)
            return placed
        }
        self.drains = drains.map { ms, drain in
            var placed = drain
            placed.at = instant(ms)
            return placed
        }
        self.notReplayed = notReplayed
        self.originMs = origin
    }

    public init(path: String) throws(ReplayError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadableFile(path) }
        try self.init(jsonLines: String(decoding: data, as: UTF8.self))
    }
}

/// One replayed request line.
public struct RecordedRequest: Sendable {
    public var lineNumber: Int
    public var requestID: String
    public var timestampMs: Int64
    /// `ts_us`, or `ts` in microseconds.
    public var timestampUs: Int64
    /// `ts` on the recorded clock.
    public var arrival = MonotonicInstant(nanoseconds: 0)
    public var route: String
    /// The route name or alias the caller asked for: a candidate routes by it.
    public var requestedModel: String
    public var stream: Bool
    public var status: Int
    public var outcome: String
    /// The model whose answer went to the caller.
    public var model: String?
    public var downgraded: Bool
    public var attempts: [RecordedAttempt]

    init(line: RequestLine, number: Int, timestampMs: Int64, route: String, requestedModel: String) {
        lineNumber = number
        requestID = line.requestId ?? "line \(number)"
        self.timestampMs = timestampMs
        timestampUs = line.tsUs.flatMap { $0 / 1000 == timestampMs ? $0 : nil } ?? timestampMs * 1000
        self.route = route
        self.requestedModel = requestedModel
        stream = line.stream ?? false
        status = line.status
        outcome = line.outcome
        model = line.model
        downgraded = line.downgraded ?? false
        let lines = line.attempts ?? []
        attempts = lines.indices.map { index in
            let attempt = lines[index]
            let isLast = index == lines.count - 1
            let resumedAfter = index + 1 < lines.count && lines[index + 1].continuation == true
            let success = attempt.status.map { (200..<300).contains($0) } ?? false
            let committedFailure =
                (line.stream ?? false) && success && attempt.error == "stream_error"
                && (resumedAfter || (isLast && line.outcome == RequestOutcome.streamError.rawValue))
            let outcome = RecordedOutcome(
                status: attempt.status, error: attempt.error, errorType: attempt.errorType, retryAfter: attempt.retryAfterMs.map { .milliseconds($0) },
                stream: line.stream ?? false, committedFailure: committedFailure,
                cancelled: isLast && line.outcome == RequestOutcome.cancelled.rawValue
            )
            return RecordedAttempt(
                model: attempt.model, outcome: outcome,
                duration: attempt.durationUs.map { .microseconds($0) } ?? .milliseconds(attempt.durationMs ?? 0),
                backoff: attempt.backoffMs.map { .milliseconds($0) }, resumesStream: attempt.continuation ?? false,
                refusedStatus: attempt.error == "auth" ? attempt.platformStatus : nil,
                ttfb: attempt.ttfbUs.map { .microseconds($0) } ?? attempt.ttfbMs.map { .milliseconds($0) },
                headroom: attempt.headroom.flatMap(HeadroomLine.reading), recordedStart: attempt.startUs.map { .microseconds($0) }
            )
        }
    }

    /// Places the request and its attempts on the recorded clock.
    mutating func place(arrival: MonotonicInstant) {
        self.arrival = arrival
        var clock = arrival
        for index in attempts.indices {
            clock = clock + (attempts[index].backoff ?? .zero)
            if let recorded = attempts[index].recordedStart { clock = max(clock, arrival + recorded) }
            attempts[index].start = clock
            clock = clock + attempts[index].duration
        }
    }

    /// When the request's first choice of model was made: its first attempt's start (the time the
    /// router spent reading the request is the request's own, whatever the configuration).
    public var firstSelection: MonotonicInstant { attempts.first?.start ?? arrival }
}

/// One attempt of a replayed request.
public struct RecordedAttempt: Sendable {
    public var model: String
    public var outcome: RecordedOutcome
    public var duration: Duration
    /// The wait before it.
    public var backoff: Duration?
    /// A stream resumption (`continuation: true`).
    public var resumesStream: Bool
    /// `error: auth` with a `platform_status`: the platform's own refusal of Switchyard's credentials.
    public var refusedStatus: Int?
    /// When the answer's head came, after the start (`ttfb_ms`).
    public var ttfb: Duration?
    /// The rate-limit reading the audit line kept: the server writes it only when it started, kept
    /// or ended a headroom skip.
    public var headroom: HeadroomReading?
    /// `start_us`: its start after the request's arrival, when the log has it.
    public var recordedStart: Duration?
    /// Its start on the recorded clock.
    public var start = MonotonicInstant(nanoseconds: 0)
}

/// A breaker transition at an instant: a `breaker` line, or one the replay made.
public struct TimedTransition: Sendable, Equatable {
    public var at: MonotonicInstant
    public var model: String
    public var from: CircuitBreaker.State
    public var to: CircuitBreaker.State
    public var reason: String
}

/// An operator's drain or undrain (`admin.model_disabled`, `admin.model_enabled`).
public struct RecordedDrain: Sendable {
    public var at: MonotonicInstant
    public var model: String
    public var disabled: Bool
    public var by: String
}

/// Why an audit log or a candidate cannot be replayed.
public enum ReplayError: Error, Sendable, CustomStringConvertible {
    case unreadableFile(String)
    case unreadableLine(Int, reason: String)
    case nothingToReplay

    public var description: String {
        switch self {
        case .unreadableFile(let path): return "\(path): cannot be read"
        case .unreadableLine(let number, let reason): return "line \(number): \(reason); replay reads Switchyard's audit log (one JSON object a line)"
        case .nothingToReplay: return "the audit log holds no request that walked a route (lines with \"event\":\"request\" and a \"route\")"
        }
    }
}

// The audit line fields replay reads (README, "Audit log"); everything else is ignored.

struct LineHead: Decodable {
    var ts: String
    var event: String
}

struct RequestLine: Decodable {
    var tsUs: Int64?
    var requestId: String?
    var batchId: String?
    var route: String?
    var requestedModel: String?
    var stream: Bool?
    var status: Int
    var outcome: String
    var model: String?
    var downgraded: Bool?
    var attempts: [AttemptLine]?
}

struct AttemptLine: Decodable {
    var model: String
    var status: Int?
    var error: String?
    var errorType: String?
    var durationMs: Int64?
    var retryAfterMs: Int64?
    var backoffMs: Int64?
    var platformStatus: Int?
    var continuation: Bool?
    var ttfbMs: Int64?
    var headroom: [String: HeadroomLine]?
    var startUs: Int64?
    var ttfbUs: Int64?
    var durationUs: Int64?
}

/// One kind of an attempt's `headroom`.
struct HeadroomLine: Decodable {
    var limit: Int64
    var remaining: Int64
    var reset: String?

    /// The reading, by kind name (`requests`, `input_tokens`, …; the decoder may have turned the
    /// names into camel case). Nil when no kind is known.
    static func reading(_ lines: [String: HeadroomLine]) -> HeadroomReading? {
        func folded(_ name: String) -> String { name.lowercased().replacingOccurrences(of: "_", with: "") }
        var reading = HeadroomReading()
        for (name, line) in lines {
            guard let kind = HeadroomKind.allCases.first(where: { folded($0.name) == folded(name) }) else { continue }
            reading[kind] = HeadroomReport(limit: line.limit, remaining: line.remaining, resetWallMs: line.reset.flatMap(CredentialTimestamp.unixMilliseconds))
        }
        return reading.isEmpty ? nil : reading
    }
}

struct BreakerLine: Decodable {
    var model: String
    var from: String
    var to: String
    var reason: String?
}

struct DrainLine: Decodable {
    var model: String
    var by: String?
}
