import AWSWire
import Foundation
import NIOCore
import Testing

/// SigV4Signer against botocore's SigV4Auth on ~300 seeded random Bedrock-like requests, and
/// SigV4Verifier against what botocore signed: the signer and the verifier are checked by code
/// that is not ours (Tests/crosscheck/sigv4_botocore.py).
@Suite("SigV4 against botocore")
struct SigV4BotocoreTests {
    static let requests = RandomSignedRequest.generate(count: 300, seed: 0x5157_4134)

    /// botocore's answers, one per request, in order; nil (with a recorded issue) when botocore cannot run.
    static func botocoreAnswers(sourceLocation: SourceLocation = #_sourceLocation) async throws -> [BotocoreSigV4Answer]? {
        guard await CrossCheckPython.require(modules: ["botocore"], sourceLocation: sourceLocation) else { return nil }
        var input = Data()
        for request in requests {
            input.append(try JSONSerialization.data(withJSONObject: request.botocoreJSON, options: [.sortedKeys]))
            input.append(0x0A)
        }
        let output = try await CrossCheckPython.run(script: "sigv4_botocore.py", input: input)
        guard output.status == 0 else {
            Issue.record("sigv4_botocore.py exited \(output.status): \(output.stderr)", sourceLocation: sourceLocation)
            return nil
        }
        let answers = try output.stdout.split(separator: "\n").map { try JSONDecoder().decode(BotocoreSigV4Answer.self, from: Data($0.utf8)) }
        try #require(answers.map(\.id) == requests.map(\.id), "botocore answered a different set of requests", sourceLocation: sourceLocation)
        return answers
    }

    @Test func signerMatchesBotocoreOnRandomRequests() async throws {
        guard let answers = try await Self.botocoreAnswers() else { return }
        var mismatches = 0
        for (request, answer) in zip(Self.requests, answers) {
            guard answer.error == nil else {
                Issue.record("botocore failed on request \(request.id): \(answer.error!)")
                continue
            }
            let ours = request.signedByUs()
            let same =
                ours.canonicalRequest == answer.canonical_request && ours.stringToSign == answer.string_to_sign
                && ours.authorization == answer.authorization
                // botocore adds X-Amz-Date before X-Amz-Security-Token, AWS's vectors the other way round: order is no part of it.
                && ours.headersToAdd.map(SigV4HeaderLine.init).sorted { $0.name < $1.name } == answer.addedHeaders.sorted { $0.name < $1.name }
            if !same {
                mismatches += 1
                // The first few in full (the secret key is in neither form).
                if mismatches <= 3 {
                    let ourSteps = "\(ours.canonicalRequest)\n\(ours.stringToSign)\n\(ours.headersToAdd.map(SigV4HeaderLine.init))"
                    let theirSteps = "\(answer.canonical_request ?? "")\n\(answer.string_to_sign ?? "")\n\(answer.addedHeaders)"
                    Issue.record("request \(request.id) differs.\nours:\n\(ourSteps)\nbotocore:\n\(theirSteps)")
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(Self.requests.count) requests signed differently from botocore")
    }

    @Test func verifierAcceptsWhatBotocoreSignedAndRejectsAnyChange() async throws {
        guard let answers = try await Self.botocoreAnswers() else { return }
        var skew = SeededRandom(state: 7)
        for (request, answer) in zip(Self.requests, answers) where answer.error == nil {
            let verifier = request.verifier()
            let headers = request.headers + answer.addedHeaders.map { (name: $0.name, value: $0.value) }
            let now = SigV4Timestamp(unixSeconds: request.time.unixSeconds + Int64.random(in: -300...300, using: &skew))
            func check(
                path: String? = nil, query: String?? = nil, headers changed: [(name: String, value: String)]? = nil,
                body: [UInt8]? = nil, at time: SigV4Timestamp? = nil, by other: SigV4Verifier? = nil
            ) -> SigV4Verifier.Failure? {
                (other ?? verifier).verify(
                    method: request.method, path: path ?? request.path, query: query ?? request.query, headers: changed ?? headers,
                    body: ByteBuffer(bytes: body ?? request.body), now: time ?? now
                ).failure
            }
            let id = "request \(request.id)"
            #expect(check() == nil, "\(id)")
            // A header added after signing (a proxy's, say) is not covered by the signature.
            #expect(check(headers: headers + [("X-Added-Later", "1")]) == nil, "\(id)")

            let changedBody = request.body.isEmpty ? [0x7B] : request.body.dropLast() + [request.body.last! ^ 0x01]
            // UNSIGNED-PAYLOAD tells AWS not to hash the body, so a changed body still verifies.
            #expect(check(body: changedBody) == (request.declaresUnsignedPayload ? nil : .signatureMismatch), "\(id)")
            #expect(check(path: request.path + "x") == .signatureMismatch, "\(id)")
            #expect(check(query: .some((request.query.map { $0 + "&" } ?? "") + "changed=1")) == .signatureMismatch, "\(id)")
            let signedIndex = request.headers.indices.last!
            var changedHeaders = headers
            changedHeaders[signedIndex].value += "x"
            #expect(check(headers: changedHeaders) == .signatureMismatch, "\(id) changing \(headers[signedIndex].name)")

            let sixMinutesLater = SigV4Timestamp(unixSeconds: request.time.unixSeconds + 360)
            #expect(check(at: sixMinutesLater) == .expired(requestTime: request.time.amzDate, serverTime: sixMinutesLater.amzDate), "\(id)")
            let sixMinutesEarlier = SigV4Timestamp(unixSeconds: request.time.unixSeconds - 360)
            #expect(
                check(at: sixMinutesEarlier) == .notYetCurrent(requestTime: request.time.amzDate, serverTime: sixMinutesEarlier.amzDate),
                "\(id)"
            )

            let knowsNoKey = SigV4Verifier(service: RandomSignedRequest.service, region: request.region) { _ in nil }
            #expect(check(by: knowsNoKey) == .unknownAccessKey, "\(id)")
            let isToken = { (header: (name: String, value: String)) in header.name.lowercased() == "x-amz-security-token" }
            if request.credentials.sessionToken != nil {
                #expect(check(headers: headers.filter { !isToken($0) }) == .missingSessionToken, "\(id)")
                let otherToken = headers.map { isToken($0) ? (name: $0.name, value: "another" + $0.value) : $0 }
                #expect(check(headers: otherToken) == .invalidSessionToken, "\(id)")
            } else {
                #expect(check(headers: headers + [("X-Amz-Security-Token", "unexpected")]) == .invalidSessionToken, "\(id)")
            }
        }
    }

    @Test func verifierTellsWhichCredentialProblemAWSWouldReport() throws {
        let time = try #require(SigV4Timestamp(iso8601: "2015-08-30T12:36:00Z"))
        let permanent = AWSCredentials(accessKeyID: "AKIDPERMANENT", secretAccessKey: "permanent-secret")
        let temporary = AWSCredentials(
            accessKeyID: "ASIATEMPORARY", secretAccessKey: "temporary-secret", sessionToken: "the-issued-token",
            expiresAtMs: (time.unixSeconds + 60) * 1_000
        )
        let verifier = SigV4Verifier(service: "bedrock", region: "us-east-1") { key in
            [permanent, temporary].first { $0.accessKeyID == key }
        }
        let path = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke"
        let body = Array(#"{"max_tokens":1}"#.utf8)
        let host = [(name: "host", value: "bedrock-runtime.us-east-1.amazonaws.com")]
        func signed(with credentials: AWSCredentials, region: String = "us-east-1") -> [(name: String, value: String)] {
            let signer = SigV4Signer(credentials: credentials, service: "bedrock", region: region)
            let payload = body.withUnsafeBytes { SigV4Signer.sha256Hex($0) }
            return host + signer.sign(method: "POST", path: path, query: nil, headers: host, payloadSHA256: payload, at: time).headersToAdd
        }
        func verify(_ headers: [(name: String, value: String)], at now: SigV4Timestamp? = nil) -> SigV4Verifier.Failure? {
            verifier.verify(method: "POST", path: path, query: nil, headers: headers, body: ByteBuffer(bytes: body), now: now ?? time).failure
        }
        #expect(verify(signed(with: permanent)) == nil)
        let fromPointer = body.withUnsafeBytes { bytes in
            verifier.verify(method: "POST", path: path, query: nil, headers: signed(with: permanent), body: bytes, now: time)
        }
        #expect(try fromPointer.get() == "AKIDPERMANENT")
        #expect(verify(signed(with: temporary)) == nil)
        #expect(verify(signed(with: AWSCredentials(accessKeyID: "AKIDUNKNOWN", secretAccessKey: "x"))) == .unknownAccessKey)
        #expect(verify(signed(with: AWSCredentials(accessKeyID: "AKIDPERMANENT", secretAccessKey: "wrong"))) == .signatureMismatch)

        var withoutToken = temporary
        withoutToken.sessionToken = nil
        #expect(verify(signed(with: withoutToken)) == .missingSessionToken)
        var otherToken = temporary
        otherToken.sessionToken = "another-token"
        #expect(verify(signed(with: otherToken)) == .invalidSessionToken)
        var permanentWithToken = permanent
        permanentWithToken.sessionToken = "a-token"
        #expect(verify(signed(with: permanentWithToken)) == .invalidSessionToken)
        // Signed a minute before the token ran out, received a minute after: fresh signature, dead token.
        #expect(verify(signed(with: temporary), at: SigV4Timestamp(unixSeconds: time.unixSeconds + 120)) == .expiredToken)

        #expect(verify(host) == .missingAuthentication)
        #expect(
            verify(signed(with: permanent, region: "us-west-2"))
                == .credentialScope("Credential should be scoped to a valid region, not 'us-west-2'."))
        let bearer = verify(host + [("X-Amz-Date", time.amzDate), ("Authorization", "Bearer sk-secret-value")])
        #expect(bearer?.awsErrorType == "IncompleteSignatureException")
        #expect(bearer.map { !$0.description.contains("sk-secret-value") } == true)
        let noDate = signed(with: permanent).filter { $0.name != "X-Amz-Date" }
        #expect(
            verify(noDate)
                == .malformedAuthorization(
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."))
    }

    @Test func failuresSpeakAWSsLanguage() {
        let expired = SigV4Verifier.Failure.expired(requestTime: "20150830T123600Z", serverTime: "20150830T124700Z")
        #expect(expired.message == "Signature expired: 20150830T123600Z is now earlier than 20150830T124200Z (20150830T124700Z - 5 min.)")
        #expect(expired.awsErrorType == "InvalidSignatureException")
        let early = SigV4Verifier.Failure.notYetCurrent(requestTime: "20150830T123600Z", serverTime: "20150830T122500Z")
        #expect(early.message == "Signature not yet current: 20150830T123600Z is still later than 20150830T123000Z (20150830T122500Z + 5 min.)")
        #expect(SigV4Verifier.Failure.unknownAccessKey.message == "The security token included in the request is invalid.")
        #expect(SigV4Verifier.Failure.unknownAccessKey.awsErrorType == "UnrecognizedClientException")
        #expect(SigV4Verifier.Failure.missingAuthentication.message == "Missing Authentication Token")
        #expect(SigV4Verifier.Failure.signatureMismatch.message.hasPrefix("The request signature we calculated does not match"))
        #expect(SigV4Verifier.Failure.expiredToken.awsErrorType == "ExpiredTokenException")
        #expect(SigV4Verifier.Failure.signatureMismatch.httpStatus == 403)
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let failure) = self { failure } else { nil }
    }
}

/// What sigv4_botocore.py answers for one request.
struct BotocoreSigV4Answer: Decodable {
    var id: Int
    var canonical_request: String?
    var string_to_sign: String?
    var authorization: String?
    var added: [[String]]?
    var error: String?

    var addedHeaders: [SigV4HeaderLine] { (added ?? []).map { SigV4HeaderLine($0[0], $0.count > 1 ? $0[1] : "") } }
}

/// One request as a Bedrock client could send it (wire path and query, headers with odd spacing
/// and repeats, any body), with the credentials and the time to sign it with.
struct RandomSignedRequest {
    static let service = "bedrock"

    var id: Int
    var method: String
    var host: String
    var path: String
    var query: String?
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    var credentials: AWSCredentials
    var region: String
    var time: SigV4Timestamp

    /// What botocore takes as the payload hash: a declared x-amz-content-sha256, else the body's.
    var payloadSHA256: String {
        headers.last { $0.name.lowercased() == "x-amz-content-sha256" }?.value ?? body.withUnsafeBytes { SigV4Signer.sha256Hex($0) }
    }

    var declaresUnsignedPayload: Bool { payloadSHA256 == "UNSIGNED-PAYLOAD" }

    func signedByUs() -> SigV4Signer.Signature {
        SigV4Signer(credentials: credentials, service: Self.service, region: region)
            .sign(method: method, path: path, query: query, headers: headers, payloadSHA256: payloadSHA256, at: time)
    }

    /// A verifier that knows this request's credentials and no others.
    func verifier() -> SigV4Verifier {
        let credentials = credentials
        return SigV4Verifier(service: Self.service, region: region) { $0 == credentials.accessKeyID ? credentials : nil }
    }

    var botocoreJSON: [String: Any] {
        [
            "id": id, "method": method, "url": "https://\(host)\(path)" + (query.map { "?" + $0 } ?? ""),
            "headers": headers.map { [$0.name, $0.value] }, "body_hex": body.map { String(format: "%02x", $0) }.joined(),
            "access_key": credentials.accessKeyID, "secret_key": credentials.secretAccessKey,
            "token": credentials.sessionToken ?? NSNull(), "region": region, "service": Self.service, "amz_date": time.amzDate,
        ]
    }

    static func generate(count: Int, seed: UInt64) -> [RandomSignedRequest] {
        var random = SeededRandom(state: seed)
        return (0..<count).map { id in RandomSignedRequest(id: id, using: &random) }
    }

    private init(id: Int, using random: inout SeededRandom) {
        self.id = id
        region = ["us-east-1", "us-west-2", "eu-central-1", "ap-northeast-1", "us-gov-west-1"].randomElement(using: &random)!
        host = "bedrock-runtime.\(region).amazonaws.com"
        method = Bool.random(using: &random) ? "POST" : "GET"
        time = SigV4Timestamp(unixSeconds: Int64.random(in: 1_420_070_400...2_051_222_400, using: &random))
        let keyAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        let secretAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        let temporary = Int.random(in: 0..<3, using: &random) == 0
        credentials = AWSCredentials(
            accessKeyID: (temporary ? "ASIA" : "AKIA") + Self.string(16, from: keyAlphabet, using: &random),
            secretAccessKey: Self.string(40, from: secretAlphabet, using: &random),
            sessionToken: temporary ? Self.string(Int.random(in: 100...400, using: &random), from: secretAlphabet, using: &random) + "==" : nil
        )
        path = Int.random(in: 0..<10, using: &random) < 7 ? Self.bedrockPath(region: region, using: &random) : Self.oddPath(using: &random)
        query = Self.query(using: &random)
        body = Self.body(using: &random)
        headers = Self.headers(host: host, body: body, using: &random)
    }

    private static func string(_ count: Int, from alphabet: [Character], using random: inout SeededRandom) -> String {
        String((0..<count).map { _ in alphabet.randomElement(using: &random)! })
    }

    /// Every byte but unreserved ones as upper-case %XX: how SDKs put names and values on the wire.
    private static func encoded(_ text: String, keeping kept: Set<UInt8> = [], lowerHex: Bool = false) -> String {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
        return text.utf8.map { byte in
            unreserved.contains(byte) || kept.contains(byte) ? String(UnicodeScalar(byte)) : String(format: lowerHex ? "%%%02x" : "%%%02X", byte)
        }.joined()
    }

    private static func bedrockPath(region: String, using random: inout SeededRandom) -> String {
        let model = [
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0",
            "global.anthropic.claude-opus-4-1-20250805-v1:0", "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
        ].randomElement(using: &random)!
        let arn =
            "arn:aws:bedrock:\(region):123456789012:"
            + (Bool.random(using: &random) ? "inference-profile/\(model)" : "application-inference-profile/a1b2c3d4e5f6")
        let segment =
            switch Int.random(in: 0..<6, using: &random) {
            case 0: model  // ":" raw, as the brief's wire form
            case 1: encoded(model)
            case 2: encoded(arn)
            case 3: encoded(arn, keeping: [UInt8(ascii: ":")])
            case 4: encoded(arn, lowerHex: true)
            default: encoded(model, lowerHex: true)
            }
        let operation = ["invoke", "invoke-with-response-stream", "converse", "converse-stream", "count-tokens"].randomElement(using: &random)!
        return "/model/\(segment)/\(operation)"
    }

    /// Dot segments, doubled slashes, sub-delimiters, %XX and raw UTF-8: what normalization and encoding must agree on.
    private static func oddPath(using random: inout SeededRandom) -> String {
        let characters = Array("abcXYZ019-._~!$&'()*+,;=:@é✓")
        let segments = (0..<Int.random(in: 1...5, using: &random)).map { _ -> String in
            switch Int.random(in: 0..<8, using: &random) {
            case 0: "."
            case 1: ".."
            case 2: ""
            case 3: "%" + String(format: "%02X", Int.random(in: 0...255, using: &random))
            case 4: "%2f"
            default: string(Int.random(in: 1...8, using: &random), from: characters, using: &random)
            }
        }
        return "/" + segments.joined(separator: "/") + (Bool.random(using: &random) ? "/" : "")
    }

    private static func query(using random: inout SeededRandom) -> String? {
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<4: return nil
        case 4: return ""
        default: break
        }
        let characters = Array("aZ09-._~ &=+/:%?#éж✓*'!()")
        var pairs: [String] = []
        for _ in 0..<Int.random(in: 1...6, using: &random) {
            if let previous = pairs.last, Int.random(in: 0..<4, using: &random) == 0 {
                pairs.append(previous)  // the same pair again
                continue
            }
            let key = ["a", "B", "maxTokens", "x-amz-meta", "ключ", "k y"].randomElement(using: &random)!
            switch Int.random(in: 0..<6, using: &random) {
            case 0: pairs.append(encoded(key))
            case 1: pairs.append(encoded(key) + "=")
            default: pairs.append(encoded(key) + "=" + encoded(string(Int.random(in: 1...10, using: &random), from: characters, using: &random)))
            }
        }
        return pairs.joined(separator: "&")
    }

    private static func body(using random: inout SeededRandom) -> [UInt8] {
        switch Int.random(in: 0..<3, using: &random) {
        case 0: return []
        case 1:
            let text = string(Int.random(in: 0...60, using: &random), from: Array("hello wörld ✓ \"\\\n\t"), using: &random)
            let json = try! JSONSerialization.data(withJSONObject: [
                "anthropic_version": "bedrock-2023-05-31", "max_tokens": Int.random(in: 1...4096, using: &random),
                "messages": [["role": "user", "content": text]],
            ])
            return Array(json)
        default: return (0..<Int.random(in: 1...2048, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
    }

    private static func headers(host: String, body: [UInt8], using random: inout SeededRandom) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [(Bool.random(using: &random) ? "Host" : "host", host)]
        if Bool.random(using: &random) { headers.append(("Content-Type", "application/json")) }
        if Bool.random(using: &random) {
            headers.append(("Accept", ["application/json", "application/vnd.amazon.eventstream"].randomElement(using: &random)!))
        }
        if Int.random(in: 0..<4, using: &random) == 0 { headers.append(("Content-Length", String(body.count))) }
        switch Int.random(in: 0..<12, using: &random) {
        case 0: headers.append(("X-Amz-Content-Sha256", body.withUnsafeBytes { SigV4Signer.sha256Hex($0) }))
        case 1: headers.append(("x-amz-content-sha256", "UNSIGNED-PAYLOAD"))
        default: break
        }
        let names = ["X-Custom", "x-custom", "X-Amzn-Bedrock-Trace", "X-Amzn-Bedrock-GuardrailIdentifier", "anthropic-beta", "X-Multi", "x-MULTI"]
        let characters = Array("abcXYZ 019,;:\"'=/()-_\t  ")
        for _ in 0..<Int.random(in: 0...5, using: &random) {
            let name = Bool.random(using: &random) ? names.randomElement(using: &random)! : "x-r\(Int.random(in: 0...9, using: &random))"
            let value =
                switch Int.random(in: 0..<8, using: &random) {
                case 0: ""
                case 1: "  \t "
                case 2: "  value  with   runs\tand\t\ttabs  "
                case 3: "utf-8 ✓ é"
                default: string(Int.random(in: 1...24, using: &random), from: characters, using: &random)
                }
            headers.append((name, value))
        }
        return headers
    }
}
