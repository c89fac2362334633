import CivilTime

/// A moment to sign at, in whole seconds: SigV4 has one-second resolution. The signer takes it as
/// an input, so signing needs no clock and AWS's test vectors run against it directly.
public struct SigV4Timestamp: Sendable, Hashable, Comparable {
    public var unixSeconds: Int64

    public init(unixSeconds: Int64) {
        self.unixSeconds = unixSeconds
    }

    /// "2015-08-30T12:36:00Z" (UTC, no fraction, no offset: the form the vectors' context.json uses).
    public init?(iso8601: String) {
        let bytes = Array(iso8601.utf8)
        guard bytes.count == 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "Z")
        else { return nil }
        self.init(bytes, year: 0, month: 5, day: 8, hour: 11, minute: 14, second: 17)
    }

    /// "20150830T123600Z", the X-Amz-Date form.
    public init?(amzDate: String) {
        let bytes = Array(amzDate.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        self.init(bytes, year: 0, month: 4, day: 6, hour: 9, minute: 11, second: 13)
    }

    /// Reads the fields at the given offsets; every field must be all digits and in range.
    private init?(_ bytes: [UInt8], year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        guard let y = Self.digits(bytes, year, 4), let mo = Self.digits(bytes, month, 2), let d = Self.digits(bytes, day, 2),
            let h = Self.digits(bytes, hour, 2), let mi = Self.digits(bytes, minute, 2), let s = Self.digits(bytes, second, 2),
            (1...12).contains(mo), d >= 1, d <= CivilTime.daysInMonth(year: y, month: mo), h < 24, mi < 60, s < 60
        else { return nil }
        unixSeconds = CivilTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s).unixSeconds
    }

    /// "20150830T123600Z"
    public var amzDate: String {
        let (y, mo, d, h, mi, s) = fields
        var out: [UInt8] = []
        out.reserveCapacity(16)
        Self.append(y, width: 4, to: &out)
        Self.append(mo, width: 2, to: &out)
        Self.append(d, width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        Self.append(h, width: 2, to: &out)
        Self.append(mi, width: 2, to: &out)
        Self.append(s, width: 2, to: &out)
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// "20150830", the date of the credential scope.
    public var dateStamp: String {
        String(amzDate.prefix(8))
    }

    public static func < (lhs: SigV4Timestamp, rhs: SigV4Timestamp) -> Bool {
        lhs.unixSeconds < rhs.unixSeconds
    }

    private var fields: (Int64, Int64, Int64, Int64, Int64, Int64) {
        let time = CivilTime(unixMilliseconds: unixSeconds * 1000)
        return (time.year, time.month, time.day, time.hour, time.minute, time.second)
    }

    private static func digits(_ bytes: [UInt8], _ start: Int, _ count: Int) -> Int64? {
        var value: Int64 = 0
        for byte in bytes[start..<start + count] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func append(_ value: Int64, width: Int, to out: inout [UInt8]) {
        var digits: [UInt8] = []
        var rest = value < 0 ? 0 : value
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: max(0, width - digits.count)))
        out.append(contentsOf: digits.reversed())
    }
}

/// The canonical forms SigV4 hashes: URI, query, headers. Pure functions over bytes, shared by the
/// signer and the verifier so that both compute the same thing.
enum SigV4Canonical {
    /// The canonical URI: the path as botocore's `SigV4Auth` makes it for every service but S3.
    /// `normalize` removes "." and ".." segments and empty segments (collapsed slashes) the way
    /// botocore's `remove_dot_segments` does; then every byte but unreserved ones and "/" is
    /// percent-encoded, "%" included, so an already-encoded wire path is encoded a second time.
    static func uri(_ path: String, normalize: Bool) -> String {
        let path = normalize ? removeDotSegments(path) : path
        if path.isEmpty { return "/" }
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count + 16)
        encode(path.utf8, keepSlash: true, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// botocore's `remove_dot_segments`: unlike RFC 3986 5.2.4, a trailing "." or ".." leaves no
    /// trailing slash ("/a/b/.." becomes "/a"), and runs of slashes collapse to one.
    static func removeDotSegments(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        var kept: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) where segment != "." {
            if segment == ".." {
                _ = kept.popLast()
            } else {
                kept.append(segment)
            }
        }
        let leading = path.hasPrefix("/") ? "/" : ""
        let trailing = path.hasSuffix("/") && !kept.isEmpty ? "/" : ""
        return leading + kept.joined(separator: "/") + trailing
    }

    /// The canonical query: each `name=value` pair of `raw` percent-decoded and encoded again
    /// (unreserved bytes bare, every other byte as upper-case %XX; "+" is a literal plus, not a
    /// space), plus `extra` pairs given decoded, sorted by encoded name then encoded value.
    /// Empty pairs ("a=1&&b=2") carry nothing and are skipped.
    static func query(_ raw: String?, extra: [(name: String, value: String)] = []) -> String {
        var pairs: [(name: [UInt8], value: [UInt8])] = []
        if let raw, !raw.isEmpty {
            for part in raw.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
                let equals = part.firstIndex(of: UInt8(ascii: "="))
                let name = equals.map { part[part.startIndex..<$0] } ?? part[...]
                let value = equals.map { part[part.index(after: $0)...] } ?? part[part.endIndex...]
                pairs.append((encoded(percentDecoded(name)), encoded(percentDecoded(value))))
            }
        }
        for (name, value) in extra {
            pairs.append((encoded(Array(name.utf8)), encoded(Array(value.utf8))))
        }
        pairs.sort { $0.name == $1.name ? $0.value.lexicographicallyPrecedes($1.value) : $0.name.lexicographicallyPrecedes($1.name) }
        var out: [UInt8] = []
        for (index, pair) in pairs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "&")) }
            out.append(contentsOf: pair.name)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: pair.value)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The canonical header block ("name:value\n" per name) and the SignedHeaders list.
    /// Names are lower-cased and sorted; each value is trimmed with inner whitespace runs
    /// (spaces, tabs, folded line breaks) collapsed to one space; repeated names join with ","
    /// in the order they came.
    static func headers(_ headers: [(name: String, value: String)]) -> (block: String, signedHeaders: String) {
        var byName: [String: [String]] = [:]
        for (name, value) in headers {
            byName[lowercased(name), default: []].append(trimAll(value))
        }
        let names = byName.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var block = ""
        for name in names {
            block += name + ":" + byName[name]!.joined(separator: ",") + "\n"
        }
        return (block, names.joined(separator: ";"))
    }

    /// The canonical request, as the four vectors' *-canonical-request.txt files show it.
    static func request(method: String, uri: String, query: String, headerBlock: String, signedHeaders: String, payloadSHA256: String)
        -> String
    {
        method + "\n" + uri + "\n" + query + "\n" + headerBlock + "\n" + signedHeaders + "\n" + payloadSHA256
    }

    /// ASCII lower-casing and trimming of a header name; HTTP field names are ASCII tokens.
    static func lowercased(_ name: String) -> String {
        let bytes = name.utf8.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }
        guard let first = bytes.firstIndex(where: { !isWhitespace($0) }), let last = bytes.lastIndex(where: { !isWhitespace($0) })
        else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }

    /// SigV4's Trimall: no whitespace at either end, each inner run of it one space.
    static func trimAll(_ value: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        var pendingSpace = false
        for byte in value.utf8 {
            if isWhitespace(byte) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(UInt8(ascii: " ")) }
                pendingSpace = false
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Space, tab, LF, VT, FF, CR: what Python's `str.split()` (botocore's trim) splits on in ASCII.
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    static func encoded(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        encode(bytes, keepSlash: false, into: &out)
        return out
    }

    /// RFC 3986 encoding with only unreserved bytes (A-Z a-z 0-9 - . _ ~) left bare, upper-case hex.
    static func encode(_ bytes: some Sequence<UInt8>, keepSlash: Bool, into out: inout [UInt8]) {
        for byte in bytes {
            if isUnreserved(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(upperHex[Int(byte >> 4)])
                out.append(upperHex[Int(byte & 0x0F)])
            }
        }
    }

    /// Decodes each "%XX" with two hex digits; any other "%" stays a literal percent sign.
    static func percentDecoded(_ bytes: some Collection<UInt8>) -> [UInt8] {
        let bytes = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hexValue(bytes[index + 1]),
                let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    static func lowerHex(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(lowerHexDigits[Int(byte >> 4)])
            out.append(lowerHexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Compares without stopping at the first difference, so that timing tells nothing about how
    /// much of a signature or token was right.
    static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8)
        let b = Array(rhs.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static let upperHex = Array("0123456789ABCDEF".utf8)
    private static let lowerHexDigits = Array("0123456789abcdef".utf8)
}
