import Foundation
import NIOSSL

/// Which certificates a provider's TLS connections trust and which name they verify: the
/// system's roots (or `SSL_CERT_FILE`'s, as OpenSSL reads it), plus `SSL_CERT_DIR`'s, plus the
/// provider's `tls.ca_file`.
public struct UpstreamTrust: Sendable, Equatable {
    /// `tls.ca_file`: PEM certificates added to the trusted roots.
    public var caFile: String?
    /// `tls.server_name`: sent as SNI and verified instead of the base URL's host.
    public var serverName: String?
    /// `SSL_CERT_FILE`: replaces the system's bundle.
    public var certFile: String?
    /// `SSL_CERT_DIR`: its PEM files are trusted too.
    public var certDirectory: String?

    public static let system = UpstreamTrust()

    /// Reads `SSL_CERT_FILE` and `SSL_CERT_DIR` from `environment`.
    public init(caFile: String? = nil, serverName: String? = nil, environment: [String: String] = [:]) {
        self.caFile = caFile
        self.serverName = serverName
        certFile = environment["SSL_CERT_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        certDirectory = environment["SSL_CERT_DIR"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A client configuration with full verification and these roots.
    public func tlsConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let certFile { configuration.trustRoots = .file(certFile) }
        if let certDirectory {
            let certificates = Self.certificates(inDirectory: certDirectory)
            if !certificates.isEmpty { configuration.additionalTrustRoots.append(.certificates(certificates)) }
        }
        if let caFile { configuration.additionalTrustRoots.append(.certificates(try NIOSSLCertificate.fromPEMFile(caFile))) }
        return configuration
    }

    /// Every certificate of the PEM files in `directory` (OpenSSL's hashed names or any other);
    /// files that hold none are passed over.
    static func certificates(inDirectory directory: String) -> [NIOSSLCertificate] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.sorted().flatMap { name in (try? NIOSSLCertificate.fromPEMFile(directory + "/" + name)) ?? [] }
    }

    /// Why `path` is not a usable PEM file of certificates, or nil.
    static func problem(withPEMFile path: String) -> String? {
        guard FileManager.default.isReadableFile(atPath: path) else { return "cannot read '\(path)'" }
        do {
            let certificates = try NIOSSLCertificate.fromPEMFile(path)
            return certificates.isEmpty ? "'\(path)' holds no PEM certificate" : nil
        } catch {
            return "'\(path)' is not a PEM file of certificates (\(error))"
        }
    }

    /// For `switchyard check`: where trust comes from, never a secret.
    public var description: String {
        var parts = [certFile.map { "roots from SSL_CERT_FILE \($0)" } ?? "system roots"]
        if let certDirectory { parts.append("SSL_CERT_DIR \(certDirectory)") }
        if let caFile { parts.append("ca_file \(caFile)") }
        if let serverName { parts.append("server_name \(serverName)") }
        return parts.joined(separator: " + ")
    }
}

/// The HTTP proxy a provider's connections go through, and what named it.
public struct UpstreamProxy: Sendable, Equatable {
    public var proxy: HTTP1Proxy
    /// `providers.NAME.proxy`, or the environment variable (`HTTPS_PROXY`, …).
    public var source: String

    /// Named by the provider's `proxy` key (not by the environment).
    public var isProviderKey: Bool { source.hasPrefix("providers.") }

    /// For `switchyard check`: the proxy without its credentials.
    public var description: String {
        let endpoint = HTTP1ConnectRoute.Endpoint(host: proxy.host, port: proxy.port)
        return "proxy http://\(endpoint) (\(source)\(proxy.authorization == nil ? "" : ", with Proxy-Authorization"))"
    }
}
