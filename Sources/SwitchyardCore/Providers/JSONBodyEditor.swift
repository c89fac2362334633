import NIOCore

/// Rewrites the top level of a JSON object body for platforms that address the model in the URL
/// (Bedrock, Vertex): members are dropped or added, every other member is copied byte for byte.
/// Nothing below the top level is decoded.
struct JSONBodyEditor {
    private var removed: [[UInt8]] = []
    private var added: [(key: String, raw: [UInt8])] = []

    /// Drops every top-level member called `key`.
    mutating func remove(_ key: String) {
        removed.append(Array(key.utf8))
    }

    /// Sets a top-level member to an already encoded JSON value (any existing one is dropped).
    mutating func set(_ key: String, raw: [UInt8]) {
        remove(key)
        added.append((key, raw))
    }

    mutating func set(_ key: String, string: String) {
        set(key, raw: JSONWriter.encodedString(string))
    }

    /// The edited body. `buffer` must hold a JSON object (``InboundBody`` checked that).
    func apply(to buffer: ByteBuffer) -> ByteBuffer {
        buffer.withUnsafeReadableBytes { bytes -> ByteBuffer in
            guard let skim = try? JSONSkimmer.skim(bytes), skim.topLevel == .object else { return buffer }
            var output = ByteBufferAllocator().buffer(capacity: bytes.count + 64 + added.reduce(0) { $0 + $1.key.utf8.count + $1.raw.count + 4 })
            output.writeInteger(UInt8(ascii: "{"))
            var first = true
            for member in skim.members where !isRemoved(member, bytes: bytes) {
                if !first { output.writeInteger(UInt8(ascii: ",")) }
                first = false
                // The key's quotes sit just outside its content range.
                output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[(member.key.lowerBound - 1)...member.key.upperBound]))
                output.writeInteger(UInt8(ascii: ":"))
                output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[member.value]))
            }
            for (key, raw) in added {
                if !first { output.writeInteger(UInt8(ascii: ",")) }
                first = false
                output.writeBytes(JSONWriter.encodedString(key))
                output.writeInteger(UInt8(ascii: ":"))
                output.writeBytes(raw)
            }
            output.writeInteger(UInt8(ascii: "}"))
            return output
        }
    }

    private func isRemoved(_ member: JSONSkimmer.Member, bytes: UnsafeRawBufferPointer) -> Bool {
        if member.keyHasEscapes {
            guard let decoded = JSONSkimmer.decodeString(bytes, contentRange: member.key) else { return false }
            return removed.contains { $0.elementsEqual(decoded.utf8) }
        }
        let key = UnsafeRawBufferPointer(rebasing: bytes[member.key])
        return removed.contains { $0.elementsEqual(key) }
    }

    /// `["a","b"]` from an `anthropic-beta` header's comma-separated values.
    static func stringArray(_ values: [String]) -> [UInt8] {
        var json = JSONWriter(capacity: 16 + values.reduce(0) { $0 + $1.utf8.count + 3 })
        json.beginArray()
        for value in values { json.string(value) }
        json.endArray()
        return json.bytes
    }
}
