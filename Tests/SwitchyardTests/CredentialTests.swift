import AWSWire
import AsyncHTTPClient
import Foundation
import Testing

@testable import SwitchyardCore

/// The AWS credential chain (environment, shared files, web identity against a fake STS, the
/// container endpoint) and the refresh rules of ``CredentialCacheState``.
@Suite struct CredentialTests {
    static let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    static let sessionToken = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN+/abc=="

    /// What every source's description must not show.
    static func expectNoSecrets(_ texts: [String], secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for text in texts {
            for secret in secrets { #expect(!text.contains(secret), "\(text) shows a secret", sourceLocation: sourceLocation) }
        }
    }

    static func iso8601(ms: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    static func stsAnswer(keyID: String, expiresAtMs: Int64) -> TinyHTTPServer.Response {
        .xml(
            """
            <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
              <AssumeRoleWithWebIdentityResult>
                <SubjectFromWebIdentityToken>system:serviceaccount:llm:switchyard</SubjectFromWebIdentityToken>
                <Credentials>
                  <SessionToken>\(sessionToken)</SessionToken>
                  <SecretAccessKey>\(secret)</SecretAccessKey>
                  <Expiration>\(iso8601(ms: expiresAtMs))</Expiration>
                  <AccessKeyId>\(keyID)</AccessKeyId>
                </Credentials>
                <Audience>sts.amazonaws.com</Audience>
              </AssumeRoleWithWebIdentityResult>
              <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
            </AssumeRoleWithWebIdentityResponse>
            """
        )
    }

    // MARK: environment and shared files

    @Test func environmentKeysComeFirst() throws {
        let environment = [
            "AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT", "AWS_SECRET_ACCESS_KEY": Self.secret, "AWS_SESSION_TOKEN": Self.sessionToken,
            "HOME": "/nonexistent",
        ]
        let source = try AWSCredentialSource.resolve(environment: environment, profile: nil, region: "us-east-1").get()
        #expect(source == .environment(AWSCredentials(accessKeyID: "AKIAENVIRONMENT", secretAccessKey: Self.secret, sessionToken: Self.sessionToken)))
        #expect(source.description == "aws: environment")
        Self.expectNoSecrets([source.description, String(reflecting: source), "\(source)"], secrets: [Self.secret, Self.sessionToken])

        guard
            case .failure(let partial) = AWSCredentialSource.resolve(
                environment: ["AWS_ACCESS_KEY_ID": "AKIA", "HOME": "/nonexistent"], profile: nil, region: "us-east-1")
        else {
            Issue.record("half a key pair resolved")
            return
        }
        #expect(partial.message.contains("AWS_SECRET_ACCESS_KEY is not"))
    }

    @Test func staticSourcesAnswerAtOnce() async throws {
        let environment = ["AWS_ACCESS_KEY_ID": "AKIAENVIRONMENT", "AWS_SECRET_ACCESS_KEY": Self.secret, "HOME": "/nonexistent"]
        let source = try AWSCredentialSource.resolve(environment: environment, profile: nil, region: "us-east-1").get()
        try await withCredentialClient { client async throws in
            let provider = AWSCredentialProvider(source: source, region: "us-east-1", egress: .direct(client), now: TestUnixTime().now)
            #expect(try await provider.credentials().accessKeyID == "AKIAENVIRONMENT")
            provider.invalidate()
            #expect(try await provider.credentials().secretAccessKey == Self.secret)
            #expect(provider.sourceDescription == "aws: environment")
        }
    }

    @Test func profilesComeFromTheSharedFiles() throws {
        let folder = try TemporaryFolder()
        let credentials = try folder.write(
            "credentials",
            """
            # keys
            [default]
            aws_access_key_id = AKIADEFAULT
            aws_secret_access_key = \(Self.secret)

            [prod]
            AWS_Access_Key_ID=AKIAPROD
            aws_secret_access_key=\(Self.secret)
            aws_session_token = \(Self.sessionToken)
            """
        )
        let config = try folder.write(
            "config",
            """
            [default]
            region = us-west-2
            [profile staging]
            aws_access_key_id = AKIASTAGING
            aws_secret_access_key = \(Self.secret)
            s3 =
              aws_access_key_id = NESTED
            [profile empty]
            region = eu-west-1
            """
        )
        var environment = ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config, "HOME": "/nonexistent"]
        func resolve(_ profile: String?) -> Result<AWSCredentialSource, CredentialError> {
            AWSCredentialSource.resolve(environment: environment, profile: profile, region: "us-east-1")
        }

        #expect(
            try resolve(nil).get()
                == .profile(name: "default", file: credentials, credentials: AWSCredentials(accessKeyID: "AKIADEFAULT", secretAccessKey: Self.secret))
        )
        let prod = try resolve("prod").get()
        #expect(prod.description == "aws: profile prod (\(credentials))")
        guard case .profile(_, _, let prodKeys) = prod else {
            Issue.record("\(prod)")
            return
        }
        #expect(prodKeys.accessKeyID == "AKIAPROD" && prodKeys.sessionToken == Self.sessionToken)
        Self.expectNoSecrets([prod.description, String(reflecting: prod)], secrets: [Self.secret, Self.sessionToken])

        // An explicit aws_profile wins over the environment's keys; AWS_PROFILE does not.
        environment["AWS_ACCESS_KEY_ID"] = "AKIAENVIRONMENT"
        environment["AWS_SECRET_ACCESS_KEY"] = Self.secret
        environment["AWS_PROFILE"] = "staging"
        #expect(try resolve("prod").get().description == "aws: profile prod (\(credentials))")
        #expect(try resolve(nil).get().description == "aws: environment")
        environment["AWS_ACCESS_KEY_ID"] = nil
        environment["AWS_SECRET_ACCESS_KEY"] = nil
        let staging = try resolve(nil).get()
        #expect(staging.description == "aws: profile staging (\(config))")
        guard case .profile(_, _, let stagingKeys) = staging else {
            Issue.record("\(staging)")
            return
        }
        #expect(stagingKeys.accessKeyID == "AKIASTAGING")

        for (profile, variable) in [("nope", nil), (nil, "missing")] as [(String?, String?)] {
            environment["AWS_PROFILE"] = variable
            guard case .failure(let error) = resolve(profile) else {
                Issue.record("profile \(profile ?? variable ?? "") resolved")
                continue
            }
            #expect(error.message.contains("profile \(profile ?? variable ?? "") is not in \(credentials) and \(config)"))
        }
        environment["AWS_PROFILE"] = nil
        guard case .failure(let empty) = resolve("empty") else {
            Issue.record("a profile without keys resolved")
            return
        }
        #expect(empty.message.contains("profile empty (aws_profile) has no aws_access_key_id"))
    }

    @Test func noSourceListsWhatWasLookedFor() throws {
        let folder = try TemporaryFolder()
        let config = try folder.write("config", "[default]\nregion = us-east-1\n")
        let result = AWSCredentialSource.resolve(environment: ["HOME": folder.path, "AWS_CONFIG_FILE": config], profile: nil, region: "us-east-1")
        guard case .failure(let error) = result else {
            Issue.record("resolved \(result)")
            return
        }
        #expect(error.kind == .notConfigured)
        for looked in [
            "AWS_ACCESS_KEY_ID", "profile default", "\(folder.path)/.aws/credentials (missing)", config, "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "aws_profile",
        ] {
            #expect(error.message.contains(looked), "\(error.message) does not mention \(looked)")
        }
    }

    // MARK: web identity

    @Test func webIdentityAssumesTheRoleAndRereadsTheTokenAtRefresh() async throws {
        let folder = try TemporaryFolder()
        let tokenFile = try folder.write("token", "eyJ.first-web-identity-token.sig\n")
        let time = TestUnixTime()
        let logs = RecordingLogs()
        try await TinyHTTPServer.withServer({ _ in Self.stsAnswer(keyID: "ASIAFIRST", expiresAtMs: time.ms + 3_600_000) }) { server in
            let environment = [
                "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/switchyard",
                "AWS_ENDPOINT_URL_STS": server.baseURL, "HOME": "/nonexistent",
            ]
            let source = try AWSCredentialSource.resolve(environment: environment, profile: nil, region: "us-east-1").get()
            #expect(source.description == "aws: web identity (role arn:aws:iam::123456789012:role/switchyard, STS \(server.baseURL))")
            try await withCredentialClient { client async throws in
                let provider = AWSCredentialProvider(source: source, region: "us-east-1", egress: .direct(client), now: time.now, logger: logs.logger)
                let first = try await provider.credentials()
                #expect(
                    first
                        == AWSCredentials(
                            accessKeyID: "ASIAFIRST", secretAccessKey: Self.secret, sessionToken: Self.sessionToken, expiresAtMs: time.ms + 3_600_000)
                )
                let request = try #require(server.requests.first)
                #expect(request.method == "POST" && request.header("content-type")?.hasPrefix("application/x-www-form-urlencoded") == true)
                #expect(request.header("authorization") == nil)
                let form = request.formFields
                #expect(form["Action"] == "AssumeRoleWithWebIdentity" && form["Version"] == "2011-06-15")
                #expect(form["RoleArn"] == "arn:aws:iam::123456789012:role/switchyard")
                #expect(form["RoleSessionName"] == "switchyard-\(time.ms / 1000)")
                #expect(form["WebIdentityToken"] == "eyJ.first-web-identity-token.sig")

                // Refreshed in the last 5 minutes, with the token file as it is then.
                try "eyJ.rotated-token.sig".write(toFile: tokenFile, atomically: true, encoding: .utf8)
                server.setHandler { _ in Self.stsAnswer(keyID: "ASIASECOND", expiresAtMs: time.ms + 3_600_000) }
                time.advance(seconds: 3600 - 301)
                #expect(try await provider.credentials().accessKeyID == "ASIAFIRST")
                #expect(server.requestCount == 1)
                time.advance(seconds: 2)
                #expect(try await provider.credentials().accessKeyID == "ASIAFIRST")
                #expect(await waitUntil { (try? await provider.credentials())?.accessKeyID == "ASIASECOND" })
                #expect(server.requestCount == 2)
                #expect(server.requests.last?.formFields["WebIdentityToken"] == "eyJ.rotated-token.sig")
            }
        }
        Self.expectNoSecrets(logs.all, secrets: [Self.secret, Self.sessionToken, "first-web-identity-token", "rotated-token"])
    }

    @Test func stsErrorNamesCodeAndMessageButNotTheToken() async throws {
        let folder = try TemporaryFolder()
        let tokenFile = try folder.write("token", "eyJ.secret-web-identity-token.sig")
        let logs = RecordingLogs()
        let body = """
            <ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
              <Error>
                <Type>Sender</Type><Code>InvalidIdentityToken</Code>
                <Message>Couldn&apos;t retrieve verification key from your identity provider</Message>
              </Error>
              <RequestId>4fd6ab0e-0000-0000-0000-000000000000</RequestId>
            </ErrorResponse>
            """
        try await TinyHTTPServer.withServer({ _ in .xml(body, status: 400) }) { server in
            let identity = AWSWebIdentity(
                roleARN: "arn:aws:iam::123456789012:role/x", tokenFile: tokenFile, sessionName: "mine", stsEndpoint: server.baseURL)
            try await withCredentialClient { client async throws in
                let provider = AWSCredentialProvider(
                    source: .webIdentity(identity), region: "us-east-1", egress: .direct(client), now: TestUnixTime().now, logger: logs.logger)
                let error = try #require(await credentialError { try await provider.credentials() })
                #expect(error.kind == .rejected)
                #expect(error.source == "aws web identity (STS 127.0.0.1:\(server.port))")
                #expect(
                    error.message.hasPrefix("STS answered 400 InvalidIdentityToken: Couldn't retrieve verification key from your identity provider"))
                #expect(server.requests.first?.formFields["RoleSessionName"] == "mine")
                Self.expectNoSecrets([error.description, String(reflecting: error)] + logs.all, secrets: ["secret-web-identity-token", "<"])
            }
        }
    }

    @Test func stsEndpointIsTheServiceOverrideThenTheGlobalOneThenTheRegion() throws {
        let folder = try TemporaryFolder()
        let tokenFile = try folder.write("token", "eyJ.token.sig")
        let base = ["HOME": "/nonexistent", "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_ARN": "arn:aws:iam::1:role/x"]
        func endpoint(_ extra: [String: String]) throws -> String {
            let source = try AWSCredentialSource.resolve(environment: base.merging(extra) { $1 }, profile: nil, region: "eu-west-1").get()
            guard case .webIdentity(let identity) = source else { throw CredentialError(source: "test", message: "not web identity") }
            return identity.stsEndpoint
        }
        #expect(try endpoint([:]) == "https://sts.eu-west-1.amazonaws.com")
        #expect(try endpoint(["AWS_ENDPOINT_URL": "http://localstack:4566"]) == "http://localstack:4566", "botocore's global override")
        #expect(
            try endpoint(["AWS_ENDPOINT_URL": "http://localstack:4566", "AWS_ENDPOINT_URL_STS": "https://sts.internal.example"])
                == "https://sts.internal.example", "the service's own override wins")
        #expect(try endpoint(["AWS_ENDPOINT_URL": "  "]) == "https://sts.eu-west-1.amazonaws.com", "an empty variable is no override")
    }

    @Test func webIdentityNeedsARoleAndAnExistingTokenFile() {
        let base = ["HOME": "/nonexistent", "AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent/token"]
        guard case .failure(let noRole) = AWSCredentialSource.resolve(environment: base, profile: nil, region: "us-east-1") else {
            Issue.record("resolved")
            return
        }
        #expect(noRole.message.contains("AWS_ROLE_ARN is not"))
        var withRole = base
        withRole["AWS_ROLE_ARN"] = "arn:aws:iam::1:role/x"
        guard case .failure(let noFile) = AWSCredentialSource.resolve(environment: withRole, profile: nil, region: "us-east-1") else {
            Issue.record("resolved")
            return
        }
        #expect(noFile.message.contains("/nonexistent/token, which does not exist"))
        #expect(AWSWebIdentity.regionalEndpoint(region: "eu-central-1") == "https://sts.eu-central-1.amazonaws.com")
        #expect(AWSWebIdentity.regionalEndpoint(region: "cn-north-1") == "https://sts.cn-north-1.amazonaws.com.cn")
    }

    // MARK: container endpoint

    @Test func containerEndpointSendsTheTokenFileAndIsRefreshedNearExpiration() async throws {
        let folder = try TemporaryFolder()
        let tokenFile = try folder.write("auth", "pod-identity-token-1\n")
        let time = TestUnixTime()
        let answer: @Sendable (String) -> TinyHTTPServer.Response = { keyID in
            let expiration = Self.iso8601(ms: time.ms + 3_600_000)
            return .json(
                #"{"AccessKeyId":"\#(keyID)","SecretAccessKey":"\#(Self.secret)","Token":"\#(Self.sessionToken)","#
                    + #""Expiration":"\#(expiration)","RoleArn":"arn:aws:iam::1:role/x"}"#
            )
        }
        try await TinyHTTPServer.withServer({ _ in answer("ASIAONE") }) { server in
            let environment = [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.baseURL + "/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile,
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": "ignored-when-a-file-is-given", "HOME": "/nonexistent",
            ]
            let source = try AWSCredentialSource.resolve(environment: environment, profile: nil, region: "us-east-1").get()
            #expect(source.description == "aws: container credentials endpoint (\(server.baseURL)/v1/credentials)")
            Self.expectNoSecrets([source.description, String(reflecting: source)], secrets: ["pod-identity-token", "ignored-when"])
            try await withCredentialClient { client async throws in
                let provider = AWSCredentialProvider(source: source, region: "us-east-1", egress: .direct(client), now: time.now)
                #expect(try await provider.credentials().accessKeyID == "ASIAONE")
                let request = try #require(server.requests.first)
                #expect(request.method == "GET" && request.uri == "/v1/credentials")
                #expect(request.header("authorization") == "pod-identity-token-1")

                // Not refreshed 6 minutes before Expiration; once, and only once, 4 minutes before.
                try "pod-identity-token-2".write(toFile: tokenFile, atomically: true, encoding: .utf8)
                server.setHandler { _ in answer("ASIATWO") }
                time.advance(seconds: 3600 - 360)
                for _ in 0..<10 { #expect(try await provider.credentials().accessKeyID == "ASIAONE") }
                #expect(server.requestCount == 1)
                time.advance(seconds: 120)
                for _ in 0..<10 { _ = try await provider.credentials() }
                #expect(await waitUntil { (try? await provider.credentials())?.accessKeyID == "ASIATWO" })
                #expect(server.requestCount == 2)
                #expect(server.requests.last?.header("authorization") == "pod-identity-token-2")

                // invalidate(): the next call fetches.
                provider.invalidate()
                #expect(try await provider.credentials().accessKeyID == "ASIATWO")
                #expect(server.requestCount == 3)
            }
        }
    }

    @Test func temporaryCredentialsAreNotUsedInTheirLastMinuteEvenWhenNoNewOnesCanBeHad() async throws {
        let time = TestUnixTime()
        let answer: @Sendable () -> TinyHTTPServer.Response = {
            .json(
                #"{"AccessKeyId":"ASIAONE","SecretAccessKey":"\#(Self.secret)","Token":"\#(Self.sessionToken)","#
                    + #""Expiration":"\#(Self.iso8601(ms: time.ms + 3_600_000))"}"#
            )
        }
        let logs = RecordingLogs()
        try await TinyHTTPServer.withServer({ _ in answer() }) { server in
            let endpoint = AWSContainerCredentials(url: server.baseURL + "/v1/credentials", authorization: .none)
            try await withCredentialClient { client async throws in
                let provider = AWSCredentialProvider(
                    source: .container(endpoint), region: "us-east-1", egress: .direct(client), now: time.now, logger: logs.logger)
                #expect(try await provider.credentials().accessKeyID == "ASIAONE")
                server.setHandler { _ in .json(#"{"code":"InternalError","message":"try later"}"#, status: 500) }

                // 90 s before Expiration: in the refresh window; the refresh fails, the keys still sign.
                time.advance(seconds: 3600 - 90)
                #expect(try await provider.credentials().accessKeyID == "ASIAONE")
                #expect(await waitUntil { logs.all.contains { $0.contains("refresh failed") } })
                #expect(server.requestCount == 2)
                #expect(try await provider.credentials().accessKeyID == "ASIAONE")

                // 59 s before: still valid at AWS, but a request signed now could arrive after it.
                time.advance(seconds: 31)
                let error = try #require(await credentialError { try await provider.credentials() })
                #expect(error.message.contains("500"))
                #expect(server.requestCount == 3)
            }
        }
    }

    @Test func containerEndpointErrorsAndAllowedHosts() async throws {
        try await TinyHTTPServer.withServer({ _ in .json(#"{"code":"AccessDenied","message":"token not valid"}"#, status: 403) }) { server in
            let endpoint = AWSContainerCredentials(url: server.baseURL + "/v2/credentials/abc", authorization: .token("secret-auth-token"))
            try await withCredentialClient { client async throws in
                let provider = AWSCredentialProvider(source: .container(endpoint), region: "us-east-1", egress: .direct(client), now: TestUnixTime().now)
                let error = try #require(await credentialError { try await provider.credentials() })
                #expect(error.kind == .rejected)
                #expect(error.message.hasPrefix("the endpoint answered 403 AccessDenied: token not valid"))
                #expect(server.requests.first?.header("authorization") == "secret-auth-token")
                Self.expectNoSecrets([error.description], secrets: ["secret-auth-token"])
            }
        }
        let relative = try AWSCredentialSource.resolve(
            environment: ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/5d2f1d4e-task-id", "HOME": "/nonexistent"], profile: nil,
            region: "us-east-1"
        ).get()
        #expect(relative == .container(AWSContainerCredentials(url: "http://169.254.170.2/v2/credentials/5d2f1d4e-task-id", authorization: .none)))
        #expect(relative.description == "aws: container credentials endpoint (http://169.254.170.2/v2/credentials/…)")
        for (uri, allowed) in [
            ("http://169.254.170.23/v1/credentials", true), ("https://creds.example.com/x", true), ("http://127.0.0.1:9000/c", true),
            ("http://[::1]:9000/c", true), ("http://10.0.0.5/creds", false), ("http://creds.example.com/x", false), ("file:///etc/passwd", false),
        ] {
            #expect(AWSContainerCredentials.isAllowed(fullURI: uri) == allowed, "\(uri)")
        }
        guard
            case .failure(let refused) = AWSCredentialSource.resolve(
                environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.5/creds", "HOME": "/nonexistent"], profile: nil,
                region: "us-east-1"
            )
        else {
            Issue.record("a plain-HTTP remote endpoint resolved")
            return
        }
        #expect(refused.message.contains("must be https"))
    }

    // MARK: pure pieces

    @Test func refreshWindowAndBackoffFollowTheRules() {
        var state = CredentialCacheState<String, Int>(source: "test")
        guard case .wait(let fetch?) = state.request(now: 0, waiterID: 1, waiter: 1, cancelled: false) else {
            Issue.record("no fetch")
            return
        }
        // 1 hour: refreshed in the last 5 minutes. 20 s: in the last 5 s.
        let done = state.fetchSucceeded(id: fetch, value: "v1", expiresAtMs: 3_600_000, now: 0)
        #expect(done?.waiters == [1] && state.cached?.refreshAtMs == 3_300_000)
        #expect(state.freshValue(now: 3_299_999) == "v1" && state.freshValue(now: 3_300_000) == nil)
        guard case .resume(_, .success("v1"), let refresh?) = state.request(now: 3_300_000, waiterID: 2, waiter: 2, cancelled: false) else {
            Issue.record("no refresh")
            return
        }
        #expect(state.freshValue(now: 3_300_001) == "v1")
        _ = state.fetchSucceeded(id: refresh, value: "v2", expiresAtMs: 3_320_000, now: 3_300_000)
        #expect(state.cached?.refreshAtMs == 3_315_000)
        // Never served in its last min(60 s, lifetime / 8): 20 s → the last 2.5 s.
        #expect(state.cached?.usableUntilMs == 3_317_500)
        guard case .wait(let late?) = state.request(now: 3_317_500, waiterID: 3, waiter: 3, cancelled: false) else {
            Issue.record("a credential in its last 2.5 s was served")
            return
        }
        #expect(state.cached == nil)
        #expect(state.fetchSucceeded(id: late, value: "v3", expiresAtMs: 6_917_500, now: 3_317_500)?.waiters == [3])

        // Failures with nothing valid: 1 s, 2 s, 4 s … 30 s between attempts.
        state.invalidate()
        var now: Int64 = 4_000_000
        var backoffs: [Int64] = []
        for waiter in 10..<18 {
            guard case .wait(let id?) = state.request(now: now, waiterID: UInt64(waiter), waiter: waiter, cancelled: false) else {
                Issue.record("no fetch at \(now)")
                return
            }
            let failed = state.fetchFailed(id: id, error: CredentialError(.unreachable, source: "test", message: "down"), now: now)
            #expect(failed?.waiters == [waiter])
            guard case .resume(_, .failure(let error), nil) = state.request(now: now + 1, waiterID: 99, waiter: 99, cancelled: false) else {
                Issue.record("retried within the back-off")
                return
            }
            #expect(error.message.hasPrefix("down; not asked again for"))
            backoffs.append((state.retryNotBeforeMs ?? now) - now)
            now = state.retryNotBeforeMs ?? now
        }
        #expect(backoffs == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000])

        // A credential that arrives already expired is a failure that names the clock.
        guard case .wait(let late?) = state.request(now: now, waiterID: 50, waiter: 50, cancelled: false) else {
            Issue.record("no fetch")
            return
        }
        let expired = state.fetchSucceeded(id: late, value: "old", expiresAtMs: now - 1000, now: now)
        guard case .failure(let error)? = expired?.result else {
            Issue.record("an expired credential was accepted")
            return
        }
        #expect(error.message.contains("clock"))
        // A fetch that timed out is forgotten: its late answer changes nothing.
        #expect(state.fetchSucceeded(id: refresh, value: "stale", expiresAtMs: now + 3_600_000, now: now) == nil)
    }

    @Test func anHourCredentialIsRefreshedFiveMinutesAheadAndDroppedOneMinuteAhead() {
        var state = CredentialCacheState<String, Int>(source: "test")
        guard case .wait(let fetch?) = state.request(now: 0, waiterID: 1, waiter: 1, cancelled: false) else {
            Issue.record("no fetch")
            return
        }
        _ = state.fetchSucceeded(id: fetch, value: "v1", expiresAtMs: 3_600_000, now: 0)
        #expect(state.cached?.refreshAtMs == 3_300_000 && state.cached?.usableUntilMs == 3_540_000)
        guard case .resume(_, .success("v1"), let refresh?) = state.request(now: 3_400_000, waiterID: 2, waiter: 2, cancelled: false) else {
            Issue.record("no refresh")
            return
        }
        // The refresh fails: the value is kept, but only up to its margin.
        let failed = state.fetchFailed(id: refresh, error: CredentialError(.unreachable, source: "test", message: "down"), now: 3_400_000)
        #expect(failed?.keptValueUntilMs == 3_540_000)
        #expect(state.freshValue(now: 3_400_500) == "v1", "served during the back-off")
        guard case .resume(_, .success("v1"), .some) = state.request(now: 3_539_999, waiterID: 3, waiter: 3, cancelled: false) else {
            Issue.record("not served 60.001 s before its expiry")
            return
        }
        #expect(state.freshValue(now: 3_540_000) == nil)
        guard case .wait(nil) = state.request(now: 3_540_000, waiterID: 4, waiter: 4, cancelled: false) else {
            Issue.record("a credential 60 s before its expiry was served")
            return
        }
    }

    @Test func timestampsAndINIFilesParse() {
        #expect(CredentialTimestamp.unixMilliseconds("1970-01-01T00:00:00Z") == 0)
        #expect(CredentialTimestamp.unixMilliseconds("2026-03-01T12:30:45Z") == 1_772_368_245_000)
        #expect(CredentialTimestamp.unixMilliseconds("2026-03-01T12:30:45.250Z") == 1_772_368_245_250)
        #expect(CredentialTimestamp.unixMilliseconds("2026-03-01T14:30:45+02:00") == 1_772_368_245_000)
        #expect(CredentialTimestamp.unixMilliseconds("2024-02-29T00:00:00Z") == 1_709_164_800_000)
        for bad in ["", "2026-03-01", "2026-03-01T12:30:45", "2026-13-01T00:00:00Z", "2026-03-01T12:30:45Zjunk"] {
            #expect(CredentialTimestamp.unixMilliseconds(bad) == nil, "\(bad)")
        }
        let sections = AWSSharedConfigFiles.parse("; c\n[a]\nk = v = w\n  nested = no\n[profile   b]\n# c\nK=2\n[c]\n  indented = yes\n")
        #expect(sections["a"] == ["k": "v = w"])
        #expect(sections["profile b"] == ["k": "2"])
        #expect(sections["c"] == ["indented": "yes"])
    }
}
