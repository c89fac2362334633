import Foundation
import NIOCore
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// The Message Batches API through real HTTP (README, "Non-urgent work: Message Batches"), on a SQLite store: shapes,
/// validation, paging, cancel, delete, caller errors, and an outage that delays a batch without
/// failing it — interactive traffic gets the probe first, and with no interactive traffic a batch
/// request probes after `probe_grace`.
@Suite("Message Batches", .serialized)
struct BatchTests {
    @Test func aBatchRunsThroughItsRouteAndEveryRequestHasOneResult() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: BatchFixtures.config()) { harness in
            let created = try await harness.send(.POST, "/v1/messages/batches", body: BatchFixtures.createBody(count: 5))
            #expect(created.status == 200)
            let object = created.json
            let id = try #require(object["id"] as? String)
            #expect(id.hasPrefix("msgbatch_"))
            #expect(object["type"] as? String == "message_batch")
            #expect(object["processing_status"] as? String == "in_progress")
            #expect((object["request_counts"] as? [String: Any])?["processing"] as? Int == 5)
            #expect(object["results_url"] is NSNull)
            #expect(object["created_at"] is String && object["expires_at"] is String && object["ended_at"] is NSNull)

            let ended = try await harness.waitUntilEnded(id)
            #expect((ended["request_counts"] as? [String: Any])?["succeeded"] as? Int == 5)
            #expect(ended["results_url"] as? String == "\(harness.baseURL)/v1/messages/batches/\(id)/results")
            let results = try await harness.batchResults(id)
            #expect(results.compactMap { $0["custom_id"] as? String } == ["r0", "r1", "r2", "r3", "r4"], "one line per request, in order")
            for line in results {
                let result = try #require(line["result"] as? [String: Any])
                #expect(result["type"] as? String == "succeeded")
                #expect((result["message"] as? [String: Any])?["type"] as? String == "message")
            }
            #expect(harness.sim("a").requestCount == 5)

            await harness.audit.flush()
            let lines = RouterHarness.parse(harness.audit.memoryContents)
            #expect(lines.filter { $0["event"] as? String == "batch.created" }.map { $0["requests"] as? Int } == [5])
            let requestLines = lines.filter { $0["event"] as? String == "request" && $0["batch_id"] as? String == id }
            #expect(Set(requestLines.compactMap { $0["custom_id"] as? String }) == ["r0", "r1", "r2", "r3", "r4"])
            #expect(requestLines.allSatisfy { ($0["attempts"] as? [[String: Any]])?.isEmpty == false })
            let endedLine = try #require(lines.first { $0["event"] as? String == "batch.ended" })
            #expect(endedLine["batch_id"] as? String == id && endedLine["succeeded"] as? Int == 5)
            let metrics = try await harness.metricsText()
            #expect(metrics.contains(#"switchyard_batch_results_total{state="succeeded"} 5"#))
        }
    }

    @Test func aCallerErrorIsErroredAndNotRetried() async throws {
        try await RouterHarness.with(sims: ["a": "400", "b": ""], yaml: BatchFixtures.config()) { harness in
            let id = try await harness.createBatch(BatchFixtures.createBody(count: 1))
            let ended = try await harness.waitUntilEnded(id)
            #expect((ended["request_counts"] as? [String: Any])?["errored"] as? Int == 1)
            let result = try #require(try await harness.batchResults(id).first?["result"] as? [String: Any])
            #expect(result["type"] as? String == "errored")
            let envelope = try #require(result["error"] as? [String: Any])
            #expect(envelope["type"] as? String == "error")
            #expect((envelope["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
            #expect(harness.sim("a").requestCount == 1, "a caller error is final")
        }
    }

    @Test func badCreateBodiesAreRefusedWholeAndStoreNothing() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: BatchFixtures.config()) { harness in
            func refuse(_ body: String, _ status: Int = 400, _ phrase: String) async throws {
                let reply = try await harness.send(.POST, "/v1/messages/batches", body: body)
                #expect(reply.status == status, "\(phrase): \(reply.body)")
                #expect(reply.errorMessage?.contains(phrase) == true, "\(reply.errorMessage ?? "")")
            }
            try await refuse("{not json", 400, "not valid JSON")
            try await refuse(#"{"requests":[]}"#, 400, "at least 1")
            try await refuse(#"{"requests":{}}"#, 400, "valid list")
            let unknown = BatchFixtures.createBody(count: 3).replacingOccurrences(of: #""model":"default","max_tokens":32,"messages":[{"role":"user","content":"batch item 1"}]"#, with: #""model":"gpt-5","max_tokens":32,"messages":[]"#)
            try await refuse(unknown, 400, "requests[1].params.model: 'gpt-5' is not a route")
            let duplicate = BatchFixtures.createBody(count: 3).replacingOccurrences(of: "\"r2\"", with: "\"r0\"")
            try await refuse(duplicate, 400, "requests[2].custom_id: 'r0' is used twice (also requests[0])")
            try await refuse(BatchFixtures.createBody(count: 1, prefix: "bad id "), 400, "custom_id")
            try await refuse(BatchFixtures.createBody(count: 1, prefix: String(repeating: "x", count: 64)), 400, "1 to 64")
            let streaming = BatchFixtures.createBody(count: 1).replacingOccurrences(of: "\"max_tokens\":32", with: "\"max_tokens\":32,\"stream\":true")
            try await refuse(streaming, 400, "cannot stream")
            try await refuse(#"{"requests":[{"custom_id":"a","params":{"model":"default"}}]}"#, 400, "messages: Field required")
            try await refuse(#"{"requests":[{"custom_id":"a","params":{"model":"default","messages":[]},"extra":1}]}"#, 400, "Extra inputs")
            try await refuse(BatchFixtures.createBody(count: 100_001), 400, "at most 100000 requests")
            let page = try await harness.send(.GET, "/v1/messages/batches").json
            #expect((page["data"] as? [Any])?.isEmpty == true, "nothing was stored")
        }
    }

    @Test func listingIsNewestFirstWithPaging() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: BatchFixtures.config()) { harness in
            var ids: [String] = []
            for _ in 0..<3 { ids.append(try await harness.createBatch(BatchFixtures.createBody(count: 1))) }
            let first = try await harness.send(.GET, "/v1/messages/batches?limit=2").json
            let firstIDs = (first["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(firstIDs == [ids[2], ids[1]])
            #expect(first["has_more"] as? Bool == true)
            #expect(first["first_id"] as? String == ids[2] && first["last_id"] as? String == ids[1])
            let next = try await harness.send(.GET, "/v1/messages/batches?limit=2&after_id=\(ids[1])").json
            #expect((next["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [ids[0]])
            #expect(next["has_more"] as? Bool == false)
            let before = try await harness.send(.GET, "/v1/messages/batches?limit=5&before_id=\(ids[0])").json
            #expect((before["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [ids[2], ids[1]])
        }
    }

    @Test func cancelEndsTheBatchAndDeleteNeedsItEnded() async throws {
        // Sonnet is disabled by hand: nothing of route `solo` can run, so the batch waits.
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: BatchFixtures.config()) { harness in
            harness.runtime.table.model(named: "sonnet")!.health.withState { $0.disabledBy = "test" }
            let id = try await harness.createBatch(BatchFixtures.createBody(count: 3, model: "solo"))
            let early = try await harness.send(.DELETE, "/v1/messages/batches/\(id)")
            #expect(early.status == 400)
            #expect(early.errorMessage?.contains("has not ended") == true)
            let notYet = try await harness.send(.GET, "/v1/messages/batches/\(id)/results")
            #expect(notYet.status == 400)
            let canceled = try await harness.send(.POST, "/v1/messages/batches/\(id)/cancel").json
            #expect(canceled["cancel_initiated_at"] is String)
            let ended = try await harness.waitUntilEnded(id)
            #expect((ended["request_counts"] as? [String: Any])?["canceled"] as? Int == 3)
            let results = try await harness.batchResults(id)
            #expect(results.allSatisfy { ($0["result"] as? [String: Any])?["type"] as? String == "canceled" })
            #expect(harness.sim("a").requestCount == 0)
            let deleted = try await harness.send(.DELETE, "/v1/messages/batches/\(id)")
            #expect(deleted.json["type"] as? String == "message_batch_deleted" && deleted.json["id"] as? String == id)
            #expect(try await harness.send(.GET, "/v1/messages/batches/\(id)").status == 404)
        }
    }

    @Test func aClientSeesOnlyItsOwnBatches() async throws {
        let clients = """
            clients:
              - { name: team-a, key_env: KEY_A }
              - { name: team-b, key_env: KEY_B }
            """
        let environment = ["SIM_KEY": "sk-ant-sim-test-key-0123456789", "KEY_A": "key-a-0123456789abcdef", "KEY_B": "key-b-0123456789abcdef"]
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: BatchFixtures.config(clients: clients), environment: environment) { harness in
            let asA = [("x-api-key", "key-a-0123456789abcdef")]
            let asB = [("authorization", "Bearer key-b-0123456789abcdef")]
            let id = try await harness.createBatch(BatchFixtures.createBody(count: 1), headers: asA)
            #expect(try await harness.send(.GET, "/v1/messages/batches/\(id)", headers: asA).status == 200)
            #expect(try await harness.send(.GET, "/v1/messages/batches/\(id)", headers: asB).status == 404)
            #expect(try await harness.send(.POST, "/v1/messages/batches/\(id)/cancel", headers: asB).status == 404)
            #expect(try await harness.send(.GET, "/v1/messages/batches/\(id)/results", headers: asB).status == 404)
            let listed = try await harness.send(.GET, "/v1/messages/batches", headers: asB).json
            #expect((listed["data"] as? [Any])?.isEmpty == true)
            #expect(try await harness.send(.GET, "/v1/messages/batches").status == 401, "no key, no batches")
            // The batch's request line names the client that submitted it, as a caller's does.
            _ = try await harness.waitUntilEnded(id, headers: asA)
            let lines = try await harness.auditLines(requests: 1)
            let requestLine = try #require(lines.first { $0["event"] as? String == "request" && $0["batch_id"] as? String == id })
            #expect(requestLine["client"] as? String == "team-a")
        }
    }

    @Test func anOutageDelaysTheBatchAndInteractiveTrafficGetsTheProbeFirst() async throws {
        try await RouterHarness.with(sims: ["a": "500*", "b": ""], yaml: BatchFixtures.config()) { harness in
            let a = harness.sim("a")
            let id = try await harness.createBatch(BatchFixtures.createBody(count: 5, model: "solo"))
            let sonnet = harness.runtime.table.model(named: "sonnet")!
            try await eventually("sonnet's breaker opens") { sonnet.health.snapshot.breaker.state == .open }
            // Up to `concurrency` attempts were admitted before the breaker opened; let them land.
            let whileOpen = try await settledRequestCount(a)
            try await Task.sleep(for: .milliseconds(1500))
            #expect(a.requestCount == whileOpen, "no upstream call while the breaker is open")
            #expect(try await harness.batch(id)["processing_status"] as? String == "in_progress", "delayed, not failed")

            a.setScript(try FaultScript.parse("ok*"))
            harness.clock!.advance(by: .seconds(30))
            try await Task.sleep(for: .milliseconds(300))
            #expect(a.requestCount == whileOpen, "the free probe slot is left to interactive traffic for probe_grace")
            let interactive = try await harness.send(body: RouterHarness.messages(model: "solo", text: "interactive probe"))
            #expect(interactive.status == 200)
            #expect(a.receivedRequests[whileOpen].body.contains("interactive probe"), "the interactive request was the probe")
            let ended = try await harness.waitUntilEnded(id)
            #expect((ended["request_counts"] as? [String: Any])?["succeeded"] as? Int == 5, "every request succeeded once the route recovered")
            await harness.audit.flush()
            let lines = RouterHarness.parse(harness.audit.memoryContents).filter { $0["batch_id"] as? String == id }
            let requestLines = lines.filter { $0["event"] as? String == "request" }
            #expect(requestLines.count == 5, "one request line per batch request, with the try that ended it")
            #expect(requestLines.allSatisfy { $0["status"] as? Int == 200 })
            let retries = lines.filter { $0["event"] as? String == "batch.retry" }
            #expect(!retries.isEmpty && retries.allSatisfy { ($0["attempts"] as? [[String: Any]])?.first?["status"] as? Int == 500 }, "the failed tries are batch.retry lines")
        }
    }

    @Test func withNoInteractiveTrafficOneBatchRequestProbesAfterTheGrace() async throws {
        try await RouterHarness.with(sims: ["a": "500*", "b": ""], yaml: BatchFixtures.config()) { harness in
            let a = harness.sim("a")
            let id = try await harness.createBatch(BatchFixtures.createBody(count: 5, model: "solo"))
            let sonnet = harness.runtime.table.model(named: "sonnet")!
            try await eventually("sonnet's breaker opens") { sonnet.health.snapshot.breaker.state == .open }
            // Up to `concurrency` attempts were admitted before the breaker opened; let them land.
            let whileOpen = try await settledRequestCount(a)
            a.setScript(try FaultScript.parse("ok*"))
            harness.clock!.advance(by: .seconds(31))
            try await Task.sleep(for: .milliseconds(1500))
            #expect(a.requestCount == whileOpen, "1 s into the open period's end: still within probe_grace")
            harness.clock!.advance(by: .seconds(1))
            let ended = try await harness.waitUntilEnded(id)
            #expect((ended["request_counts"] as? [String: Any])?["succeeded"] as? Int == 5)
            await harness.audit.flush()
            let transitions = RouterHarness.parse(harness.audit.memoryContents).filter { $0["event"] as? String == "breaker" }
            #expect(transitions.map { "\($0["from"]!)->\($0["to"]!)" }.suffix(2) == ["open->half_open", "half_open->closed"])
        }
    }

    @Test func anErroredResultIsAlwaysAnErrorEnvelope() throws {
        let envelope = ByteBuffer(string: #"{"type":"error","error":{"type":"not_found_error","message":"no such model"},"request_id":"req_1"}"#)
        let kept = try #require(try JSONSerialization.jsonObject(with: Data(BatchJSON.errored(envelope: envelope, status: 404))) as? [String: Any])
        #expect(((kept["error"] as? [String: Any])?["error"] as? [String: Any])?["message"] as? String == "no such model", "an envelope is kept as it is")
        for (body, status, type) in [("<html>Not Found</html>", 404, "not_found_error"), (#"{"message":"bad"}"#, 422, "invalid_request_error"), ("", 400, "invalid_request_error")] {
            let line = try #require(try JSONSerialization.jsonObject(with: Data(BatchJSON.errored(envelope: ByteBuffer(string: body), status: status))) as? [String: Any])
            let error = try #require(line["error"] as? [String: Any])
            #expect(line["type"] as? String == "errored" && error["type"] as? String == "error")
            #expect((error["error"] as? [String: Any])?["type"] as? String == type, "\(status) \(body)")
            #expect(error["request_id"] is String)
        }
    }

    // MARK: mode: upstream

    @Test func upstreamModeSubmitsToTheAnthropicBatchAPIAndRunsFailedResultsDirectly() async throws {
        try await RouterHarness.with(sims: ["a": "", "b": ""], yaml: BatchFixtures.config(mode: "upstream")) { harness in
            let a = harness.sim("a")
            a.batches.processingTime = .milliseconds(100)
            // Positions 1 and 3 come back errored with api_error and overloaded_error: run again directly.
            a.batches.resultScript = try FaultScript.parse("ok,500,ok,529,ok")
            let id = try await harness.createBatch(BatchFixtures.createBody(count: 5))
            let ended = try await harness.waitUntilEnded(id)
            #expect((ended["request_counts"] as? [String: Any])?["succeeded"] as? Int == 5)
            #expect(a.batches.createdCount == 1, "one upstream batch")
            let direct = a.receivedRequests.filter { $0.uri == "/v1/messages" }
            #expect(direct.count == 2, "the two server-side failures ran directly through the route")
            let results = try await harness.batchResults(id)
            #expect(results.count == 5)
            #expect(results.allSatisfy { ($0["result"] as? [String: Any])?["type"] as? String == "succeeded" })
            // The batch API calls carry the provider's key once each, as the client's preset line.
            let batchCalls = a.receivedRequests.filter { $0.uri.hasPrefix("/v1/messages/batches") }
            #expect(!batchCalls.isEmpty)
            for call in batchCalls {
                #expect(call.headers.filter { $0.0.lowercased() == "x-api-key" }.map(\.1) == ["sk-ant-sim-test-key-0123456789"], "\(call.uri)")
            }
        }
    }

    @Test func aRefusedSubmissionIsRetriedThenRunDirectlyOnTheRoute() async throws {
        try await RouterHarness.with(sims: ["a": "529*", "b": ""], yaml: BatchFixtures.config(mode: "upstream")) { harness in
            let id = try await harness.createBatch(BatchFixtures.createBody(count: 3))
            let ended = try await harness.waitUntilEnded(id)
            #expect((ended["request_counts"] as? [String: Any])?["succeeded"] as? Int == 3)
            #expect(harness.sim("a").batches.createdCount == 0, "every submission was refused")
            #expect(harness.sim("a").receivedRequests.filter { $0.uri == "/v1/messages/batches" }.count >= UpstreamBatches.maxRefusals)
            #expect(harness.sim("b").requestCount == 3, "then they ran on the route's next model")
        }
    }

    /// The sim's request count once it has stayed the same for 300 ms (in-flight attempts landed).
    private func settledRequestCount(_ sim: UpstreamSimulator) async throws -> Int {
        var last = sim.requestCount
        while true {
            try await Task.sleep(for: .milliseconds(300))
            let now = sim.requestCount
            if now == last { return now }
            last = now
        }
    }
}
