import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The one HTTP exchange every credential endpoint needs: send, read a bounded body, and turn
/// transport failures into a ``CredentialError`` that names the host, never the request.
struct CredentialHTTP {
    /// Credential answers are a few KiB; anything far larger is not one.
    static let maxBodyBytes = 256 * 1024

    struct Answer {
        var status: Int
        var body: Data
    }

    let egress: CredentialEgress
    /// The source as errors name it, e.g. `gcp token endpoint oauth2.googleapis.com`.
    let source: String

    func send(
        url: String, method: HTTPMethod, headers: [(String, String)], body: Data? = nil, deadline: NIODeadline
    ) async throws(CredentialError) -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            let response = try await egress.client(for: url).execute(request, deadline: deadline)
            let bytes = try await response.body.collect(upTo: Self.maxBodyBytes)
            return Answer(status: Int(response.status.code), body: Data(bytes.readableBytesView))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw CredentialError(.unreachable, source: source, message: "no answer in time; check that the endpoint is reachable from this machine")
        } catch is CancellationError {
            throw CredentialError(.cancelled, source: source, message: "the fetch was cancelled")
        } catch let error as HTTPClientError where error == .cancelled {
            throw CredentialError(.cancelled, source: source, message: "the fetch was cancelled")
        } catch is NIOTooManyBytesError {
            throw CredentialError(
                .invalidResponse, source: source, message: "the answer is larger than \(Self.maxBodyBytes) bytes; this is not a credential endpoint")
        } catch {
            // Transport errors describe the connection (host, port, errno), never the request body.
            throw CredentialError(.unreachable, source: source, message: "cannot reach it: \(error)")
        }
    }

    /// `application/x-www-form-urlencoded`, with everything but unreserved characters escaped.
    static func formEncoded(_ fields: [(String, String)]) -> Data {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let pairs = fields.map { name, value in
            "\(name.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        }
        return Data(pairs.joined(separator: "&").utf8)
    }

    /// The host (and port) of `url`, for error sources; the whole string when it does not parse.
    static func host(of url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else { return url }
        return components.port.map { "\(host):\($0)" } ?? host
    }

    /// True for values that can go into an HTTP header as they are (printable ASCII, no spaces
    /// around): a token with a newline in it would split the request.
    static func isHeaderSafe(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}
