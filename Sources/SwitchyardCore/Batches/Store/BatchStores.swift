import Foundation
import Logging
import NIOCore
import NIOPosix

/// Opens the store `batches.store` names: `sqlite:PATH` (relative to the working directory) or
/// `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…&schema=…]`, the password passed apart.
public enum BatchStores {
    /// A parsed `batches.store` value.
    enum Location: Equatable {
        case sqlite(path: String)
        case postgres(host: String, port: Int, username: String, database: String, schema: String?, tls: PostgresBatchStore.Configuration.TLSMode)
    }

    /// Opens the store; the caller then calls `prepare()` and `recoverLeases(owner:)`, and
    /// `close()` at the end. A PostgreSQL store's connection pool runs in a task the store owns
    /// (started here, ended by `close()`).
    public static func open(
        url: String, password: String?, logger: Logger,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(BatchStoreError) -> any BatchStore {
        switch try parse(url) {
        case .sqlite(let path):
            return try await SQLiteBatchStore.open(path: path, logger: logger, eventLoopGroup: eventLoopGroup)
        case .postgres(let host, let port, let username, let database, let schema, let tls):
            let configuration = PostgresBatchStore.Configuration(
                host: host, port: port, username: username, password: password, database: database, schema: schema, tls: tls)
            let store = try PostgresBatchStore(configuration: configuration, logger: logger, eventLoopGroup: eventLoopGroup)
            store.startRunning()
            return store
        }
    }

    /// Parses without ever quoting the URL back (it might hold a password by mistake).
    static func parse(_ url: String) throws(BatchStoreError) -> Location {
        if url.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path.removeFirst(2) }  // sqlite:///abs/path
            guard !path.isEmpty else { throw BatchStoreError(.failed, "batches.store: sqlite: needs a file path, e.g. sqlite:./switchyard-batches.db") }
            return .sqlite(path: path)
        }
        guard let schemeEnd = url.range(of: "://"), ["postgres", "postgresql"].contains(url[..<schemeEnd.lowerBound]) else {
            throw BatchStoreError(.failed, "batches.store must be sqlite:PATH or postgres://USER@HOST:PORT/DATABASE")
        }
        var rest = Substring(url[schemeEnd.upperBound...])
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard let at = rest.lastIndex(of: "@") else {
            throw BatchStoreError(.failed, "batches.store: postgres:// needs a user: postgres://USER@HOST:PORT/DATABASE")
        }
        let user = rest[..<at]
        guard !user.contains(":") else {
            throw BatchStoreError(.failed, "batches.store: put the PostgreSQL password in the variable store_password_env names, not in the URL")
        }
        rest = rest[rest.index(after: at)...]
        guard let slash = rest.firstIndex(of: "/") else {
            throw BatchStoreError(.failed, "batches.store: postgres:// needs a database: postgres://USER@HOST:PORT/DATABASE")
        }
        let database = rest[rest.index(after: slash)...]
        var hostPort = rest[..<slash]
        var port = 5432
        if let colon = hostPort.lastIndex(of: ":"), !hostPort[colon...].contains("]") {
            guard let number = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(number) else {
                throw BatchStoreError(.failed, "batches.store: the PostgreSQL port must be a number from 1 to 65535")
            }
            port = number
            hostPort = hostPort[..<colon]
        }
        if hostPort.hasPrefix("["), hostPort.hasSuffix("]") { hostPort = hostPort.dropFirst().dropLast() }
        guard let username = percentDecoded(user), !username.isEmpty, !hostPort.isEmpty,
            let database = percentDecoded(database), !database.isEmpty, !database.contains("/")
        else {
            throw BatchStoreError(.failed, "batches.store: postgres:// needs USER@HOST[:PORT]/DATABASE")
        }
        var schema: String?
        var tls = PostgresBatchStore.Configuration.TLSMode.prefer
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            switch (parts.first, parts.count == 2 ? parts[1] : nil) {
            case ("sslmode", let value?):
                guard let mode = PostgresBatchStore.Configuration.TLSMode(rawValue: value) else {
                    throw BatchStoreError(.failed, "batches.store: sslmode must be disable, prefer, require or verify-full")
                }
                tls = mode
            case ("schema", let value?):
                guard PostgresBatchStore.Configuration.isValidSchemaName(value) else {
                    throw BatchStoreError(.failed, "batches.store: schema must be lower-case letters, digits and _")
                }
                schema = value
            default:
                throw BatchStoreError(.failed, "batches.store: postgres:// takes only ?sslmode= and &schema=")
            }
        }
        return .postgres(host: String(hostPort), port: port, username: username, database: database, schema: schema, tls: tls)
    }

    /// The first custom_id that appears twice (for the message of a create that broke the key).
    static func firstDuplicate(_ requests: [NewBatchRequest]) -> String {
        var seen = Set<String>()
        return requests.first { !seen.insert($0.customID).inserted }?.customID ?? "?"
    }

    /// `requests` cut into runs of at most `maxRows` requests, each closed once its params reach
    /// `maxBytes`: one INSERT per run keeps statements and bind lists bounded for any batch size.
    static func insertChunks(_ requests: [NewBatchRequest], maxRows: Int, maxBytes: Int) -> [Range<Int>] {
        var chunks: [Range<Int>] = []
        var start = 0
        while start < requests.count {
            var end = start
            var bytes = 0
            while end < requests.count, end - start < maxRows, bytes < maxBytes {
                bytes += requests[end].params.count
                end += 1
            }
            chunks.append(start..<end)
            start = end
        }
        return chunks
    }

    /// Now, for the few writes whose caller passes no time (ending batches on lease recovery).
    static func wallClockMs() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let high = utf8.index(after: index)
                guard high < utf8.endIndex, utf8.index(after: high) < utf8.endIndex,
                    let value = UInt8(String(decoding: [utf8[high], utf8[utf8.index(after: high)]], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
                index = utf8.index(high, offsetBy: 2)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
