import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import _CryptoExtras

@testable import SwitchyardCore

/// Google access tokens through real HTTP: a fake token endpoint and metadata server on
/// loopback, the assertion checked by PyJWT, the cache's single flight and refresh timing.
@Suite struct GoogleTokenTests {
    static let email = "router@my-project.iam.gserviceaccount.com"
    static let keyID = "0123456789abcdef0123456789abcdef01234567"

    /// An RSA-2048 key, as Google's key files hold it (PKCS#8, `BEGIN PRIVATE KEY`), and another
    /// for forgeries. Made once per test process: in a debug build each takes a while, and made
    /// per test on Swift's cooperative pool they held up the fake token endpoints beside them.
    static let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let otherKey = try! _RSA.Signing.PrivateKey(keySize: .bits2048)

    static func keyFileJSON(
        key: _RSA.Signing.PrivateKey, tokenURI: String, dropping: String? = nil, type: String = "service_account"
    ) throws -> String {
        var object: [String: String] = [
            "type": type, "project_id": "my-project", "private_key_id": keyID, "private_key": key.pkcs8PEMRepresentation,
            "client_email": email, "client_id": "1234567890", "token_uri": tokenURI,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        ]
        if let dropping { object[dropping] = nil }
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    }

    /// A provider for a service account whose token_uri is `server`'s `/token`. The fetch timeout
    /// is long unless a test is about it: signing with RSA in a debug build, beside the whole
    /// suite on two cores, once took CI more than 5 s.
    static func serviceAccountProvider(
        server: TinyHTTPServer, client: HTTPClient, time: TestUnixTime, folder: borrowing TemporaryFolder,
        key: _RSA.Signing.PrivateKey? = nil, fetchTimeout: Duration = .seconds(60), logs: RecordingLogs = RecordingLogs()
    ) throws -> GoogleAccessTokenProvider {
        let path = try folder.write("key.json", keyFileJSON(key: key ?? Self.key, tokenURI: server.baseURL + "/token"))
        let source = try GoogleCredentialSource.resolve(
            environment: ["GOOGLE_APPLICATION_CREDENTIALS": path], credentialsFileEnv: "GOOGLE_APPLICATION_CREDENTIALS"
        ).get()
        return GoogleAccessTokenProvider(source: source, egress: .direct(client), now: time.now, fetchTimeout: fetchTimeout, logger: logs.logger)
    }

    static func tokenAnswer(_ token: String, expiresIn: Int = 3600) -> TinyHTTPServer.Response {
        .json(#"{"access_token":"\#(token)","expires_in":\#(expiresIn),"token_type":"Bearer"}"#)
    }

    @Test func serviceAccountAssertionIsAcceptedByPyJWT() async throws {
        guard await CrossCheckPython.require(modules: ["jwt", "cryptography"]) else { return }
        let key = Self.key
        let folder = try TemporaryFolder()
        let time = TestUnixTime()
        try await TinyHTTPServer.withServer({ _ in Self.tokenAnswer("ya29.first") }) { server in
            try await withCredentialClient { client in
                let provider = try Self.serviceAccountProvider(server: server, client: client, time: time, folder: folder, key: key)
                #expect(try await provider.accessToken() == "ya29.first")
                let request = try #require(server.requests.first)
                #expect(request.method == "POST" && request.uri == "/token")
                #expect(request.header("content-type") == "application/x-www-form-urlencoded")
                let form = request.formFields
                #expect(form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer")
                let assertion = try #require(form["assertion"])
                let input: [String: Any] = [
                    "public_key_pem": key.publicKey.pemRepresentation, "assertion": assertion, "kid": Self.keyID, "iss": Self.email,
                    "aud": server.baseURL + "/token", "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": time.ms / 1000,
                ]
                let output = try await CrossCheckPython.run(script: "verify_jwt.py", input: JSONSerialization.data(withJSONObject: input))
                #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
                #expect(output.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")

                // The verifier is not a rubber stamp: another key's signature is refused.
                var forged = input
                forged["public_key_pem"] = Self.otherKey.publicKey.pemRepresentation
                let refused = try await CrossCheckPython.run(script: "verify_jwt.py", input: JSONSerialization.data(withJSONObject: forged))
                #expect(refused.status == 1 && refused.stdout.contains("InvalidSignatureError"), "\(refused.stdout)")
            }
        }
    }

    @Test func fiftyConcurrentCallersShareOneFetch() async throws {
        let folder = try TemporaryFolder()
        let time = TestUnixTime()
        try await TinyHTTPServer.withServer({ _ in
            try? await Task.sleep(for: .milliseconds(50))
            return Self.tokenAnswer("ya29.shared")
        }) { server in
            try await withCredentialClient { client in
                let provider = try Self.serviceAccountProvider(server: server, client: client, time: time, folder: folder)
                let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<50 { group.addTask { try await provider.accessToken() } }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(tokens.count == 50 && tokens.allSatisfy { $0 == "ya29.shared" })
                #expect(server.requestCount == 1)
            }
        }
    }

    @Test func tokenIsRefreshedOnceInsideItsWindowWhileTheOldOneIsServed() async throws {
        let folder = try TemporaryFolder()
        let time = TestUnixTime()
        let gate = TestGate()
        try await TinyHTTPServer.withServer({ _ in Self.tokenAnswer("ya29.first") }) { server in
            try await withCredentialClient { client in
                let provider = try Self.serviceAccountProvider(server: server, client: client, time: time, folder: folder)
                #expect(try await provider.accessToken() == "ya29.first")

                // Up to 5 minutes before expiry nothing is fetched.
                time.advance(seconds: 3600 - 301)
                for _ in 0..<20 { #expect(try await provider.accessToken() == "ya29.first") }
                #expect(server.requestCount == 1)

                // Inside the window: one refresh, held at the gate; callers keep the old token.
                server.setHandler { _ in
                    await gate.wait()
                    return Self.tokenAnswer("ya29.second")
                }
                time.advance(seconds: 2)
                for _ in 0..<20 { #expect(try await provider.accessToken() == "ya29.first") }
                #expect(await waitUntil { server.requestCount == 2 })
                for _ in 0..<20 { #expect(try await provider.accessToken() == "ya29.first") }
                #expect(server.requestCount == 2)

                gate.open()
                #expect(await waitUntil { (try? await provider.accessToken()) == "ya29.second" })
                #expect(server.requestCount == 2)
            }
        }
    }

    @Test func failedRefreshKeepsTheValidTokenThenExpiryFailsAndBacksOff() async throws {
        let folder = try TemporaryFolder()
        let time = TestUnixTime()
        let logs = RecordingLogs()
        try await TinyHTTPServer.withServer({ _ in Self.tokenAnswer("ya29.first") }) { server in
            try await withCredentialClient { client in
                let provider = try Self.serviceAccountProvider(server: server, client: client, time: time, folder: folder, logs: logs)
                #expect(try await provider.accessToken() == "ya29.first")
                server.setHandler { _ in .json(#"{"error":"internal_failure"}"#, status: 503) }

                time.advance(seconds: 3600 - 90)
                #expect(try await provider.accessToken() == "ya29.first")
                // The refresh failed: the token is still served, and the endpoint left alone for 1 s.
                #expect(await waitUntil { logs.all.contains { $0.contains("refresh failed") } })
                #expect(server.requestCount == 2)
                #expect(try await provider.accessToken() == "ya29.first")
                #expect(server.requestCount == 2)

                // 59 s before its expiry the token is no longer used, although it has not expired:
                // a request could reach Google after it did.
                time.advance(seconds: 31)
                let error = try #require(await credentialError { try await provider.accessToken() })
                #expect(error.kind == .unreachable)
                #expect(error.source == "gcp token endpoint 127.0.0.1:\(server.port)")
                #expect(error.message.contains("503"))
                #expect(server.requestCount == 3)

                // Within the back-off the failure is answered at once, without a request.
                let again = try #require(await credentialError { try await provider.accessToken() })
                #expect(again.message.contains("not asked again"))
                #expect(server.requestCount == 3)

                server.setHandler { _ in Self.tokenAnswer("ya29.back") }
                time.advance(seconds: 3)
                #expect(try await provider.accessToken() == "ya29.back")
                #expect(server.requestCount == 4)
            }
        }
    }

    @Test func slowEndpointFailsWithinTheFetchTimeout() async throws {
        let folder = try TemporaryFolder()
        let time = TestUnixTime()
        try await TinyHTTPServer.withServer({ _ in
            try? await Task.sleep(for: .seconds(30))
            return Self.tokenAnswer("ya29.late")
        }) { server in
            try await withCredentialClient { client in
                let provider = try Self.serviceAccountProvider(
                    server: server, client: client, time: time, folder: folder, fetchTimeout: .milliseconds(200))
                let started = ContinuousClock.now
                let error = try #require(await credentialError { try await provider.accessToken() })
                // The endpoint answers after 30 s; the fetch gives up long before (the bound is
                // loose because the whole suite shares two cores with CPU-bound tests).
                #expect(ContinuousClock.now - started < .seconds(15))
                #expect(error.kind == .unreachable)
                #expect(error.message.contains("no answer"))
            }
        }
    }

    @Test func callersDeadlineOrCancellationEndsItsWaitButNotTheFetch() async throws {
        let folder = try TemporaryFolder()
        let time = TestUnixTime()
        let gate = TestGate()
        try await TinyHTTPServer.withServer({ _ in
            await gate.wait()
            return Self.tokenAnswer("ya29.gated")
        }) { server in
            try await withCredentialClient { client in
                // The fetch's own timeout is not what this test is about: long enough that a loaded
                // machine (the suite beside a busy loop) cannot reach it before the gate opens.
                let provider = try Self.serviceAccountProvider(
                    server: server, client: client, time: time, folder: folder, fetchTimeout: .seconds(60))
                let error = try #require(await credentialError { try await provider.accessToken(deadline: .now() + .milliseconds(100)) })
                #expect(error.kind == .unreachable && error.message.contains("deadline"))
                // A caller whose task is cancelled (its client went away) gets `.cancelled`.
                let abandoned = Task { try await provider.accessToken() }
                abandoned.cancel()
                #expect(await credentialError { try await abandoned.value }?.kind == .cancelled)
                gate.open()
                #expect(try await provider.accessToken() == "ya29.gated")
                #expect(server.requestCount == 1)
            }
        }
    }

    @Test func metadataServerIsAskedWithMetadataFlavor() async throws {
        let time = TestUnixTime()
        try await TinyHTTPServer.withServer({ request in
            guard request.header("Metadata-Flavor") == "Google" else { return .json("{}", status: 403) }
            return Self.tokenAnswer("ya29.metadata", expiresIn: 1800)
        }) { server in
            try await withCredentialClient { client in
                let source = try GoogleCredentialSource.resolve(
                    environment: ["GCE_METADATA_HOST": "127.0.0.1:\(server.port)"], credentialsFileEnv: nil
                ).get()
                #expect(source.description == "gcp: metadata server (127.0.0.1:\(server.port))")
                let provider = GoogleAccessTokenProvider(source: source, egress: .direct(client), now: time.now)
                #expect(try await provider.accessToken() == "ya29.metadata")
                let request = try #require(server.requests.first)
                #expect(request.method == "GET")
                #expect(request.uri == "/computeMetadata/v1/instance/service-accounts/default/token")
                #expect(request.header("metadata-flavor") == "Google")

                // Lifetime 30 min: refreshed in its last 5 min, not before.
                time.advance(seconds: 1800 - 301)
                #expect(try await provider.accessToken() == "ya29.metadata")
                #expect(server.requestCount == 1)
                provider.invalidate()
                #expect(try await provider.accessToken() == "ya29.metadata")
                #expect(server.requestCount == 2)
            }
        }
        // A host given as a URL (as test harnesses write it) is taken as it is.
        try await TinyHTTPServer.withServer({ _ in Self.tokenAnswer("ya29.url") }) { server in
            try await withCredentialClient { client in
                let environment = ["GCE_METADATA_HOST": server.baseURL + "/"]
                let source = try GoogleCredentialSource.resolve(environment: environment, credentialsFileEnv: nil).get()
                let provider = GoogleAccessTokenProvider(source: source, egress: .direct(client), now: time.now)
                #expect(try await provider.accessToken() == "ya29.url")
                #expect(server.requests.first?.uri == "/computeMetadata/v1/instance/service-accounts/default/token")
            }
        }
        let defaultSource = try GoogleCredentialSource.resolve(environment: [:], credentialsFileEnv: nil).get()
        #expect(defaultSource.description == "gcp: metadata server (metadata.google.internal)")
    }

    @Test func oauthErrorNamesErrorAndDescriptionAndNothingSecret() async throws {
        let folder = try TemporaryFolder()
        let key = Self.key
        let body = #"{"error":"invalid_grant","error_description":"Invalid JWT Signature.","debug":"SECRET-DEBUG-VALUE"}"#
        try await TinyHTTPServer.withServer({ _ in .json(body, status: 400) }) { server in
            try await withCredentialClient { client in
                let provider = try Self.serviceAccountProvider(server: server, client: client, time: TestUnixTime(), folder: folder, key: key)
                let error = try #require(await credentialError { try await provider.accessToken() })
                #expect(error.kind == .rejected)
                #expect(error.message.contains("400 invalid_grant: Invalid JWT Signature."))
                let assertion = try #require(server.requests.first?.formFields["assertion"])
                let text = "\(error) \(String(reflecting: error))"
                #expect(!text.contains("SECRET-DEBUG-VALUE"))
                #expect(!text.contains(assertion) && !text.contains(String(assertion.split(separator: ".")[2])))
                #expect(!text.contains("PRIVATE KEY") && !text.contains(String(key.pkcs8PEMRepresentation.split(separator: "\n")[1])))
                #expect(!text.contains("{"))
            }
        }
    }

    @Test(arguments: [
        ("not json at all", "not a JSON object"),
        (#"{"expires_in":3600,"token_type":"Bearer"}"#, "without access_token"),
        (#"{"access_token":"ya29.x","token_type":"Bearer"}"#, "expires_in"),
        (#"{"access_token":"ya29.x","expires_in":3600,"token_type":"MAC"}"#, "not Bearer"),
        (#"{"access_token":"ya29 with spaces","expires_in":3600}"#, "cannot be sent in a header"),
    ])
    func unusableAnswersAreClearErrors(body: String, expected: String) async throws {
        let folder = try TemporaryFolder()
        try await TinyHTTPServer.withServer({ _ in .json(body) }) { server in
            try await withCredentialClient { client in
                let provider = try Self.serviceAccountProvider(server: server, client: client, time: TestUnixTime(), folder: folder)
                let error = try #require(await credentialError { try await provider.accessToken() })
                #expect(error.kind == .invalidResponse)
                #expect(error.message.contains(expected), "\(error)")
                #expect(!error.message.contains("ya29"))
            }
        }
    }

    @Test func keyFileProblemsNameTheFileAndFieldButNeverTheKey() throws {
        let folder = try TemporaryFolder()
        let key = Self.key
        let keyLine = String(key.pkcs8PEMRepresentation.split(separator: "\n")[1])
        func resolve(_ json: String) throws -> CredentialError? {
            let path = try folder.write("key.json", json)
            guard case .failure(let error) = GoogleCredentialSource.resolve(environment: ["CREDS": path], credentialsFileEnv: "CREDS") else {
                return nil
            }
            #expect(error.source == "gcp key file \(path)")
            #expect(!error.description.contains(keyLine))
            return error
        }
        let uri = "https://oauth2.googleapis.com/token"
        #expect(try resolve(Self.keyFileJSON(key: key, tokenURI: uri, dropping: "client_email"))?.message == "the field client_email is missing")
        #expect(try resolve(Self.keyFileJSON(key: key, tokenURI: uri, dropping: "private_key"))?.message == "the field private_key is missing")
        #expect(try resolve(Self.keyFileJSON(key: key, tokenURI: uri, type: "authorized_user"))?.message.contains("not service_account") == true)
        #expect(try resolve(Self.keyFileJSON(key: key, tokenURI: "http://evil.example/token"))?.message.contains("token_uri") == true)
        #expect(try resolve("[1, 2]")?.message.contains("not a JSON object") == true)
        let damaged = try Self.keyFileJSON(key: key, tokenURI: uri).replacingOccurrences(of: keyLine, with: String(keyLine.reversed()))
        #expect(try resolve(damaged)?.message.contains("private_key") == true)

        // A file without token_uri uses Google's.
        let path = try folder.write("ok.json", Self.keyFileJSON(key: key, tokenURI: uri, dropping: "token_uri"))
        let source = try GoogleCredentialSource.resolve(environment: ["CREDS": path], credentialsFileEnv: "CREDS").get()
        guard case .serviceAccount(let parsed, _) = source else {
            Issue.record("not a service account: \(source)")
            return
        }
        #expect(parsed.tokenURI == "https://oauth2.googleapis.com/token" && parsed.projectID == "my-project")
        #expect(source.description == "gcp: service account \(Self.email) (\(path))")
        for text in [source.description, String(reflecting: source), "\(parsed)", String(reflecting: parsed)] {
            #expect(!text.contains(keyLine) && !text.contains("PRIVATE KEY"))
        }

        let unset = GoogleCredentialSource.resolve(environment: [:], credentialsFileEnv: "GOOGLE_APPLICATION_CREDENTIALS")
        guard case .failure(let error) = unset else {
            Issue.record("resolved without a key file")
            return
        }
        #expect(error.message.contains("GOOGLE_APPLICATION_CREDENTIALS is not set"))
        guard
            case .failure(let missing) = GoogleCredentialSource.resolve(environment: ["CREDS": "/nonexistent/key.json"], credentialsFileEnv: "CREDS")
        else {
            Issue.record("resolved a missing file")
            return
        }
        #expect(missing.source == "gcp key file /nonexistent/key.json")
    }
}
