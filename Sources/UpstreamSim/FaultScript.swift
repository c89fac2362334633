/// What the simulator does with one request.
public enum Fault: Sendable, Equatable {
    /// A normal answer: JSON, or a stream of `events` content deltas `interval` apart.
    case ok(events: Int, interval: Duration)
    /// An error status, in the platform's shape (Anthropic's envelope, Bedrock's exception, Google's error).
    case status(Int, retryAfter: Duration?, shouldRetry: Bool?)
    /// A platform error by its own name: `error(ServiceQuotaExceededException,400)`,
    /// `error(RESOURCE_EXHAUSTED,429)`, `error(overloaded_error,529)`.
    case platformError(name: String, status: Int)
    /// An error status in the platform's shape but without its error type: Google's error object
    /// with no `status`, Bedrock's `{"message"}` with no `x-amzn-errortype`, Anthropic's
    /// `{"error":{"message"}}` with no `type`.
    case untypedError(Int)
    /// An error status whose body is a load balancer's HTML page.
    case htmlError(Int)
    /// An error status with an empty body.
    case emptyError(Int)
    /// Waits before the head, then answers normally.
    case slowFirstByte(Duration)
    /// Closes the connection before any header.
    case resetBeforeHeaders
    /// Never answers.
    case hang
    /// Streams: `event: error` (overloaded_error) after `after` events, then ends.
    case sseError(after: Int, type: String)
    /// Streams: the platform's own stream exception after `after` events (Bedrock:
    /// `exception(2,modelStreamErrorException)`; elsewhere an `event: error` of that type).
    case exception(after: Int, name: String)
    /// Streams: the connection is cut after `after` events.
    case cut(after: Int)
    /// Streams: the next frame's CRC is broken after `after` events (event-stream platforms).
    case corruptFrame(after: Int)
    /// Streams: half of the next frame after `after` events, then the body ends.
    case truncatedFrame(after: Int)
    /// Streams: stops sending after `after` events but keeps the connection open.
    case stall(after: Int)
    /// A 200 whose body is not JSON.
    case invalidJSON
    /// A 200 whose body is JSON but not a message.
    case notAMessage
    /// A 200 JSON body of `bytes` bytes.
    case huge(bytes: Int)
    /// Streams: events with broken framing and data.
    case malformedSSE
    /// Headers that never end: the head is written without its terminating blank line.
    case endlessHeaders
    /// Anthropic mode: sets a rate-limit bucket (``SimRateLimits``), then answers normally.
    case drain(RateLimitDrain)
}

/// A fault script such as `ok*5,500*3,529,ok*`: steps taken one per request, in order. `STEP*N`
/// repeats a step N times; `STEP*` repeats it forever. After the last step, requests are answered `ok`.
///
/// Steps: `ok`, `ok(events=20,interval=50ms)`, any status (`500`, `529`, `429(retry-after=2)`,
/// `503(should-retry=false)`), `slow(2s)`, `reset`, `hang`, `sse-error(2)`, `sse-error(2,api_error)`,
/// `cut(4)`, `stall(3)`, `invalid-json`, `not-a-message`, `huge(10MiB)`, `malformed-sse`, `endless-headers`,
/// `error(NAME,STATUS)`, `untyped(STATUS)`, `html(STATUS)`, `empty(STATUS)`, `exception(N,NAME)`, `crc(N)`, `truncate(N)`,
/// OpenAI's two errors that are not a bare status: `quota` (`error(insufficient_quota,429)`) and
/// `context-length` (`error(context_length_exceeded,400)`), and `drain(KIND=N|P%,limit=N,reset=D)`
/// (Anthropic mode: the rate-limit bucket KIND — requests, tokens, input-tokens, output-tokens —
/// has N, or P% of its limit, remaining, then the request is answered ok).
public struct FaultScript: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var fault: Fault
        /// nil: forever.
        public var count: Int?
    }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var step: String
        public var reason: String
        public var description: String { "invalid fault script step '\(step)': \(reason)" }
    }

    public var steps: [Step]

    public static let defaultOK = Fault.ok(events: 3, interval: .zero)

    public init(steps: [Step]) {
        self.steps = steps
    }

    public static func parse(_ text: String) throws(ParseError) -> FaultScript {
        var steps: [Step] = []
        for raw in splitTopLevel(text) {
            let token = raw.trimmingCharacters()
            if token.isEmpty { continue }
            var body = token
            var count: Int? = 1
            if let star = token.lastIndex(of: "*"), !token[star...].contains(")") {
                body = String(token[..<star])
                let countText = token[token.index(after: star)...]
                if countText.isEmpty {
                    count = nil
                } else {
                    guard let value = Int(countText), value > 0 else { throw ParseError(step: token, reason: "repeat count must be a positive number") }
                    count = value
                }
            }
            steps.append(Step(fault: try fault(from: body, token: token), count: count))
        }
        return FaultScript(steps: steps)
    }

    /// The fault for the request with this zero-based sequence number.
    public func fault(forRequest index: Int) -> Fault {
        var remaining = index
        for step in steps {
            guard let count = step.count else { return step.fault }
            if remaining < count { return step.fault }
            remaining -= count
        }
        return Self.defaultOK
    }

    static func fault(from text: String, token: String) throws(ParseError) -> Fault {
        var name = text
        var arguments: [String] = []
        if let open = text.firstIndex(of: "(") {
            guard text.hasSuffix(")") else { throw ParseError(step: token, reason: "missing ')'") }
            name = String(text[..<open])
            arguments = text[text.index(after: open)..<text.index(before: text.endIndex)]
                .split(separator: ",").map { String($0).trimmingCharacters() }
        }
        func option(_ key: String) -> String? {
            arguments.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        func duration(_ value: String) throws(ParseError) -> Duration {
            guard let parsed = parseDuration(value) else { throw ParseError(step: token, reason: "invalid duration '\(value)'") }
            return parsed
        }
        func positional(_ index: Int) -> String? {
            let plain = arguments.filter { !$0.contains("=") }
            return index < plain.count ? plain[index] : nil
        }
        switch name {
        case "ok":
            let events = try option("events").map { (value: String) throws(ParseError) -> Int in
                guard let count = Int(value), count >= 0 else { throw ParseError(step: token, reason: "events must be a number") }
                return count
            } ?? 3
            let interval = try option("interval").map { (value: String) throws(ParseError) -> Duration in try duration(value) } ?? .zero
            return .ok(events: events, interval: interval)
        case "slow":
            guard let value = positional(0) else { throw ParseError(step: token, reason: "slow needs a duration, e.g. slow(2s)") }
            return .slowFirstByte(try duration(value))
        case "reset": return .resetBeforeHeaders
        case "hang": return .hang
        case "sse-error":
            let after = positional(0).flatMap { Int($0) } ?? 1
            return .sseError(after: after, type: positional(1) ?? "overloaded_error")
        case "cut":
            return .cut(after: positional(0).flatMap { Int($0) } ?? 2)
        case "crc":
            return .corruptFrame(after: positional(0).flatMap { Int($0) } ?? 2)
        case "truncate":
            return .truncatedFrame(after: positional(0).flatMap { Int($0) } ?? 2)
        case "exception":
            guard let after = positional(0).flatMap({ Int($0) }), let name = positional(1), !name.isEmpty else {
                throw ParseError(step: token, reason: "exception needs an event count and a name, e.g. exception(2,modelStreamErrorException)")
            }
            return .exception(after: after, name: name)
        case "error":
            guard let name = positional(0), !name.isEmpty, let status = positional(1).flatMap({ Int($0) }), (100...599).contains(status) else {
                throw ParseError(step: token, reason: "error needs a name and a status, e.g. error(ThrottlingException,429)")
            }
            return .platformError(name: name, status: status)
        case "untyped", "html", "empty":
            guard let status = positional(0).flatMap({ Int($0) }), (100...599).contains(status) else {
                throw ParseError(step: token, reason: "\(name) needs a status, e.g. \(name)(502)")
            }
            switch name {
            case "untyped": return .untypedError(status)
            case "html": return .htmlError(status)
            default: return .emptyError(status)
            }
        // OpenAI's names: other platforms get them as error(NAME,STATUS), the name as it is.
        case "quota": return .platformError(name: "insufficient_quota", status: 429)
        case "context-length": return .platformError(name: "context_length_exceeded", status: 400)
        case "not-a-message": return .notAMessage
        case "stall":
            return .stall(after: positional(0).flatMap { Int($0) } ?? 2)
        case "invalid-json": return .invalidJSON
        case "huge":
            let size = positional(0).flatMap(parseSize) ?? (80 << 20)
            return .huge(bytes: size)
        case "malformed-sse": return .malformedSSE
        case "endless-headers": return .endlessHeaders
        case "drain": return .drain(try drain(arguments, token: token))
        default:
            guard let status = Int(name), (100...599).contains(status) else {
                throw ParseError(step: token, reason: "unknown fault '\(name)'")
            }
            let retryAfter = try option("retry-after").map { (value: String) throws(ParseError) -> Duration in
                if let seconds = Double(value) { return .milliseconds(Int64(seconds * 1000)) }
                return try duration(value)
            }
            let shouldRetry = option("should-retry").map { $0 == "true" }
            return .status(status, retryAfter: retryAfter, shouldRetry: shouldRetry)
        }
    }

    /// `drain(requests=3%,limit=100,reset=2s)`: one kind with its remaining amount, optional
    /// `limit` and `reset`.
    static func drain(_ arguments: [String], token: String) throws(ParseError) -> RateLimitDrain {
        var drain: RateLimitDrain?
        var limit: Int64?
        var reset: Duration?
        for argument in arguments {
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ParseError(step: token, reason: "drain takes KIND=AMOUNT, limit=N and reset=DURATION") }
            let (key, value) = (parts[0], parts[1])
            switch key {
            case "limit":
                guard let number = Int64(value), number > 0 else { throw ParseError(step: token, reason: "limit must be a positive number") }
                limit = number
            case "reset":
                guard let duration = parseDuration(value) else { throw ParseError(step: token, reason: "invalid duration '\(value)'") }
                reset = duration
            default:
                guard let kind = SimRateLimits.Kind.allCases.first(where: { $0.name == key }) else {
                    throw ParseError(step: token, reason: "unknown rate limit '\(key)' (requests, tokens, input-tokens, output-tokens)")
                }
                let amount: RateLimitDrain.Amount
                if value.hasSuffix("%"), let percent = Double(value.dropLast()), percent >= 0, percent <= 100 {
                    amount = .share(percent / 100)
                } else if let count = Int64(value), count >= 0 {
                    amount = .count(count)
                } else {
                    throw ParseError(step: token, reason: "remaining must be a count or a percentage, e.g. 3 or 3%")
                }
                drain = RateLimitDrain(kind: kind, remaining: amount)
            }
        }
        guard var drain else { throw ParseError(step: token, reason: "drain needs a kind, e.g. drain(requests=3%,reset=2s)") }
        drain.limit = limit
        drain.reset = reset
        return drain
    }

    private static func splitTopLevel(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            switch character {
            case "(": depth += 1; current.append(character)
            case ")": depth -= 1; current.append(character)
            case "," where depth == 0:
                parts.append(current)
                current = ""
            default: current.append(character)
            }
        }
        parts.append(current)
        return parts
    }
}

extension Fault {
    /// An error answer with no platform error type (`untyped`, `html`, `empty`).
    var isBareError: Bool {
        switch self {
        case .untypedError, .htmlError, .emptyError: true
        default: false
        }
    }
}

extension FaultScript {
    /// `5ms`, `2s`, `1m`.
    public static func parseDuration(_ text: String) -> Duration? { UpstreamSim.parseDuration(text) }
}

func parseDuration(_ text: String) -> Duration? {
    for (suffix, scale) in [("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)] where text.hasSuffix(suffix) {
        guard let value = Double(text.dropLast(suffix.count)), value >= 0 else { return nil }
        return .nanoseconds(Int64(value * scale * 1e9))
    }
    return nil
}

func parseSize(_ text: String) -> Int? {
    for (suffix, scale) in [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)] where text.hasSuffix(suffix) {
        return Int(text.dropLast(suffix.count)).map { $0 * scale }
    }
    return Int(text)
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
