import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The per-request entry point: the request, where to write the answer, the connection it came
/// on, and the canceller tied to that connection.
public typealias SwitchyardResponder = @Sendable (Request, consuming ResponseWriter, any Channel, DisconnectCanceller) async throws -> Void

/// Hummingbird's HTTP/1.1 child channel with Switchyard's connection handlers in front: the
/// request decoder (``PlainHTTP1Decoder``, NIO's for all but plain requests) with Switchyard's
/// limits; client timeouts and disconnect-driven cancellation
/// (``ConnectionGuard``); keep-alive idle timeout and graceful quiescing (``ConnectionLifecycle``);
/// the proxy fast path (``ProxyFastPath``); then Hummingbird's request loop for the rest.
public struct SwitchyardHTTP1Channel: ServerChildChannel {
    public struct Value: ServerChildChannelValue {
        public let asyncChannel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
        public let canceller: DisconnectCanceller
        public var channel: any Channel { asyncChannel.channel }
    }

    public struct Limits: Sendable {
        public var maxHeaderSize: Int
        public var maxHeaderCount: Int
        public var idleTimeout: Duration
        public var clientTimeout: Duration

        public init(maxHeaderSize: Int, maxHeaderCount: Int = 200, idleTimeout: Duration, clientTimeout: Duration) {
            self.maxHeaderSize = maxHeaderSize
            self.maxHeaderCount = maxHeaderCount
            self.idleTimeout = idleTimeout
            self.clientTimeout = clientTimeout
        }
    }

    let limits: Limits
    let responder: SwitchyardResponder
    let fastPath: HTTPFront?

    public init(limits: Limits, responder: @escaping SwitchyardResponder) {
        self.limits = limits
        self.responder = responder
        self.fastPath = nil
    }

    /// With the proxy fast path (``ProxyFastPath``) in front of Hummingbird's request loop.
    init(limits: Limits, front: HTTPFront) {
        self.limits = limits
        self.responder = { request, writer, channel, canceller in
            try await front.respond(to: request, writer: writer, channel: channel, canceller: canceller)
        }
        self.fastPath = front
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
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
            let canceller = DisconnectCanceller()
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuard(canceller: canceller, clientTimeout: .nanoseconds(limits.clientTimeout.nanoseconds))
            )
            try channel.pipeline.syncOperations.addHandler(ConnectionLifecycleHandler(idleTimeout: .nanoseconds(limits.idleTimeout.nanoseconds)))
            if let fastPath {
                try channel.pipeline.syncOperations.addHandler(ProxyFastPath(front: fastPath, canceller: canceller))
            }
            try channel.pipeline.syncOperations.addHandler(HeadResponseTrimmer())
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                wrappingChannelSynchronously: channel,
                configuration: .init(isOutboundHalfClosureEnabled: true)
            )
            return Value(asyncChannel: asyncChannel, canceller: canceller)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        let connection = Connection(responder: responder, canceller: value.canceller)
        await connection.handleHTTP(asyncChannel: value.asyncChannel, logger: logger)
    }

    /// Hummingbird's request loop, with a responder bound to this connection's canceller.
    struct Connection: HTTPChannelHandler {
        typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
        let responder: HTTPChannelHandler.Responder

        init(responder: @escaping SwitchyardResponder, canceller: DisconnectCanceller) {
            self.responder = { request, writer, channel in
                try await responder(request, writer, channel, canceller)
            }
        }

        func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
            channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }

        func handle(value: Value, logger: Logger) async {
            await handleHTTP(asyncChannel: value, logger: logger)
        }
    }
}
