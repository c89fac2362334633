import AWSWire
import Foundation
import NIOCore
import Testing

/// AWS's own SigV4 test suite (aws-c-auth's v4 vectors, 38 cases), read in place from
/// `../shared/testdata/aws-sigv4`: every intermediate step of both the header and the query
/// (presigned) variant must match, not only the final signature.
@Suite("SigV4 against AWS's test vectors")
struct SigV4Tests {
    static let caseNames = [
        "get-header-key-duplicate", "get-header-value-multiline", "get-header-value-order", "get-header-value-trim",
        "get-relative-normalized", "get-relative-relative-normalized", "get-relative-relative-unnormalized",
        "get-relative-unnormalized", "get-slash-dot-slash-normalized", "get-slash-dot-slash-unnormalized", "get-slash-normalized",
        "get-slash-pointless-dot-normalized", "get-slash-pointless-dot-unnormalized", "get-slash-unnormalized",
        "get-slashes-normalized", "get-slashes-unnormalized", "get-space-normalized", "get-space-unnormalized", "get-unreserved",
        "get-utf8", "get-vanilla", "get-vanilla-empty-query-key", "get-vanilla-query", "get-vanilla-query-order-encoded",
        "get-vanilla-query-order-key-case", "get-vanilla-query-unreserved", "get-vanilla-utf8-query", "get-vanilla-with-session-token",
        "post-header-key-case", "post-header-key-sort", "post-header-value-case", "post-sts-header-after", "post-sts-header-before",
        "post-vanilla", "post-vanilla-empty-query-value", "post-vanilla-query", "post-x-www-form-urlencoded",
        "post-x-www-form-urlencoded-parameters",
    ]

    /// `<package root>/../shared/testdata/aws-sigv4`; SWITCHYARD_SIGV4_VECTORS overrides it.
    static let vectorsDirectory: URL = {
        if let given = ProcessInfo.processInfo.environment["SWITCHYARD_SIGV4_VECTORS"], !given.isEmpty {
            return URL(fileURLWithPath: given)
        }
        return CrossCheckPython.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/testdata/aws-sigv4")
    }()

    static var vectorsPresent: Bool {
        FileManager.default.fileExists(atPath: vectorsDirectory.appendingPathComponent("get-vanilla/context.json").path)
    }

    @Test("the vectors are where the tests read them, or the output says they are not")
    func vectorsArePresentOrReported() throws {
        guard Self.vectorsPresent else {
            print(
                "SigV4Tests: AWS SigV4 vectors not found at \(Self.vectorsDirectory.path): the 38 vector cases are skipped "
                    + "(the botocore cross-check in SigV4BotocoreTests still runs)."
            )
            return
        }
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: Self.vectorsDirectory.path).filter {
            FileManager.default.fileExists(atPath: Self.vectorsDirectory.appendingPathComponent("\($0)/context.json").path)
        }
        #expect(onDisk.sorted() == Self.caseNames.sorted())
    }

    @Test(
        "each vector's header and query signing match step by step", .enabled(if: vectorsPresent, "AWS SigV4 vectors not found"),
        arguments: caseNames
    )
    func vector(_ name: String) throws {
        let vector = try Vector(directory: Self.vectorsDirectory.appendingPathComponent(name))
        let context = vector.context
        let time = try #require(SigV4Timestamp(iso8601: context.timestamp))
        let signer = SigV4Signer(credentials: context.credentials.aws, service: context.service, region: context.region)
        let request = vector.request
        let payload = request.body.withUnsafeBytes { SigV4Signer.sha256Hex($0) }
        // sign_body asks for x-amz-content-sha256 among the signed headers; the payload hash is the body's either way.
        let headers = request.headers + (context.sign_body ? [(name: "x-amz-content-sha256", value: payload)] : [])

        let signature = signer.sign(
            method: request.method, path: request.path, query: request.query, headers: headers, payloadSHA256: payload, at: time,
            normalizePath: context.normalize, signSessionToken: !(context.omit_session_token ?? false)
        )
        #expect(signature.canonicalRequest == vector.text("header-canonical-request.txt"))
        #expect(signature.stringToSign == vector.text("header-string-to-sign.txt"))
        #expect(signature.signature == vector.text("header-signature.txt"))
        let signedRequest = try HTTPRequestText(vector.text("header-signed-request.txt"))
        #expect(signedRequest.requestLine == request.requestLine)
        let added = signedRequest.headers.removingFirstOccurrences(of: request.headers)
        #expect(added.filter { $0.name != "x-amz-content-sha256" }.map(SigV4HeaderLine.init) == signature.headersToAdd.map(SigV4HeaderLine.init))
        #expect(added.first { $0.name == "x-amz-content-sha256" }?.value == (context.sign_body ? payload : nil))
        #expect(added.first { $0.name == "Authorization" }?.value == signature.authorization)

        let presigned = signer.presign(
            method: request.method, path: request.path, query: request.query, headers: request.headers, payloadSHA256: payload,
            at: time, expires: context.expiration_in_seconds, normalizePath: context.normalize,
            signSessionToken: !(context.omit_session_token ?? false)
        )
        #expect(presigned.canonicalRequest == vector.text("query-canonical-request.txt"))
        #expect(presigned.stringToSign == vector.text("query-string-to-sign.txt"))
        #expect(presigned.signature == vector.text("query-signature.txt"))
        let presignedRequest = try HTTPRequestText(vector.text("query-signed-request.txt"))
        #expect(presignedRequest.path == request.path)
        #expect(presignedRequest.query == presigned.query)
        #expect(presignedRequest.headers.map(SigV4HeaderLine.init) == request.headers.map(SigV4HeaderLine.init))
    }

    @Test(
        "the verifier accepts each vector's signed request (normalized paths)", .enabled(if: vectorsPresent, "AWS SigV4 vectors not found"),
        arguments: caseNames
    )
    func verifierAcceptsVector(_ name: String) throws {
        let vector = try Vector(directory: Self.vectorsDirectory.appendingPathComponent(name))
        // The verifier normalizes as every AWS service but S3 does; the unnormalized cases sign other paths on purpose.
        guard vector.context.normalize else { return }
        let signed = try HTTPRequestText(vector.text("header-signed-request.txt"))
        let credentials = vector.context.credentials.aws
        let verifier = SigV4Verifier(service: vector.context.service, region: vector.context.region) { key in
            key == credentials.accessKeyID ? credentials : nil
        }
        let now = try #require(SigV4Timestamp(iso8601: vector.context.timestamp))
        let key = try verifier.verify(
            method: signed.method, path: signed.path, query: signed.query, headers: signed.headers, body: ByteBuffer(bytes: signed.body),
            now: now
        ).get()
        #expect(key == credentials.accessKeyID)
    }

    @Test func timestampsReadAndWriteBothForms() throws {
        let time = try #require(SigV4Timestamp(iso8601: "2015-08-30T12:36:00Z"))
        #expect(time.unixSeconds == 1_440_938_160)
        #expect(time.amzDate == "20150830T123600Z")
        #expect(time.dateStamp == "20150830")
        #expect(SigV4Timestamp(amzDate: "20150830T123600Z") == time)
        #expect(SigV4Timestamp(unixSeconds: 0).amzDate == "19700101T000000Z")
        #expect(SigV4Timestamp(amzDate: "20240229T235959Z")?.unixSeconds == 1_709_251_199)
        #expect(SigV4Timestamp(unixSeconds: 4_102_444_800).amzDate == "21000101T000000Z")
        for bad in ["20150230T000000Z", "20230229T000000Z", "20151301T000000Z", "20150830T240000Z", "20150830T123600", "2015083OT123600Z"] {
            #expect(SigV4Timestamp(amzDate: bad) == nil, "\(bad)")
        }
        for bad in ["2015-08-30 12:36:00Z", "2015-08-30T12:36:00+00:00", "2015-08-30T12:36:00.000Z", "2015-08-30T12:60:00Z"] {
            #expect(SigV4Timestamp(iso8601: bad) == nil, "\(bad)")
        }
    }

    @Test func bedrockPathsAreEncodedOnceMoreLikeBotocore() {
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s"), service: "bedrock", region: "us-east-1")
        func canonicalPath(_ path: String, normalize: Bool = true) -> Substring {
            signer.sign(
                method: "POST", path: path, query: nil, headers: [("host", "h")], payloadSHA256: "", at: .init(unixSeconds: 0),
                normalizePath: normalize
            ).canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[1]
        }
        #expect(canonicalPath("/model/us.anthropic.claude-v1:0/invoke") == "/model/us.anthropic.claude-v1%3A0/invoke")
        #expect(
            canonicalPath("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse")
                == "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A1%253Ainference-profile%252Fx/converse")
        #expect(canonicalPath("/a/b/..") == "/a")  // botocore's remove_dot_segments keeps no trailing slash here
        #expect(canonicalPath("/a/./b//c/") == "/a/b/c/")
        #expect(canonicalPath("") == "/")
        #expect(canonicalPath("/a/./b//c/", normalize: false) == "/a/./b//c/")
    }

    @Test func queriesAreDecodedThenEncodedCanonically() {
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s"), service: "bedrock", region: "us-east-1")
        func canonicalQuery(_ query: String) -> Substring {
            signer.sign(method: "GET", path: "/", query: query, headers: [("host", "h")], payloadSHA256: "", at: .init(unixSeconds: 0))
                .canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2]
        }
        #expect(canonicalQuery("b=%e1%88%b4&a=x y") == "a=x%20y&b=%E1%88%B4")
        #expect(canonicalQuery("k=1+2&flag&&k=%41") == "flag=&k=1%2B2&k=A")
        #expect(canonicalQuery("p=100%&q=%zz") == "p=100%25&q=%25zz")
    }

    @Test func callerAuthHeadersAreReplacedNotSigned() {
        let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s", sessionToken: "TOKEN")
        let signer = SigV4Signer(credentials: credentials, service: "bedrock", region: "us-east-1")
        let time = SigV4Timestamp(unixSeconds: 1_700_000_000)
        let plain = signer.sign(method: "GET", path: "/", query: nil, headers: [("Host", "h")], payloadSHA256: "x", at: time)
        let stale = signer.sign(
            method: "GET", path: "/", query: nil,
            headers: [("Host", "h"), ("Authorization", "old"), ("X-Amz-Date", "20000101T000000Z"), ("x-amz-security-token", "old")],
            payloadSHA256: "x", at: time
        )
        #expect(stale.canonicalRequest == plain.canonicalRequest)
        #expect(stale.signedHeaders == "host;x-amz-date;x-amz-security-token")
        #expect(
            stale.headersToAdd.map(SigV4HeaderLine.init) == [
                SigV4HeaderLine("X-Amz-Security-Token", "TOKEN"), SigV4HeaderLine("X-Amz-Date", time.amzDate),
                SigV4HeaderLine("Authorization", plain.authorization),
            ])
    }

    @Test func payloadHashesAgreeAcrossBufferKinds() {
        #expect(SigV4Signer.sha256Hex(ByteBuffer()) == SigV4Signer.emptyPayloadSHA256)
        let bytes: [UInt8] = Array("Param1=value1".utf8)
        let fromPointer = bytes.withUnsafeBytes { SigV4Signer.sha256Hex($0) }
        #expect(fromPointer == "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")
        var buffer = ByteBuffer(bytes: [0, 0] + bytes)
        buffer.moveReaderIndex(forwardBy: 2)
        #expect(SigV4Signer.sha256Hex(buffer) == fromPointer)
    }
}

/// A header as a comparable value, for `#expect` on lists of tuples.
struct SigV4HeaderLine: Equatable, CustomStringConvertible {
    var name: String
    var value: String
    init(_ name: String, _ value: String) { (self.name, self.value) = (name, value) }
    init(_ header: (name: String, value: String)) { self.init(header.name, header.value) }
    var description: String { "\(name): \(value)" }
}

/// One case folder: context.json, request.txt and the expected files.
private struct Vector {
    struct Context: Decodable {
        struct Credentials: Decodable {
            var access_key_id: String
            var secret_access_key: String
            var token: String?
            var aws: AWSCredentials { AWSCredentials(accessKeyID: access_key_id, secretAccessKey: secret_access_key, sessionToken: token) }
        }
        var credentials: Credentials
        var expiration_in_seconds: Int
        var normalize: Bool
        var region: String
        var service: String
        var sign_body: Bool
        var timestamp: String
        var omit_session_token: Bool?
    }

    let directory: URL
    let context: Context
    let request: HTTPRequestText

    init(directory: URL) throws {
        self.directory = directory
        context = try JSONDecoder().decode(Context.self, from: Data(contentsOf: directory.appendingPathComponent("context.json")))
        request = try HTTPRequestText(String(decoding: Data(contentsOf: directory.appendingPathComponent("request.txt")), as: UTF8.self))
    }

    func text(_ file: String) -> String {
        (try? String(decoding: Data(contentsOf: directory.appendingPathComponent(file)), as: UTF8.self)) ?? "<\(file) unreadable>"
    }
}

/// A raw HTTP/1.1 request as the vectors write it: the path may hold spaces and raw UTF-8, a
/// header line that starts with whitespace continues the one before (obs-fold), names repeat.
private struct HTTPRequestText {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    var requestLine: String
    var method: String
    var path: String
    var query: String?
    var headers: [(name: String, value: String)] = []
    var body: [UInt8]

    init(_ text: String) throws {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        requestLine = String(lines.removeFirst())
        // "GET /example space/ HTTP/1.1": the target runs from the first space to the last one.
        guard let firstSpace = requestLine.firstIndex(of: " "), let lastSpace = requestLine.lastIndex(of: " "), firstSpace < lastSpace
        else { throw Malformed(description: "no request line in \(requestLine.debugDescription)") }
        method = String(requestLine[..<firstSpace])
        let target = requestLine[requestLine.index(after: firstSpace)..<lastSpace]
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = String(target)
        }
        while let line = lines.first, !line.isEmpty {
            lines.removeFirst()
            if line.first == " " || line.first == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += "\n" + line
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            } else {
                throw Malformed(description: "no colon in header line \(line.debugDescription)")
            }
        }
        body = Array(lines.dropFirst().joined(separator: "\n").utf8)
    }
}

extension Array where Element == (name: String, value: String) {
    /// What is left after taking out, once each, the headers of `others`: the headers a signer added.
    fileprivate func removingFirstOccurrences(of others: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var rest = self
        for other in others {
            if let index = rest.firstIndex(where: { $0.name == other.name && $0.value == other.value }) { rest.remove(at: index) }
        }
        return rest
    }
}
