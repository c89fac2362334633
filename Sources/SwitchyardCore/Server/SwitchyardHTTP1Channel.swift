import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 child channel with Switchyard's connection handlers in front: the
/// request decoder (``PlainHTTP1Decoder``, NIO's for all but plain requests) with Switchyard's
/// limits; client timeouts and the connection's close signal (``ConnectionGuard``); keep-alive
/// idle timeout and graceful quiescing (``ConnectionLifecycle``); the proxy fast path
/// (``ProxyFastPath``); then Hummingbird's request loop for the rest.
///
/// Each connection's requests are served in one structured scope: Hummingbird's request loop and
/// the fast path's requests (``FastPathRequests``) as its child tasks; when the connection closes
/// the scope cancels them, so a caller that leaves stops its upstream call at once.
struct SwitchyardHTTP1Channel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let asyncChannel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
        let closeSignal: ConnectionCloseSignal
        let fastPathRequests: FastPathRequests
        var channel: any Channel { asyncChannel.channel }
    }

    struct Limits: Sendable {
        var maxHeaderSize: Int
        var maxHeaderCount: Int
        var idleTimeout: Duration
        var clientTimeout: Duration

        init(maxHeaderSize: Int, maxHeaderCount: Int = 200, idleTimeout: Duration, clientTimeout: Duration) {
            self.maxHeaderSize = maxHeaderSize
            self.maxHeaderCount = maxHeaderCount
            self.idleTimeout = idleTimeout
            self.clientTimeout = clientTimeout
        }
    }

    let limits: Limits
    let front: HTTPFront

    init(limits: Limits, front: HTTPFront) {
        self.limits = limits
        self.front = front
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var decoderLimits = NIOHTTPDecoderLimitConfiguration()
            decoderLimits.maxHeaderFieldSize = limits.maxHeaderSize
            decoderLimits.maxHeaderListSize = limits.maxHeaderSize
            decoderLimits.maxHeaderFieldCount = limits.maxHeaderCount
            // NIO's codec as `configureHTTPServerPipeline` sets it up (no pipelining assistance,
            // error handling or outbound validation), except that the encoder is not paired with
            // the decoder: answers to HEAD requests are ``HeadResponseTrimmer``'s to keep bodiless.
            // Plain requests are read by ``PlainHTTP1Decoder``, which hands the connection to
            // NIO's decoder at the first request that is not.
            try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder(configuration: .init()))
            try channel.pipeline.syncOperations.addHandler(PlainHTTP1Decoder.callerRequests(limits: decoderLimits))
            // Connection-wide handlers sit before the fast path, in NIO's HTTP/1 types, so that
            // they see every request; the conversion to HTTP types is Hummingbird's alone.
            let closeSignal = ConnectionCloseSignal()
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuard(closeSignal: closeSignal, clientTimeout: .nanoseconds(limits.clientTimeout.nanoseconds))
            )
            try channel.pipeline.syncOperations.addHandler(ConnectionLifecycleHandler(idleTimeout: .nanoseconds(limits.idleTimeout.nanoseconds)))
            // The connection's loop as its requests' executor, shared by the loop's connections.
            let requests = FastPathRequests(executor: LoopTaskExecutor.ofCurrentLoop ?? LoopTaskExecutor(loop: channel.eventLoop))
            try channel.pipeline.syncOperations.addHandler(ProxyFastPath(front: front, requests: requests))
            try channel.pipeline.syncOperations.addHandler(HeadResponseTrimmer())
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                wrappingChannelSynchronously: channel,
                configuration: .init(isOutboundHalfClosureEnabled: true)
            )
            return Value(asyncChannel: asyncChannel, closeSignal: closeSignal, fastPathRequests: requests)
        }
    }

    func handle(value: Value, logger: Logger) async {
        let connection = Connection(front: front)
        let requests = value.fastPathRequests
        await withDiscardingTaskGroup { group in
            group.addTask { await connection.handleHTTP(asyncChannel: value.asyncChannel, logger: logger) }
            group.addTask(executorPreference: requests.executor) { await requests.serve() }
            await value.closeSignal.closed()
            requests.finish()
            group.cancelAll()
        }
    }

    /// Hummingbird's request loop, answering through the front.
    struct Connection: HTTPChannelHandler {
        typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
        let responder: HTTPChannelHandler.Responder

        init(front: HTTPFront) {
            self.responder = { request, writer, channel in
                try await front.respond(to: request, writer: writer, channel: channel)
            }
        }

        func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
            channel.eventLoop.makeCompletedFuture(Result<Value, any Error>.failure(ChannelError.operationUnsupported))
        }

        func handle(value: Value, logger: Logger) async {
            await handleHTTP(asyncChannel: value, logger: logger)
        }
    }
}
