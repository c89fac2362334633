import NIOCore
import Foundation

/// Anthropic's Message Batches shapes: the `message_batch` object, a page of them, the deletion
/// answer, results lines, and the ids.
enum BatchJSON {
    static func processingStatus(_ batch: BatchRecord) -> String {
        if batch.endedAtMs != nil { return "ended" }
        if batch.cancelInitiatedAtMs != nil { return "canceling" }
        return "in_progress"
    }

    /// `request_counts`, as the batch object has it; the dashboard shows the same member.
    static func requestCounts(_ counts: BatchRequestCounts, into json: inout JSONWriter) {
        json.key("request_counts")
        json.beginObject()
        json.field("processing", counts.processing)
        json.field("succeeded", counts.succeeded)
        json.field("errored", counts.errored)
        json.field("canceled", counts.canceled)
        json.field("expired", counts.expired)
        json.endObject()
    }

    /// - Parameter resultsBase: `http://host:port` as the caller reached this router, for
    ///   `results_url` (set once the batch ended).
    static func object(_ batch: BatchRecord, resultsBase: String, into json: inout JSONWriter) {
        json.beginObject()
        json.field("id", batch.id)
        json.field("type", "message_batch")
        json.field("processing_status", processingStatus(batch))
        requestCounts(batch.counts, into: &json)
        timestamp("ended_at", batch.endedAtMs, into: &json)
        timestamp("created_at", batch.createdAtMs, into: &json)
        timestamp("expires_at", batch.expiresAtMs, into: &json)
        timestamp("archived_at", nil, into: &json)
        timestamp("cancel_initiated_at", batch.cancelInitiatedAtMs, into: &json)
        json.key("results_url")
        if batch.endedAtMs != nil {
            json.string("\(resultsBase)/v1/messages/batches/\(batch.id)/results")
        } else {
            json.null()
        }
        json.endObject()
    }

    static func object(_ batch: BatchRecord, resultsBase: String) -> ByteBuffer {
        var json = JSONWriter(capacity: 512)
        object(batch, resultsBase: resultsBase, into: &json)
        return ByteBuffer(bytes: json.bytes)
    }

    static func page(_ page: BatchPage, resultsBase: String) -> ByteBuffer {
        var json = JSONWriter(capacity: 128 + page.batches.count * 480)
        json.beginObject()
        json.key("data")
        json.beginArray()
        for batch in page.batches { object(batch, resultsBase: resultsBase, into: &json) }
        json.endArray()
        json.field("has_more", page.hasMore)
        json.key("first_id")
        if let first = page.batches.first { json.string(first.id) } else { json.null() }
        json.key("last_id")
        if let last = page.batches.last { json.string(last.id) } else { json.null() }
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }

    static func deleted(id: String) -> ByteBuffer {
        var json = JSONWriter(capacity: 80)
        json.beginObject()
        json.field("id", id)
        json.field("type", "message_batch_deleted")
        json.endObject()
        return ByteBuffer(bytes: json.bytes)
    }

    /// One line of the results file: `{"custom_id":…,"result":{…}}\n`.
    static func resultLine(customID: String, result: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeString(#"{"custom_id":"#)
        buffer.writeBytes(JSONWriter.encodedString(customID))
        buffer.writeString(#","result":"#)
        buffer.writeBytes(result)
        buffer.writeString("}\n")
    }

    static func succeeded(message: ByteBuffer) -> [UInt8] {
        var bytes = Array(#"{"type":"succeeded","message":"#.utf8)
        bytes.append(contentsOf: message.readableBytesView)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    /// `envelope` is Anthropic's error body `{"type":"error","error":{…}}`.
    /// `envelope` is the upstream's answer; one that is not Anthropic's error envelope (an HTML
    /// 404 from a proxy, a platform's own shape) is replaced by one made from `status`, so the
    /// results file stays JSON lines the SDK can read.
    static func errored(envelope: ByteBuffer, status: Int) -> [UInt8] {
        var bytes = Array(#"{"type":"errored","error":"#.utf8)
        if isErrorEnvelope(envelope) {
            bytes.append(contentsOf: envelope.readableBytesView)
        } else {
            let defaultType = AnthropicErrorEnvelope.type(forStatus: status)
            let type = (400..<500).contains(status) && defaultType == "api_error" ? "invalid_request_error" : defaultType
            let error = RouterError(
                status: status, type: type, message: "the upstream answered \(status) without an error envelope", outcome: .clientError
            )
            bytes.append(contentsOf: error.body(requestID: RequestID.generate()).readableBytesView)
        }
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private static func isErrorEnvelope(_ body: ByteBuffer) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else { return false }
        return object["type"] as? String == "error" && (object["error"] as? [String: Any])?["type"] is String
    }

    static let canceled = Array(#"{"type":"canceled"}"#.utf8)
    static let expired = Array(#"{"type":"expired"}"#.utf8)

    private static func timestamp(_ key: StaticString, _ milliseconds: Int64?, into json: inout JSONWriter) {
        json.key(key)
        if let milliseconds { json.timestamp(milliseconds: milliseconds) } else { json.null() }
    }

    /// `msgbatch_` and a time-ordered unique suffix, like Anthropic's ids.
    static func newBatchID() -> String {
        "msgbatch_" + RequestID.generate().drop { $0 != "_" }.dropFirst()
    }
}
