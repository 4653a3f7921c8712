import CometCore
import CometGateway
import Logging
import NIOCore
import NIOEmbedded

/// One event loop's fan-out, in process: `subscribers` connections with the production pipeline on embedded
/// channels of one `EmbeddedEventLoop`, subscribed to one channel, and a `MemoryBroker` to publish through.
///
/// For microbenchmarks and tests of the hot path: a publish runs the same code as in production (sequence, history,
/// hub, shard, subscription, pipeline write and flush); only the socket is replaced by a sink that counts bytes.
public final class FanOutFixture {
    private let loop = EmbeddedEventLoop()
    private let broker: MemoryBroker
    private let channels: [EmbeddedChannel]
    private let sinks: [ByteCountingSink]
    private let draft: MessageDraft

    /// Creates the fixture and subscribes every connection.
    /// - Parameters:
    ///   - subscribers: Connections to fan out to.
    ///   - transport: `sse`, `stream` or `poll`.
    ///   - payload: The message body each ``publish()`` sends.
    public init(subscribers: Int, transport: String = "sse", payload: String = String(repeating: "x", count: 128)) throws {
        let configuration = GatewayConfiguration()
        let stats = GatewayStats()
        let hub = Hub(group: self.loop, heartbeatInterval: .hours(1), stats: stats)
        self.broker = MemoryBroker(limits: configuration.history, sink: hub)
        let context = GatewayContext(configuration: configuration, hub: hub, broker: self.broker, stats: stats,
                                     maxConnections: .max, logger: Logger(label: "fan-out-fixture"))
        var channels: [EmbeddedChannel] = []
        var sinks: [ByteCountingSink] = []
        for _ in 0..<subscribers {
            let channel = EmbeddedChannel(loop: self.loop)
            let sink = ByteCountingSink()
            try channel.pipeline.syncOperations.addHandler(sink)
            try GatewayListener.addConnectionHandlers(to: channel, role: .subscriber, gateway: context)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.writeInbound(ByteBuffer(string: "GET /sub/bench?transport=\(transport) HTTP/1.1\r\nHost: x\r\n\r\n"))
            channels.append(channel)
            sinks.append(sink)
        }
        self.loop.run()
        self.channels = channels
        self.sinks = sinks
        self.draft = MessageDraft(channel: try ChannelName(validating: "bench"), data: ByteBuffer(string: payload))
    }

    /// Publishes one message and runs its delivery to every subscriber; returns the number of subscribers it was
    /// dispatched to.
    @discardableResult
    public func publish() -> Int {
        let receipts = self.broker.publishNow([self.draft])
        self.loop.run()
        return receipts[0].subscribers
    }

    /// Bytes written to each connection so far (including the response head).
    public var bytesPerConnection: [Int] { self.sinks.map(\.bytes) }

    /// Flushes seen by each connection so far.
    public var flushesPerConnection: [Int] { self.sinks.map(\.flushes) }

    deinit {
        for channel in self.channels { _ = try? channel.finish() }
    }
}

/// Swallows writes at the head of an embedded channel, counting bytes and flushes, so nothing accumulates.
private final class ByteCountingSink: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var bytes = 0
    var flushes = 0

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.bytes += Self.unwrapOutboundIn(data).readableBytes
        promise?.succeed(())
    }

    func flush(context: ChannelHandlerContext) {
        self.flushes += 1
    }
}

@available(*, unavailable)
extension FanOutFixture: Sendable {}
