import CivilTime
/// How a request ended, as the audit log and metrics name it.
public enum RequestOutcome: String, Sendable {
    case ok
    case clientError = "client_error"
    case upstreamError = "upstream_error"
    case noModelAvailable = "no_model_available"
    case streamError = "stream_error"
    case cancelled
    /// Bad input, authentication, limits: refused before any upstream call.
    case rejected
}

/// What stream recovery (README, "Stream recovery") did for a request whose stream failed after its
/// commit point on a route with `stream_recovery: continue`.
public enum RecoveryResult: String, Sendable {
    /// A resumed stream finished it.
    case recovered
    /// The partial answer held more than text (tool_use, thinking).
    case unrecoverable
    /// The resumption was refused (a 4xx, such as a model that takes no prefill).
    case refused
    /// No model admitted a resumption, or the attempt budget or `request_timeout` was spent,
    /// or `max_resumes` resumptions had already been made.
    case unavailable
    /// The caller went away while it was being recovered.
    case cancelled
}

/// One upstream attempt of a request.
public struct AttemptRecord: Sendable {
    public var model: String
    /// The configured provider and its platform (`anthropic`, `bedrock`, `vertex`).
    public var provider: String?
    public var platform: String?
    /// The status in Anthropic's terms (a platform's error mapped: Bedrock's 400
    /// ServiceQuotaExceededException is a 429 here).
    public var status: Int?
    /// `connect`, `timeout`, `reset`, `stream_error`, `invalid_response` when there was no usable status.
    public var error: String?
    public var errorType: String?
    public var upstreamRequestID: String?
    public var durationMs: Int64
    public var ttfbMs: Int64?
    public var retryAfterMs: Int64?
    /// Wait before this attempt.
    public var backoffMs: Int64?
    /// How long the attempt waited for a free upstream connection (written when it waited at
    /// least 1 ms, and always for `error: capacity`).
    public var queuedMs: Int64?
    /// The platform's own error name and HTTP status, when they differ from the Anthropic ones.
    public var platformError: String?
    public var platformStatus: Int?
    /// A stream resumption (the original request plus the partial answer as prefill); written
    /// as `continuation: true` in the audit line.
    public var resumesStream = false
    /// The platform itself answered that it refuses Switchyard's own credentials (its 401 or 403),
    /// as opposed to a credential that could not be had (a token endpoint down). Not written
    /// to the audit line, where `error: auth` with a `platform_status` says the same.
    public var credentialsRefused = false
    /// What Switchyard knows about a failure beyond its kind (a CRC mismatch, a refused signature,
    /// a token endpoint's answer). Never a secret.
    public var detail: String?
    /// The answer's rate-limit reading, kept only when it started, kept or ended a headroom skip
    /// (written as `headroom`; `switchyard replay` reads it back).
    public var headroom: HeadroomReading?
    /// The same times in microseconds (`ttfb_us`, `duration_us`), and the attempt's start — the
    /// instant its model was chosen — counted from the request's arrival (`start_us`):
    /// `switchyard replay` orders events less than a millisecond apart as they happened.
    public var startUs: Int64?
    public var ttfbUs: Int64?
    public var durationUs: Int64?

    /// Sets `duration_ms` and `duration_us`.
    public mutating func setDuration(_ duration: Duration) {
        durationMs = duration.milliseconds
        durationUs = duration.microseconds
    }

    /// Sets `ttfb_ms` and `ttfb_us`.
    public mutating func setTTFB(_ ttfb: Duration) {
        ttfbMs = ttfb.milliseconds
        ttfbUs = ttfb.microseconds
    }

    public init(model: String) {
        self.model = model
        self.durationMs = 0
    }

    /// `sonnet: 500 api_error (req_01…)`, for error messages.
    public var summary: String {
        var text = "\(model): "
        if let status {
            text += String(status)
            // A 2xx that still failed (invalid body, broken stream) says how.
            if let error { text += " \(error)" }
            if let errorType { text += " \(errorType)" }
        } else {
            text += error ?? "failed"
            if let errorType { text += " \(errorType)" }
            if error == TransportFailure.capacity.rawValue, let queuedMs { text += " (waited \(queuedMs) ms for a connection)" }
        }
        if let platformError { text += " [\(platformError)]" }
        if let upstreamRequestID { text += " (\(upstreamRequestID))" }
        return text
    }
}

/// The `request` line: everything an auditor needs to know about one request, and nothing secret.
public struct RequestAuditRecord: Sendable {
    public var timestampMs: Int64
    /// The arrival in Unix microseconds (`ts_us`), for `switchyard replay`; nil for batch work.
    public var timestampUs: Int64?
    public var requestID: String
    public var client: String?
    public var route: String?
    public var requestedModel: String?
    public var api: String
    public var stream: Bool
    public var status: Int
    public var outcome: RequestOutcome
    public var model: String?
    public var upstreamModel: String?
    public var upstreamRequestID: String?
    public var downgraded: Bool
    /// The answer came from a platform that speaks another API (an OpenAI-compatible model) and
    /// was translated into the Messages API's shape.
    public var translated = false
    public var decision: [DecisionEntry]
    public var attempts: [AttemptRecord]
    public var durationMs: Int64
    public var ttfbMs: Int64?
    public var usage: TokenUsage?
    /// Switchyard's own explanation when it answered with an error itself.
    public var message: String?
    /// Set when a stream failed after its commit point on a route with stream recovery.
    public var recovery: RecoveryResult?
    /// Why a retry the route allowed was not made: `retry_budget` (README, "Retry budget").
    public var error: String?
    /// A batch request's batch and `custom_id`.
    public var batchID: String?
    public var customID: String?
    /// `request`, or `batch.retry` for a batch request's try that did not end it (the request's
    /// own `request` line comes with the try that gives it its result).
    public var event: String = "request"

    public init(timestampMs: Int64, requestID: String, api: String) {
        self.timestampMs = timestampMs
        self.requestID = requestID
        self.api = api
        self.stream = false
        self.status = 0
        self.outcome = .ok
        self.downgraded = false
        self.decision = []
        self.attempts = []
        self.durationMs = 0
    }

    /// About how many bytes the line takes, for reserving room and for the audit queue's limit.
    var estimatedSize: Int { 512 + attempts.count * 220 + decision.count * 80 }

    /// Appends the line (without its newline) to `buffer`: the audit writer encodes a whole batch
    /// of records into one buffer on its own thread, off the event loops.
    public func encode(into buffer: inout [UInt8]) {
        var json = JSONWriter(continuing: &buffer)
        defer { json.finish(into: &buffer) }
        json.beginObject()
        json.key("ts")
        json.timestamp(milliseconds: timestampMs)
        json.field("event", event)
        json.field("ts_us", timestampUs)
        json.field("request_id", requestID)
        json.field("client", client)
        json.field("batch_id", batchID)
        json.field("custom_id", customID)
        json.field("route", route)
        json.field("requested_model", requestedModel)
        json.field("api", api)
        json.field("stream", stream)
        json.field("status", status)
        json.field("outcome", outcome.rawValue)
        json.field("model", model)
        json.field("upstream_model", upstreamModel)
        json.field("upstream_request_id", upstreamRequestID)
        json.field("downgraded", downgraded)
        json.field("translated", translated)
        json.key("decision")
        json.beginArray()
        for entry in decision {
            json.beginObject()
            json.field("model", entry.model)
            json.field("breaker", entry.breaker.rawValue)
            json.field("action", entry.action.rawValue)
            json.field("reason", entry.reason)
            json.field("from_peer", entry.fromPeer)
            json.endObject()
        }
        json.endArray()
        json.key("attempts")
        json.beginArray()
        for attempt in attempts {
            json.beginObject()
            json.field("model", attempt.model)
            json.field("provider", attempt.provider)
            json.field("platform", attempt.platform)
            json.field("status", attempt.status)
            json.field("error", attempt.error)
            json.field("error_type", attempt.errorType)
            json.field("upstream_request_id", attempt.upstreamRequestID)
            json.field("duration_ms", attempt.durationMs)
            json.field("ttfb_ms", attempt.ttfbMs)
            json.field("retry_after_ms", attempt.retryAfterMs)
            json.field("backoff_ms", attempt.backoffMs)
            json.field("queued_ms", attempt.queuedMs)
            json.field("platform_error", attempt.platformError)
            json.field("platform_status", attempt.platformStatus)
            json.field("detail", attempt.detail)
            json.field("start_us", attempt.startUs)
            json.field("ttfb_us", attempt.ttfbUs)
            json.field("duration_us", attempt.durationUs)
            if let headroom = attempt.headroom { Self.write(headroom, into: &json) }
            if attempt.resumesStream { json.field("continuation", true) }
            json.endObject()
        }
        json.endArray()
        json.field("duration_ms", durationMs)
        json.field("ttfb_ms", ttfbMs)
        if let usage, !usage.isEmpty {
            json.key("usage")
            json.beginObject()
            json.field("input_tokens", usage.inputTokens)
            json.field("output_tokens", usage.outputTokens)
            json.field("cache_read_input_tokens", usage.cacheReadInputTokens)
            json.field("cache_creation_input_tokens", usage.cacheCreationInputTokens)
            json.endObject()
        }
        json.field("message", message)
        json.field("error", error)
        if let recovery {
            json.field("recovered", recovery == .recovered)
            json.field("recovery", recovery.rawValue)
        }
        json.endObject()
    }
}

/// Lines other than `request`: breaker transitions and lifecycle events.
public enum AuditEvent {
    /// - Parameter fromPeer: the replica whose fleet event caused the transition (`from_peer`).
    public static func breaker(
        model: String, transition: CircuitBreaker.Transition, fromPeer: String? = nil, timestampMs: Int64 = WallClock.nowMilliseconds()
    ) -> [UInt8] {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.key("ts")
        json.timestamp(milliseconds: timestampMs)
        json.field("event", "breaker")
        json.field("model", model)
        json.field("from", transition.from.rawValue)
        json.field("to", transition.to.rawValue)
        json.field("reason", transition.reason)
        json.field("open_for_ms", transition.openFor.map(\.milliseconds))
        json.field("from_peer", fromPeer)
        json.endObject()
        return json.bytes
    }

    /// `server.started`, `config.reloaded`, ...: a flat object of string, number and list fields.
    public static func lifecycle(_ event: String, fields: [(String, LifecycleValue)] = [], timestampMs: Int64 = WallClock.nowMilliseconds()) -> [UInt8] {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.key("ts")
        json.timestamp(milliseconds: timestampMs)
        json.field("event", event)
        for (name, value) in fields {
            json.key(dynamic: name)
            switch value {
            case .string(let text): json.string(text)
            case .int(let number): json.int(number)
            case .strings(let list):
                json.beginArray()
                for item in list { json.string(item) }
                json.endArray()
            }
        }
        json.endObject()
        return json.bytes
    }

    public enum LifecycleValue: Sendable {
        case string(String)
        case int(Int)
        case strings([String])
    }
}

/// `2026-11-24T10:00:01.234Z` from Unix milliseconds, without Foundation's formatter cost.
public enum ISO8601 {
    public static func format(milliseconds: Int64) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(24)
        append(milliseconds: milliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The length of every timestamp written (four digits of year, as RFC 3339 has it).
    static let length = 24

    /// The 24 bytes of `format(milliseconds:)` appended to `bytes`, without a String between.
    public static func append(milliseconds: Int64, to bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: length))
        bytes.withUnsafeMutableBytes { room in write(milliseconds: milliseconds, into: room.baseAddress! + start) }
    }

    /// The 24 bytes of `format(milliseconds:)` written at `room`.
    static func write(milliseconds: Int64, into room: UnsafeMutableRawPointer) {
        let time = CivilTime(unixMilliseconds: milliseconds)
        var offset = 0
        func put(_ byte: UInt8) {
            room.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
        func put(_ value: Int, digits: Int) {
            var divisor = 1
            for _ in 1..<digits { divisor *= 10 }
            var remaining = value
            while divisor > 0 {
                put(UInt8(ascii: "0") + UInt8(remaining / divisor))
                remaining %= divisor
                divisor /= 10
            }
        }
        func put(_ value: Int64, digits: Int, then separator: Unicode.Scalar) {
            put(Int(value), digits: digits)
            put(UInt8(ascii: separator))
        }
        // 2026-12-05T17:07:23.042Z
        put(time.year, digits: 4, then: "-"); put(time.month, digits: 2, then: "-"); put(time.day, digits: 2, then: "T")
        put(time.hour, digits: 2, then: ":"); put(time.minute, digits: 2, then: ":"); put(time.second, digits: 2, then: ".")
        put(time.millisecond, digits: 3, then: "Z")
    }
}

extension RequestAuditRecord {
    /// An attempt's `headroom`: `{"requests": {"limit": 100, "remaining": 3, "reset": "…"}, …}`,
    /// the kinds as `/admin/state` names them.
    static func write(_ reading: HeadroomReading, into json: inout JSONWriter) {
        json.headroom({ reading[$0] }) { report, json in
            json.field("limit", report.limit)
            json.field("remaining", report.remaining)
            if let reset = report.resetWallMs {
                json.key("reset")
                json.timestamp(milliseconds: reset)
            }
        }
    }
}

extension JSONWriter {
    /// `"headroom": {"requests": {…}, "input_tokens": {…}, …}` over the kinds `report` gives,
    /// each object's fields written by `fields` (the audit line's and `/admin/state`'s shapes).
    mutating func headroom<Report>(_ report: (HeadroomKind) -> Report?, _ fields: (Report, inout JSONWriter) -> Void) {
        key("headroom")
        beginObject()
        for kind in HeadroomKind.each {
            guard let value = report(kind) else { continue }
            key(dynamic: kind.name)
            beginObject()
            fields(value, &self)
            endObject()
        }
        endObject()
    }
}
