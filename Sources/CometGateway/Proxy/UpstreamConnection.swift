import CometCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// What an upstream connection reports to the proxied request using it. Called on the connection's event loop.
protocol UpstreamResponder: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ part: ByteBuffer)
    /// The response is complete; `reusable` when the connection may serve another request.
    func upstreamResponseEnd(reusable: Bool)
    /// The connection failed or closed before its response was complete.
    func upstreamFailed()
    /// The connection can take more request body again (its socket drained).
    func upstreamWritable()
    /// After a `101`: bytes of the protocol the connection switched to.
    func upstreamTunnelBytes(_ bytes: ByteBuffer)
    /// After a `101`: the HTTP codec is gone, raw bytes may be sent.
    func upstreamTunnelReady()
    /// A read from the upstream is done: what it produced may go out to the client now.
    func upstreamReadComplete()
}

/// One keep-alive HTTP/1.1 connection to an upstream application, on one event loop. It serves one request at a time
/// for whichever ``UpstreamResponder`` holds it, and goes back to its ``UpstreamPool`` when a response ends cleanly.
final class UpstreamConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let upstream: ProxyConfiguration.Upstream
    private(set) var channel: (any Channel)?
    private var context: ChannelHandlerContext?
    /// Who gets the current response.
    weak var responder: (any UpstreamResponder)?
    /// The current response's head said the connection stays open.
    private var responseKeepAlive = true
    /// The current request asked to keep the connection.
    private var requestKeepAlive = true
    private(set) var isClosed = false

    init(upstream: ProxyConfiguration.Upstream) {
        self.upstream = upstream
    }

    /// Connects, within `timeout`.
    static func connect(to upstream: ProxyConfiguration.Upstream, on loop: any EventLoop,
                        timeout: TimeAmount) -> EventLoopFuture<NIOLoopBound<UpstreamConnection>> {
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Bytes behind a 101 stay for the tunnel (see `switchToTunnel`). No outbound header validation:
                    // the headers are the client's, already held to the token and field-value grammar by the
                    // gateway's request parser (and the gateway's own, which are constants).
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes, enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection(upstream: upstream))
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .flatMapThrowing { channel in
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self), eventLoop: loop)
            }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Whether the socket takes more request body now.
    var isWritable: Bool { self.channel?.isWritable ?? false }

    /// Sends a request head (its body, if any, follows with ``send(_:)`` and ``end()``); `flush`: now (a body
    /// follows later), or with the end (a request without a body: one write for both).
    func send(_ head: HTTPRequestHead, flush: Bool) {
        self.requestKeepAlive = head.isKeepAlive
        self.responseKeepAlive = true
        if flush {
            self.context?.writeAndFlush(self.wrapOutboundOut(.head(head)), promise: nil)
        } else {
            self.context?.write(self.wrapOutboundOut(.head(head)), promise: nil)
        }
    }

    func send(_ part: ByteBuffer) {
        self.context?.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
    }

    func end() {
        self.context?.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Reading the response pauses while the client cannot take more (back-pressure), and resumes.
    func setReading(_ reading: Bool) {
        _ = self.channel?.setOption(.autoRead, value: reading)
    }

    func close() {
        guard !self.isClosed else { return }
        self.isClosed = true
        self.channel?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            guard head.status.code >= 200 || head.status.code == 101 else { return }  // 1xx interim: not relayed
            self.responseKeepAlive = head.isKeepAlive
            self.tunnelled = head.status.code == 101  // the codec leaves at the response's end
            self.responder?.upstreamResponseHead(head)
        case .body(let part):
            self.responder?.upstreamResponseBody(part)
        case .end:
            guard !self.tunnelled else {
                self.switchToTunnel(context: context)
                return
            }
            let responder = self.responder
            self.responder = nil
            responder?.upstreamResponseEnd(reusable: self.responseKeepAlive && self.requestKeepAlive && !self.isClosed)
        }
    }

    /// After a `101 Switching Protocols` the connection carries raw bytes both ways: the HTTP codec (encoder and
    /// decoder) leaves the
    /// pipeline (the decoder hands over the bytes it already read behind the response) and a ``TunnelRelay`` takes
    /// this handler's place. The connection is never pooled again.
    private func switchToTunnel(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        do {
            try pipeline.addHandler(TunnelRelay(connection: self))
            pipeline.removeHandler(context: context, promise: nil)
            pipeline.removeHandler(context: try pipeline.context(handlerType: HTTPRequestEncoder.self), promise: nil)
            let decoder = try pipeline.context(handlerType: ByteToMessageHandler<HTTPResponseDecoder>.self)
            let removed = context.eventLoop.makePromise(of: Void.self)
            pipeline.removeHandler(context: decoder, promise: removed)
            // The decoder watches writes too (to pair responses with requests): raw bytes go out once it is gone.
            removed.futureResult.assumeIsolated().whenComplete { result in
                switch result {
                case .success: self.responder?.upstreamTunnelReady()
                case .failure: self.close()
                }
            }
        } catch {
            self.close()
        }
    }

    /// The connection switched protocols (a tunnelled upgrade).
    private(set) var tunnelled = false

    /// Sends raw bytes of the tunnel.
    func sendRaw(_ bytes: ByteBuffer) {
        self.channel?.writeAndFlush(bytes, promise: nil)
    }

    fileprivate func tunnelRead(_ bytes: ByteBuffer) {
        self.responder?.upstreamTunnelBytes(bytes)
    }

    fileprivate func tunnelClosed() {
        self.isClosed = true
        let responder = self.responder
        self.responder = nil
        responder?.upstreamFailed()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.responder?.upstreamWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.responder?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isClosed = true
        let responder = self.responder
        self.responder = nil
        responder?.upstreamFailed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.close()
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

/// The raw side of a tunnelled upgrade: what the upstream sends goes to the ``UpstreamConnection``'s responder.
private final class TunnelRelay: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let connection: UpstreamConnection

    init(connection: UpstreamConnection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.connection.tunnelRead(self.unwrapInboundIn(data))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.connection.responder?.upstreamWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.connection.tunnelClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension TunnelRelay: Sendable {}

/// Idle keep-alive connections to the upstreams, per event loop (confined to it).
final class UpstreamPool {
    private let loop: any EventLoop
    private let maxIdle: Int
    private var idle: [ProxyConfiguration.Upstream: [UpstreamConnection]] = [:]

    init(loop: any EventLoop, maxIdle: Int) {
        self.loop = loop
        self.maxIdle = maxIdle
    }

    /// An idle connection to `upstream`, if one is open (no future, no hop: the common case of a busy proxy).
    func idleConnection(to upstream: ProxyConfiguration.Upstream) -> UpstreamConnection? {
        while let connection = self.idle[upstream]?.popLast() {
            if !connection.isClosed, connection.channel?.isActive == true { return connection }
        }
        return nil
    }

    /// An idle connection to `upstream`, or a new one (within `timeout`).
    func connection(to upstream: ProxyConfiguration.Upstream, timeout: TimeAmount) -> EventLoopFuture<NIOLoopBound<UpstreamConnection>> {
        if let connection = self.idleConnection(to: upstream) {
            return self.loop.makeSucceededFuture(NIOLoopBound(connection, eventLoop: self.loop))
        }
        return UpstreamConnection.connect(to: upstream, on: self.loop, timeout: timeout)
    }

    /// A connection whose response ended cleanly: kept for the next request, or closed when enough are idle.
    func release(_ connection: UpstreamConnection) {
        connection.responder = nil
        connection.setReading(true)
        guard !connection.isClosed, self.idle[connection.upstream, default: []].count < self.maxIdle else {
            connection.close()
            return
        }
        self.idle[connection.upstream, default: []].append(connection)
    }
}
