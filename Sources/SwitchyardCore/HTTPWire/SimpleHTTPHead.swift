#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1

/// The head of an HTTP/1.1 message when it has the plain shape nearly every API call and answer
/// has, read straight from the bytes: HTTP/1.1, token header names, printable ASCII values, every
/// line ended by CRLF, exactly one way to find the body's end (`content-length`, or none for a
/// request), no `transfer-encoding` (but an answer's single `transfer-encoding: chunked`, whose
/// framing ``ChunkedBodyReader`` reads), no `upgrade` or obs-fold, and `connection` absent or
/// `keep-alive`. Such a head has one reading, and this one agrees with NIO's decoder (llhttp):
/// the decoder tests and the fuzz target `FuzzHead` compare the two on the same bytes. Anything
/// else is `declined`, and NIO's decoder reads the connection from there on, with its hardening
/// and its errors.
///
/// Why it exists: llhttp through NIO's callbacks and `ByteToMessageHandler` cost ~5 µs of the
/// router's ~51 µs per request, for two heads of a dozen lines (bench/README.md step 15).
enum SimpleHTTPHead {
    /// Where a message's body ends.
    enum Body: Equatable {
        /// After this many bytes.
        case length(Int)
        /// At its last chunk (answers only).
        case chunked
    }

    enum Parsed<Head> {
        /// A whole head of `length` bytes, followed by `body`.
        case head(Head, length: Int, body: Body)
        /// No end of the head yet, and nothing declined so far.
        case incomplete
        /// Not the plain shape (or over a limit): NIO's decoder takes over.
        case declined

        /// The same verdict with the head in another form (the part a decoder passes on).
        func map<Other>(_ transform: (Head) -> Other) -> Parsed<Other> {
            switch self {
            case .head(let head, let length, let body): .head(transform(head), length: length, body: body)
            case .incomplete: .incomplete
            case .declined: .declined
            }
        }
    }

    struct Limits {
        /// The longest head taken here; a longer one is NIO's to accept or refuse.
        var maxHeadLength: Int
        var maxHeaderCount: Int
    }

    static func request(_ buffer: ByteBuffer, limits: Limits, previous: HTTPRequestHead? = nil) -> Parsed<HTTPRequestHead> {
        buffer.withUnsafeReadableBytes { request(UnsafeRawBufferPointer($0), limits: limits, previous: previous) }
    }

    static func response(_ buffer: ByteBuffer, limits: Limits, previous: HTTPResponseHead? = nil) -> Parsed<HTTPResponseHead> {
        buffer.withUnsafeReadableBytes { response(UnsafeRawBufferPointer($0), limits: limits, previous: previous) }
    }

    /// `METHOD SP origin-form-target SP HTTP/1.1 CRLF` and header lines; no `content-length`
    /// means no body.
    ///
    /// `previous` is the last head read on the connection: the target and the header lines that
    /// are byte for byte the same as its are taken from it, not made again, and a head that is
    /// the same throughout is that head. A keep-alive caller sends the same headers request after
    /// request; each new `String` of a name or value longer than 15 bytes is an allocation.
    static func request(_ bytes: UnsafeRawBufferPointer, limits: Limits, previous: HTTPRequestHead? = nil) -> Parsed<HTTPRequestHead> {
        var reader = Reader(bytes: bytes, end: min(bytes.count, limits.maxHeadLength), limits: limits)
        guard let space = reader.index(of: UInt8(ascii: " ")) else {
            // Bytes that cannot begin a known method are NIO's to refuse now, not at the line's end.
            return reader.isShort && methodNames.contains { $0.starts(with: bytes.prefix(reader.end)) } ? .incomplete : .declined
        }
        guard let method = method(bytes[0..<space]) else { return .declined }
        reader.position = space + 1
        let targetStart = reader.position
        guard reader.position < reader.end else { return reader.verdict(ifShort: .incomplete) }
        guard bytes[reader.position] == UInt8(ascii: "/") else { return .declined }
        while reader.position < reader.end, isTargetByte(bytes[reader.position]) { reader.position += 1 }
        let target = bytes[targetStart..<reader.position]
        if let stop = reader.read(" HTTP/1.1\r\n", as: HTTPRequestHead.self) { return stop }
        switch reader.headerLines(previous: previous?.headers) {
        case .incomplete: return reader.verdict(ifShort: .incomplete)
        case .declined: return .declined
        case .lines(let headers, let contentLength, let chunked, let same):
            // A chunked request is NIO's decoder's to read.
            guard !chunked else { return .declined }
            let sameTarget = previous.map { equal(target, $0.uri) } ?? false
            if same, sameTarget, let previous, previous.method == method {
                return .head(previous, length: reader.position, body: .length(contentLength ?? 0))
            }
            let uri = sameTarget ? previous!.uri : string(target)
            let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
            return .head(head, length: reader.position, body: .length(contentLength ?? 0))
        }
    }

    /// `HTTP/1.1 SP 3DIGIT SP reason CRLF` and header lines with a `content-length`, for a
    /// status that has a body (not 1xx, 204 or 304). The caller knows the request was not HEAD.
    /// `previous` as for ``request(_:limits:previous:)``.
    static func response(_ bytes: UnsafeRawBufferPointer, limits: Limits, previous: HTTPResponseHead? = nil) -> Parsed<HTTPResponseHead> {
        var reader = Reader(bytes: bytes, end: min(bytes.count, limits.maxHeadLength), limits: limits)
        if let stop = reader.read("HTTP/1.1 ", as: HTTPResponseHead.self) { return stop }
        var status = 0
        for _ in 0..<3 {
            guard reader.position < reader.end else { return reader.verdict(ifShort: .incomplete) }
            let digit = bytes[reader.position]
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return .declined }
            status = status * 10 + Int(digit - UInt8(ascii: "0"))
            reader.position += 1
        }
        guard status >= 200, status != 204, status != 304 else { return .declined }
        if let stop = reader.read(" ", as: HTTPResponseHead.self) { return stop }
        // The reason phrase: printable ASCII, possibly empty; NIO keeps only the code.
        while reader.position < reader.end, bytes[reader.position] >= 0x20, bytes[reader.position] < 0x7F { reader.position += 1 }
        if let stop = reader.read("\r\n", as: HTTPResponseHead.self) { return stop }
        switch reader.headerLines(previous: previous?.headers) {
        case .incomplete: return reader.verdict(ifShort: .incomplete)
        case .declined: return .declined
        case .lines(let headers, let contentLength, let chunked, let same):
            // Exactly one way to find the end: a length or chunks. Without either the body runs
            // to the connection's end; with both the answer is malformed: NIO's cases.
            let body: Body
            switch (contentLength, chunked) {
            case (let length?, false): body = .length(length)
            case (nil, true): body = .chunked
            default: return .declined
            }
            if same, let previous, previous.status.code == status {
                return .head(previous, length: reader.position, body: body)
            }
            let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)
            return .head(head, length: reader.position, body: body)
        }
    }

    private enum Match { case matched, short, mismatched }

    private enum HeaderLines {
        /// `chunked`: one `transfer-encoding: chunked` line. `same`: every line as in the previous
        /// head, whose headers these are.
        case lines(HTTPHeaders, contentLength: Int?, chunked: Bool, same: Bool)
        case incomplete
        case declined
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        /// Where reading stops: the data's end, or the head length limit.
        let end: Int
        let limits: Limits
        var position = 0

        /// Running out of bytes means more may come, unless it was the limit that ran out.
        var isShort: Bool { end == bytes.count && bytes.count < limits.maxHeadLength }

        func verdict<Head>(ifShort incomplete: Parsed<Head>) -> Parsed<Head> {
            isShort ? incomplete : .declined
        }

        func index(of byte: UInt8) -> Int? {
            var index = position
            while index < end {
                if bytes[index] == byte { return index }
                index += 1
            }
            return nil
        }

        /// Nil when `literal` came next (and is read), else what that makes of the head.
        mutating func read<Head>(_ literal: StaticString, as: Head.Type) -> Parsed<Head>? {
            switch expect(literal) {
            case .matched: nil
            case .short: verdict(ifShort: .incomplete)
            case .mismatched: .declined
            }
        }

        mutating func expect(_ literal: StaticString) -> Match {
            let count = literal.utf8CodeUnitCount
            let available = min(count, end - position)
            for offset in 0..<available where bytes[position + offset] != literal.utf8Start[offset] { return .mismatched }
            guard available == count else { return .short }
            position += count
            return .matched
        }

        /// Header lines up to and with the empty line, in one pass over each. Lines the same as
        /// the previous head's at the same place are taken from it; while all are, no list is made.
        mutating func headerLines(previous: HTTPHeaders?) -> HeaderLines {
            var earlier = previous?.makeIterator()
            /// Nil while every line so far is the previous head's.
            var made: [(String, String)]?
            var count = 0
            var contentLength: Int?
            var chunked = false
            while true {
                guard position + 1 < end else { return .incomplete }
                if bytes[position] == UInt8(ascii: "\r") {
                    guard bytes[position + 1] == UInt8(ascii: "\n") else { return .declined }
                    position += 2
                    if made == nil, let previous, previous.count == count {
                        return .lines(previous, contentLength: contentLength, chunked: chunked, same: true)
                    }
                    let lines = made ?? previous.map { $0.prefix(count).map { ($0.name, $0.value) } } ?? []
                    return .lines(HTTPHeaders(lines), contentLength: contentLength, chunked: chunked, same: false)
                }
                guard count < limits.maxHeaderCount else { return .declined }
                // name ":" SP* value CRLF, the value printable ASCII with no space at either end.
                let nameStart = position
                while position < end, isTokenByte(bytes[position]) { position += 1 }
                guard position < end else { return .incomplete }
                guard bytes[position] == UInt8(ascii: ":"), position > nameStart else { return .declined }
                let name = bytes[nameStart..<position]
                position += 1
                while position < end, bytes[position] == UInt8(ascii: " ") { position += 1 }
                let valueStart = position
                while position < end, bytes[position] >= 0x20, bytes[position] < 0x7F { position += 1 }
                guard position + 1 < end else { return .incomplete }
                guard bytes[position] == UInt8(ascii: "\r"), bytes[position + 1] == UInt8(ascii: "\n"),
                    position > valueStart, bytes[position - 1] != UInt8(ascii: " ")
                else { return .declined }
                let value = bytes[valueStart..<position]
                position += 2
                switch special(name) {
                case .contentLength:
                    guard contentLength == nil, value.count <= 15,
                        value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
                    else { return .declined }
                    contentLength = value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
                case .transferEncoding:
                    guard !chunked, value.count == 7, SimpleHTTPHead.matches(value, lowercased: "chunked") else { return .declined }
                    chunked = true
                case .upgrade:
                    return .declined
                case .connection:
                    // Keep-alive is the default; anything else (close, upgrade) is NIO's to act on.
                    guard value.count == 10, SimpleHTTPHead.matches(value, lowercased: "keep-alive") else { return .declined }
                case .none:
                    break
                }
                let old = earlier?.next()
                let reused = old.map { equal(name, $0.name) && equal(value, $0.value) } ?? false
                if made == nil {
                    if reused {
                        count += 1
                        continue
                    }
                    var lines: [(String, String)] = []
                    lines.reserveCapacity(16)
                    if let previous { lines.append(contentsOf: previous.prefix(count).lazy.map { ($0.name, $0.value) }) }
                    made = lines
                }
                made!.append(reused ? (old!.name, old!.value) : (string(name), string(value)))
                count += 1
            }
        }
    }

    private static func string(_ bytes: Slice<UnsafeRawBufferPointer>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes), as: UTF8.self)
    }

    /// Whether `string` holds exactly these bytes.
    private static func equal(_ bytes: Slice<UnsafeRawBufferPointer>, _ string: String) -> Bool {
        let count = bytes.count
        guard string.utf8.count == count else { return false }
        guard count > 0 else { return true }
        return string.utf8.withContiguousStorageIfAvailable { stored in
            memcmp(stored.baseAddress!, bytes.base.baseAddress! + bytes.startIndex, count) == 0
        } ?? string.utf8.elementsEqual(bytes)
    }

    /// Whether `bytes`, a token, is `lowercased` but for the case of its letters (setting bit
    /// 0x20 lowercases a token's letters and changes none of its other bytes that could match).
    /// A byte loop: `elementsEqual` against a `String.UTF8View` cost ~200 instructions a name.
    @inline(__always)
    static func matches(_ bytes: Slice<UnsafeRawBufferPointer>, lowercased: StaticString) -> Bool {
        lowercased.withUTF8Buffer { expected in
            guard expected.count == bytes.count else { return false }
            var index = bytes.startIndex
            for byte in expected {
                guard bytes.base[index] | 0x20 == byte else { return false }
                index += 1
            }
            return true
        }
    }

    private enum Special { case contentLength, transferEncoding, upgrade, connection }

    /// `name` is a token, so setting bit 0x20 lowercases its letters and changes nothing else
    /// that could match these names.
    private static func special(_ name: Slice<UnsafeRawBufferPointer>) -> Special? {
        switch name.count {
        case 14 where SimpleHTTPHead.matches(name, lowercased: "content-length"): .contentLength
        case 17 where SimpleHTTPHead.matches(name, lowercased: "transfer-encoding"): .transferEncoding
        case 7 where SimpleHTTPHead.matches(name, lowercased: "upgrade"): .upgrade
        case 10 where SimpleHTTPHead.matches(name, lowercased: "connection"): .connection
        default: nil
        }
    }

    private static let methodNames = ["GET", "PUT", "POST", "HEAD", "PATCH", "DELETE", "OPTIONS"].map { Array($0.utf8) }

    private static func method(_ bytes: Slice<UnsafeRawBufferPointer>) -> HTTPMethod? {
        switch bytes.count {
        case 3 where UnsafeRawBufferPointer(rebasing: bytes).equals("GET"): .GET
        case 3 where UnsafeRawBufferPointer(rebasing: bytes).equals("PUT"): .PUT
        case 4 where UnsafeRawBufferPointer(rebasing: bytes).equals("POST"): .POST
        case 4 where UnsafeRawBufferPointer(rebasing: bytes).equals("HEAD"): .HEAD
        case 5 where UnsafeRawBufferPointer(rebasing: bytes).equals("PATCH"): .PATCH
        case 6 where UnsafeRawBufferPointer(rebasing: bytes).equals("DELETE"): .DELETE
        case 7 where UnsafeRawBufferPointer(rebasing: bytes).equals("OPTIONS"): .OPTIONS
        default: nil
        }
    }

    /// RFC 9110 tchar.
    private static let tokenBytes = ASCIIByteSet(alphanumericsAnd: "-_.!#$%&'*+^`|~")
    /// RFC 3986 unreserved, reserved but `#`, and `%`: what an origin-form target is made of.
    private static let targetBytes = ASCIIByteSet(alphanumericsAnd: "-._~:/?[]@!$&'()*+,;=%")

    @inline(__always)
    private static func isTokenByte(_ c: UInt8) -> Bool { tokenBytes.contains(c) }

    @inline(__always)
    private static func isTargetByte(_ c: UInt8) -> Bool { targetBytes.contains(c) }
}

extension UnsafeRawBufferPointer {
    /// Whether these bytes are exactly `literal`'s UTF-8 (a method name, an SSE event name).
    @inline(__always)
    func equals(_ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { expected in
            expected.count == count && (count == 0 || memcmp(expected.baseAddress!, baseAddress!, count) == 0)
        }
    }
}
