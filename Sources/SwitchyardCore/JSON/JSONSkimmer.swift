/// A single-pass, allocation-light JSON validator that also reports where each member of the
/// top-level object sits. Switchyard never decodes a request body: it validates it, finds `model`
/// and `stream`, and patches `model` in place.
///
/// Iterative (an explicit bit stack, not recursion), so hostile nesting cannot overflow the stack.
public enum JSONSkimmer {
    public enum Kind: Sendable, Equatable {
        case object, array, string, number, `true`, `false`, null
    }

    public struct Member: Sendable, Equatable {
        /// Byte range of the key's content, quotes excluded.
        public var key: Range<Int>
        public var keyHasEscapes: Bool
        /// Byte range of the value, quotes included for strings.
        public var value: Range<Int>
        public var kind: Kind
        public var valueHasEscapes: Bool
    }

    public struct Skim: Sendable {
        public var topLevel: Kind
        /// Members of the top-level object, in order (empty for other top-level values).
        public var members: [Member]
    }

    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "\(reason) at byte \(offset)" }
    }

    public static let maxDepth = 512

    public static func skim(_ bytes: UnsafeRawBufferPointer) throws(SyntaxError) -> Skim {
        var parser = Parser(bytes: bytes)
        return try parser.run()
    }

    public static func skim(_ bytes: [UInt8]) throws(SyntaxError) -> Skim {
        let result: Result<Skim, SyntaxError> = bytes.withUnsafeBytes { buffer in
            do throws(SyntaxError) {
                return .success(try skim(buffer))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The member named `key` (exact, unescaped comparison; escaped keys are compared after decoding).
    public static func member(_ key: StaticString, in skim: Skim, bytes: UnsafeRawBufferPointer) -> Member? {
        let wanted = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        for member in skim.members {
            if member.keyHasEscapes {
                if let decoded = decodeString(bytes, contentRange: member.key), decoded.utf8.elementsEqual(wanted) { return member }
            } else if member.key.count == wanted.count, memcmpEqual(bytes, member.key.lowerBound, wanted) {
                return member
            }
        }
        return nil
    }

    /// An object member of the top-level object, skimmed in its turn: how `outer.inner` is read
    /// (`message.usage`, `delta.text`) without decoding the rest. Valid only while the buffer it
    /// was found in is.
    struct NestedObject {
        /// The object's bytes, braces included: a slice of the outer buffer.
        var bytes: UnsafeRawBufferPointer
        /// Where ``bytes`` start in the outer buffer.
        var offset: Int
        var skim: Skim

        func member(_ key: StaticString) -> Member? {
            JSONSkimmer.member(key, in: skim, bytes: bytes)
        }
    }

    /// The top-level object's member `key`, skimmed; nil when `bytes` or the member is not valid
    /// JSON, or the member is missing or not an object.
    static func object(_ key: StaticString, in bytes: UnsafeRawBufferPointer) -> NestedObject? {
        guard let skim = try? JSONSkimmer.skim(bytes), let member = JSONSkimmer.member(key, in: skim, bytes: bytes), member.kind == .object else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: bytes[member.value])
        guard let innerSkim = try? JSONSkimmer.skim(inner) else { return nil }
        return NestedObject(bytes: inner, offset: member.value.lowerBound, skim: innerSkim)
    }

    /// Decodes the content of a JSON string (the bytes between its quotes).
    public static func decodeString(_ bytes: UnsafeRawBufferPointer, contentRange: Range<Int>) -> String? {
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var i = contentRange.lowerBound
        func flush() {
            if !utf8.isEmpty {
                scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
                utf8.removeAll(keepingCapacity: true)
            }
        }
        while i < contentRange.upperBound {
            let byte = bytes[i]
            if byte != UInt8(ascii: "\\") {
                utf8.append(byte)
                i += 1
                continue
            }
            flush()
            guard i + 1 < contentRange.upperBound else { return nil }
            let escape = bytes[i + 1]
            i += 2
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                guard let high = hex4(bytes, i, contentRange.upperBound) else { return nil }
                i += 4
                if (0xD800..<0xDC00).contains(high), i + 6 <= contentRange.upperBound, bytes[i] == UInt8(ascii: "\\"),
                    bytes[i + 1] == UInt8(ascii: "u"), let low = hex4(bytes, i + 2, contentRange.upperBound), (0xDC00..<0xE000).contains(low)
                {
                    i += 6
                    scalars.append(Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)) ?? "\u{FFFD}")
                } else {
                    scalars.append(Unicode.Scalar(high) ?? "\u{FFFD}")
                }
            default:
                return nil
            }
        }
        flush()
        return String(scalars)
    }

    /// The string value of a member (quotes stripped, escapes decoded).
    public static func stringValue(_ member: Member, bytes: UnsafeRawBufferPointer) -> String? {
        guard member.kind == .string else { return nil }
        let content = (member.value.lowerBound + 1)..<(member.value.upperBound - 1)
        if member.valueHasEscapes { return decodeString(bytes, contentRange: content) }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[content]), as: UTF8.self)
    }

    /// The integer value of a number member, if it is a whole number that fits.
    public static func intValue(_ member: Member, bytes: UnsafeRawBufferPointer) -> Int? {
        guard member.kind == .number else { return nil }
        var value = 0
        for i in member.value {
            let byte = bytes[i]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
        }
        return value
    }

    private static func hex4(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt32? {
        guard start + 4 <= end else { return nil }
        var value: UInt32 = 0
        for i in start..<(start + 4) {
            guard let digit = hexValue(bytes[i]) else { return nil }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func memcmpEqual(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _ other: UnsafeRawBufferPointer) -> Bool {
        for i in 0..<other.count where bytes[offset + i] != other[i] { return false }
        return true
    }
}

extension JSONSkimmer {
    /// The validating state machine. One instance per document.
    /// Where the run of plain string bytes from `start` ends: printable ASCII but `"` and `\`,
    /// the bulk of any answer's text. Eight bytes a step, then one at a time: the byte loop on the
    /// parser's own state took ~17 instructions a byte, and an answer's text is kilobytes
    /// (bench/README.md, step 16).
    static func plainRun(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard let base = bytes.baseAddress else { return start }
        let end = bytes.count
        var position = start
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while position &+ 8 <= end {
            let word = UInt64(littleEndian: (base + position).loadUnaligned(as: UInt64.self))
            // Bit 7 of a byte set in `stop` marks a byte that ends the run: one of 0x80 and up,
            // one below 0x20 (exact once those are ruled out), a quote or a backslash.
            let quotes = word ^ (ones &* 0x22)
            let backslashes = word ^ (ones &* 0x5C)
            let stop = word | ((word &- ones &* 0x20) & ~word) | ((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes)
            if stop & highs != 0 { break }
            position &+= 8
        }
        while position < end {
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") else { break }
            position &+= 1
        }
        return position
    }

    struct Parser {
        let bytes: UnsafeRawBufferPointer
        var index = 0
        var depth = 0
        /// Bit `d` set: the container at depth `d + 1` is an object.
        var objectBits = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        var members: [Member] = []
        var topLevel: Kind = .null
        var pendingKey: Range<Int> = 0..<0
        var pendingKeyEscaped = false
        var memberValueStart = 0

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
            // Room for a Messages request's or answer's members without growing the array step by step.
            members.reserveCapacity(16)
        }

        mutating func run() throws(SyntaxError) -> Skim {
            skipWhitespace()
            guard index < bytes.count else { throw SyntaxError(offset: index, reason: "empty document") }
            try parseValue(topLevel: true)
            skipWhitespace()
            guard index == bytes.count else { throw SyntaxError(offset: index, reason: "unexpected data after the JSON value") }
            return Skim(topLevel: topLevel, members: members)
        }

        private func isObject(atDepth d: Int) -> Bool {
            let bit = UInt64(1) << UInt64((d - 1) % 64)
            // A switch, not `withUnsafeBytes(of:)`: that copied the 64-byte tuple for every call,
            // ~30 calls an answer.
            let word: UInt64
            switch (d - 1) / 64 {
            case 0: word = objectBits.0
            case 1: word = objectBits.1
            case 2: word = objectBits.2
            case 3: word = objectBits.3
            case 4: word = objectBits.4
            case 5: word = objectBits.5
            case 6: word = objectBits.6
            default: word = objectBits.7
            }
            return word & bit != 0
        }

        private mutating func push(object: Bool) throws(SyntaxError) {
            guard depth < JSONSkimmer.maxDepth else { throw SyntaxError(offset: index, reason: "nesting deeper than \(JSONSkimmer.maxDepth) levels") }
            depth += 1
            let word = (depth - 1) / 64
            let bit = UInt64(1) << UInt64((depth - 1) % 64)
            withUnsafeMutableBytes(of: &objectBits) { raw in
                var value = raw.load(fromByteOffset: word * 8, as: UInt64.self)
                if object { value |= bit } else { value &= ~bit }
                raw.storeBytes(of: value, toByteOffset: word * 8, as: UInt64.self)
            }
        }

        /// Parses one complete value starting at `index` (whitespace already skipped).
        private mutating func parseValue(topLevel isTop: Bool) throws(SyntaxError) {
            let startDepth = depth
            // States of the loop: expecting a value, or having just finished one.
            var expectingValue = true
            while true {
                if expectingValue {
                    guard index < bytes.count else { throw SyntaxError(offset: index, reason: "unexpected end of data, expected a value") }
                    let start = index
                    let byte = bytes[index]
                    var kind: Kind
                    var escaped = false
                    switch byte {
                    case UInt8(ascii: "{"):
                        if try open(object: true, topLevel: isTop) {
                            kind = .object
                            break
                        }
                        try parseKey()
                        continue
                    case UInt8(ascii: "["):
                        if try open(object: false, topLevel: isTop) {
                            kind = .array
                            break
                        }
                        continue
                    case UInt8(ascii: "\""):
                        escaped = try parseString()
                        kind = .string
                    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                        try parseNumber()
                        kind = .number
                    case UInt8(ascii: "t"):
                        try expectLiteral("true")
                        kind = .true
                    case UInt8(ascii: "f"):
                        try expectLiteral("false")
                        kind = .false
                    case UInt8(ascii: "n"):
                        try expectLiteral("null")
                        kind = .null
                    default:
                        throw SyntaxError(offset: index, reason: "unexpected character '\(printable(byte))', expected a value")
                    }
                    if isTop && depth == 0 { topLevel = kind }
                    if depth == 1 && isObject(atDepth: 1) {
                        // A member value of the top-level object: scalars and empty containers end here.
                        let valueStart = (kind == .object || kind == .array) ? memberValueStart : start
                        members.append(
                            Member(key: pendingKey, keyHasEscapes: pendingKeyEscaped, value: valueStart..<index, kind: kind, valueHasEscapes: escaped)
                        )
                    }
                    expectingValue = false
                }
                // A value just ended at depth `depth`.
                if depth == startDepth { return }
                skipWhitespace()
                guard index < bytes.count else { throw SyntaxError(offset: index, reason: "unexpected end of data inside \(isObject(atDepth: depth) ? "an object" : "an array")") }
                let byte = bytes[index]
                if byte == UInt8(ascii: ",") {
                    index += 1
                    skipWhitespace()
                    if isObject(atDepth: depth) { try parseKey() }
                    expectingValue = true
                    continue
                }
                let closer = isObject(atDepth: depth) ? UInt8(ascii: "}") : UInt8(ascii: "]")
                guard byte == closer else {
                    let expected = isObject(atDepth: depth) ? "',' or '}'" : "',' or ']'"
                    throw SyntaxError(offset: index, reason: "unexpected character '\(printable(byte))', expected \(expected)")
                }
                let wasObject = isObject(atDepth: depth)
                index += 1
                depth -= 1
                if depth == 1 && isObject(atDepth: 1) {
                    members.append(
                        Member(key: pendingKey, keyHasEscapes: pendingKeyEscaped, value: memberValueStart..<index, kind: wasObject ? .object : .array, valueHasEscapes: false)
                    )
                }
            }
        }

        /// Enters the `{` or `[` at `index`. True when it closes at once (`{}`, `[]`): a value that
        /// is finished; otherwise `index` is left at the container's first key or element.
        @inline(__always)
        private mutating func open(object: Bool, topLevel isTop: Bool) throws(SyntaxError) -> Bool {
            if isTop && depth == 0 { topLevel = object ? .object : .array }
            if depth == 1 && isObject(atDepth: 1) { memberValueStart = index }
            try push(object: object)
            index += 1
            skipWhitespace()
            guard index < bytes.count, bytes[index] == (object ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { return false }
            index += 1
            depth -= 1
            return true
        }

        /// Parses `"key" :` and leaves `index` at the value.
        private mutating func parseKey() throws(SyntaxError) {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                if index >= bytes.count { throw SyntaxError(offset: index, reason: "unexpected end of data, expected an object key") }
                throw SyntaxError(offset: index, reason: "unexpected character '\(printable(bytes[index]))', expected a string key")
            }
            let start = index
            let escaped = try parseString()
            if depth == 1 {
                pendingKey = (start + 1)..<(index - 1)
                pendingKeyEscaped = escaped
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw SyntaxError(offset: index, reason: "expected ':' after object key")
            }
            index += 1
            skipWhitespace()
        }

        /// Parses a string starting at its opening quote; returns whether it contains escapes.
        private mutating func parseString() throws(SyntaxError) -> Bool {
            index += 1
            var escaped = false
            while true {
                index = JSONSkimmer.plainRun(in: bytes, from: index)
                guard index < bytes.count else { break }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return escaped
                }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    guard index + 1 < bytes.count else { break }
                    switch bytes[index + 1] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        index += 2
                    case UInt8(ascii: "u"):
                        guard index + 6 <= bytes.count,
                            (2..<6).allSatisfy({ JSONSkimmer.hexValue(bytes[index + $0]) != nil })
                        else { throw SyntaxError(offset: index, reason: "invalid \\u escape in string") }
                        index += 6
                    default:
                        throw SyntaxError(offset: index, reason: "invalid escape '\\\(printable(bytes[index + 1]))' in string")
                    }
                    continue
                }
                if byte < 0x20 {
                    throw SyntaxError(offset: index, reason: "control character in string (must be escaped)")
                }
                // What else ends a plain run starts a multi-byte sequence.
                try skipUTF8Sequence()
            }
            throw SyntaxError(offset: index, reason: "unterminated string")
        }

        /// Validates one multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
        private mutating func skipUTF8Sequence() throws(SyntaxError) {
            let lead = bytes[index]
            let invalid = SyntaxError(offset: index, reason: "invalid UTF-8 in string")
            var length: Int
            var lowerBound: UInt8 = 0x80
            var upperBound: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lowerBound = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upperBound = 0x9F
            case 0xF0: length = 4; lowerBound = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upperBound = 0x8F
            default: throw invalid
            }
            guard index + length <= bytes.count else { throw invalid }
            let second = bytes[index + 1]
            guard second >= lowerBound, second <= upperBound else { throw invalid }
            for offset in 2..<max(2, length) where bytes[index + offset] & 0xC0 != 0x80 { throw invalid }
            index += length
        }

        private mutating func parseNumber() throws(SyntaxError) {
            let start = index
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw SyntaxError(offset: index, reason: "invalid number") }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw SyntaxError(offset: index, reason: "invalid number: digits expected after '.'") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw SyntaxError(offset: index, reason: "invalid number: digits expected in exponent") }
                while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count, isDigit(bytes[index]) {
                throw SyntaxError(offset: start, reason: "invalid number: leading zero")
            }
        }

        private mutating func expectLiteral(_ literal: StaticString) throws(SyntaxError) {
            let count = literal.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw SyntaxError(offset: index, reason: "invalid literal, expected '\(literal)'") }
            for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] {
                throw SyntaxError(offset: index, reason: "invalid literal, expected '\(literal)'")
            }
            index += count
        }

        private mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
                default: return
                }
            }
        }

        private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        private func printable(_ byte: UInt8) -> String {
            (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
        }
    }
}
