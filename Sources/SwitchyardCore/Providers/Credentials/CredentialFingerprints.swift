import Crypto

/// What decides, on a reload, whether a platform provider keeps its credential cache: a changed
/// key, profile file or endpoint rebuilds it. Hashed, so a fingerprint held in memory or
/// compared never carries the secret itself.
extension AWSCredentialSource {
    var fingerprint: String {
        switch self {
        case .environment(let keys), .profile(_, _, let keys):
            return "\(description)|\(Self.hash(keys.accessKeyID, keys.secretAccessKey, keys.sessionToken ?? ""))"
        case .webIdentity(let identity):
            return "web|\(identity.roleARN)|\(identity.tokenFile)|\(identity.sessionName ?? "")|\(identity.stsEndpoint)"
        case .container(let container):
            return "container|\(Self.hash(String(describing: container)))"
        }
    }

    static func hash(_ parts: String...) -> String {
        SHA256.hash(data: Array(parts.joined(separator: "\u{0}").utf8)).map { String($0, radix: 16) }.joined()
    }
}

extension GoogleCredentialSource {
    var fingerprint: String {
        switch self {
        case .serviceAccount(let key, let path):
            return "sa|\(path)|\(key.clientEmail)|\(key.tokenURI)|\(key.privateKeyID ?? "")|\(AWSCredentialSource.hash(key.privateKey.derRepresentation.base64EncodedString()))"
        case .metadataServer(let host):
            return "metadata|\(host)"
        }
    }
}

import Foundation
