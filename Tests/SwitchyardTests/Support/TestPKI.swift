import Foundation
import NIOSSL

/// A test certificate authority and two server certificates it signed (100-year validity, made
/// once with openssl): `ip` names 127.0.0.1 and localhost, `name` only `upstream.test` (for
/// `tls.server_name`). Nothing trusts the CA but the tests that hand it over.
enum TestPKI {
    struct Leaf {
        var certificatePEM: String
        var keyPEM: String

        var certificate: NIOSSLCertificate { try! NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem) }
        var key: NIOSSLPrivateKey { try! NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem) }
    }

    static let caPEM = """
-----BEGIN CERTIFICATE-----
MIIBoTCCAUegAwIBAgIUIRG1idkIWjfDduJBWr+fJAL3sx0wCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSU3dpdGNoeWFyZCBUZXN0IENBMCAXDTI2MTIwNTA4MTk0NVoY
DzIxMjYxMTExMDgxOTQ1WjAdMRswGQYDVQQDDBJTd2l0Y2h5YXJkIFRlc3QgQ0Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASTOj2e06KgoPiXTr3DFtOb1a8ER+wP
X0539ZsDxakleRiFrQAlNq9mkQAhtb3f0VIJS8UgD98dThFdjLbBmHjxo2MwYTAd
BgNVHQ4EFgQUfzR4wSTSl3Ypz+txYXT9P+7vSVYwHwYDVR0jBBgwFoAUfzR4wSTS
l3Ypz+txYXT9P+7vSVYwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYw
CgYIKoZIzj0EAwIDSAAwRQIhAISaPRGDjRNs3zNl7fXrp0FlVdt5J1/Lmpgawjll
3kdrAiAIkhlzUBtwI4DT5ed6soRTDeqyirP3CZpzlQGPRiCDrg==
-----END CERTIFICATE-----
"""

    static let ip = Leaf(certificatePEM: """
-----BEGIN CERTIFICATE-----
MIIByjCCAXGgAwIBAgIUYYFMNobENJ9fQnl4jTRzLdTFqOUwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSU3dpdGNoeWFyZCBUZXN0IENBMCAXDTI2MTIwNTA4MTk0NVoY
DzIxMjYxMTExMDgxOTQ1WjAdMRswGQYDVQQDDBJzd2l0Y2h5YXJkLXRlc3QtaXAw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASiDzAStXpcyYFE9mTcYg7B9EJ2Na+K
FY16X8eEYlR0BwcosTpmRbX0m5q+QyrFCzY9P/+LiQcI6QQ5vxuuugu3o4GMMIGJ
MBoGA1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9zdDAJBgNVHRMEAjAAMAsGA1UdDwQE
AwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQU1T+vDOODoS/dy6jV
OLwv2M/yfbYwHwYDVR0jBBgwFoAUfzR4wSTSl3Ypz+txYXT9P+7vSVYwCgYIKoZI
zj0EAwIDRwAwRAIgT3lAXJKwZlIB5h/Tae4jiBMncNHPEiNMpLofDhU/8MoCICEx
5Uw/Tl0ryAFk+ogLSVmVgNrYcAM9u4t1EtHWdu36
-----END CERTIFICATE-----
""", keyPEM: """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgy0S4Ra113m/5zh1U
TCMc6R5wcLcMp8aAd3Vz/O32msShRANCAASiDzAStXpcyYFE9mTcYg7B9EJ2Na+K
FY16X8eEYlR0BwcosTpmRbX0m5q+QyrFCzY9P/+LiQcI6QQ5vxuuugu3
-----END PRIVATE KEY-----
""")

    static let name = Leaf(certificatePEM: """
-----BEGIN CERTIFICATE-----
MIIByjCCAXGgAwIBAgIUYYFMNobENJ9fQnl4jTRzLdTFqOYwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSU3dpdGNoeWFyZCBUZXN0IENBMCAXDTI2MTIwNTA4MTk0NVoY
DzIxMjYxMTExMDgxOTQ1WjAfMR0wGwYDVQQDDBRzd2l0Y2h5YXJkLXRlc3QtbmFt
ZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEnMIl/BXQBOtCauKNhhXuVdmLm5
g8yNKq2ID6x2j2t/3F+Lm4bfpftUw9zFspwXeqXhFSRWmaehbyG6FKG/L+6jgYow
gYcwGAYDVR0RBBEwD4INdXBzdHJlYW0udGVzdDAJBgNVHRMEAjAAMAsGA1UdDwQE
AwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUWaWZdWiHxwyi5Yzt
W4bqpj9munIwHwYDVR0jBBgwFoAUfzR4wSTSl3Ypz+txYXT9P+7vSVYwCgYIKoZI
zj0EAwIDRwAwRAIgNucQelX+T1iCLsadeutJbct2WqVYFpEXfbQGRbWwSYUCID0T
B5OSBuYkxkHJbhCZFg2q0dClBnyyymzY/U8MDKT/
-----END CERTIFICATE-----
""", keyPEM: """
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0o4GJwDv4k91oLhg
FQjFDGpUQde9gzDOWnac7gBQdmmhRANCAARJzCJfwV0ATrQmrijYYV7lXZi5uYPM
jSqtiA+sdo9rf9xfi5uG36X7VMPcxbKcF3ql4RUkVpmnoW8huhShvy/u
-----END PRIVATE KEY-----
""")

    /// The CA written to a file of its own, for `tls.ca_file` and `SSL_CERT_FILE`.
    static func caFile() throws -> String {
        let path = TestScratch.path("test-ca.pem")
        try caPEM.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
