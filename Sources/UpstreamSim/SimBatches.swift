import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// The Anthropic Message Batches API as upstream-sim serves it (for Switchyard's
/// `mode: upstream`): a create is kept in memory, processes for `processingTime`, then ends with
/// one result per request chosen by `resultScript` (`ok` → succeeded; a status → errored with
/// that status's error type). The fault script of the simulator applies to the create itself,
/// so a `529` step refuses a submission.
public final class SimBatches: Sendable {
    struct Batch {
        var id: String
        var requests: [(customID: String, model: String)]
        var createdAt: Date
        var canceledAt: Date?
    }

    private let batches = Mutex<[String: Batch]>([:])
    private let settings = Mutex<(processingTime: Duration, resultScript: FaultScript)>((.milliseconds(300), FaultScript(steps: [])))
    private let serial = Atomic<Int>(0)

    public var processingTime: Duration {
        get { settings.withLock { $0.processingTime } }
        set { settings.withLock { $0.processingTime = newValue } }
    }

    /// The result of each request, by its position in the batch.
    public var resultScript: FaultScript {
        get { settings.withLock { $0.resultScript } }
        set { settings.withLock { $0.resultScript = newValue } }
    }

    /// How many batches were created.
    public var createdCount: Int { batches.withLock { $0.count } }

    func handle(method: HTTPMethod, segments: [Substring], body: ByteBuffer) -> SimResponse {
        switch (method, segments.count, segments.last) {
        case (.POST, 0, _): return create(body)
        case (.GET, 1, _): return retrieve(String(segments[0]))
        case (.GET, 2, "results"): return results(String(segments[0]))
        case (.POST, 2, "cancel"): return cancel(String(segments[0]))
        default: return error(404, "not_found_error", "no such batch endpoint")
        }
    }

    private func create(_ body: ByteBuffer) -> SimResponse {
        guard let json = SimJSON.object(body), let list = json["requests"] as? [[String: Any]], !list.isEmpty else {
            return error(400, "invalid_request_error", "requests: Field required")
        }
        var requests: [(String, String)] = []
        for item in list {
            guard let customID = item["custom_id"] as? String, let params = item["params"] as? [String: Any], let model = params["model"] as? String else {
                return error(400, "invalid_request_error", "each request needs custom_id and params.model")
            }
            requests.append((customID, model))
        }
        let id = "msgbatch_sim\(serial.wrappingAdd(1, ordering: .relaxed).newValue)"
        let batch = Batch(id: id, requests: requests, createdAt: Date(), canceledAt: nil)
        batches.withLock { $0[id] = batch }
        return SimResponse(status: 200, headers: [], body: object(batch))
    }

    private func retrieve(_ id: String) -> SimResponse {
        guard let batch = batches.withLock({ $0[id] }) else { return error(404, "not_found_error", "no batch \(id)") }
        return SimResponse(status: 200, headers: [], body: object(batch))
    }

    private func cancel(_ id: String) -> SimResponse {
        let batch = batches.withLock { batches -> Batch? in
            guard var batch = batches[id] else { return nil }
            if batch.canceledAt == nil { batch.canceledAt = Date() }
            batches[id] = batch
            return batch
        }
        guard let batch else { return error(404, "not_found_error", "no batch \(id)") }
        return SimResponse(status: 200, headers: [], body: object(batch))
    }

    private func results(_ id: String) -> SimResponse {
        guard let batch = batches.withLock({ $0[id] }) else { return error(404, "not_found_error", "no batch \(id)") }
        guard isEnded(batch) else { return error(400, "invalid_request_error", "batch \(id) has not ended") }
        let script = resultScript
        var lines = ""
        for (index, request) in batch.requests.enumerated() {
            let result: String
            if batch.canceledAt != nil {
                result = #"{"type":"canceled"}"#
            } else {
                switch script.fault(forRequest: index) {
                case .status(let code, _, _):
                    let type = SimPayloads.errorType(status: code)
                    result = #"{"type":"errored","error":{"type":"error","error":{"type":"\#(type)","message":"simulated \#(code) in a batch"}}}"#
                default:
                    result = #"{"type":"succeeded","message":\#(SimPayloads.message(model: request.model, deltas: 3))}"#
                }
            }
            lines += #"{"custom_id":\#(SimJSON.string([request.customID]).dropFirst().dropLast()),"result":\#(result)}"# + "\n"
        }
        return SimResponse(status: 200, headers: [("content-type", "application/x-jsonl")], body: lines)
    }

    private func isEnded(_ batch: Batch) -> Bool {
        batch.canceledAt != nil || Date().timeIntervalSince(batch.createdAt) * 1000 >= Double(processingTime.components.seconds * 1000)
            + Double(processingTime.components.attoseconds) / 1e15
    }

    private func object(_ batch: Batch) -> String {
        let ended = isEnded(batch)
        let count = batch.requests.count
        let counts = ended
            ? (batch.canceledAt != nil ? #"{"processing":0,"succeeded":0,"errored":0,"canceled":\#(count),"expired":0}"# : #"{"processing":0,"succeeded":\#(count),"errored":0,"canceled":0,"expired":0}"#)
            : #"{"processing":\#(count),"succeeded":0,"errored":0,"canceled":0,"expired":0}"#
        let created = SimJSON.iso8601(unixSeconds: Int64(batch.createdAt.timeIntervalSince1970))
        return #"{"id":"\#(batch.id)","type":"message_batch","processing_status":"\#(ended ? "ended" : (batch.canceledAt != nil ? "canceling" : "in_progress"))","request_counts":\#(counts),"ended_at":\#(ended ? "\"\(created)\"" : "null"),"created_at":"\#(created)","expires_at":"\#(created)","archived_at":null,"cancel_initiated_at":null,"results_url":null}"#
    }

    private func error(_ status: Int, _ type: String, _ message: String) -> SimResponse {
        SimResponse(status: status, headers: [], body: #"{"type":"error","error":{"type":"\#(type)","message":"\#(message)"}}"#)
    }
}
