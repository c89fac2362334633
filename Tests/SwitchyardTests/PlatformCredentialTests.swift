import Foundation
import Testing
import UpstreamSim

@testable import SwitchyardCore

/// Platform credentials through the router and real HTTP: tokens and temporary AWS keys fetched
/// once and refreshed near expiry by one task, the container endpoint, STS web identity, the
/// metadata server, clock skew, and credentials the platform refuses.
@Suite("Platform credentials", .serialized)
struct PlatformCredentialTests {
    /// Which model served one request to `route`.
    func servedBy(_ harness: RouterHarness, route: String) async throws -> String? {
        try await harness.message(model: route).header("x-switchyard-model")
    }

    /// Waits, in real time, for a background refresh to reach a simulator: milliseconds alone,
    /// seconds in a CI run that has every suite going on two cores.
    func eventually(within limit: Duration = .seconds(15), _ condition: () -> Bool) async throws -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    @Test func theTokenEndpointIsCalledOnceForManyRequestsAndAgainOnlyNearExpiry() async throws {
        let clock = TestWallClock()
        // A 240 s token: refreshed in its last minute.
        try await PlatformFixtures.with(scripts: [:], vertex: SimPlatformOptions(issuedLifetimeSeconds: 240), wallClock: clock.now) { harness in
            let issuer = harness.sim("v").issuer
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 { group.addTask { try await harness.message(model: "vertex").status } }
                for try await status in group { #expect(status == 200) }
            }
            #expect(issuer.count("token") == 1, "one fetch for 20 concurrent requests")
            clock.advance(seconds: 120)
            for _ in 0..<5 {
                let status = try await harness.message(model: "vertex").status
                #expect(status == 200)
            }
            #expect(issuer.count("token") == 1, "not refreshed before its window")
            clock.advance(seconds: 70)
            let status = try await harness.message(model: "vertex").status
            #expect(status == 200, "the old token still serves while one task refreshes")
            #expect(try await eventually { issuer.count("token") == 2 })
            for _ in 0..<5 {
                let status = try await harness.message(model: "vertex").status
                #expect(status == 200)
            }
            #expect(issuer.count("token") == 2)
            // The sim counts a token when it issues it; the router has it a moment later.
            var tokens: Set<String> = []
            for _ in 0..<50 {
                tokens = Set(harness.sim("v").receivedRequests.compactMap { $0.header("authorization") })
                if tokens.count == 2 { break }
                _ = try await harness.message(model: "vertex")
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(tokens.count == 2, "requests after the refresh carry the new token")
            #expect(issuer.count("token") == 2, "and still no other fetch")
        }
    }

    @Test func temporaryCredentialsFromTheContainerEndpointAreRefreshedBeforeTheyExpire() async throws {
        let clock = TestWallClock()
        let environment = [
            "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "{{b}}/v2/credentials/switchyard",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-auth-token-for-tests",
        ]
        try await PlatformFixtures.with(
            scripts: [:], bedrock: SimPlatformOptions(issuedLifetimeSeconds: 240), environment: environment, wallClock: clock.now
        ) { harness in
            let issuer = harness.sim("b").issuer
            for _ in 0..<10 {
                let served1 = try await servedBy(harness, route: "bedrock")
                #expect(served1 == "sonnet-bedrock")
            }
            #expect(issuer.count("container") == 1)
            clock.advance(seconds: 190)
            let served2 = try await servedBy(harness, route: "bedrock")
            #expect(served2 == "sonnet-bedrock")
            #expect(try await eventually { issuer.count("container") == 2 })
            let served3 = try await servedBy(harness, route: "bedrock")
            #expect(served3 == "sonnet-bedrock")
            var keys: Set<Substring> = []
            for _ in 0..<50 {
                keys = Set(harness.sim("b").receivedRequests.compactMap { $0.header("authorization")?.split(separator: "/").first })
                if keys.count == 2 { break }
                _ = try await harness.message(model: "bedrock")
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(keys.count == 2, "signed with the first credentials, then with the refreshed ones: \(keys)")
            #expect(issuer.count("container") == 2)
            #expect(harness.sim("b").receivedRequests.allSatisfy { $0.header("x-amz-security-token") != nil })
        }
    }

    @Test func webIdentityCredentialsComeFromSTS() async throws {
        let tokenFile = PlatformFixtures.temporaryPath("web-identity-token")
        try "eyJhbGciOiJSUzI1NiJ9.e30.c2ln".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let environment = [
            "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile,
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/switchyard", "AWS_ENDPOINT_URL_STS": "{{b}}",
        ]
        try await PlatformFixtures.with(scripts: [:], bedrock: SimPlatformOptions(), environment: environment) { harness in
            for _ in 0..<3 {
                let served4 = try await servedBy(harness, route: "bedrock")
                #expect(served4 == "sonnet-bedrock")
            }
            #expect(harness.sim("b").issuer.count("sts") == 1)
            let provider = try #require(harness.runtime.table.config.provider(named: "bedrock-us"))
            #expect(provider.settings.credentialDescription.hasPrefix("aws: web identity"))
        }
    }

    @Test func theMetadataServerGivesTokensWhenThereIsNoKeyFile() async throws {
        let yaml = PlatformFixtures.threePlatforms(vertexExtra: "")
        try await PlatformFixtures.with(scripts: [:], yaml: yaml, environment: ["GCE_METADATA_HOST": "{{v}}"]) { harness in
            for _ in 0..<3 {
                let served5 = try await servedBy(harness, route: "vertex")
                #expect(served5 == "sonnet-vertex")
            }
            #expect(harness.sim("v").issuer.count("metadata") == 1)
            #expect(harness.sim("v").issuer.count("token") == 0)
        }
    }

    @Test func aClockSkewRefusalIsAnAuthFailureAndLaterRequestsAreSignedWithTheCorrection() async throws {
        // The sim's clock runs 15 minutes ahead: AWS refuses signatures outside 5 minutes.
        var options = PlatformFixtures.bedrockOptions
        options.clockOffsetSeconds = 900
        try await PlatformFixtures.with(scripts: [:], bedrock: options) { harness in
            let first = try await harness.message(model: "bedrock")
            #expect(first.status == 200)
            #expect(first.header("x-switchyard-model") == "sonnet", "the skewed attempt failed; the next platform served")
            let second = try await harness.message(model: "bedrock")
            #expect(second.header("x-switchyard-model") == "sonnet-bedrock", "signed with the learnt offset")
            let line = try #require(try await harness.requestLines(2).first)
            let attempt = try #require((line["attempts"] as? [[String: Any]])?.first)
            #expect(attempt["error"] as? String == "auth")
            #expect(attempt["platform_error"] as? String == "InvalidSignatureException")
            #expect((attempt["detail"] as? String)?.contains("behind the platform's clock") == true)
        }
    }

    @Test func wrongCredentialsAreAnAuthFailureThatNeverShowsTheSecret() async throws {
        let wrongSecret = "wrong/secret/that-must-not-leak-0000000000"
        try await PlatformFixtures.with(scripts: [:], environment: ["AWS_SECRET_ACCESS_KEY": wrongSecret]) { harness in
            let reply = try await harness.message(model: "bedrock")
            #expect(reply.header("x-switchyard-model") == "sonnet")
            let lines = try await harness.auditLines(requests: 1)
            let attempt = try #require((lines.first { $0["event"] as? String == "request" }?["attempts"] as? [[String: Any]])?.first)
            #expect(attempt["error"] as? String == "auth")
            #expect(attempt["platform_error"] as? String == "InvalidSignatureException")
            #expect(harness.runtime.table.model(named: "sonnet-bedrock")!.health.snapshot.breaker.consecutiveFailures == 1)
            await harness.audit.flush()
            #expect(!harness.audit.memoryContents.contains(wrongSecret))
            #expect(!reply.body.contains(wrongSecret))
        }
    }

    @Test func expiredTemporaryCredentialsAreFetchedAgain() async throws {
        let environment = [
            "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "{{b}}/v2/credentials/switchyard",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-auth-token-for-tests",
        ]
        try await PlatformFixtures.with(scripts: ["b": "error(ExpiredTokenException,403)"], bedrock: SimPlatformOptions(), environment: environment) {
            harness in
            let served6 = try await servedBy(harness, route: "bedrock")
            #expect(served6 == "sonnet")
            #expect(harness.sim("b").issuer.count("container") == 1)
            let served7 = try await servedBy(harness, route: "bedrock")
            #expect(served7 == "sonnet-bedrock")
            #expect(harness.sim("b").issuer.count("container") == 2, "AWS said the token expired: new credentials were fetched")
        }
    }

    /// Routes of one platform model each: nothing else can serve, so the request ends on that model.
    static let singleModelRoutes = PlatformFixtures.threePlatforms() + """

          vertex-only: { models: [sonnet-vertex] }
          bedrock-only: { models: [sonnet-bedrock] }
        """

    @Test func vertexRefusingTheTokenOnTheLastAttemptIsAnAuthenticationError() async throws {
        // Refused on every attempt (the route's one model is tried twice, each time with a new token).
        try await PlatformFixtures.with(scripts: ["v": "error(UNAUTHENTICATED,401)*"], yaml: Self.singleModelRoutes) { harness in
            let reply = try await harness.message(model: "vertex-only")
            #expect(reply.status == 401)
            #expect(reply.json["type"] as? String == "error")
            #expect(reply.errorType == "authentication_error")
            let message = try #require(reply.errorMessage)
            #expect(message.hasPrefix("the vertex platform refused Switchyard's credentials for provider 'vertex-us' (UNAUTHENTICATED, HTTP 401)"))
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["status"] as? Int == 401)
            let attempts = try #require(line["attempts"] as? [[String: Any]])
            #expect(attempts.count == 2)
            #expect(attempts.allSatisfy { $0["error"] as? String == "auth" && $0["platform_status"] as? Int == 401 })
            #expect(harness.runtime.table.model(named: "sonnet-vertex")!.health.snapshot.breaker.consecutiveFailures == 2, "still breaker failures")
            let tokens = Set(harness.sim("v").receivedRequests.compactMap { $0.header("authorization") })
            #expect(tokens.count == 2, "each refused token was dropped and another fetched")
            #expect(!tokens.contains { message.contains($0.dropFirst("Bearer ".count)) }, "the token is never in the answer")
            harness.sim("v").setScript(try FaultScript.parse("ok*"))
            let again = try await harness.message(model: "vertex-only")
            #expect(again.status == 200)
            #expect(harness.sim("v").issuer.count("token") == 3)
        }
    }

    @Test func bedrockRefusingTheCredentialsOnTheLastAttemptIsAPermissionError() async throws {
        try await PlatformFixtures.with(scripts: ["b": "error(UnrecognizedClientException,403)*"], yaml: Self.singleModelRoutes) { harness in
            let reply = try await harness.message(model: "bedrock-only")
            #expect(reply.status == 403)
            #expect(reply.errorType == "permission_error")
            let message = try #require(reply.errorMessage)
            let expected = "the bedrock platform refused Switchyard's credentials for provider 'bedrock-us' (UnrecognizedClientException, HTTP 403)"
            #expect(message.hasPrefix(expected))
            #expect(!reply.body.contains(PlatformFixtures.awsSecret))
            #expect(reply.header("x-should-retry") == "false")
            let line = try #require(try await harness.requestLines(1).first)
            #expect(line["status"] as? Int == 403 && line["outcome"] as? String == "upstream_error")
        }
        // A refusal, then another model's failure: the request ends on that, not on the refusal.
        try await PlatformFixtures.with(scripts: ["b": "error(InvalidSignatureException,403)", "a": "400"], yaml: Self.singleModelRoutes) { harness in
            let reply = try await harness.message(model: "bedrock")
            #expect(reply.status == 400 && reply.errorType == "invalid_request_error", "the route ended on sonnet's 400")
        }
    }

    @Test func aTokenEndpointThatIsDownOnTheLastAttemptIsStillABadGateway() async throws {
        try await PlatformFixtures.with(scripts: [:], yaml: Self.singleModelRoutes) { harness in
            let keyFile = harness.runtime.environment()["GOOGLE_APPLICATION_CREDENTIALS"]!
            try PlatformFixtures.serviceAccountKey(tokenSim: "v").replacingOccurrences(of: "{{v}}", with: "http://127.0.0.1:9")
                .write(toFile: keyFile, atomically: true, encoding: .utf8)
            await harness.runtime.reload(trigger: "test")
            let reply = try await harness.message(model: "vertex-only")
            #expect(reply.status == 502, "no platform refused anything: the token could not be had")
            #expect(reply.errorType == "api_error")
        }
    }

    @Test func aTokenEndpointThatIsDownOrSlowFailsTheAttemptAsAuth() async throws {
        // Down: the key file's token_uri is a closed port.
        try await PlatformFixtures.with(scripts: [:]) { harness in
            let keyFile = harness.runtime.environment()["GOOGLE_APPLICATION_CREDENTIALS"]!
            try PlatformFixtures.serviceAccountKey(tokenSim: "v").replacingOccurrences(of: "{{v}}", with: "http://127.0.0.1:9")
                .write(toFile: keyFile, atomically: true, encoding: .utf8)
            // The provider read the key at load: reload it so the new token_uri applies.
            await harness.runtime.reload(trigger: "test")
            let reply = try await harness.message(model: "vertex")
            #expect(reply.status == 200)
            #expect(reply.header("x-switchyard-model") == "sonnet")
            let line = try #require(try await harness.requestLines(1).first)
            let attempt = try #require((line["attempts"] as? [[String: Any]])?.first)
            #expect(attempt["error"] as? String == "auth")
            #expect((attempt["detail"] as? String)?.isEmpty == false)
        }
        // Slow: the token endpoint holds the request; the attempt gives up within first_byte.
        let slow = try await TinyHTTPServer.start { _ in
            try? await Task.sleep(for: .seconds(20))
            return .init(status: 200, body: #"{"access_token":"late","expires_in":3600}"#)
        }
        defer { Task { await slow.stop() } }
        try await PlatformFixtures.with(scripts: [:]) { harness in
            let keyFile = harness.runtime.environment()["GOOGLE_APPLICATION_CREDENTIALS"]!
            try PlatformFixtures.serviceAccountKey(tokenSim: "v").replacingOccurrences(of: "{{v}}", with: slow.baseURL)
                .write(toFile: keyFile, atomically: true, encoding: .utf8)
            await harness.runtime.reload(trigger: "test")
            let started = ContinuousClock.now
            let reply = try await harness.message(model: "vertex")
            #expect(reply.header("x-switchyard-model") == "sonnet")
            #expect(ContinuousClock.now - started < .seconds(8), "bounded by first_byte (2 s), not by the endpoint")
        }
    }
}
