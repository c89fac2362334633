/// Parsers for the scalar notations routes.yaml uses. Each returns nil or a reason, never throws,
/// so the loader can attach the file position.
enum ConfigValues {
    /// `250ms`, `30s`, `5m`, `1h`, `1.5s`. A bare `0` is accepted as zero.
    static func duration(_ text: String) -> Result<Duration, Reason> {
        let trimmed = text.trimmingWhitespace()
        if trimmed == "0" { return .success(.zero) }
        let units: [(String, Double)] = [("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, seconds) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            // "5ms" also ends in "s"; the order above tries "ms" first, and "m"/"h" cannot collide.
            guard let value = Double(number), value.isFinite, value >= 0, !number.isEmpty, number.first != "+" else {
                return .failure(Reason("invalid duration '\(text)' (expected e.g. 250ms, 30s, 5m, 1h)"))
            }
            let nanos = value * seconds * 1e9
            guard nanos < 1e18 else { return .failure(Reason("duration '\(text)' is too long")) }
            return .success(.nanoseconds(Int64(nanos.rounded())))
        }
        return .failure(Reason("invalid duration '\(text)' (expected a number with a unit: ms, s, m or h, e.g. 30s)"))
    }

    /// `512KiB`, `32MiB`, `1GiB`, `10MB` or a plain number of bytes.
    static func byteSize(_ text: String) -> Result<Int, Reason> {
        let trimmed = text.trimmingWhitespace()
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
            ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1),
        ]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingWhitespace()
            guard let value = Int(number), value >= 0 else { break }
            let (product, overflow) = value.multipliedReportingOverflow(by: factor)
            guard !overflow else { return .failure(Reason("size '\(text)' is too large")) }
            return .success(product)
        }
        if let value = Int(trimmed), value >= 0 { return .success(value) }
        return .failure(Reason("invalid size '\(text)' (expected bytes or a number with KiB, MiB or GiB, e.g. 32MiB)"))
    }

    /// A byte count the way routes.yaml writes it: `32MiB`, `512KiB`, or bytes.
    static func sizeNotation(_ bytes: Int) -> String {
        for (suffix, factor) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes >= factor && bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        return "\(bytes) bytes"
    }

    /// `50%` or a fraction `0.5`.
    static func fraction(_ text: String) -> Result<Double, Reason> {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasSuffix("%"), let percent = Double(trimmed.dropLast()), percent > 0, percent <= 100 {
            return .success(percent / 100)
        }
        if let value = Double(trimmed), value > 0, value <= 1 { return .success(value) }
        return .failure(Reason("invalid share '\(text)' (expected a percentage such as 50% or a fraction in (0, 1])"))
    }

    /// `HOST:PORT`, `[::1]:PORT` or `:PORT` (all interfaces).
    static func hostPort(_ text: String) -> Result<HostPort, Reason> {
        let trimmed = text.trimmingWhitespace()
        let invalid = Reason("invalid listen address '\(text)' (expected HOST:PORT, e.g. 127.0.0.1:8080)")
        var host: Substring
        var portText: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else { return .failure(invalid) }
            host = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":") else { return .failure(invalid) }
            portText = rest.dropFirst()
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else { return .failure(invalid) }
            host = trimmed[..<colon]
            portText = trimmed[trimmed.index(after: colon)...]
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(portText), (0...65535).contains(port) else { return .failure(invalid) }
        return .success(HostPort(host: String(host), port: port))
    }

    /// Environment variable names as a shell would accept them.
    static func isEnvironmentVariableName(_ text: String) -> Bool {
        guard let first = text.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return text.utf8.allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }

    /// Values that look like credentials pasted into the file instead of named by `*_env`.
    static func looksLikeSecret(_ text: String) -> Bool {
        let prefixes = ["sk-ant-", "sk-proj-", "sk-", "xoxb-", "ghp_", "AKIA", "Bearer "]
        if prefixes.contains(where: { text.hasPrefix($0) && text.count >= 20 }) { return true }
        // Long unbroken runs of base64/hex alphabet look like keys or tokens, not like names or URLs.
        let isTokenAlphabet = text.utf8.allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
        }
        guard isTokenAlphabet, text.count >= 32 else { return false }
        let hasDigit = text.utf8.contains { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        let hasLower = text.utf8.contains { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }
        let hasUpper = text.utf8.contains { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
        return hasDigit && (hasLower || hasUpper) && !text.contains("claude")
    }

    struct Reason: Error, Sendable, Equatable {
        var message: String
        init(_ message: String) { self.message = message }
    }
}

public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func parse(_ text: String) -> HostPort? {
        try? ConfigValues.hostPort(text).get()
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> Substring {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return slice
    }
}

extension Duration {
    /// Whole milliseconds, for logs and headers.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Whole microseconds, for the audit line's `*_us` fields.
    public var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }

    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// `30s`, `250ms`, `5m`: how routes.yaml would write it.
    public var configNotation: String {
        let ms = milliseconds
        if ms == 0 { return "0s" }
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}
