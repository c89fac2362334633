import Foundation
import NIOCore
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// Every row of the Bedrock and Vertex error tables through real HTTP: the simulator answers in
/// the platform's own shape, the router maps it by the error's type and applies its outcome row.
/// Routes `bedrock` and `vertex` have the Anthropic sim as their second model, so "next model"
/// shows as a 200 from sonnet, "returned as is" as the mapped error, "retry" as two attempts.
@Suite("Platform error mapping", .serialized)
struct PlatformErrorMappingTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var platform: String
        var fault: String
        /// Attempts on the platform's model: status (or `auth`) and error type, in order.
        var attempts: [String]
        /// The caller's status and, for errors, `error.type`.
        var status: Int
        var errorType: String?
        var platformError: String?
        var testDescription: String { "\(platform) \(fault)" }
    }

    static let bedrockRows: [Row] = [
        Row(platform: "bedrock", fault: "error(ThrottlingException,429)", attempts: ["429 rate_limit_error"], status: 200, platformError: "ThrottlingException"),
        Row(platform: "bedrock", fault: "error(ServiceQuotaExceededException,400)", attempts: ["429 rate_limit_error"], status: 200, platformError: "ServiceQuotaExceededException"),
        Row(platform: "bedrock", fault: "error(ModelNotReadyException,429)", attempts: ["429 rate_limit_error"], status: 200, platformError: "ModelNotReadyException"),
        Row(platform: "bedrock", fault: "error(ServiceUnavailableException,503)", attempts: ["503 overloaded_error"], status: 200, platformError: "ServiceUnavailableException"),
        Row(platform: "bedrock", fault: "error(InternalServerException,500)", attempts: ["500 api_error", "500 api_error"], status: 200, platformError: "InternalServerException"),
        Row(platform: "bedrock", fault: "error(ModelStreamErrorException,424)", attempts: ["500 api_error", "500 api_error"], status: 200, platformError: "ModelStreamErrorException"),
        Row(platform: "bedrock", fault: "error(ModelErrorException,424)", attempts: ["500 api_error", "500 api_error"], status: 200, platformError: "ModelErrorException"),
        Row(platform: "bedrock", fault: "error(ModelTimeoutException,408)", attempts: ["504 timeout_error", "504 timeout_error"], status: 200, platformError: "ModelTimeoutException"),
        Row(platform: "bedrock", fault: "error(ValidationException,400)", attempts: ["400 invalid_request_error"], status: 400, errorType: "invalid_request_error", platformError: "ValidationException"),
        Row(platform: "bedrock", fault: "error(AccessDeniedException,403)", attempts: ["403 permission_error"], status: 403, errorType: "permission_error", platformError: "AccessDeniedException"),
        Row(platform: "bedrock", fault: "error(ResourceNotFoundException,404)", attempts: ["404 not_found_error"], status: 404, errorType: "not_found_error", platformError: "ResourceNotFoundException"),
        Row(platform: "bedrock", fault: "error(UnrecognizedClientException,403)", attempts: ["auth"], status: 200, platformError: "UnrecognizedClientException"),
        Row(platform: "bedrock", fault: "error(ExpiredTokenException,403)", attempts: ["auth"], status: 200, platformError: "ExpiredTokenException"),
        Row(platform: "bedrock", fault: "error(InvalidSignatureException,403)", attempts: ["auth"], status: 200, platformError: "InvalidSignatureException"),
        Row(platform: "bedrock", fault: "error(BrandNewException,500)", attempts: ["500 api_error", "500 api_error"], status: 200, platformError: "BrandNewException"),
        Row(platform: "bedrock", fault: "error(BrandNewException,418)", attempts: ["418 api_error"], status: 418, errorType: "api_error", platformError: "BrandNewException"),
        Row(platform: "bedrock", fault: "504", attempts: ["504 timeout_error", "504 timeout_error"], status: 200),
        Row(platform: "bedrock", fault: "not-a-message", attempts: ["200 invalid_response", "200 invalid_response"], status: 200),
    ]

    static let vertexRows: [Row] = [
        Row(platform: "vertex", fault: "error(RESOURCE_EXHAUSTED,429)", attempts: ["429 rate_limit_error"], status: 200, platformError: "RESOURCE_EXHAUSTED"),
        Row(platform: "vertex", fault: "error(UNAVAILABLE,503)", attempts: ["503 overloaded_error"], status: 200, platformError: "UNAVAILABLE"),
        Row(platform: "vertex", fault: "error(INTERNAL,500)", attempts: ["500 api_error", "500 api_error"], status: 200, platformError: "INTERNAL"),
        Row(platform: "vertex", fault: "error(UNKNOWN,500)", attempts: ["500 api_error", "500 api_error"], status: 200, platformError: "UNKNOWN"),
        Row(platform: "vertex", fault: "error(DATA_LOSS,500)", attempts: ["500 api_error", "500 api_error"], status: 200, platformError: "DATA_LOSS"),
        Row(platform: "vertex", fault: "error(CANCELLED,499)", attempts: ["500 api_error", "500 api_error"], status: 200, platformError: "CANCELLED"),
        Row(platform: "vertex", fault: "error(DEADLINE_EXCEEDED,504)", attempts: ["504 timeout_error", "504 timeout_error"], status: 200, platformError: "DEADLINE_EXCEEDED"),
        // 409: retried on the same model, the breaker untouched, then the route's next model.
        Row(platform: "vertex", fault: "error(ABORTED,409)", attempts: ["409 api_error", "409 api_error"], status: 200, platformError: "ABORTED"),
        Row(platform: "vertex", fault: "error(INVALID_ARGUMENT,400)", attempts: ["400 invalid_request_error"], status: 400, errorType: "invalid_request_error", platformError: "INVALID_ARGUMENT"),
        Row(platform: "vertex", fault: "error(FAILED_PRECONDITION,400)", attempts: ["400 invalid_request_error"], status: 400, errorType: "invalid_request_error", platformError: "FAILED_PRECONDITION"),
        Row(platform: "vertex", fault: "error(OUT_OF_RANGE,400)", attempts: ["400 invalid_request_error"], status: 400, errorType: "invalid_request_error", platformError: "OUT_OF_RANGE"),
        Row(platform: "vertex", fault: "error(ALREADY_EXISTS,409)", attempts: ["409 invalid_request_error"], status: 409, errorType: "invalid_request_error", platformError: "ALREADY_EXISTS"),
        Row(platform: "vertex", fault: "error(PERMISSION_DENIED,403)", attempts: ["403 permission_error"], status: 403, errorType: "permission_error", platformError: "PERMISSION_DENIED"),
        Row(platform: "vertex", fault: "error(NOT_FOUND,404)", attempts: ["404 not_found_error"], status: 404, errorType: "not_found_error", platformError: "NOT_FOUND"),
        Row(platform: "vertex", fault: "error(UNAUTHENTICATED,401)", attempts: ["auth"], status: 200, platformError: "UNAUTHENTICATED"),
        // The model's own overload arrives in Anthropic's envelope: the 529 row.
        Row(platform: "vertex", fault: "529", attempts: ["529 overloaded_error"], status: 200),
        Row(platform: "vertex", fault: "error(SOMETHING_NEW,500)", attempts: ["500 api_error", "500 api_error"], status: 200, platformError: "SOMETHING_NEW"),
        Row(platform: "vertex", fault: "not-a-message", attempts: ["200 invalid_response", "200 invalid_response"], status: 200),
    ]

    @Test(arguments: bedrockRows + vertexRows)
    func errorRow(_ row: Row) async throws {
        let sim = row.platform == "bedrock" ? "b" : "v"
        try await PlatformFixtures.with(scripts: [sim: "\(row.fault)*"]) { harness in
            let reply = try await harness.message(model: row.platform)
            #expect(reply.status == row.status)
            if let errorType = row.errorType {
                #expect(reply.errorType == errorType, "Anthropic's envelope with the mapped type")
                #expect(reply.json["type"] as? String == "error")
                #expect(reply.header("x-switchyard-model") == nil || reply.header("x-switchyard-model") == "sonnet-\(row.platform)")
            } else {
                #expect(reply.header("x-switchyard-model") == "sonnet", "the route's next model served")
            }
            let line = try #require(try await harness.requestLines(1).first)
            let attempts = try #require(line["attempts"] as? [[String: Any]]).filter { $0["platform"] as? String == row.platform }
            let seen = attempts.map { attempt -> String in
                if let error = attempt["error"] as? String, attempt["status"] == nil { return error }
                let status = attempt["status"] as? Int ?? 0
                if let error = attempt["error"] as? String { return "\(status) \(error)" }
                return "\(status) \(attempt["error_type"] as? String ?? "")"
            }
            #expect(seen == row.attempts)
            if let platformError = row.platformError {
                #expect(attempts.allSatisfy { $0["platform_error"] as? String == platformError })
            }
            let breaker = harness.runtime.table.model(named: "sonnet-\(row.platform)")!.health.snapshot.breaker
            let expectsFailure = row.attempts.contains { $0.hasPrefix("5") || $0 == "auth" || $0.contains("invalid_response") }
            #expect(breaker.consecutiveFailures == (expectsFailure ? row.attempts.count : 0), "breaker effect of the row")
        }
    }

    @Test func serviceQuotaExceededIsA429EvenThoughAWSSays400() async throws {
        try await PlatformFixtures.with(scripts: ["b": "error(ServiceQuotaExceededException,400)*"]) { harness in
            _ = try await harness.message(model: "bedrock")
            let line = try #require(try await harness.requestLines(1).first)
            let attempt = try #require((line["attempts"] as? [[String: Any]])?.first)
            #expect(attempt["status"] as? Int == 429)
            #expect(attempt["platform_status"] as? Int == 400)
            let state = harness.runtime.table.model(named: "sonnet-bedrock")!.health.snapshot
            #expect(state.rateLimitedUntil != nil, "the model is skipped like after any 429")
        }
    }

    @Test func aRelayedPlatformErrorIsAnthropicsEnvelopeWithThePlatformsRequestID() async throws {
        try await PlatformFixtures.with(scripts: ["b": "error(ValidationException,400)"]) { harness in
            let reply = try await harness.message(model: "bedrock")
            #expect(reply.status == 400)
            #expect(reply.header("content-type") == "application/json")
            #expect(reply.header("x-amzn-errortype") == nil, "AWS's own headers stay at the router")
            let requestID = try #require(reply.header("request-id"))
            #expect(requestID.hasPrefix("req_b_"))
            #expect(reply.json["request_id"] as? String == requestID)
            #expect(reply.errorMessage == "simulated 400 from b")
        }
    }

    // MARK: Streams

    @Test func bedrockStreamExceptionsBeforeTheCommitPointMoveOn() async throws {
        for (fault, type, platformError) in [
            ("exception(1,throttlingException)", "rate_limit_error", "ThrottlingException"),
            ("exception(2,serviceUnavailableException)", "overloaded_error", "ServiceUnavailableException"),
            ("exception(1,modelStreamErrorException)", "api_error", "ModelStreamErrorException"),
        ] {
            try await PlatformFixtures.with(scripts: ["b": fault]) { harness in
                let reply = try await harness.message(model: "bedrock", stream: true)
                #expect(reply.status == 200)
                #expect(reply.header("x-switchyard-model") == "sonnet", "\(fault): the caller never saw the failed stream")
                #expect(try SSE.parse(reply.body).map(\.name) == StreamingTests.expectedEvents)
                let line = try #require(try await harness.requestLines(1).first)
                let attempt = try #require((line["attempts"] as? [[String: Any]])?.first)
                #expect(attempt["error"] as? String == "stream_error")
                #expect(attempt["error_type"] as? String == type)
                #expect(attempt["platform_error"] as? String == platformError, "the exception frame's name is on the attempt")
            }
        }
    }

    @Test func brokenFramesBeforeTheCommitPointAreFailedAttempts() async throws {
        for (fault, detail) in [("crc(1)", "CRC"), ("truncate(1)", "inside a frame"), ("malformed-sse", "prelude")] {
            try await PlatformFixtures.with(scripts: ["b": fault]) { harness in
                let reply = try await harness.message(model: "bedrock", stream: true)
                #expect(reply.status == 200)
                #expect(reply.header("x-switchyard-model") == "sonnet")
                let line = try #require(try await harness.requestLines(1).first)
                let attempt = try #require((line["attempts"] as? [[String: Any]])?.first)
                #expect(attempt["platform"] as? String == "bedrock")
                #expect((attempt["detail"] as? String)?.localizedCaseInsensitiveContains(detail) == true, "\(fault): \(attempt)")
                #expect(harness.runtime.table.model(named: "sonnet-bedrock")!.health.snapshot.breaker.consecutiveFailures == 1)
            }
        }
    }

    @Test func failuresAfterTheCommitPointEndWithAWellFormedErrorEvent() async throws {
        for fault in ["exception(4,modelStreamErrorException)", "crc(5)", "truncate(5)"] {
            try await PlatformFixtures.with(scripts: ["b": fault]) { harness in
                let reply = try await harness.message(model: "bedrock", stream: true)
                #expect(reply.status == 200)
                let events = try SSE.parse(reply.body)
                #expect(events.first?.name == .messageStart)
                #expect(events.last?.name == .error, "\(fault)")
                let error = try #require(events.last)
                #expect(error.data.contains(#""type":"api_error""#))
                let line = try #require(try await harness.requestLines(1).first)
                #expect(line["outcome"] as? String == "stream_error")
                let attempt = try #require((line["attempts"] as? [[String: Any]])?.first)
                #expect(
                    attempt["platform_error"] as? String == (fault.hasPrefix("exception") ? "ModelStreamErrorException" : nil),
                    "\(fault): an exception frame after the commit point is named on the attempt too"
                )
            }
        }
    }

    // MARK: Errors without a platform type

    /// Whatever the platform answers (Google's error without `status`, Bedrock's message without
    /// `x-amzn-errortype`, a load balancer's HTML page, nothing), the caller gets Anthropic's
    /// envelope with the type its HTTP status means, and the platform's message where it gave one.
    @Test(arguments: [
        ("v", "untyped(400)", 400, "invalid_request_error", "simulated 400 from v"),
        ("v", "untyped(404)", 404, "not_found_error", "simulated 404 from v"),
        ("v", "html(403)", 403, "permission_error", "Vertex AI answered HTTP 403 without an error status"),
        ("v", "empty(400)", 400, "invalid_request_error", "Vertex AI answered HTTP 400 without an error status"),
        ("b", "untyped(400)", 400, "invalid_request_error", "simulated 400 from b"),
        ("b", "html(403)", 403, "permission_error", "Bedrock answered HTTP 403 without an error type"),
        ("b", "empty(404)", 404, "not_found_error", "Bedrock answered HTTP 404 without an error type"),
    ])
    func anErrorWithoutAPlatformTypeStillReachesTheCallerAsAnthropicsEnvelope(
        sim: String, fault: String, status: Int, type: String, message: String
    ) async throws {
        try await PlatformFixtures.with(scripts: [sim: "\(fault)*"]) { harness in
            let reply = try await harness.message(model: sim == "b" ? "bedrock" : "vertex")
            #expect(reply.status == status)
            #expect(reply.header("content-type") == "application/json")
            #expect(reply.json["type"] as? String == "error", "\(fault): \(reply.body)")
            #expect(reply.errorType == type)
            #expect(reply.errorMessage == message)
            #expect(reply.json["request_id"] as? String == reply.header("request-id"))
            #expect(!reply.body.contains("<html>"))
        }
    }

    @Test func theModelsOwnEnvelopeThroughVertexIsRelayedAsItIs() async throws {
        // The Vertex sim writes a 413 as the model's own error, in Anthropic's envelope.
        try await PlatformFixtures.with(scripts: ["v": "413"]) { harness in
            let reply = try await harness.message(model: "vertex")
            #expect(reply.status == 413)
            #expect(reply.body == #"{"type":"error","error":{"type":"request_too_large","message":"simulated 413 from v"}}"#, "byte for byte")
        }
        let envelope = ByteBuffer(string: #"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}"#)
        let read = VertexErrors.read(status: 400, body: envelope, api: .messages)
        #expect(read.bodyIsEnvelope && read.type == "invalid_request_error" && read.message == "max_tokens: too large")
        // Anthropic's shape without `"type":"error"` is not the envelope: it is rebuilt.
        let partialBody = ByteBuffer(string: #"{"error":{"type":"invalid_request_error","message":"x"}}"#)
        let partial = VertexErrors.read(status: 400, body: partialBody, api: .messages)
        #expect(!partial.bodyIsEnvelope)
        for body in ["", "<html><body>502 Bad Gateway</body></html>", #"{"error":{"code":502,"message":"Bad Gateway"}}"#, "[]"] {
            let read = VertexErrors.read(status: 502, body: ByteBuffer(string: body), api: .messages)
            #expect(!read.bodyIsEnvelope && read.status == 502 && read.type == "api_error", "\(body)")
        }
    }
}
