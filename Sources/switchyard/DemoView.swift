import Foundation
import SwitchyardCore
import Synchronization

/// What the demo's callers saw, per second and in total.
final class DemoStats: Sendable {
    struct Window {
        var served: [String: Int] = [:]
        var errors = 0
        var failovers = 0
        var latencies: [Duration] = []

        mutating func add(model: String, status: Int, attempts: Int, latency: Duration) {
            if status == 200 {
                served[model, default: 0] += 1
            } else {
                errors += 1
            }
            if attempts > 1 { failovers += 1 }
            latencies.append(latency)
        }
    }

    private let current = Mutex(Window())
    private let total = Mutex(Window())

    func record(model: String, status: Int, attempts: Int, latency: Duration) {
        current.withLock { $0.add(model: model, status: status, attempts: attempts, latency: latency) }
        total.withLock { $0.add(model: model, status: status, attempts: attempts, latency: latency) }
    }

    /// The window since the last call, and a fresh one started.
    func takeWindow() -> Window {
        current.withLock { window in
            defer { window = Window() }
            return window
        }
    }

    var totals: Window { total.withLock { $0 } }
}

/// The once-a-second terminal view.
struct DemoView {
    let runtime: RouterRuntime
    let stats: DemoStats
    let auditPath: String

    func printHeader() {
        print("   t  sonnet  haiku  bedrock  vertex  errors  retried   p50     p99     breakers")
    }

    func note(_ text: String) {
        print("      » \(text)")
    }

    func printSecond(_ second: Int) async {
        let window = stats.takeWindow()
        let (p50, p99) = Self.percentiles(window.latencies)
        let line = String(
            format: "%4ds  %6d  %5d  %7d  %6d  %6d  %7d  %6@  %6@   %@",
            second, window.served["sonnet", default: 0], window.served["haiku", default: 0], window.served["sonnet-bedrock", default: 0],
            window.served["sonnet-vertex", default: 0], window.errors, window.failovers,
            p50 as NSString, p99 as NSString, breakers() as NSString
        )
        print(line)
        for transition in await newTransitions() {
            print("      ↳ \(transition)")
        }
    }

    func printSummary() async {
        await runtime.audit.flush()
        let totals = stats.totals
        let (p50, p99) = Self.percentiles(totals.latencies)
        let served = totals.served.values.reduce(0, +)
        let transitions = Self.transitions(in: auditPath)
        print("")
        let servedBy = ["sonnet", "haiku", "sonnet-bedrock", "sonnet-vertex"].map { "\($0) \(totals.served[$0, default: 0])" }.joined(separator: ", ")
        print("Summary: \(served + totals.errors) requests, \(served) answered 200 (\(servedBy)), \(totals.errors) errors to callers")
        print("         \(totals.failovers) requests needed more than one attempt; latency p50 \(p50), p99 \(p99)")
        let opened = transitions.contains { $0.contains("sonnet: closed → open") } && transitions.contains { $0.contains("haiku: closed → open") }
        let recovered = transitions.contains { $0.contains("sonnet: half_open → closed") }
        print("         platform outage: \(opened ? "yes, both Anthropic models' breakers opened and Bedrock took the traffic" : "no")")
        print("         throttling:      \(totals.served["sonnet-vertex", default: 0] > 0 ? "Vertex served while Bedrock throttled" : "Vertex was not needed")")
        print("         recovery:        \(recovered ? "yes, a probe succeeded and traffic returned to Anthropic" : "not within this run")")
        let headroom = Self.headroomSkips(in: auditPath)
        print(
            "         headroom:        "
                + (headroom.skips > 0
                    ? "\(headroom.skips) requests passed over Anthropic while 3% of its requests remained; \(headroom.rateLimited) 429s from it"
                    : "no request was passed over for headroom")
        )
        print("         audit log: \(auditPath) (one JSON line per request and per breaker transition)")
        print("         try: jq -c 'select(.event==\"breaker\")' \(auditPath)")
        print("         replay it: switchyard demo --print-config > demo.yaml && switchyard replay --config demo.yaml \(auditPath)")
    }

    private func breakers() -> String {
        let now = runtime.clock.now()
        return runtime.table.models.map { model in
            let state = model.health.snapshot
            let breaker = state.breaker
            if breaker.effectiveState(now: now) == .closed, let skip = state.headroom.skipUntil(now: now, minRemaining: model.headroomFloor) {
                let share = (state.headroom.lowestShare(now: now) ?? 0) * 100
                let left = Double((skip.until - now).milliseconds) / 1000
                return "\(model.name) HEADROOM \(String(format: "%.0f", share))% (\(String(format: "%.1f", left)) s to reset)"
            }
            switch breaker.effectiveState(now: now) {
            case .closed: return "\(model.name) closed"
            case .halfOpen: return "\(model.name) HALF-OPEN"
            case .open:
                let left = Double((breaker.openUntil - now).milliseconds) / 1000
                return "\(model.name) OPEN (\(String(format: "%.1f", left)) s left)"
            }
        }.joined(separator: " · ")
    }

    private static let seen = Mutex(0)

    /// Breaker lines of the audit log not shown yet.
    private func newTransitions() async -> [String] {
        await runtime.audit.flush()
        let all = Self.transitions(in: auditPath)
        return Self.seen.withLock { count in
            defer { count = all.count }
            return Array(all.dropFirst(count))
        }
    }

    static func transitions(in path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line -> String? in
            guard line.contains(#""event":"breaker""#),
                let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let model = json["model"] as? String, let from = json["from"] as? String, let to = json["to"] as? String
            else { return nil }
            var text = "breaker \(model): \(from) → \(to)"
            if let reason = json["reason"] as? String { text += " (\(reason))" }
            if let openFor = json["open_for_ms"] as? Int { text += ", open for \(Double(openFor) / 1000) s" }
            return text
        }
    }

    /// Requests whose decision skipped a model for its headroom, and Anthropic attempts answered 429.
    static func headroomSkips(in path: String) -> (skips: Int, rateLimited: Int) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return (0, 0) }
        var skips = 0
        var limited = 0
        for line in text.split(separator: "\n") where line.contains(#""event":"request""#) {
            if line.contains(#""reason":"headroom""#) { skips += 1 }
            guard line.contains(#""status":429"#), let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let attempts = json["attempts"] as? [[String: Any]]
            else { continue }
            limited += attempts.filter { $0["platform"] as? String == "anthropic" && $0["status"] as? Int == 429 }.count
        }
        return (skips, limited)
    }

    static func percentiles(_ latencies: [Duration]) -> (String, String) {
        guard !latencies.isEmpty else { return ("-", "-") }
        let sorted = latencies.sorted()
        func format(_ fraction: Double) -> String {
            let index = min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)
            return "\(sorted[max(0, index)].milliseconds) ms"
        }
        return (format(0.5), format(0.99))
    }
}
