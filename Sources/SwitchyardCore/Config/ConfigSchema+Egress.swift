import Yams

/// The provider keys that say how its connections leave the machine: `tls` and `proxy` (with
/// `proxy_auth_env`), and the environment variables that apply when they are absent
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`, `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`).
extension ConfigSchema {
    /// `tls: { ca_file, server_name }`, with the environment's `SSL_CERT_*`.
    func readTrust(_ fields: ConfigReader.Fields) -> UpstreamTrust {
        var trust = UpstreamTrust(environment: environment)
        if let file = trust.certFile, let problem = UpstreamTrust.problem(withPEMFile: file) {
            reader.report("environment variable SSL_CERT_FILE: \(problem)", at: fields["tls"] ?? fields.mapping, path: fields.path("tls"))
        }
        guard let node = fields["tls"], let tls = reader.fields(node, path: fields.path("tls"), known: ["ca_file", "server_name"]) else {
            return trust
        }
        if let caNode = tls["ca_file"], let path = reader.string(caNode, path: tls.path("ca_file")) {
            if let problem = UpstreamTrust.problem(withPEMFile: path) {
                reader.report(problem, at: caNode, path: tls.path("ca_file"))
            } else {
                trust.caFile = path
            }
        }
        if let nameNode = tls["server_name"], let name = reader.string(nameNode, path: tls.path("server_name")) {
            if name.isEmpty || !name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: ":") }) {
                reader.report("'\(name)' is not a host name", at: nameNode, path: tls.path("server_name"))
            } else {
                trust.serverName = name
            }
        }
        return trust
    }

    /// `proxy: http://HOST:PORT` with `proxy_auth_env` (a variable holding `user:password`), or
    /// the environment's proxy for the upstream's scheme unless `NO_PROXY` names its host.
    func readProxy(_ fields: ConfigReader.Fields, upstream: UpstreamURL) -> UpstreamProxy? {
        if let node = fields["proxy"], let text = reader.string(node, path: fields.path("proxy")) {
            switch HTTP1Proxy.parse(text) {
            case .failure(let error):
                reader.report("\(error) (e.g. http://proxy.internal:3128)", at: node, path: fields.path("proxy"))
                return nil
            case .success(var proxy):
                if proxy.authorization != nil {
                    reader.report("credentials do not go in the URL; put user:password in a variable named by proxy_auth_env", at: node, path: fields.path("proxy"))
                    return nil
                }
                if let authNode = fields["proxy_auth_env"], let name = reader.string(authNode, path: fields.path("proxy_auth_env")),
                    let value = secret(named: name, node: authNode, path: fields.path("proxy_auth_env"))
                {
                    proxy.authorization = value.isEmpty ? nil : HTTP1Proxy.basicAuthorization(value)
                }
                return UpstreamProxy(proxy: proxy, source: fields.path("proxy"))
            }
        }
        if let authNode = fields["proxy_auth_env"] {
            reader.report("proxy_auth_env needs proxy: the environment's proxy URL carries its own credentials", at: authNode, path: fields.path("proxy_auth_env"))
        }
        guard let (variable, url) = ProxyEnvironment(environment).proxy(tls: upstream.isTLS, host: upstream.host, port: upstream.port) else {
            return nil
        }
        switch HTTP1Proxy.parse(url) {
        case .success(let proxy):
            return UpstreamProxy(proxy: proxy, source: variable)
        case .failure(let error):
            reader.report("environment variable \(variable): \(error)", at: fields.mapping, path: fields.path)
            return nil
        }
    }
}
