import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

@testable import SwitchyardCore

/// OpenTelemetry traces received by a real OTLP/HTTP receiver (`Tests/crosscheck/otlp_receiver.py`,
/// decoding with PyPI's opentelemetry-proto): a server span per request under the caller's
/// `traceparent`, a client span per attempt under it, GenAI attributes and Switchyard's decision,
/// the attempt's context sent upstream, and no prompt text anywhere.
@Suite("Traces", .serialized)
struct TracingTests {
    /// The receiver as a child process, on a port it chose.
    final class Receiver {
        let process = Process()
        /// Closed when the test process ends, which ends the receiver.
        let lifeline = Pipe()
        let port: Int

        init() throws {
            let portFile = TestScratch.path("otlp-port")
            process.executableURL = URL(fileURLWithPath: CrossCheckPython.interpreter)
            let prefix = CrossCheckPython.interpreter == "/usr/bin/env" ? ["python3"] : []
            process.arguments = prefix + [CrossCheckPython.scriptsDirectory.appendingPathComponent("otlp_receiver.py").path, portFile]
            process.standardInput = lifeline
            // Not the test runner's output: a receiver that held it would keep `swift test` waiting.
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            var found: Int?
            for _ in 0..<200 {
                if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let value = Int(text) {
                    found = value
                    break
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            guard let found else {
                process.terminate()
                throw HarnessError("the OTLP receiver did not start (needs opentelemetry-proto in \(CrossCheckPython.interpreter); .ci/run installs it)")
            }
            port = found
        }

        func spans() async throws -> [[String: Any]] {
            let response = try await RouterHarness.client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/spans"), timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 16 << 20)
            return (try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [[String: Any]]) ?? []
        }

        deinit {
            process.terminate()
        }
    }

    static func config(receiverPort: Int) -> String {
        TestConfigs.twoModels(
            retry: "max_attempts: 3, per_model: 1, backoff: { initial: 10ms }",
            extra: "telemetry: { otlp_endpoint: \"http://127.0.0.1:\(receiverPort)\", sample: 100%, service_name: switchyard-test }"
        )
    }

    @Test func aFailoverIsOneServerSpanWithAClientSpanPerAttemptUnderTheCallersTrace() async throws {
        let receiver = try Receiver()
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let callerSpan = "00f067aa0ba902b7"
        let prompt = "TRACE-PROMPT-\(UUID().uuidString)"
        try await RouterHarness.with(sims: ["a": "500*", "b": ""], yaml: Self.config(receiverPort: receiver.port)) { harness in
            let exporter = Task { try await harness.runtime.tracing?.service.run() }
            defer { exporter.cancel() }
            let reply = try await harness.send(
                body: RouterHarness.messages(text: prompt), headers: [("traceparent", "00-\(traceID)-\(callerSpan)-01")]
            )
            #expect(reply.status == 200)
            #expect(reply.header("x-switchyard-model") == "haiku")
            var spans: [[String: Any]] = []
            for _ in 0..<100 {
                spans = try await receiver.spans()
                if spans.count >= 3 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(spans.count == 3, "\(spans)")
            let server = try #require(spans.first { $0["kind"] as? String == "SPAN_KIND_SERVER" })
            let clients = spans.filter { $0["kind"] as? String == "SPAN_KIND_CLIENT" }
            #expect(server["trace_id"] as? String == traceID)
            #expect(server["parent_span_id"] as? String == callerSpan)
            #expect(server["service"] as? String == "switchyard-test")
            let serverAttributes = server["attributes"] as? [String: Any] ?? [:]
            #expect(serverAttributes["switchyard.route"] as? String == "default")
            #expect(serverAttributes["switchyard.model"] as? String == "haiku")
            #expect(serverAttributes["switchyard.downgraded"] as? Bool == true)
            #expect(serverAttributes["switchyard.decision"] as? String == "sonnet: sent, haiku: sent")
            #expect(serverAttributes["gen_ai.request.model"] as? String == "default")
            #expect(serverAttributes["http.response.status_code"] as? Int == 200)
            #expect(serverAttributes["gen_ai.usage.input_tokens"] != nil)
            #expect(clients.count == 2)
            for client in clients {
                #expect(client["trace_id"] as? String == traceID)
                #expect(client["parent_span_id"] as? String == server["span_id"] as? String)
            }
            let attributes = clients.map { $0["attributes"] as? [String: Any] ?? [:] }
            let failed = try #require(attributes.first { $0["switchyard.model"] as? String == "sonnet" })
            let served = try #require(attributes.first { $0["switchyard.model"] as? String == "haiku" })
            #expect(failed["gen_ai.system"] as? String == "anthropic")
            #expect(failed["gen_ai.request.model"] as? String == "claude-sonnet-4-20250514")
            #expect(failed["http.response.status_code"] as? Int == 500)
            #expect(failed["error.type"] as? String == "api_error")
            #expect(served["http.response.status_code"] as? Int == 200)
            #expect((served["gen_ai.response.id"] as? String)?.hasPrefix("msg_") == true)
            #expect(served["switchyard.breaker"] as? String == "closed")
            // Each attempt's own context went upstream.
            let sentA = try #require(harness.sim("a").receivedRequests.first?.header("traceparent"))
            let sentB = try #require(harness.sim("b").receivedRequests.first?.header("traceparent"))
            let spanIDs = Set(clients.compactMap { $0["span_id"] as? String })
            #expect(spanIDs.contains(String(sentA.split(separator: "-")[2])))
            #expect(spanIDs.contains(String(sentB.split(separator: "-")[2])))
            #expect(sentA.hasPrefix("00-\(traceID)-"))
            #expect(!"\(spans)".contains(prompt), "no prompt text in spans")
        }
    }

    @Test func aTraceTheSamplerLeavesOutIsNotExportedButItsContextStillGoesUpstream() async throws {
        let receiver = try Receiver()
        let yaml = TestConfigs.twoModels(
            retry: "max_attempts: 3, per_model: 1, backoff: { initial: 10ms }",
            extra: "telemetry: { otlp_endpoint: \"http://127.0.0.1:\(receiver.port)\", sample: 100%, service_name: switchyard-test }"
        )
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: yaml) { harness in
            let exporter = Task { try await harness.runtime.tracing?.service.run() }
            defer { exporter.cancel() }
            // The caller's own trace, flagged not sampled: followed, even at sample 100%.
            let followed = try await harness.send(body: RouterHarness.messages(), headers: [("traceparent", "00-\(traceID)-00f067aa0ba902b7-00")])
            #expect(followed.status == 200)
            let sent = harness.sim("a").receivedRequests.compactMap { $0.header("traceparent") }
            #expect(sent.count == 1)
            #expect(sent.first?.hasPrefix("00-\(traceID)-") == true, "the caller's trace continues upstream")
            #expect(sent.allSatisfy { $0.hasSuffix("-00") }, "flagged not sampled: \(sent)")
            // A sampled request after them is exported, alone.
            let sampled = try await harness.send(body: RouterHarness.messages(), headers: [("traceparent", "00-\(traceID)-00f067aa0ba902b7-01")])
            #expect(sampled.status == 200)
            var spans: [[String: Any]] = []
            for _ in 0..<100 {
                spans = try await receiver.spans()
                if spans.count >= 2 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .milliseconds(300))
            spans = try await receiver.spans()
            #expect(spans.count == 2, "one server and one client span, of the sampled request only: \(spans)")
        }
    }

    @Test func withoutTelemetryNothingIsTracedAndNoTraceparentGoesUpstream() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: TestConfigs.twoModels()) { harness in
            #expect(harness.runtime.tracing == nil)
            let reply = try await harness.send(body: RouterHarness.messages(), headers: [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")])
            #expect(reply.status == 200)
            #expect(harness.sim("a").receivedRequests.first?.header("traceparent") == nil)
        }
    }
}
