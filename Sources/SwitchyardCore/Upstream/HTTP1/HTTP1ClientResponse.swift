import NIOCore
import NIOHTTP1

/// An upstream's answer: the head, and the body to read.
public struct HTTP1ClientResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: HTTP1ResponseBody
    /// How long the request waited for a free connection.
    public var queued: TimeAmount
}

/// The response body, read as it arrives. Read it once, by one reader.
///
/// The connection reads from the upstream only while the reader keeps up (at most
/// ``HTTP1BodyBuffer/defaultLimit`` bytes wait for it). A body dropped before its end, or a
/// reader cancelled while it waits, closes the connection; a body read to its end gives the
/// connection back to the pool.
public struct HTTP1ResponseBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public typealias Failure = HTTP1ClientError

    let consumer: HTTP1BodyConsumer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: HTTP1BodyConsumer

        public nonisolated(nonsending) mutating func next() async throws(HTTP1ClientError) -> ByteBuffer? {
            try await consumer.exchange.nextBodyPart()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(HTTP1ClientError) -> ByteBuffer? {
            try await consumer.exchange.nextBodyPart()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(consumer: consumer)
    }

    /// Reads the whole body; more than `limit` bytes is an error of kind `invalidResponse` (and
    /// closes the connection).
    public nonisolated(nonsending) func collect(upTo limit: Int) async throws(HTTP1ClientError) -> ByteBuffer {
        var iterator = makeAsyncIterator()
        var collected: ByteBuffer?
        while let part = try await iterator.next() {
            if collected == nil {
                collected = part
            } else {
                collected!.writeImmutableBuffer(part)
            }
            if collected!.readableBytes > limit {
                consumer.exchange.consumerDropped()
                throw HTTP1ClientError(.invalidResponse, "response body larger than \(limit) bytes")
            }
        }
        return collected ?? ByteBuffer()
    }
}
