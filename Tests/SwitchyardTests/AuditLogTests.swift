import Foundation
import Testing

@testable import SwitchyardCore

extension RequestAuditRecord {
    /// The line alone, as the writer thread would append it to an empty batch.
    fileprivate func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        encode(into: &bytes)
        return bytes
    }
}

@Suite("Audit log: records encoded by the writer thread")
struct AuditLogTests {
    static func record(_ id: String, attempts: Int = 1) -> RequestAuditRecord {
        var record = RequestAuditRecord(timestampMs: 1_795_000_000_123, requestID: id, api: "messages")
        record.route = "default"
        record.model = "sonnet"
        record.status = 200
        record.decision = [DecisionEntry(model: "sonnet", breaker: .closed, action: .sent, reason: nil)]
        record.attempts = (0..<attempts).map { index in
            var attempt = AttemptRecord(model: "sonnet")
            attempt.status = index == attempts - 1 ? 200 : 529
            attempt.upstreamRequestID = "req_\(id)_\(index)"
            attempt.durationMs = Int64(index + 3)
            return attempt
        }
        record.usage = TokenUsage(inputTokens: 12, outputTokens: 34)
        return record
    }

    static func lines(_ log: AuditLog) -> [[String: Any]] {
        log.memoryContents.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// A record written after text already in a buffer continues it byte for byte; the writer
    /// thread encodes a whole batch into one buffer this way.
    @Test func aRecordEncodedIntoABufferAppendsExactlyItsLine() throws {
        let record = Self.record("req_a", attempts: 2)
        var buffer = Array("{\"earlier\":true}\n".utf8)
        record.encode(into: &buffer)
        #expect(buffer == Array("{\"earlier\":true}\n".utf8) + record.encoded())
        let line = try #require(try JSONSerialization.jsonObject(with: Data(record.encoded())) as? [String: Any])
        #expect(line["ts"] as? String == "2026-11-18T11:06:40.123Z")
        #expect(line["ts"] as? String == ISO8601.format(milliseconds: 1_795_000_000_123))
        #expect((line["attempts"] as? [[String: Any]])?.map { $0["upstream_request_id"] as? String } == ["req_req_a_0", "req_req_a_1"])
    }

    /// Records queued as they are and lines queued encoded come out in the order they were
    /// appended, each a whole JSON line.
    @Test func recordsAndLinesKeepTheirOrder() async throws {
        let log = try AuditLog(destination: .memory)
        for index in 0..<200 {
            if index % 10 == 0 {
                await log.append(AuditEvent.lifecycle("marker", fields: [("n", .int(index))]))
            } else {
                await log.append(Self.record("req_\(index)"))
            }
        }
        await log.close()
        let lines = Self.lines(log)
        #expect(lines.count == 200)
        #expect(log.writtenLines == 200)
        for (index, line) in lines.enumerated() {
            if index % 10 == 0 {
                #expect(line["event"] as? String == "marker" && line["n"] as? Int == index)
            } else {
                #expect(line["event"] as? String == "request" && line["request_id"] as? String == "req_\(index)")
            }
        }
    }

    /// With a queue limit far below what the records take, appenders wait for the writer
    /// instead of dropping anything, and every record is written.
    @Test func aFullQueueMakesAppendersWaitAndLosesNothing() async throws {
        let log = try AuditLog(destination: .memory, highWater: 1_000)
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for index in 0..<100 { await log.append(Self.record("req_\(writer)_\(index)", attempts: 3)) }
                }
            }
        }
        await log.flush()
        let ids = Set(Self.lines(log).compactMap { $0["request_id"] as? String })
        #expect(ids.count == 800)
        #expect(ids.contains("req_7_99"))
        await log.close()
    }
}
