import CivilTime
import NIOHTTP1

/// Anthropic's rate-limit headers, `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
/// read into a ``HeadroomReading``: one pass over the answer's header lines, bytes compared in
/// place, numbers and RFC 3339 times parsed from the bytes, nothing allocated.
public enum AnthropicRateLimitHeaders {
    /// nil when the answer carried none of them. Public for the hot-path microbenchmark.
    public static func read(_ headers: HTTPHeaders) -> HeadroomReading? {
        var limits: (Int64?, Int64?, Int64?, Int64?) = (nil, nil, nil, nil)
        var remaining: (Int64?, Int64?, Int64?, Int64?) = (nil, nil, nil, nil)
        var resets: (Int64?, Int64?, Int64?, Int64?) = (nil, nil, nil, nil)
        var seen = false
        for (name, value) in headers {
            // Most lines are other headers: their length or first byte already says so.
            guard name.utf8.count >= minimumNameLength, name.utf8.first.map({ $0 | 0x20 }) == UInt8(ascii: "a"),
                let (kind, field) = classify(name)
            else { continue }
            seen = true
            switch field {
            case .limit: set(&limits, kind, parseInteger(value))
            case .remaining: set(&remaining, kind, parseInteger(value))
            case .reset: set(&resets, kind, parseTimestamp(value))
            }
        }
        guard seen else { return nil }
        var reading = HeadroomReading()
        for kind in HeadroomKind.each {
            guard let limit = get(limits, kind), let left = get(remaining, kind) else { continue }
            reading[kind] = HeadroomReport(limit: limit, remaining: left, resetWallMs: get(resets, kind))
        }
        return reading.isEmpty ? nil : reading
    }

    enum Field {
        case limit
        case remaining
        case reset
    }

    private static let prefix: StaticString = "anthropic-ratelimit-"
    /// `anthropic-ratelimit-tokens-limit`, the shortest name of the family.
    private static let minimumNameLength = 32

    /// The kind and field a header name stands for, compared without case and without a copy.
    static func classify(_ name: String) -> (HeadroomKind, Field)? {
        name.utf8.withContiguousStorageIfAvailable { classify(bytes: $0) } ?? Array(name.utf8).withUnsafeBufferPointer { classify(bytes: $0) }
    }

    private static func classify(bytes: UnsafeBufferPointer<UInt8>) -> (HeadroomKind, Field)? {
        guard let prefixLength = match(bytes, prefix) else { return nil }
        let rest = UnsafeBufferPointer(rebasing: bytes[prefixLength...])
        let kind: HeadroomKind
        let afterKind: Int
        if let length = match(rest, "requests-") {
            (kind, afterKind) = (.requests, length)
        } else if let length = match(rest, "tokens-") {
            (kind, afterKind) = (.tokens, length)
        } else if let length = match(rest, "input-tokens-") {
            (kind, afterKind) = (.inputTokens, length)
        } else if let length = match(rest, "output-tokens-") {
            (kind, afterKind) = (.outputTokens, length)
        } else {
            return nil
        }
        let field = UnsafeBufferPointer(rebasing: rest[afterKind...])
        if match(field, "limit") == field.count { return (kind, .limit) }
        if match(field, "remaining") == field.count { return (kind, .remaining) }
        if match(field, "reset") == field.count { return (kind, .reset) }
        return nil
    }

    /// The length of `word` when `bytes` starts with it (ASCII, any case).
    private static func match(_ bytes: UnsafeBufferPointer<UInt8>, _ word: StaticString) -> Int? {
        let count = word.utf8CodeUnitCount
        guard bytes.count >= count else { return nil }
        let start = word.utf8Start
        for index in 0..<count where lower(bytes[index]) != start[index] { return nil }
        return count
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// A non-negative decimal number, surrounding blanks allowed.
    static func parseInteger(_ text: String) -> Int64? {
        var value: Int64 = 0
        var digits = 0
        var ended = false
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard !ended, digits < 18 else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: " "), UInt8(ascii: "\t"):
                if digits > 0 { ended = true }
            default:
                return nil
            }
        }
        return digits > 0 ? value : nil
    }

    /// RFC 3339 (`2026-01-31T12:00:05Z`, `2026-01-31T12:00:05.250+01:00`) to Unix milliseconds.
    static func parseTimestamp(_ text: String) -> Int64? {
        var scanner = TimestampScanner()
        for byte in text.utf8 {
            guard scanner.feed(byte) else { return nil }
        }
        return scanner.finish()
    }

    private static func set(_ slots: inout (Int64?, Int64?, Int64?, Int64?), _ kind: HeadroomKind, _ value: Int64?) {
        switch kind {
        case .requests: slots.0 = value
        case .tokens: slots.1 = value
        case .inputTokens: slots.2 = value
        case .outputTokens: slots.3 = value
        }
    }

    private static func get(_ slots: (Int64?, Int64?, Int64?, Int64?), _ kind: HeadroomKind) -> Int64? {
        switch kind {
        case .requests: slots.0
        case .tokens: slots.1
        case .inputTokens: slots.2
        case .outputTokens: slots.3
        }
    }
}

/// An RFC 3339 date-time read byte by byte: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
private struct TimestampScanner {
    /// Year, month, day, hour, minute, second, then the offset's hours and minutes.
    private var fields: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var field = 0
    private var digits = 0
    private var millis: Int64 = 0
    private var fractionDigits = 0
    private var inFraction = false
    private var offsetSign: Int64 = 0
    private var zulu = false
    private var leadingBlanks = true

    /// Digits each field takes.
    private static func width(_ field: Int) -> Int { field == 0 ? 4 : 2 }

    /// The separator that ends a field (0: none, the field ends otherwise).
    private static func separator(_ field: Int) -> UInt8 {
        switch field {
        case 0, 1: UInt8(ascii: "-")
        case 2: UInt8(ascii: "T")
        case 3, 4, 6: UInt8(ascii: ":")
        default: 0
        }
    }

    mutating func feed(_ byte: UInt8) -> Bool {
        if leadingBlanks, byte == UInt8(ascii: " ") { return true }
        leadingBlanks = false
        guard !zulu else { return false }
        let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
        if inFraction {
            if isDigit {
                if fractionDigits < 3 { millis = millis * 10 + Int64(byte - UInt8(ascii: "0")) }
                fractionDigits += 1
                return true
            }
            guard fractionDigits > 0 else { return false }
            inFraction = false
            return zone(byte)
        }
        guard field < 8 else { return false }
        if isDigit {
            guard digits < Self.width(field) else { return false }
            add(Int64(byte - UInt8(ascii: "0")))
            digits += 1
            return true
        }
        guard digits == Self.width(field) else { return false }
        if field == 2, byte == UInt8(ascii: "t") || byte == UInt8(ascii: " ") {
            return next()
        }
        if field == 5 {
            if byte == UInt8(ascii: ".") {
                inFraction = true
                return true
            }
            return zone(byte)
        }
        guard byte == Self.separator(field) else { return false }
        return next()
    }

    private mutating func zone(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            zulu = true
            field = 8
            return true
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard field == 5 else { return false }
            offsetSign = byte == UInt8(ascii: "+") ? 1 : -1
            return next()
        default:
            return false
        }
    }

    private mutating func next() -> Bool {
        field += 1
        digits = 0
        return true
    }

    private mutating func add(_ digit: Int64) {
        switch field {
        case 0: fields.0 = fields.0 * 10 + digit
        case 1: fields.1 = fields.1 * 10 + digit
        case 2: fields.2 = fields.2 * 10 + digit
        case 3: fields.3 = fields.3 * 10 + digit
        case 4: fields.4 = fields.4 * 10 + digit
        case 5: fields.5 = fields.5 * 10 + digit
        case 6: fields.6 = fields.6 * 10 + digit
        default: fields.7 = fields.7 * 10 + digit
        }
    }

    func finish() -> Int64? {
        let complete = zulu || (offsetSign != 0 && field == 7 && digits == 2)
        guard complete, !inFraction else { return nil }
        let (year, month, day, hour, minute, second, offsetHours, offsetMinutes) = fields
        guard (1...12).contains(month), day >= 1, day <= CivilTime.daysInMonth(year: year, month: month), hour < 24, minute < 60, second < 61,
            offsetHours < 24, offsetMinutes < 60
        else { return nil }
        var milliseconds = millis
        for _ in min(fractionDigits, 3)..<3 { milliseconds *= 10 }
        let local = CivilTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second, millisecond: milliseconds)
            .unixMilliseconds
        return local - offsetSign * (offsetHours * 3_600_000 + offsetMinutes * 60_000)
    }
}
