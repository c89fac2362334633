import NIOHTTP1

/// `retry-after-ms`, or `retry-after` in seconds or as an HTTP date.
enum RetryAfter {
    static func parse(_ headers: HTTPHeaders, now wallMilliseconds: Int64) -> Duration? {
        if let text = headers.first(name: "retry-after-ms"), let ms = Double(text.trimmingWhitespace()), ms >= 0, ms.isFinite {
            return .milliseconds(Int64(min(ms, 86_400_000)))
        }
        guard let text = headers.first(name: "retry-after") else { return nil }
        let trimmed = text.trimmingWhitespace()
        if let seconds = Double(trimmed), seconds >= 0, seconds.isFinite {
            return .milliseconds(Int64(min(seconds, 86_400) * 1000))
        }
        if let date = HTTPDate.parse(String(trimmed)) {
            return .milliseconds(max(0, date - wallMilliseconds))
        }
        return nil
    }
}
