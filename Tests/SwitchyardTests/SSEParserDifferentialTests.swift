import NIOCore
import Testing

@testable import SwitchyardCore

/// The parser against a reading of the SSE rules written for this test: the whole input split
/// into lines first, then folded into events. Random streams, fed in random pieces.
@Suite("SSE parser against a line-by-line reading")
struct SSEParserDifferentialTests {
    static let names: [String: SSEEventName] = [
        "message_start": .messageStart, "message_delta": .messageDelta, "message_stop": .messageStop,
        "content_block_start": .contentBlockStart, "content_block_delta": .contentBlockDelta,
        "content_block_stop": .contentBlockStop, "ping": .ping, "error": .error,
    ]

    struct Event: Equatable, CustomStringConvertible {
        var name: SSEEventName
        var data: [UInt8]
        var description: String { "\(name) \(String(decoding: data, as: UTF8.self).debugDescription)" }
    }

    /// Lines end at LF, CRLF or CR; a line with no end yet is not read. Also returns where the
    /// last blank line ends: the bytes up to there are read.
    static func reference(_ bytes: [UInt8]) -> (events: [Event], read: Int) {
        var lines: [(line: [UInt8], end: Int)] = []
        var current: [UInt8] = []
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case 10:
                lines.append((current, index + 1))
                current = []
            case 13:
                if index + 1 < bytes.count, bytes[index + 1] == 10 { index += 1 }
                lines.append((current, index + 1))
                current = []
            default:
                current.append(bytes[index])
            }
            index += 1
        }
        var events: [Event] = []
        var read = 0
        var name: SSEEventName = .other
        var data: [[UInt8]] = []
        var sawField = false
        for (line, end) in lines {
            if line.isEmpty {
                if sawField { events.append(Event(name: name, data: Array(data.joined(separator: [10])))) }
                (name, data, sawField) = (.other, [], false)
                read = end
                continue
            }
            if line.first == UInt8(ascii: ":") { continue }
            sawField = true
            let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
            var value = colon == line.endIndex ? [] : Array(line[(colon + 1)...])
            if value.first == UInt8(ascii: " ") { value.removeFirst() }
            switch String(decoding: line[..<colon], as: UTF8.self) {
            case "event": name = names[String(decoding: value, as: UTF8.self)] ?? .other
            case "data": data.append(value)
            default: break
            }
        }
        return (events, read)
    }

    static func randomStream(using random: inout SeededRandom) -> [UInt8] {
        let ends = ["\n", "\r\n", "\r"]
        let fieldNames = Array(names.keys) + ["message", "unknown_event", "", "pin"]
        var text = ""
        func end() -> String { ends[Int(random.next() % 3)] }
        for _ in 0..<(1 + Int(random.next() % 8)) {
            var lines: [String] = []
            for _ in 0..<Int(random.next() % 5) {
                switch random.next() % 9 {
                case 0: lines.append(": keep-alive")
                case 1: lines.append("event:" + fieldNames[Int(random.next() % UInt64(fieldNames.count))])
                case 2, 3: lines.append("event: " + fieldNames[Int(random.next() % UInt64(fieldNames.count))])
                case 4: lines.append("data")
                case 5: lines.append("data:  two spaces: and a colon")
                case 6: lines.append("id: 7")
                default: lines.append("data: {\"type\":\"x\",\"n\":\(random.next() % 1000)}")
                }
            }
            text += lines.map { $0 + end() }.joined() + end()
        }
        // A comment line last, so that a final lone CR is known to end its line. (A block's CR and
        // the next one's LF read as one CRLF: the reading, not the generator, says what is a block.)
        return Array((text + ": tail\n").utf8)
    }

    @Test func eventsMatchTheReadingInAnyPieces() throws {
        var random = SeededRandom(state: 0x5EE_0001)
        var events = 0
        for _ in 0..<2_000 {
            let stream = Self.randomStream(using: &random)
            let expected = Self.reference(stream)
            var parser = SSEEventParser()
            var seen: [Event] = []
            var forwarded: [UInt8] = []
            var offset = 0
            while offset < stream.count {
                let size = 1 + Int(random.next() % 40)
                parser.append(ByteBuffer(bytes: stream[offset..<min(stream.count, offset + size)]))
                offset += size
                while let event = try parser.next() {
                    seen.append(Event(name: event.name, data: Array(event.data.readableBytesView)))
                }
                if let bytes = parser.takeParsedBytes() { forwarded += Array(bytes.readableBytesView) }
            }
            #expect(seen == expected.events, "\(String(decoding: stream, as: UTF8.self).debugDescription)")
            // What is forwarded is the input as it came, up to the end of the last block read.
            #expect(forwarded == Array(stream.prefix(forwarded.count)))
            #expect(forwarded.count == expected.read)
            events += seen.count
        }
        // The generator makes events, not only padding.
        #expect(events > 4_000)
    }
}
