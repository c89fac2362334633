import NIOCore

/// Reads and patches the few fields of Anthropic stream events that stream recovery needs
/// (`index`, a block's type, a text delta's text, `usage.output_tokens`), without decoding the
/// rest of the event.
enum StreamEventFields {
    /// A top-level integer member (`index`).
    static func int(_ key: StaticString, in data: ByteBuffer) -> Int? {
        data.withUnsafeReadableBytes { bytes in
            guard let skim = try? JSONSkimmer.skim(bytes), let member = JSONSkimmer.member(key, in: skim, bytes: bytes) else { return nil }
            return JSONSkimmer.intValue(member, bytes: bytes)
        }
    }

    /// A string member of a top-level object member: `content_block.type`, `delta.type`, `delta.text`.
    static func nestedString(_ outer: StaticString, _ inner: StaticString, in data: ByteBuffer) -> String? {
        data.withUnsafeReadableBytes { bytes in
            guard let object = JSONSkimmer.object(outer, in: bytes), let member = object.member(inner) else { return nil }
            return JSONSkimmer.stringValue(member, bytes: object.bytes)
        }
    }

    static func nestedInt(_ outer: StaticString, _ inner: StaticString, in data: ByteBuffer) -> Int? {
        data.withUnsafeReadableBytes { bytes in
            guard let object = JSONSkimmer.object(outer, in: bytes), let member = object.member(inner) else { return nil }
            return JSONSkimmer.intValue(member, bytes: object.bytes)
        }
    }

    /// The event with its top-level `index` set to `value`.
    static func settingIndex(_ value: Int, in data: ByteBuffer) -> ByteBuffer {
        data.withUnsafeReadableBytes { bytes in
            guard let skim = try? JSONSkimmer.skim(bytes), let member = JSONSkimmer.member("index", in: skim, bytes: bytes) else { return data }
            return replacing(member.value, in: bytes, with: Array(String(value).utf8))
        }
    }

    /// The event with `outer.inner` (an existing member) set to an encoded value.
    static func settingNested(_ outer: StaticString, _ inner: StaticString, to raw: [UInt8], in data: ByteBuffer) -> ByteBuffer {
        data.withUnsafeReadableBytes { bytes in
            guard let object = JSONSkimmer.object(outer, in: bytes), let member = object.member(inner) else { return data }
            let start = object.offset + member.value.lowerBound
            return replacing(start..<(start + member.value.count), in: bytes, with: raw)
        }
    }

    private static func replacing(_ range: Range<Int>, in bytes: UnsafeRawBufferPointer, with replacement: [UInt8]) -> ByteBuffer {
        var output = ByteBufferAllocator().buffer(capacity: bytes.count - range.count + replacement.count)
        output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[..<range.lowerBound]))
        output.writeBytes(replacement)
        output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[range.upperBound...]))
        return output
    }

    /// `event: NAME\ndata: DATA\n\n`, one `data:` line per line of DATA (an upstream may split an
    /// event's JSON over several `data:` lines; the parser joins them with newlines).
    static func event(_ name: String, data: ByteBuffer) -> ByteBuffer {
        var output = ByteBufferAllocator().buffer(capacity: name.utf8.count + data.readableBytes + 16)
        output.writeString("event: ")
        output.writeString(name)
        output.writeString("\n")
        data.withUnsafeReadableBytes { bytes in
            var start = 0
            for (offset, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
                output.writeString("data: ")
                output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start..<offset]))
                output.writeString("\n")
                start = offset + 1
            }
            output.writeString("data: ")
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[start...]))
        }
        output.writeString("\n\n")
        return output
    }
}
