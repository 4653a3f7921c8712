import CometCore
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix

/// One listener (public or publisher) with graceful quiescing of its connections.
package final class GatewayListener: Sendable {
    private let gateway: GatewayContext
    private let group: any EventLoopGroup
    /// A quiescing helper serves exactly one server channel.
    private let quiesce: ServerQuiescingHelper

    init(gateway: GatewayContext, group: any EventLoopGroup) {
        self.gateway = gateway
        self.group = group
        self.quiesce = ServerQuiescingHelper(group: group)
    }

    /// Binds the listener.
    func bind(_ address: ListenAddress, role: ListenerRole) async throws -> any Channel {
        let gateway = self.gateway
        let quiesce = self.quiesce
        let bootstrap = ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoff(logger: gateway.logger, stats: gateway.stats))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try GatewayListener.addConnectionHandlers(to: channel, role: role, gateway: gateway)
                }
            }
        return try await bootstrap.bind(host: address.host, port: address.port).get()
    }

    /// Installs the per-connection pipeline: read activity, HTTP request decoder, connection handler.
    package static func addConnectionHandlers(to channel: any Channel, role: ListenerRole, gateway: GatewayContext) throws {
        let limits = gateway.configuration.limits
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        // The configured limits (max_uri_bytes, max_header_bytes) are checked on the parsed head, with their own
        // status codes; the parser's own bound only stops a runaway head early.
        decoderLimits.maxHeaderFieldSize = max(limits.maxURIBytes, limits.maxHeaderBytes) + 1024
        decoderLimits.maxHeaderListSize = limits.maxURIBytes + limits.maxHeaderBytes + 1024
        decoderLimits.maxHeaderFieldCount = 256
        let decoder = HTTPRequestDecoder(
            leftOverBytesStrategy: .dropBytes,
            informationalResponseStrategy: .drop,
            limitConfiguration: decoderLimits
        )
        let activity = ReadActivityHandler()
        try channel.pipeline.syncOperations.addHandler(activity)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
        try channel.pipeline.syncOperations.addHandler(
            HTTPConnectionHandler(role: role, gateway: gateway, readActivity: activity)
        )
    }

    /// Stops accepting, asks every connection to finish (held polls answered, streams told to reconnect) and
    /// completes when all are closed.
    func drain() -> EventLoopFuture<Void> {
        let promise = self.group.next().makePromise(of: Void.self)
        self.quiesce.initiateShutdown(promise: promise)
        return promise.futureResult
    }
}
