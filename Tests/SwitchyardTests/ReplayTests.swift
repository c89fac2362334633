import Foundation
import Testing

@testable import SwitchyardCore

/// `switchyard replay`: reading an audit log back onto the recorded clock, the rule for what a model
/// answered at a moment, and replays of real traffic — with the configuration that recorded it
/// (the counts come back exactly), with a raised `failure_threshold`, and with a model the
/// recording never tried.
@Suite("Replay")
struct ReplayTests {
    static func request(
        ts: String, stream: Bool = false, status: Int = 200, outcome: String = "ok", model: String? = "sonnet", downgraded: Bool = false,
        attempts: [String]
    ) -> String {
        let served = model.map { #""model":"\#($0)","# } ?? ""
        return #"{"ts":"\#(ts)","event":"request","request_id":"r","route":"default","requested_model":"default","api":"messages","stream":\#(stream),"#
            + #""status":\#(status),"outcome":"\#(outcome)",\#(served)"downgraded":\#(downgraded),"decision":[],"attempts":[\#(attempts.joined(separator: ","))],"duration_ms":1}"#
    }

    static func config(breaker: String = "failure_threshold: 3, open_for: 30s", models: String = "[sonnet, haiku]") throws -> SwitchyardConfig {
        let yaml = """
            version: 1
            server: { listen: 127.0.0.1:0 }
            providers:
              a: { type: anthropic, base_url: "http://127.0.0.1:1", api_key_env: SIM_KEY }
            models:
              sonnet: { provider: a, model: claude-sonnet-4-20250514 }
              haiku: { provider: a, model: claude-3-5-haiku-20241022 }
              opus: { provider: a, model: claude-opus-4-20250514 }
            defaults:
              breaker: { \(breaker) }
              retry: { max_attempts: 4, per_model: 2, backoff: { initial: 10ms, multiplier: 2, max: 50ms } }
            routes:
              default: { models: \(models) }
            """
        return try ConfigLoader(environment: ["SIM_KEY": "k"], mode: .check).load(yaml: yaml, source: "test").config
    }

    // MARK: Reading the recording

    @Test func attemptsArePlacedOnTheRecordedClockAfterTheDurationsAndBackoffsBeforeThem() throws {
        let line = Self.request(
            ts: "2026-11-25T02:00:00.000Z", model: "haiku", downgraded: true,
            attempts: [
                #"{"model":"sonnet","status":500,"error_type":"api_error","duration_ms":12}"#,
                #"{"model":"sonnet","status":503,"duration_ms":7,"backoff_ms":40,"retry_after_ms":30}"#,
                #"{"model":"haiku","status":200,"duration_ms":100}"#,
            ]
        )
        let later = Self.request(ts: "2026-11-25T02:00:01.500Z", attempts: [#"{"model":"sonnet","error":"timeout","duration_ms":2000}"#])
        let recording = try AuditRecording(jsonLines: later + "\n" + line + "\n")
        #expect(recording.requests.count == 2)
        let first = recording.requests[0]
        #expect(first.arrival.nanoseconds == 0, "instants count from the first request's ts, whatever the line order")
        #expect(first.attempts.map(\.start.nanoseconds) == [0, 52_000_000, 59_000_000])
        #expect(first.attempts[0].outcome == .answer(.response(status: 500, errorType: "api_error", retryAfter: nil, shouldRetry: nil)))
        #expect(first.attempts[1].outcome == .answer(.response(status: 503, errorType: nil, retryAfter: .milliseconds(30), shouldRetry: nil)))
        #expect(recording.requests[1].arrival.nanoseconds == 1_500_000_000)
        #expect(recording.requests[1].attempts[0].outcome == .answer(.transport(.timeout)))
    }

    @Test func streamsAreReadBeforeAndAfterTheirCommitPoint() throws {
        let before = Self.request(
            ts: "2026-11-25T02:00:00.000Z", stream: true, model: "haiku",
            attempts: [
                #"{"model":"sonnet","status":200,"error":"stream_error","error_type":"overloaded_error","duration_ms":3}"#,
                #"{"model":"haiku","status":200,"duration_ms":90}"#,
            ]
        )
        let after = Self.request(
            ts: "2026-11-25T02:00:00.100Z", stream: true, outcome: "stream_error",
            attempts: [#"{"model":"sonnet","status":200,"error":"stream_error","error_type":"api_error","duration_ms":300}"#]
        )
        let cancelled = Self.request(
            ts: "2026-11-25T02:00:00.200Z", stream: true, outcome: "cancelled", model: nil,
            attempts: [#"{"model":"sonnet","status":200,"duration_ms":50}"#]
        )
        let recording = try AuditRecording(jsonLines: [before, after, cancelled].joined(separator: "\n"))
        #expect(recording.requests[0].attempts[0].outcome == .answer(.streamFailedBeforeCommit(errorType: "overloaded_error", failure: nil)))
        #expect(recording.requests[1].attempts[0].outcome == .streamFailedAfterCommit(cause: "api_error"))
        #expect(recording.requests[2].attempts[0].outcome == .cancelled(status: 200))
        // Another request meets the broken stream's upstream as a stream, or as an answer that broke off.
        #expect(recording.requests[1].attempts[0].outcome.answer(forStream: true) == .streamFailedAfterCommit(cause: "api_error"))
        #expect(recording.requests[1].attempts[0].outcome.answer(forStream: false) == .answer(.transport(.reset)))
        #expect(recording.requests[0].attempts[0].outcome.answer(forStream: false)
            == .answer(.response(status: 529, errorType: "overloaded_error", retryAfter: nil, shouldRetry: nil)))
    }

    @Test func refusedAndBatchLinesAreNotReplayedAndBreakerLinesAreKept() throws {
        let refused = #"{"ts":"2026-11-25T02:00:00.000Z","event":"request","request_id":"x","api":"messages","stream":false,"status":404,"outcome":"rejected","downgraded":false,"decision":[],"attempts":[],"duration_ms":0}"#
        let batch = #"{"ts":"2026-11-25T02:00:00.000Z","event":"batch.retry","request_id":"y","batch_id":"b","route":"default","requested_model":"default","api":"messages","stream":false,"status":529,"outcome":"upstream_error","downgraded":false,"decision":[],"attempts":[],"duration_ms":0}"#
        let breaker = #"{"ts":"2026-11-25T02:00:02.000Z","event":"breaker","model":"sonnet","from":"closed","to":"open","reason":"3 consecutive failures (500, 500, 500)","open_for_ms":30000}"#
        let started = #"{"ts":"2026-11-25T01:59:59.000Z","event":"server.started","listen":"127.0.0.1:8080"}"#
        let ok = Self.request(ts: "2026-11-25T02:00:01.000Z", attempts: [#"{"model":"sonnet","status":200,"duration_ms":5}"#])
        let recording = try AuditRecording(jsonLines: [started, refused, batch, ok, breaker].joined(separator: "\n"))
        #expect(recording.requests.count == 1)
        #expect(recording.notReplayed == 2)
        #expect(recording.transitions == [TimedTransition(at: MonotonicInstant(nanoseconds: 1_000_000_000), model: "sonnet", from: .closed, to: .open, reason: "3 consecutive failures (500, 500, 500)")])
        #expect(throws: ReplayError.self) { try AuditRecording(jsonLines: "not json\n") }
    }

    @Test func aModelAnswersWhatItAnsweredLastAtOrBeforeThatMomentElseFirstAfter() throws {
        let lines = [
            Self.request(ts: "2026-11-25T02:00:01.000Z", attempts: [#"{"model":"sonnet","status":500,"duration_ms":5}"#]),
            Self.request(ts: "2026-11-25T02:00:03.000Z", attempts: [#"{"model":"sonnet","status":200,"duration_ms":8}"#]),
            Self.request(ts: "2026-11-25T02:00:03.000Z", attempts: [#"{"model":"sonnet","status":529,"duration_ms":9}"#]),
            Self.request(ts: "2026-11-25T02:00:04.000Z", attempts: [#"{"model":"sonnet","error":"capacity","duration_ms":5000}"#]),
        ]
        let timeline = OutcomeTimeline(try AuditRecording(jsonLines: lines.joined(separator: "\n")).requests)
        func status(at seconds: Double) -> Int? {
            guard let (outcome, _) = timeline.answer(model: "sonnet", at: MonotonicInstant(nanoseconds: Int64(seconds * 1e9)), stream: false),
                case .answer(.response(let status, _, _, _, _)) = outcome
            else { return nil }
            return status
        }
        #expect(status(at: -1) == 500, "before anything was recorded: the first answer after")
        #expect(status(at: 0) == 500)
        #expect(status(at: 1.999) == 500)
        #expect(status(at: 2) == 529, "two answers at one instant: the later line")
        #expect(status(at: 9) == 529, "error: capacity is the router's own limit, not the upstream's answer")
        #expect(timeline.answer(model: "opus", at: MonotonicInstant(nanoseconds: 0), stream: false) == nil, "never tried: unknown")
        #expect(timeline.answer(model: "sonnet", at: MonotonicInstant(nanoseconds: 0), stream: false)?.duration == .milliseconds(5))
    }

    // MARK: Replaying hand-written lines

    /// Five requests 100 ms apart, each a 500 on sonnet and a 200 on haiku, as the recording of a
    /// router whose sonnet breaker opened at the third.
    static func outage() -> String {
        (0..<5).map { index in
            let onSonnet = index < 3
            let attempts =
                onSonnet
                ? [#"{"model":"sonnet","status":500,"duration_ms":10}"#, #"{"model":"haiku","status":200,"duration_ms":20}"#]
                : [#"{"model":"haiku","status":200,"duration_ms":20}"#]
            return request(ts: "2026-11-25T02:00:0\(index).000Z", model: "haiku", downgraded: true, attempts: attempts)
        }.joined(separator: "\n")
            + "\n"
            + #"{"ts":"2026-11-25T02:00:02.010Z","event":"breaker","model":"sonnet","from":"closed","to":"open","reason":"3 consecutive failures (500, 500, 500)","open_for_ms":30000}"#
    }

    @Test func theRecordingsOwnConfigurationGivesBackItsCounts() throws {
        let recording = try AuditRecording(jsonLines: Self.outage())
        // per_model 1 so that a 500 moves on at once, as the recording did.
        let config = try Self.config(breaker: "failure_threshold: 3, open_for: 30s").withRetry(perModel: 1)
        let report = ReplayReport(recording: recording, config: config, seed: 1, auditSource: "outage", configSource: "same")
        #expect(report.sameCounts)
        #expect(report.candidate.transitions["sonnet"]?.map(\.at.nanoseconds) == [2_010_000_000])
        #expect(report.changed == 0)
    }

    @Test func aRaisedThresholdKeepsTheBreakerClosedAndSendsEveryRequestToSonnetFirst() throws {
        let recording = try AuditRecording(jsonLines: Self.outage())
        let config = try Self.config(breaker: "failure_threshold: 10, open_for: 30s").withRetry(perModel: 1)
        let report = ReplayReport(recording: recording, config: config, seed: 1, auditSource: "outage", configSource: "raised")
        #expect(!report.sameCounts)
        #expect(report.candidate.transitionCount == 0)
        #expect(report.recorded.transitionCount == 1)
        // Requests 4 and 5 try sonnet too: it answered 500 last, so they fail over to haiku.
        #expect(report.candidate.attempts == 10)
        #expect(report.candidate.attemptsOn["sonnet"] == 5)
        #expect(report.candidate.answered == 5)
    }

    @Test func aModelTheRecordingNeverTriedIsUnknownNotGuessed() throws {
        let recording = try AuditRecording(jsonLines: Self.outage())
        let config = try Self.config(models: "[sonnet, opus, haiku]").withRetry(perModel: 1)
        let report = ReplayReport(recording: recording, config: config, seed: 1, auditSource: "outage", configSource: "opus")
        #expect(report.unknownModels == ["opus"])
        #expect(report.candidate.unknown == 5, "every request failed over from sonnet (or skipped it) and reached opus")
        #expect(report.candidate.answered == 0)
        #expect(report.table().contains("the recording never tried opus"))
        #expect(report.json().contains(#""unknown_models":["opus"]"#))
    }

    /// Sonnet's answer says 3 of 100 requests remain until 02:00:04, and the router skipped it for
    /// the next request; after the reset sonnet served again.
    static func headroomSkip() -> String {
        let low = #"{"model":"sonnet","status":200,"duration_ms":10,"ttfb_ms":5,"headroom":{"requests":{"limit":100,"remaining":3,"reset":"2026-11-25T02:00:04.000Z"},"input_tokens":{"limit":1000,"remaining":900}}}"#
        return [
            request(ts: "2026-11-25T02:00:00.000Z", attempts: [low]),
            request(ts: "2026-11-25T02:00:01.000Z", model: "haiku", downgraded: true, attempts: [#"{"model":"haiku","status":200,"duration_ms":20}"#]),
            request(ts: "2026-11-25T02:00:05.000Z", attempts: [#"{"model":"sonnet","status":200,"duration_ms":10}"#]),
        ].joined(separator: "\n")
    }

    @Test func microsecondFieldsOrderRequestsAndPlaceAttemptsWithinAMillisecond() throws {
        let ms = try #require(CredentialTimestamp.unixMilliseconds("2026-11-25T02:00:00.000Z"))
        func line(arrivalUs: Int64, startUs: Int64) -> String {
            Self.request(ts: "2026-11-25T02:00:00.000Z", attempts: [#"{"model":"sonnet","status":200,"duration_ms":2,"duration_us":2500,"start_us":\#(startUs)}"#])
                .replacingOccurrences(of: #""event":"request","#, with: #""event":"request","ts_us":\#(ms * 1000 + arrivalUs),"#)
        }
        // Both in one millisecond; the log has them in the order they ended, not arrived.
        let recording = try AuditRecording(jsonLines: line(arrivalUs: 700, startUs: 40) + "\n" + line(arrivalUs: 300, startUs: 1200))
        #expect(recording.requests.map(\.lineNumber) == [2, 1])
        #expect(recording.requests.map(\.arrival.nanoseconds) == [300_000, 700_000])
        #expect(recording.requests[0].firstSelection.nanoseconds == 1_500_000, "arrival + start_us")
        #expect(recording.requests[1].firstSelection.nanoseconds == 740_000)
        #expect(recording.requests[0].attempts[0].duration == .microseconds(2500))
    }

    @Test func aHeadroomSkipIsReplayedFromTheReadingTheAuditKept() throws {
        let recording = try AuditRecording(jsonLines: Self.headroomSkip())
        let reading = try #require(recording.requests[0].attempts[0].headroom)
        #expect(reading.requests == HeadroomReport(limit: 100, remaining: 3, resetWallMs: recording.originMs + 4000))
        #expect(reading.inputTokens == HeadroomReport(limit: 1000, remaining: 900, resetWallMs: nil))
        #expect(recording.requests[0].attempts[0].ttfb == .milliseconds(5))

        // The recording's own rule (min_remaining 5 %): the same skip, the same counts.
        let same = ReplayReport(recording: recording, config: try Self.config(), seed: 1, auditSource: "headroom", configSource: "same")
        #expect(same.sameCounts)
        #expect(same.candidate.served["haiku"] == 1 && same.candidate.served["sonnet"] == 2)

        // A candidate that skips only below 1 %: the second request stays on sonnet.
        let lower = try Self.config(models: "[sonnet, haiku], headroom: { min_remaining: 1% }")
        let report = ReplayReport(recording: recording, config: lower, seed: 1, auditSource: "headroom", configSource: "1%")
        #expect(!report.sameCounts)
        #expect(report.candidate.served["sonnet"] == 3 && report.candidate.downgrades == 0)
    }

    // MARK: Replaying real traffic

    /// Sequential requests through the router; sonnet fails 500 four times, then recovers. With
    /// `open_for: 1s` the breaker opens, a probe fails (open 2 s), a probe succeeds. Real time,
    /// with every request well clear of an open period's end.
    static let recordedYAML = TestConfigs.twoModels(
        breaker: "failure_threshold: 3, open_for: 1s, max_open_for: 5s, half_open_probes: 1",
        retry: "max_attempts: 4, per_model: 2, backoff: { initial: 10ms, multiplier: 2, max: 40ms }"
    )

    static func record() async throws -> String {
        var audit = ""
        try await RouterHarness.with(sims: ["a": "ok*3,500*4,ok*", "b": ""], yaml: recordedYAML, manualClock: false) { harness in
            for _ in 0..<3 { _ = try await harness.message() }
            _ = try await harness.message()  // two 500s on sonnet, haiku answers
            _ = try await harness.message()  // the third 500 opens sonnet's breaker
            try await Task.sleep(for: .milliseconds(1300))
            _ = try await harness.message()  // the probe fails: open for 2 s
            try await Task.sleep(for: .milliseconds(2300))
            _ = try await harness.message()  // the probe succeeds
            _ = try await harness.message(stream: true)
            _ = try await harness.auditLines(requests: 8)
            audit = harness.audit.memoryContents
        }
        return audit
    }

    @Test func realTrafficReplayedWithItsOwnConfigurationThenWithARaisedThresholdAndAnUntriedModel() async throws {
        let audit = try await Self.record()
        let recording = try AuditRecording(jsonLines: audit)
        #expect(recording.requests.count == 8)
        func loaded(_ yaml: String) throws -> SwitchyardConfig {
            let text = yaml.replacingOccurrences(of: "{{a}}", with: "http://127.0.0.1:1").replacingOccurrences(of: "{{b}}", with: "http://127.0.0.1:2")
            return try ConfigLoader(environment: [:], mode: .check).load(yaml: text, source: "candidate").config
        }

        let same = ReplayReport(recording: recording, config: try loaded(Self.recordedYAML), seed: 7, auditSource: "recorded", configSource: "same")
        #expect(same.recorded.transitionCount == 5)
        #expect(same.recorded.downgrades == 3)
        #expect(same.recorded.attempts == 12)
        #expect(same.sameCounts, "\(same.table())")
        #expect(same.candidate.timeOn == same.recorded.timeOn)
        #expect(same.changed == 0)

        let raised = ReplayReport(
            recording: recording,
            config: try loaded(Self.recordedYAML.replacingOccurrences(of: "failure_threshold: 3", with: "failure_threshold: 5")),
            seed: 7, auditSource: "recorded", configSource: "raised"
        )
        // Sonnet's breaker opens two failures later (at the failed probe's request) and closes at
        // the next: closed → open → half-open → closed.
        #expect(raised.candidate.transitions["sonnet"]?.map { "\($0.from.rawValue)>\($0.to.rawValue)" } == ["closed>open", "open>half_open", "half_open>closed"])
        #expect(raised.candidate.transitionCount < raised.recorded.transitionCount)
        #expect(raised.candidate.downgrades == 3)
        #expect(raised.candidate.attempts == 13, "the fifth request retries sonnet once more before haiku")
        #expect(raised.candidate.answered == 8)

        let untried = ReplayReport(
            recording: recording,
            config: try loaded(
                Self.recordedYAML.replacingOccurrences(of: "haiku: { provider: b", with: "opus: { provider: b")
                    .replacingOccurrences(of: "[sonnet, haiku]", with: "[sonnet, opus]").replacingOccurrences(of: "models: [haiku]", with: "models: [opus]")
            ),
            seed: 7, auditSource: "recorded", configSource: "untried"
        )
        #expect(untried.unknownModels == ["opus"])
        #expect(untried.candidate.unknown == 3, "the three requests that failed over from sonnet")
        #expect(untried.candidate.answered == 5)
    }
}

extension SwitchyardConfig {
    /// The same configuration with every route's `per_model` changed.
    func withRetry(perModel: Int) -> SwitchyardConfig {
        var config = self
        for index in config.routes.indices { config.routes[index].retry.perModel = perModel }
        return config
    }
}
