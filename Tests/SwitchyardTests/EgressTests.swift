import Foundation
import Testing

@testable import SwitchyardCore

/// How upstream traffic leaves the machine: trust roots of a company CA (`tls.ca_file`,
/// `SSL_CERT_FILE`, `SSL_CERT_DIR`), a verified name other than the URL's (`tls.server_name`),
/// and an HTTP proxy (`HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, or the provider's `proxy`), for
/// upstreams and credential endpoints alike. All through the router, on loopback.
@Suite("Egress: trust and proxies", .serialized)
struct EgressTests {
    static func config(upstream: String, provider: String = "") -> String {
        """
        version: 1
        server: { listen: 127.0.0.1:0 }
        providers:
          p0: { type: anthropic, base_url: "\(upstream)", api_key_env: SIM_KEY, timeouts: { connect: 2s, first_byte: 5s, idle: 5s }\(provider) }
        models:
          m0: { provider: p0, model: claude-egress }
        defaults:
          retry: { max_attempts: 1, per_model: 1 }
        routes:
          only: { models: [m0] }
        """
    }

    static let environment = ["SIM_KEY": "sk-ant-sim-test-key-0123456789"]

    static func answering() -> RawUpstream.Behaviour {
        { request in [.write(RawUpstream.lengthAnswer(request.marker))] }
    }

    /// One request through a router with `yaml` and `environment`: the reply and its audit line.
    static func call(yaml: String, environment: [String: String] = Self.environment) async throws -> (RouterHarness.Reply, [String: Any]) {
        var result: (RouterHarness.Reply, [String: Any])?
        try await RouterHarness.with(sims: [:], yaml: yaml, environment: environment, manualClock: false) { harness in
            let reply = try await harness.send(body: RouterHarness.messages(model: "only", text: "egress"))
            result = (reply, try #require(try await harness.requestLines(1).first))
        }
        return try #require(result)
    }

    static func firstAttemptError(_ line: [String: Any]) -> String? {
        ((line["attempts"] as? [[String: Any]])?.first)?["error"] as? String
    }

    // MARK: Trust

    @Test func aCompanyCAIsTrustedWithCAFileAndRefusedWithout() async throws {
        let upstream = try await RawUpstream.start(tls: TestPKI.ip, Self.answering())
        let caFile = try TestPKI.caFile()
        let (trusted, _) = try await Self.call(yaml: Self.config(upstream: upstream.baseURL, provider: ", tls: { ca_file: \(caFile) }"))
        #expect(trusted.status == 200)
        #expect(trusted.json["id"] as? String == "msg_egress")
        let (refused, line) = try await Self.call(yaml: Self.config(upstream: upstream.baseURL))
        #expect(refused.status == 502)
        #expect(Self.firstAttemptError(line) == "tls")
        await upstream.stop()
    }

    @Test func serverNameIsTheNameSentAndVerified() async throws {
        // The certificate names only upstream.test; the URL has the address.
        let upstream = try await RawUpstream.start(tls: TestPKI.name, Self.answering())
        let caFile = try TestPKI.caFile()
        let (named, _) = try await Self.call(
            yaml: Self.config(upstream: upstream.baseURL, provider: ", tls: { ca_file: \(caFile), server_name: upstream.test }")
        )
        #expect(named.status == 200)
        let (unnamed, line) = try await Self.call(yaml: Self.config(upstream: upstream.baseURL, provider: ", tls: { ca_file: \(caFile) }"))
        #expect(unnamed.status == 502)
        #expect(Self.firstAttemptError(line) == "tls")
        await upstream.stop()
    }

    @Test func sslCertFileAndSSLCertDirAreHonouredAsOpenSSLDoes() async throws {
        let upstream = try await RawUpstream.start(tls: TestPKI.ip, Self.answering())
        let caFile = try TestPKI.caFile()
        let (byFile, _) = try await Self.call(
            yaml: Self.config(upstream: upstream.baseURL), environment: Self.environment.merging(["SSL_CERT_FILE": caFile]) { $1 }
        )
        #expect(byFile.status == 200)
        let directory = TestScratch.path("certs")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try TestPKI.caPEM.write(toFile: directory + "/0a1b2c3d.0", atomically: true, encoding: .utf8)
        let (byDirectory, _) = try await Self.call(
            yaml: Self.config(upstream: upstream.baseURL), environment: Self.environment.merging(["SSL_CERT_DIR": directory]) { $1 }
        )
        #expect(byDirectory.status == 200)
        await upstream.stop()
    }

    @Test func anUnreadableCAFileIsAConfigurationErrorWithItsPosition() throws {
        let yaml = Self.config(upstream: "https://api.example.com", provider: ", tls: { ca_file: /nonexistent/ca.pem }")
        let path = TestScratch.path("routes.yaml")
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            _ = try ConfigLoader(environment: Self.environment, mode: .serve).load(path: path)
        } throws: { error in
            "\(error)".contains("providers.p0.tls.ca_file: cannot read '/nonexistent/ca.pem'") && "\(error)".contains("routes.yaml:")
        }
    }

    // MARK: Proxies

    @Test func httpsUpstreamsGoThroughTheEnvironmentsProxyAsACONNECTTunnel() async throws {
        let upstream = try await RawUpstream.start(tls: TestPKI.ip, Self.answering())
        let proxy = try await TestProxy.start()
        let caFile = try TestPKI.caFile()
        let (reply, _) = try await Self.call(
            yaml: Self.config(upstream: upstream.baseURL, provider: ", tls: { ca_file: \(caFile) }"),
            environment: Self.environment.merging(["HTTPS_PROXY": proxy.url]) { $1 }
        )
        #expect(reply.status == 200)
        #expect(proxy.requestLines == ["CONNECT 127.0.0.1:\(upstream.port) HTTP/1.1"])
        #expect(upstream.requests.count == 1)
        await proxy.stop()
        await upstream.stop()
    }

    @Test func noProxyNamesHostsReachedDirectly() async throws {
        let upstream = try await RawUpstream.start(tls: TestPKI.ip, Self.answering())
        let proxy = try await TestProxy.start()
        let caFile = try TestPKI.caFile()
        for noProxy in ["127.0.0.1", "localhost,127.0.0.0/8", "*", "127.0.0.1:\(upstream.port)"] {
            let (reply, _) = try await Self.call(
                yaml: Self.config(upstream: upstream.baseURL, provider: ", tls: { ca_file: \(caFile) }"),
                environment: Self.environment.merging(["https_proxy": proxy.url, "NO_PROXY": noProxy]) { $1 }
            )
            #expect(reply.status == 200, "\(noProxy)")
        }
        #expect(proxy.requestLines.isEmpty)
        await proxy.stop()
        await upstream.stop()
    }

    @Test func httpUpstreamsAreForwardedByTheProxyInAbsoluteForm() async throws {
        let upstream = try await RawUpstream.start(Self.answering())
        let proxy = try await TestProxy.start()
        let (reply, _) = try await Self.call(
            yaml: Self.config(upstream: upstream.baseURL), environment: Self.environment.merging(["HTTP_PROXY": proxy.url]) { $1 }
        )
        #expect(reply.status == 200)
        #expect(proxy.requestLines == ["POST http://127.0.0.1:\(upstream.port)/v1/messages HTTP/1.1"])
        #expect(upstream.requests.first?.header("host") == "127.0.0.1:\(upstream.port)")
        await proxy.stop()
        await upstream.stop()
    }

    @Test func aProvidersOwnProxyWithCredentialsFromTheEnvironment() async throws {
        let upstream = try await RawUpstream.start(tls: TestPKI.ip, Self.answering())
        let proxy = try await TestProxy.start(credentials: "egress-user:proxy-pass-1234")
        let caFile = try TestPKI.caFile()
        let yaml = Self.config(upstream: upstream.baseURL, provider: ", tls: { ca_file: \(caFile) }, proxy: \"\(proxy.url)\", proxy_auth_env: PROXY_AUTH")
        let (reply, line) = try await Self.call(yaml: yaml, environment: Self.environment.merging(["PROXY_AUTH": "egress-user:proxy-pass-1234"]) { $1 })
        #expect(reply.status == 200)
        #expect(proxy.proxyAuthorizations.last == "Basic " + Data("egress-user:proxy-pass-1234".utf8).base64EncodedString())
        // The proxy's password is never written anywhere.
        #expect(!"\(line)".contains("proxy-pass-1234"))
        let (refused, refusedLine) = try await Self.call(yaml: yaml, environment: Self.environment.merging(["PROXY_AUTH": "egress-user:wrong"]) { $1 })
        #expect(refused.status == 502)
        #expect(Self.firstAttemptError(refusedLine) == "connect")
        #expect((((refusedLine["attempts"] as? [[String: Any]])?.first)?["detail"] as? String)?.contains("407") == true)
        await proxy.stop()
        await upstream.stop()
    }

    @Test func credentialEndpointsFollowTheSameProxyRules() async throws {
        let proxy = try await TestProxy.start()
        try await PlatformFixtures.with(scripts: [:], environment: ["HTTP_PROXY": proxy.url]) { harness in
            let reply = try await harness.send(body: RouterHarness.messages(model: "vertex"))
            #expect(reply.status == 200)
            // The token request goes through a tunnel (AsyncHTTPClient tunnels every proxied
            // request); the model call, to an http URL, is forwarded.
            let port = harness.sim("v").port ?? 0
            #expect(proxy.requestLines.contains("CONNECT 127.0.0.1:\(port) HTTP/1.1"), "\(proxy.requestLines)")
            #expect(proxy.requestLines.contains { $0.hasPrefix("POST http://127.0.0.1:\(port)/v1/projects/sim-project/") })
        }
        await proxy.stop()
    }

    @Test func checkShowsEachProvidersEgressWithoutSecrets() throws {
        let yaml = Self.config(upstream: "https://api.example.com", provider: ", proxy: \"http://proxy.internal:3128\", proxy_auth_env: PROXY_AUTH")
        let path = TestScratch.path("routes.yaml")
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try ConfigLoader(environment: Self.environment.merging(["PROXY_AUTH": "u:secret-proxy-pass"]) { $1 }, mode: .serve).load(path: path)
        let table = RoutingTableDescription.render(loaded.config)
        #expect(table.contains("max_connections 1024, queue_timeout 5s"))
        #expect(table.contains("egress: proxy http://proxy.internal:3128 (providers.p0.proxy, with Proxy-Authorization), trust: system roots"))
        #expect(!table.contains("secret-proxy-pass"))
    }

    @Test func proxyURLsAndNoProxyListsParseAsCurlReadsThem() throws {
        #expect(try HTTP1Proxy.parse("http://proxy:3128").get() == HTTP1Proxy(host: "proxy", port: 3128))
        #expect(try HTTP1Proxy.parse("proxy.corp").get() == HTTP1Proxy(host: "proxy.corp", port: 80))
        #expect(try HTTP1Proxy.parse("http://u%40x:p%3Aw@[::1]:8080/").get() == HTTP1Proxy(host: "::1", port: 8080, authorization: "Basic dUB4OnA6dw=="))
        for bad in ["https://proxy:443", "socks5://proxy:1080", "http://proxy:0", "http://:80", "http://proxy/path"] {
            #expect((try? HTTP1Proxy.parse(bad).get()) == nil, "\(bad)")
        }
        let list = NoProxyList(" .example.com, localhost:8080 ,10.0.0.0/8, ::1 ")
        #expect(list.matches(host: "api.example.com", port: 443))
        #expect(list.matches(host: "example.com", port: 443))
        #expect(!list.matches(host: "notexample.com", port: 443))
        #expect(list.matches(host: "localhost", port: 8080))
        #expect(!list.matches(host: "localhost", port: 9090))
        #expect(list.matches(host: "10.1.2.3", port: 80))
        #expect(!list.matches(host: "11.1.2.3", port: 80))
        #expect(list.matches(host: "[::1]", port: 80))
        let environment = ProxyEnvironment(["HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "ALL_PROXY": "http://all:3"])
        #expect(environment.proxy(tls: true, host: "api.anthropic.com", port: 443)?.variable == "https_proxy")
        #expect(environment.proxy(tls: false, host: "api.anthropic.com", port: 80)?.variable == "ALL_PROXY")
    }
}
