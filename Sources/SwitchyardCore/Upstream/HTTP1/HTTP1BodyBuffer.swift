import NIOCore

/// The response body bytes that arrived before the caller asked for them, and whether the
/// connection should go on reading. A value; the exchange keeps it under its lock.
///
/// Parts are merged into one buffer: the caller reads a byte stream, not the upstream's chunking,
/// and one merged buffer costs no per-part bookkeeping. Reading stops once `limit` bytes wait
/// and starts again when the caller has taken them, so a slow reader of a huge body holds at most
/// `limit` plus one read of the socket.
struct HTTP1BodyBuffer {
    static let defaultLimit = 256 << 10

    private var bytes: ByteBuffer?
    /// Reading was stopped because the buffer was full.
    private(set) var isPaused = false
    let limit: Int

    init(limit: Int = HTTP1BodyBuffer.defaultLimit) {
        self.limit = limit
    }

    var bufferedBytes: Int { bytes?.readableBytes ?? 0 }

    var isEmpty: Bool { bufferedBytes == 0 }

    /// Keeps `part`; returns whether the connection should go on reading.
    mutating func append(_ part: ByteBuffer) -> Bool {
        if bytes == nil || bytes!.readableBytes == 0 {
            bytes = part
        } else {
            bytes!.writeImmutableBuffer(part)
        }
        if bufferedBytes >= limit {
            isPaused = true
            return false
        }
        return true
    }

    /// Everything buffered, and whether reading must start again (it was paused).
    mutating func take() -> (bytes: ByteBuffer?, resumeReading: Bool) {
        guard let taken = bytes, taken.readableBytes > 0 else { return (nil, false) }
        bytes = nil
        return (taken, resumeIfPaused())
    }

    /// The caller waits with nothing buffered: reading must start again if it was paused.
    mutating func resumeIfPaused() -> Bool {
        guard isPaused else { return false }
        isPaused = false
        return true
    }

    mutating func removeAll() {
        bytes = nil
    }
}
