import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import UpstreamSim

/// `upstream-sim --platform openai` through real HTTP on loopback: Chat Completions answers and
/// chunks in OpenAI's shape, tool calls, images, the fault script's steps in OpenAI's error
/// envelope, API keys, Azure's deployment path.
@Suite("Upstream sim: OpenAI mode")
struct SimOpenAITests {
    static let chat = "/v1/chat/completions"
    static var user: [String: Any] { ["role": "user", "content": "Say hello"] }
    static var weatherTool: [String: Any] { [
        "type": "function",
        "function": [
            "name": "get_weather",
            "parameters": ["type": "object", "properties": ["city": ["type": "string"], "days": ["type": "integer"]], "required": ["city", "days"]],
        ] as [String: Any],
    ] }

    @Test func jsonAnswerHasChatCompletionShape() async throws {
        try await OpenAISim.with { sim in
            let reply = try await sim.post(Self.chat, ["model": "gpt-4o", "messages": [Self.user]])
            #expect(reply.status == 200)
            let json = reply.json
            #expect((json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
            #expect(json["object"] as? String == "chat.completion")
            #expect(json["model"] as? String == "gpt-4o")
            #expect(json["created"] as? Int ?? 0 > 1_700_000_000)
            #expect(json["system_fingerprint"] is NSNull)
            let choice = try #require((json["choices"] as? [[String: Any]])?.first)
            #expect(choice["index"] as? Int == 0)
            #expect(choice["finish_reason"] as? String == "stop")
            #expect(choice["logprobs"] is NSNull)
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["role"] as? String == "assistant")
            #expect(message["content"] as? String == "chunk0 chunk1 chunk2 ")
            #expect(message["refusal"] is NSNull)
            let usage = try #require(json["usage"] as? [String: Int])
            #expect(usage["completion_tokens"] == 4)
            #expect(usage["total_tokens"] == (usage["prompt_tokens"] ?? 0) + 4)
            #expect(reply.header("x-request-id")?.hasPrefix("req_") == true)
            #expect(reply.header("openai-processing-ms") != nil)
        }
    }

    @Test func streamSendsRoleContentFinishUsageAndDone() async throws {
        try await OpenAISim.with(script: "ok(events=4,interval=2ms)") { sim in
            let body: [String: Any] = ["model": "gpt-4o", "messages": [Self.user], "stream": true, "stream_options": ["include_usage": true]]
            let reply = try await sim.post(Self.chat, body)
            #expect(reply.status == 200)
            #expect(reply.header("content-type") == "text/event-stream")
            let data = reply.dataLines
            #expect(data.last == "[DONE]")
            let chunks = data.dropLast().map(OpenAISim.object)
            #expect(chunks.count == 7, "role, 4 contents, finish, usage")
            #expect(Set(chunks.compactMap { $0["id"] as? String }).count == 1, "one id for the whole stream")
            #expect(chunks.allSatisfy { chunk in
                let object = chunk["object"] as? String
                let model = chunk["model"] as? String
                return object == "chat.completion.chunk" && model == "gpt-4o"
            })
            #expect(OpenAISim.delta(chunks[0])?["role"] as? String == "assistant")
            let text = chunks[1...4].compactMap { OpenAISim.delta($0)?["content"] as? String }.joined()
            #expect(text == "chunk0 chunk1 chunk2 chunk3 ")
            #expect((chunks[5]["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "stop")
            #expect((chunks[6]["choices"] as? [Any])?.isEmpty == true, "the usage chunk has no choices")
            #expect((chunks[6]["usage"] as? [String: Int])?["completion_tokens"] == 5)
            #expect(chunks[..<6].allSatisfy { $0["usage"] is NSNull }, "usage: null on every other chunk")
        }
    }

    @Test func streamWithoutIncludeUsageHasNoUsageChunk() async throws {
        try await OpenAISim.with { sim in
            let reply = try await sim.post(Self.chat, ["model": "gpt-4o", "messages": [Self.user], "stream": true])
            let chunks = reply.dataLines.dropLast().map(OpenAISim.object)
            #expect(reply.dataLines.last == "[DONE]")
            #expect(chunks.count == 5)
            #expect(chunks.allSatisfy { $0["usage"] == nil && ($0["choices"] as? [Any])?.count == 1 })
        }
    }

    @Test func offeredToolsGetOneToolCallToTheFirst() async throws {
        try await OpenAISim.with { sim in
            let body: [String: Any] = ["model": "gpt-4o", "messages": [Self.user], "tools": [Self.weatherTool, OpenAISim.tool("other")]]
            let choice = try #require((try await sim.post(Self.chat, body).json["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "tool_calls")
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["content"] is NSNull)
            let call = try #require((message["tool_calls"] as? [[String: Any]])?.first)
            #expect((call["id"] as? String)?.hasPrefix("call_") == true)
            #expect(call["type"] as? String == "function")
            let function = try #require(call["function"] as? [String: Any])
            #expect(function["name"] as? String == "get_weather")
            let arguments = OpenAISim.object(try #require(function["arguments"] as? String))
            #expect(arguments["city"] as? String == "sim" && arguments["days"] as? Int == 1, "a value of each required property's type")
        }
    }

    @Test func toolChoiceNamesTheToolOrTurnsToolsOff() async throws {
        try await OpenAISim.with { sim in
            let tools = [Self.weatherTool, OpenAISim.tool("other")]
            let named: [String: Any] = ["type": "function", "function": ["name": "other"]]
            let called = try await sim.post(Self.chat, ["model": "m", "messages": [Self.user], "tools": tools, "tool_choice": named])
            let calls = OpenAISim.message(called)?["tool_calls"] as? [[String: Any]]
            #expect((calls?.first?["function"] as? [String: Any])?["name"] as? String == "other")
            let none = try await sim.post(Self.chat, ["model": "m", "messages": [Self.user], "tools": tools, "tool_choice": "none"])
            #expect(OpenAISim.message(none)?["content"] as? String == "chunk0 chunk1 chunk2 ")
        }
    }

    @Test func toolCallStreamsAsHeaderThenArgumentPieces() async throws {
        try await OpenAISim.with(script: "ok(events=4)") { sim in
            let body: [String: Any] = ["model": "gpt-4o", "messages": [Self.user], "tools": [Self.weatherTool], "stream": true]
            let chunks = try await sim.post(Self.chat, body).dataLines.dropLast().map(OpenAISim.object)
            let calls = chunks.compactMap { (OpenAISim.delta($0)?["tool_calls"] as? [[String: Any]])?.first }
            #expect(calls.count == 5, "the header, then 4 pieces")
            let header = try #require(calls.first)
            #expect((header["id"] as? String)?.hasPrefix("call_") == true)
            #expect((header["function"] as? [String: Any])?["name"] as? String == "get_weather")
            #expect((header["function"] as? [String: Any])?["arguments"] as? String == "")
            let arguments = calls.dropFirst().compactMap { ($0["function"] as? [String: Any])?["arguments"] as? String }.joined()
            #expect(OpenAISim.object(arguments)["city"] as? String == "sim")
            #expect((chunks.last?["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String == "tool_calls")
        }
    }

    @Test func toolResultIsQuotedInTheAnswer() async throws {
        try await OpenAISim.with { sim in
            let call: [String: Any] = ["id": "call_1", "type": "function", "function": ["name": "get_weather", "arguments": "{}"]]
            let messages: [[String: Any]] = [
                Self.user, ["role": "assistant", "content": NSNull(), "tool_calls": [call]],
                ["role": "tool", "tool_call_id": "call_1", "content": "21 degrees and sunny"],
            ]
            let reply = try await sim.post(Self.chat, ["model": "gpt-4o", "messages": messages, "tools": [Self.weatherTool]])
            #expect(reply.status == 200)
            #expect((OpenAISim.message(reply)?["content"] as? String)?.contains(#"tool said: "21 degrees and sunny""#) == true)
            #expect(OpenAISim.choice(reply)?["finish_reason"] as? String == "stop", "a tool result is answered with text")
        }
    }

    @Test func toolMessagesMustAnswerTheCallsBeforeThem() async throws {
        try await OpenAISim.with { sim in
            let result: [String: Any] = ["role": "tool", "tool_call_id": "call_x", "content": "x"]
            let orphan = try await sim.post(Self.chat, ["model": "m", "messages": [Self.user, result]])
            #expect(orphan.status == 400)
            #expect(orphan.error?["type"] as? String == "invalid_request_error")
            let call: [String: Any] = ["id": "call_1", "type": "function", "function": ["name": "f", "arguments": "{}"]]
            let assistant: [String: Any] = ["role": "assistant", "tool_calls": [call]]
            let unanswered = try await sim.post(Self.chat, ["model": "m", "messages": [Self.user, assistant, Self.user]])
            #expect(unanswered.status == 400)
            #expect((unanswered.error?["message"] as? String)?.contains("call_1") == true)
        }
    }

    @Test func imagesAreCountedAndBadOnesRefused() async throws {
        try await OpenAISim.with { sim in
            let png = "data:image/png;base64," + Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]).base64EncodedString()
            func message(_ urls: [String]) -> [String: Any] {
                let images = urls.map { ["type": "image_url", "image_url": ["url": $0]] as [String: Any] }
                return ["role": "user", "content": [["type": "text", "text": "What is this?"] as [String: Any]] + images]
            }
            let two = try await sim.post(Self.chat, ["model": "gpt-4o", "messages": [message([png, "https://example.com/cat.jpg"])]])
            #expect((OpenAISim.message(two)?["content"] as? String)?.hasPrefix("saw 2 images. chunk0") == true)
            let bad = try await sim.post(Self.chat, ["model": "gpt-4o", "messages": [message(["data:image/tiff;base64,AAAA"])]])
            #expect(bad.status == 400)
            #expect(bad.error?["code"] as? String == "invalid_value")
            #expect(bad.error?["param"] as? String == "messages[0].content[1].image_url.url")
        }
    }

    struct ErrorRow: Sendable, CustomTestStringConvertible {
        var step: String
        var status: Int
        var type: String
        var code: String?
        var param: String? = nil
        var headers: [String: String] = [:]
        var testDescription: String { step }
    }

    static let errorRows: [ErrorRow] = [
        ErrorRow(step: "500", status: 500, type: "server_error", code: "server_error"),
        ErrorRow(step: "503", status: 503, type: "server_error", code: "service_unavailable"),
        // OpenAI has no 529: its overload is a 503.
        ErrorRow(step: "529", status: 503, type: "server_error", code: "service_unavailable"),
        ErrorRow(
            step: "429", status: 429, type: "requests", code: "rate_limit_exceeded", headers: ["retry-after": "1", "x-ratelimit-remaining-requests": "0"]
        ),
        ErrorRow(step: "429(retry-after=2)", status: 429, type: "requests", code: "rate_limit_exceeded", headers: ["retry-after": "2"]),
        ErrorRow(step: "quota", status: 429, type: "insufficient_quota", code: "insufficient_quota"),
        ErrorRow(step: "context-length", status: 400, type: "invalid_request_error", code: "context_length_exceeded", param: "messages"),
        ErrorRow(step: "400", status: 400, type: "invalid_request_error", code: nil),
        ErrorRow(step: "error(model_not_found,404)", status: 404, type: "invalid_request_error", code: "model_not_found"),
    ]

    @Test(arguments: errorRows)
    func statusStepsAnswerOpenAIsEnvelope(_ row: ErrorRow) async throws {
        try await OpenAISim.with(script: row.step) { sim in
            let reply = try await sim.post(Self.chat, ["model": "gpt-4o", "messages": [Self.user]])
            #expect(reply.status == row.status)
            let error = try #require(reply.error)
            #expect(Set(error.keys) == ["message", "type", "param", "code"])
            #expect(error["type"] as? String == row.type)
            #expect(error["code"] as? String == row.code)
            #expect(error["param"] as? String == row.param)
            for (name, value) in row.headers {
                #expect(reply.headers[name] == [value], "\(name), once")
            }
        }
    }

    @Test func sseErrorSendsAnErrorChunkAndNoDone() async throws {
        try await OpenAISim.with(script: "sse-error(3)") { sim in
            let reply = try await sim.post(Self.chat, ["model": "gpt-4o", "messages": [Self.user], "stream": true])
            #expect(reply.status == 200)
            let data = reply.dataLines
            #expect(data.count == 4, "role, two contents, the error")
            #expect(!data.contains("[DONE]"))
            let last = try #require(data.last)
            let error = try #require(OpenAISim.object(last)["error"] as? [String: Any])
            #expect(error["type"] as? String == "server_error")
            #expect(error["code"] as? String == "service_unavailable", "sse-error's default is an overload")
        }
    }

    @Test func cutEndsTheStreamMidwayWithoutDone() async throws {
        try await OpenAISim.with(script: "cut(3)") { sim in
            let (data, failed) = try await sim.streamUntilCut(Self.chat, ["model": "gpt-4o", "messages": [Self.user], "stream": true])
            #expect(failed, "the connection is reset, not closed cleanly")
            #expect(data.count == 3)
            #expect(!data.contains("[DONE]"))
        }
    }

    @Test func resetInvalidJSONAndSlowWorkAsElsewhere() async throws {
        try await OpenAISim.with(script: "reset,invalid-json,slow(50ms)") { sim in
            let body: [String: Any] = ["model": "gpt-4o", "messages": [Self.user]]
            await #expect(throws: (any Error).self) { try await sim.post(Self.chat, body) }
            #expect(try await sim.post(Self.chat, body).body == "this is not JSON {")
            let started = ContinuousClock.now
            let slow = try await sim.post(Self.chat, body)
            #expect(slow.status == 200 && ContinuousClock.now - started >= .milliseconds(50))
            #expect(OpenAISim.message(slow)?["content"] as? String == "chunk0 chunk1 chunk2 ")
        }
    }

    @Test func keysAreCheckedWhenConfigured() async throws {
        try await OpenAISim.with(options: SimPlatformOptions(acceptedKeys: ["sk-sim-test-0001"])) { sim in
            let body: [String: Any] = ["model": "gpt-4o", "messages": [Self.user]]
            let missing = try await sim.post(Self.chat, body)
            #expect(missing.status == 401)
            #expect(missing.error?["code"] as? String == "invalid_api_key")
            #expect(missing.error?["type"] as? String == "invalid_request_error")
            let wrong = try await sim.post(Self.chat, body, headers: [("authorization", "Bearer sk-wrong-key-1234")])
            #expect(wrong.status == 401)
            #expect(!wrong.body.contains("sk-wrong-key-1234"), "the key is masked")
            #expect(try await sim.post(Self.chat, body, headers: [("authorization", "Bearer sk-sim-test-0001")]).status == 200)
            let azure = "/openai/deployments/gpt4o-east/chat/completions?api-version=2024-10-21"
            #expect(try await sim.post(azure, body, headers: [("api-key", "sk-sim-test-0001")]).status == 200)
            #expect(try await sim.post(azure, body, headers: [("api-key", "nope")]).status == 401)
            #expect(try await sim.send(.GET, "/v1/models").status == 401)
        }
    }

    @Test func azurePathTakesTheDeploymentAsModel() async throws {
        try await OpenAISim.with { sim in
            let reply = try await sim.post("/openai/deployments/gpt4o-east/chat/completions?api-version=2024-10-21", ["messages": [Self.user]])
            #expect(reply.status == 200)
            #expect(reply.json["model"] as? String == "gpt4o-east")
            #expect(sim.simulator.receivedRequests.last?.model == "gpt4o-east")
            let unversioned = try await sim.post("/openai/deployments/gpt4o-east/chat/completions", ["messages": [Self.user]])
            #expect(unversioned.status == 404)
        }
    }

    @Test func modelsAreListedAndUnknownPathsRefused() async throws {
        try await OpenAISim.with { sim in
            let list = try await sim.send(.GET, "/v1/models")
            #expect(list.json["object"] as? String == "list")
            let models = try #require(list.json["data"] as? [[String: Any]])
            #expect(models.contains { $0["id"] as? String == "gpt-4o" && $0["object"] as? String == "model" && $0["owned_by"] is String })
            #expect(try await sim.send(.GET, "/v1/models/gpt-4o").json["id"] as? String == "gpt-4o")
            let unknown = try await sim.post("/v1/messages", ["model": "m"])
            #expect(unknown.status == 404)
            #expect(unknown.error?["message"] as? String == "Invalid URL (POST /v1/messages)")
        }
    }

    @Test func requestsOpenAIRefusesAreRefused() async throws {
        try await OpenAISim.with { sim in
            #expect(try await sim.post(Self.chat, ["messages": [Self.user]]).status == 400, "no model")
            let noMessages = try await sim.post(Self.chat, ["model": "m"])
            #expect(noMessages.error?["param"] as? String == "messages")
            let options = try await sim.post(Self.chat, ["model": "m", "messages": [Self.user], "stream_options": ["include_usage": true]])
            #expect(options.error?["param"] as? String == "stream_options", "stream_options needs stream")
            #expect(sim.simulator.requestCount == 3, "refused requests are recorded too")
        }
    }

    @Test func quotaAndContextLengthParseAsOpenAIErrors() throws {
        #expect(try FaultScript.parse("quota").steps.first?.fault == .platformError(name: "insufficient_quota", status: 429))
        #expect(try FaultScript.parse("context-length*").steps.first?.fault == .platformError(name: "context_length_exceeded", status: 400))
    }
}

/// A simulator in OpenAI mode on loopback, and a client for it.
struct OpenAISim {
    let simulator: UpstreamSimulator
    let baseURL: String

    static func with(
        script: String = "", options: SimPlatformOptions = SimPlatformOptions(), _ body: (OpenAISim) async throws -> Void
    ) async throws {
        let simulator = UpstreamSimulator(name: "oai", script: try FaultScript.parse(script), platform: .openai, options: options)
        let port = try await simulator.start()
        do {
            try await body(OpenAISim(simulator: simulator, baseURL: "http://127.0.0.1:\(port)"))
        } catch {
            await simulator.stop()
            throw error
        }
        await simulator.stop()
    }

    struct Reply {
        var status: Int
        var headers: HTTPHeaders
        var body: String

        func header(_ name: String) -> String? { headers.first(name: name) }
        var json: [String: Any] { OpenAISim.object(body) }
        var error: [String: Any]? { json["error"] as? [String: Any] }
        /// The payloads of the `data:` lines of a stream.
        var dataLines: [String] {
            body.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
        }
    }

    func send(_ method: HTTPMethod, _ path: String, body: [String: Any]? = nil, headers: [(String, String)] = []) async throws -> Reply {
        let response = try await execute(method, path, body: body, headers: headers)
        let collected = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: collected))
    }

    func post(_ path: String, _ body: [String: Any], headers: [(String, String)] = []) async throws -> Reply {
        try await send(.POST, path, body: body, headers: headers)
    }

    /// Reads a stream until it ends or fails; returns its data lines and whether it failed.
    /// Streams `path` on a connection of its own whose bytes are read as they arrive, on the
    /// loop: a client that reads only when its consumer asks (AsyncHTTPClient) can still hold
    /// events in the kernel when the reset lands, which discards them, and a consumer on two
    /// cores busy with the whole suite sometimes did for longer than the sim's pause.
    func streamUntilCut(_ path: String, _ body: [String: Any]) async throws -> (data: [String], failed: Bool) {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let port = try #require(URL(string: baseURL)?.port)
        let request = "POST \(path) HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: \(json.utf8.count)\r\n\r\n\(json)"
        let received = EagerReader()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(received) } }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        try await channel.closeFuture.get()
        let (text, failed) = try await channel.eventLoop.submit { (received.text, received.failed) }.get()
        // Lines by bytes: in Swift's strings "\r\n" is one character, and the chunked framing's
        // size lines end in it.
        let lines = text.utf8.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
        return (lines.filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }, failed)
    }

    /// Keeps every byte the connection reads, and whether it ended in an error (a reset) rather
    /// than a clean close.
    final class EagerReader: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var text = ""
        var failed = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            text += String(buffer: unwrapInboundIn(data))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            failed = true
            context.close(promise: nil)
        }
    }

    private func execute(_ method: HTTPMethod, _ path: String, body: [String: Any]?, headers: [(String, String)]) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let body {
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
            request.headers.add(name: "content-type", value: "application/json")
        }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        return try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    static func delta(_ chunk: [String: Any]) -> [String: Any]? {
        (chunk["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any]
    }

    static func choice(_ reply: Reply) -> [String: Any]? { (reply.json["choices"] as? [[String: Any]])?.first }

    static func message(_ reply: Reply) -> [String: Any]? { choice(reply)?["message"] as? [String: Any] }

    static func tool(_ name: String) -> [String: Any] {
        ["type": "function", "function": ["name": name, "parameters": ["type": "object", "properties": [String: Any]()]] as [String: Any]]
    }
}
