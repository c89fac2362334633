import NIOHTTP1

extension HTTPResponseHead {
    /// NIO's `isKeepAlive`, read without allocating. NIO's decoder hands its heads over with the
    /// answer already worked out; a head built by ``SimpleHTTPHead`` has none, and NIO would split
    /// the `connection` values into new arrays to find it, on every answer.
    var keepsConnectionAlive: Bool {
        var state: Bool?
        for (name, value) in headers where name.utf8.count == 10 && name.equalsLowercasedASCII("connection") {
            var utf8 = value.utf8[...]
            while !utf8.isEmpty {
                let comma = utf8.firstIndex(of: UInt8(ascii: ",")) ?? utf8.endIndex
                let token = Self.trimmed(utf8[..<comma])
                if Self.token(token, is: "close") {
                    state = false
                } else if Self.token(token, is: "keep-alive") {
                    // Both, or keep-alive twice, is clearly bad, and means close (as NIO has it).
                    state = state == nil
                }
                utf8 = comma == utf8.endIndex ? utf8[comma...] : utf8[utf8.index(after: comma)...]
            }
        }
        return state ?? (version.major == 1 && version.minor >= 1)
    }

    private static func trimmed(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
        var bytes = bytes
        while let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { bytes.removeFirst() }
        while let last = bytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { bytes.removeLast() }
        return bytes
    }

    private static func token(_ bytes: Substring.UTF8View, is lowercased: StaticString) -> Bool {
        bytes.count == lowercased.utf8CodeUnitCount
            && zip(bytes, UnsafeBufferPointer(start: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount)).allSatisfy { byte, expected in
                (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == expected
            }
    }
}
