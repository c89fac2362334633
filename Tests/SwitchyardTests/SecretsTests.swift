import AWSWire
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// Real-looking secrets configured and sent, traffic of every kind, then a search of everything
/// the router wrote or showed: no key, no authorization value, no prompt text.
@Suite("Secrets never leak", .serialized)
struct SecretsTests {
    static func secret(_ prefix: String) -> String {
        var random = SeededRandom(state: UInt64(prefix.utf8.count) &* 7919)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        return prefix + String((0..<80).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
    }

    @Test func noKeyOrPromptAppearsInLogsAuditOrAdminState() async throws {
        let providerKey = Self.secret("sk-ant-api03-")
        let clientKey = Self.secret("sy-client-")
        let adminToken = Self.secret("sy-admin-")
        let wrongKey = Self.secret("sk-ant-wrong-")
        let prompt = "PROMPT-TEXT-\(UUID().uuidString)"
        let completionMarker = "chunk0"
        // The provider's traffic goes through a proxy that wants a password.
        let proxyPassword = Self.secret("proxy-pass-")
        let proxy = try await TestProxy.start(credentials: "egress:\(proxyPassword)")

        let sim = UpstreamSimulator(name: "a", script: try FaultScript.parse("ok,500,ok,529,ok,sse-error(4),ok*"))
        let simPort = try await sim.start()
        let config = """
            version: 1
            server: { listen: 127.0.0.1:0, admin_token_env: ADMIN_TOKEN }
            clients:
              - { name: team, key_env: TEAM_KEY }
            providers:
              a: { type: anthropic, base_url: "http://127.0.0.1:\(simPort)", api_key_env: PROVIDER_KEY, proxy: "\(proxy.url)", proxy_auth_env: PROXY_AUTH }
            models:
              sonnet: { provider: a, model: claude-sonnet-4-20250514 }
            defaults:
              retry: { backoff: { initial: 10ms } }
            routes:
              default: { models: [sonnet] }
            logging: { level: trace }
            """
        let router = try ProcessTests.RouterProcess(
            config: config,
            environment: ["PROVIDER_KEY": providerKey, "TEAM_KEY": clientKey, "ADMIN_TOKEN": adminToken, "PROXY_AUTH": "egress:\(proxyPassword)"]
        )
        defer { if router.process.isRunning { router.process.terminate() } }
        let port = try await router.port()
        let base = "http://127.0.0.1:\(port)"

        func call(_ path: String, method: HTTPMethod = .POST, body: String? = nil, headers: [(String, String)]) async throws -> String {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            if let body { request.body = .bytes(ByteBuffer(string: body)) }
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let response = try await RouterHarness.client.execute(request, timeout: .seconds(30))
            return String(buffer: try await response.body.collect(upTo: 8 << 20))
        }
        let body = RouterHarness.messages(text: prompt)
        let streamBody = RouterHarness.messages(stream: true, text: prompt)
        var shown: [String] = []
        for headers in [[("x-api-key", clientKey)], [("authorization", "Bearer \(clientKey)")]] {
            shown.append(try await call("/v1/messages", body: body, headers: headers))
            shown.append(try await call("/v1/messages", body: streamBody, headers: headers))
        }
        shown.append(try await call("/v1/messages", body: body, headers: [("x-api-key", wrongKey)]))
        shown.append(try await call("/v1/messages", body: body, headers: [("authorization", "Bearer \(wrongKey)")]))
        shown.append(try await call("/v1/messages", body: #"{"model":"default","messages":[{"content":"\#(prompt)"#, headers: [("x-api-key", clientKey)]))
        shown.append(try await call("/v1/messages", body: body, headers: [("x-api-key", clientKey)]))
        shown.append(try await call("/v1/messages", body: streamBody, headers: [("x-api-key", clientKey)]))
        shown.append(try await call("/admin/state", method: .GET, headers: [("authorization", "Bearer \(wrongKey)")]))
        let state = try await call("/admin/state", method: .GET, headers: [("authorization", "Bearer \(adminToken)")])
        #expect(state.contains("\"models\""))
        _ = try await call("/admin/reload", headers: [("authorization", "Bearer \(adminToken)")])

        router.process.terminate()
        #expect(try await router.waitForExit(within: .seconds(15)) == 0)
        let received = sim.receivedRequests
        #expect(received.count >= 6)
        #expect(received.allSatisfy { $0.header("x-api-key") == providerKey }, "the provider key does reach the upstream")
        #expect(!received.contains { $0.headers.contains { $0.1.contains(clientKey) } }, "the client key never does")
        #expect(proxy.requestLines.count == received.count, "every upstream request went through the proxy")
        await sim.stop()
        await proxy.stop()

        let places = [("stdout (audit)", router.stdout), ("stderr (trace log)", router.stderr), ("/admin/state", state)]
        #expect(router.stdout.contains("\"event\":\"request\""), "the audit log was written")
        #expect(router.stderr.count > 0, "the operational log was written")
        for (place, text) in places {
            for (what, value) in [
                ("provider key", providerKey), ("client key", clientKey), ("admin token", adminToken), ("wrong key", wrongKey),
                ("prompt", prompt), ("completion", completionMarker), ("proxy password", proxyPassword),
                ("proxy authorization", Data("egress:\(proxyPassword)".utf8).base64EncodedString()),
            ] {
                #expect(!text.contains(value), "\(what) found in \(place)")
            }
            #expect(!text.lowercased().contains("bearer "), "an authorization value in \(place)")
        }
        // Error bodies shown to callers do not echo keys either.
        for answer in shown {
            #expect(!answer.contains(clientKey) && !answer.contains(wrongKey) && !answer.contains(providerKey))
        }
    }

    /// Bedrock's AWS secret key and session token, Vertex's service-account private key and the
    /// access tokens it is exchanged for: used on every request, shown nowhere.
    @Test func platformCredentialsAppearNowhere() async throws {
        let secretKey = Self.secret("aws-secret/")
        let sessionToken = Self.secret("IQoJb3JpZ2luX2VjE")
        let credentials = AWSCredentials(accessKeyID: "ASIASECRETSTEST00001", secretAccessKey: secretKey, sessionToken: sessionToken)
        let bedrock = UpstreamSimulator(
            name: "b", script: try FaultScript.parse("ok,error(ThrottlingException,429),exception(4,modelStreamErrorException),ok*"),
            platform: .bedrock, options: SimPlatformOptions(awsCredentials: [credentials])
        )
        let vertex = UpstreamSimulator(name: "v", script: try FaultScript.parse("ok,error(UNAUTHENTICATED,401),ok*"), platform: .vertex)
        let bedrockPort = try await bedrock.start()
        let vertexPort = try await vertex.start()
        let keyFile = PlatformFixtures.temporaryPath("sa.json")
        let keyJSON = PlatformFixtures.serviceAccountKey(tokenSim: "v").replacingOccurrences(of: "{{v}}", with: "http://127.0.0.1:\(vertexPort)")
        try keyJSON.write(toFile: keyFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let privateKeyLine = try #require(PlatformFixtures.rsaKey.pkcs8PEMRepresentation.split(separator: "\n").dropFirst().first.map(String.init))
        let config = """
            version: 1
            server: { listen: 127.0.0.1:0 }
            providers:
              bedrock-us: { type: bedrock, region: us-east-1, base_url: "http://127.0.0.1:\(bedrockPort)" }
              vertex-us: { type: vertex, project: sim-project, region: us-east5, base_url: "http://127.0.0.1:\(vertexPort)", credentials_file_env: GOOGLE_APPLICATION_CREDENTIALS }
            models:
              sonnet-bedrock: { provider: bedrock-us, model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0" }
              sonnet-vertex: { provider: vertex-us, model: "claude-sonnet-4-5@20250929" }
            defaults:
              retry: { backoff: { initial: 10ms } }
            routes:
              bedrock: { models: [sonnet-bedrock, sonnet-vertex] }
              vertex: { models: [sonnet-vertex, sonnet-bedrock] }
            logging: { level: trace }
            """
        let router = try ProcessTests.RouterProcess(
            config: config,
            environment: [
                "AWS_ACCESS_KEY_ID": credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": secretKey, "AWS_SESSION_TOKEN": sessionToken,
                "GOOGLE_APPLICATION_CREDENTIALS": keyFile, "HOME": "/nonexistent-home",
            ]
        )
        defer { if router.process.isRunning { router.process.terminate() } }
        let port = try await router.port()
        var shown: [String] = []
        for route in ["bedrock", "vertex"] {
            for stream in [false, true, false, true] {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/messages")
                request.method = .POST
                request.body = .bytes(ByteBuffer(string: RouterHarness.messages(model: route, stream: stream, text: "hello")))
                let response = try await RouterHarness.client.execute(request, timeout: .seconds(30))
                shown.append(String(buffer: try await response.body.collect(upTo: 8 << 20)))
            }
        }
        router.process.terminate()
        #expect(try await router.waitForExit(within: .seconds(15)) == 0)
        let accessTokens = vertex.receivedRequests.compactMap { $0.header("authorization") }.map { String($0.dropFirst("Bearer ".count)) }
        #expect(!accessTokens.isEmpty, "Vertex was called with access tokens")
        #expect(bedrock.receivedRequests.contains { $0.header("x-amz-security-token") == sessionToken }, "the session token is sent to AWS")
        await bedrock.stop()
        await vertex.stop()

        #expect(router.stdout.contains("\"platform\":\"bedrock\"") && router.stdout.contains("\"platform\":\"vertex\""), "both platforms served")
        let secrets = [("AWS secret key", secretKey), ("AWS session token", sessionToken), ("service-account private key", privateKeyLine)]
            + accessTokens.map { ("Vertex access token", $0) }
        for (place, text) in [("stdout (audit)", router.stdout), ("stderr (trace log)", router.stderr)] + shown.map({ ("an answer", $0) }) {
            for (what, value) in secrets {
                #expect(!text.contains(value), "\(what) found in \(place)")
            }
            #expect(!text.contains("Signature="), "a SigV4 signature in \(place)")
        }
    }

    /// An OpenAI-compatible provider's key: sent upstream as a bearer token (or Azure's `api-key`),
    /// shown nowhere — not in the trace log, the audit log, `/admin/state`, nor in
    /// the answers of a refused key, an error or a stream.
    @Test func anOpenAIKeyAppearsNowhere() async throws {
        let key = Self.secret("sk-proj-")
        let openai = UpstreamSimulator(
            name: "o", script: try FaultScript.parse("ok,error(invalid_api_key,401),quota,500,ok*"), platform: .openai,
            options: SimPlatformOptions(acceptedKeys: [key])
        )
        let port = try await openai.start()
        let config = """
            version: 1
            server: { listen: 127.0.0.1:0 }
            providers:
              openai: { type: openai, base_url: "http://127.0.0.1:\(port)/v1", api_key_env: OPENAI_API_KEY, organization: org-secrets-test }
              azure: { type: openai, base_url: "http://127.0.0.1:\(port)", api_key_env: OPENAI_API_KEY, api_version: "2024-10-21" }
            models:
              gpt: { provider: openai, model: gpt-4o }
              gpt-azure: { provider: azure, model: deployment-1 }
            defaults:
              retry: { backoff: { initial: 10ms } }
            routes:
              default: { models: [gpt, gpt-azure] }
            logging: { level: trace }
            """
        let router = try ProcessTests.RouterProcess(config: config, environment: ["OPENAI_API_KEY": key, "HOME": "/nonexistent-home"])
        defer { if router.process.isRunning { router.process.terminate() } }
        let routerPort = try await router.port()
        var shown: [String] = []
        for (path, stream) in [("/v1/messages", false), ("/v1/chat/completions", false), ("/v1/messages", true), ("/v1/chat/completions", true), ("/v1/messages", false), ("/admin/state", false)] {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(routerPort)\(path)")
            if path != "/admin/state" {
                request.method = .POST
                let body = path == "/v1/messages"
                    ? RouterHarness.messages(model: "default", stream: stream, text: "hello")
                    : #"{"model":"default","stream":\#(stream),"messages":[{"role":"user","content":"hello"}]}"#
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await RouterHarness.client.execute(request, timeout: .seconds(30))
            shown.append(String(buffer: try await response.body.collect(upTo: 8 << 20)))
        }
        router.process.terminate()
        #expect(try await router.waitForExit(within: .seconds(15)) == 0)
        #expect(openai.receivedRequests.contains { $0.header("authorization") == "Bearer \(key)" }, "the key is sent as a bearer token")
        #expect(openai.receivedRequests.contains { $0.header("api-key") == key }, "and to Azure as api-key")
        await openai.stop()
        #expect(router.stdout.contains("\"platform\":\"openai\""), "the OpenAI provider served")
        for (place, text) in [("stdout (audit)", router.stdout), ("stderr (trace log)", router.stderr)] + shown.map({ ("an answer", $0) }) {
            #expect(!text.contains(key), "the OpenAI key found in \(place)")
            #expect(!text.contains(String(key.suffix(12))), "a piece of the OpenAI key found in \(place)")
        }
    }

    @Test func checkPrintsVariableNamesNotValues() async throws {
        let key = Self.secret("sk-ant-api03-")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessTests.binary)
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../routes.yaml").path
        process.arguments = ["check", "--config", path]
        process.environment = ["ANTHROPIC_API_KEY": key, "SWITCHYARD_ADMIN_TOKEN": Self.secret("sy-admin-")]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        await process.exited()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0)
        #expect(text.contains("$ANTHROPIC_API_KEY"))
        #expect(!text.contains(key))
    }
}
