import AWSWire
import Foundation
import Synchronization

/// Credentials the simulator hands out in its platform modes — temporary AWS keys (container
/// endpoint, STS) and Google access tokens (token endpoint, metadata server) — and remembers, so
/// that requests signed or authorized with them are accepted until they expire. Counts every
/// issue, so tests can see how often the router fetched.
public final class SimIssuer: Sendable {
    private struct State {
        var awsCredentials: [String: AWSCredentials] = [:]
        var tokens: [String: Int64] = [:]
        var counts: [String: Int] = [:]
        var serial = 0
    }

    private let state = Mutex(State())
    let lifetimeSeconds: Int64
    /// Unix seconds as the simulator sees them (its clock may be set ahead).
    let now: @Sendable () -> Int64

    init(lifetimeSeconds: Int64, now: @escaping @Sendable () -> Int64) {
        self.lifetimeSeconds = lifetimeSeconds
        self.now = now
    }

    /// How many times `endpoint` (`container`, `sts`, `token`, `metadata`) was asked.
    public func count(_ endpoint: String) -> Int {
        state.withLock { $0.counts[endpoint] ?? 0 }
    }

    func issueAWSCredentials(for endpoint: String) -> AWSCredentials {
        state.withLock { state in
            state.serial += 1
            state.counts[endpoint, default: 0] += 1
            let credentials = AWSCredentials(
                accessKeyID: "ASIASIM\(String(format: "%09d", state.serial))", secretAccessKey: "simsecret\(UUID().uuidString)",
                sessionToken: "simtoken\(UUID().uuidString)", expiresAtMs: (now() + lifetimeSeconds) * 1000
            )
            state.awsCredentials[credentials.accessKeyID] = credentials
            return credentials
        }
    }

    /// Issued credentials for a key id, while they are valid.
    func awsCredentials(accessKeyID: String) -> AWSCredentials? {
        state.withLock { state in
            guard let credentials = state.awsCredentials[accessKeyID] else { return nil }
            guard let expiry = credentials.expiresAtMs, expiry > now() * 1000 else { return nil }
            return credentials
        }
    }

    func issueToken(for endpoint: String) -> String {
        state.withLock { state in
            state.serial += 1
            state.counts[endpoint, default: 0] += 1
            let token = "ya29.sim-\(state.serial)-\(UUID().uuidString.prefix(8))"
            state.tokens[token] = now() + lifetimeSeconds
            return token
        }
    }

    func isValid(token: String) -> Bool {
        state.withLock { state in
            guard let expiry = state.tokens[token] else { return false }
            return expiry > now()
        }
    }
}

/// Small helpers the dialects share.
enum SimJSON {
    static func object(_ buffer: ByteBuffer) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any]
    }

    /// The value, or JSON's null.
    static func orNull(_ value: Any?) -> Any { value ?? NSNull() }

    static func string(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(unixSeconds: Int64) -> String {
        var time = time_t(unixSeconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return String(
            format: "%@, %02d %@ %04d %02d:%02d:%02d GMT", days[Int(parts.tm_wday)], parts.tm_mday, months[Int(parts.tm_mon)],
            Int(parts.tm_year) + 1900, parts.tm_hour, parts.tm_min, parts.tm_sec
        )
    }

    /// `2026-11-25T10:00:00Z`.
    static func iso8601(unixSeconds: Int64) -> String {
        var time = time_t(unixSeconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, parts.tm_mday, parts.tm_hour, parts.tm_min,
            parts.tm_sec
        )
    }

    /// Decodes `application/x-www-form-urlencoded`.
    static func form(_ body: ByteBuffer) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ") }
            guard let key = parts.first?.removingPercentEncoding else { continue }
            fields[key] = parts.count > 1 ? parts[1].removingPercentEncoding ?? "" : ""
        }
        return fields
    }
}

import NIOCore
