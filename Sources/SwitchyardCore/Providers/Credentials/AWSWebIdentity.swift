import AWSWire
import AsyncHTTPClient
import Foundation
import NIOCore

/// Temporary credentials for a role, from STS `AssumeRoleWithWebIdentity` with the token a
/// platform mounts in a file (EKS IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`).
///
/// The token file is read at every refresh: the platform rotates it. The call is unsigned; the
/// web identity token is the proof.
public struct AWSWebIdentity: Sendable, Equatable {
    public var roleARN: String
    public var tokenFile: String
    /// `AWS_ROLE_SESSION_NAME` or the profile's `role_session_name`; nil: `switchyard-<unix time>`.
    public var sessionName: String?
    /// `AWS_ENDPOINT_URL_STS`, else the regional endpoint.
    public var stsEndpoint: String

    public init(roleARN: String, tokenFile: String, sessionName: String?, stsEndpoint: String) {
        self.roleARN = roleARN
        self.tokenFile = tokenFile
        self.sessionName = sessionName
        self.stsEndpoint = stsEndpoint
    }

    /// `https://sts.{region}.amazonaws.com` (`.amazonaws.com.cn` in the China regions).
    public static func regionalEndpoint(region: String) -> String {
        "https://sts.\(region).amazonaws.com\(region.hasPrefix("cn-") ? ".cn" : "")"
    }

    var source: String { "aws web identity (STS \(CredentialHTTP.host(of: stsEndpoint)))" }

    func fetch(
        egress: CredentialEgress, now: Int64, deadline: NIODeadline
    ) async throws(CredentialError) -> RefreshingCredential<AWSCredentials>.Expiring {
        guard let data = FileManager.default.contents(atPath: tokenFile) else {
            throw CredentialError(
                .notConfigured, source: source,
                message: "cannot read the web identity token file \(tokenFile) (AWS_WEB_IDENTITY_TOKEN_FILE); check that it is mounted"
            )
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else {
            throw CredentialError(.notConfigured, source: source, message: "the web identity token file \(tokenFile) is empty")
        }
        let body = CredentialHTTP.formEncoded([
            ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
            ("RoleSessionName", sessionName ?? "switchyard-\(now / 1000)"), ("WebIdentityToken", token),
        ])
        let http = CredentialHTTP(egress: egress, source: source)
        let answer = try await http.send(
            url: stsEndpoint, method: .POST,
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Accept", "text/xml")],
            body: body, deadline: deadline
        )
        let xml = String(decoding: answer.body, as: UTF8.self)
        guard answer.status == 200 else { throw stsError(status: answer.status, xml: xml) }
        guard let credentials = AWSQueryXML.element("Credentials", in: xml),
            let keyID = AWSQueryXML.text(of: "AccessKeyId", in: credentials),
            let secret = AWSQueryXML.text(of: "SecretAccessKey", in: credentials),
            let sessionToken = AWSQueryXML.text(of: "SessionToken", in: credentials),
            let expiration = AWSQueryXML.text(of: "Expiration", in: credentials)
        else {
            throw CredentialError(
                .invalidResponse, source: source,
                message: "STS answered 200 without Credentials/AccessKeyId, SecretAccessKey, SessionToken and Expiration"
            )
        }
        return try AWSTemporaryCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: sessionToken, expiration: expiration).checked(
            source: source, unsafeMessage: "STS answered credentials with characters that cannot be sent in a header",
            expirationMessage: "STS answered an Expiration that is not an ISO 8601 time"
        )
    }

    /// `<ErrorResponse><Error><Code>…</Code><Message>…</Message>`: the code and message are
    /// what a user acts on (InvalidIdentityToken, AccessDenied on the role's trust policy).
    private func stsError(status: Int, xml: String) -> CredentialError {
        let code = AWSQueryXML.text(of: "Code", in: xml)
        let message = AWSQueryXML.text(of: "Message", in: xml)
        var text = "STS answered \(status)"
        if let code { text += " \(CredentialError.quoted(code, limit: 80))" }
        if let message { text += ": \(CredentialError.quoted(message))" }
        if code == "AccessDenied" || code == "InvalidIdentityToken" {
            text += "; check the trust policy of \(roleARN) and the token's audience and issuer"
        }
        return CredentialError(status >= 500 ? .unreachable : .rejected, source: source, message: text)
    }
}

/// The few element texts Switchyard reads from AWS query-protocol XML answers. Not a general
/// XML parser: STS answers are flat, machine-written documents with no CDATA or attributes on
/// these elements, and Foundation's XMLParser is not on every platform.
enum AWSQueryXML {
    /// The inner text of the first `<name>` element, entities decoded.
    static func text(of name: String, in xml: String) -> String? {
        element(name, in: xml).map(decodeEntities).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// The raw inner XML of the first `<name>` element.
    static func element(_ name: String, in xml: String) -> String? {
        guard let open = xml.range(of: "<\(name)>"),
            let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex)
        else { return nil }
        return String(xml[open.upperBound..<close.lowerBound])
    }

    private static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";"), rest.distance(from: amp, to: semi) <= 10 else {
                out += rest[amp...]
                return out
            }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let number =
                    entity.hasPrefix("#x") ? UInt32(entity.dropFirst(2), radix: 16) : entity.hasPrefix("#") ? UInt32(entity.dropFirst()) : nil
                if let number, let scalar = Unicode.Scalar(number) { out.unicodeScalars.append(scalar) } else { out += rest[amp...semi] }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }
}
