import CometCore
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import CometGateway

/// The gate that pauses a publisher connection's socket reads while its publish is answered.
@Suite("Read gate (embedded)")
struct ReadGateTests {
    /// Counts the reads that pass it toward the socket.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reads = 0

        func read(context: ChannelHandlerContext) {
            self.reads += 1
            context.read()
        }
    }

    @Test("Reads pass while open, wait while held, and one waiting read passes on release")
    func holdAndRelease() throws {
        let counter = ReadCounter()
        let gate = ReadGate()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(gate)
        channel.read()
        #expect(counter.reads == 1)

        gate.hold()
        channel.read()
        channel.read()
        #expect(counter.reads == 1, "held")
        gate.release()
        #expect(counter.reads == 2, "the reads asked for while held pass as one")
        gate.release()
        #expect(counter.reads == 2, "nothing more was asked for")
        channel.read()
        #expect(counter.reads == 3)
    }

    @Test("Only publisher connections get a gate, and only with a broker that can make a response wait")
    func installedForPublishersOfWaitingBrokersOnly() throws {
        for (role, gated) in [(ListenerRole.publisher, true), (.subscriber, false)] {
            let channel = EmbeddedChannel()
            let (gateway, _) = Self.deferredGateway(on: channel)
            try GatewayListener.addConnectionHandlers(to: channel, role: role, gateway: gateway)
            let gate = try? channel.pipeline.syncOperations.handler(type: ReadGate.self)
            #expect((gate != nil) == gated, "\(role)")
        }
        // The embedded broker answers at once: no connection waits, and none gets a gate.
        for role in [ListenerRole.publisher, .subscriber] {
            let harness = try HandlerTests.Harness(role: role)
            #expect(harness.broker.answersImmediately)
            #expect((try? harness.channel.pipeline.syncOperations.handler(type: ReadGate.self)) == nil, "\(role)")
        }
    }

    /// A broker whose publishes complete only when the test says so (as a networked broker's would, later).
    final class DeferredBroker: Broker {
        let memory: MemoryBroker
        let pending = Mutex<[(drafts: [MessageDraft], promise: EventLoopPromise<[PublishReceipt]>)]>([])

        init(memory: MemoryBroker) {
            self.memory = memory
        }

        func publish(_ drafts: [MessageDraft], on eventLoop: any EventLoop) -> EventLoopFuture<[PublishReceipt]> {
            let promise = eventLoop.makePromise(of: [PublishReceipt].self)
            self.pending.withLock { $0.append((drafts, promise)) }
            return promise.futureResult
        }

        /// Completes the oldest pending publish; returns whether there was one.
        func completeOne() -> Bool {
            guard let next = self.pending.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { return false }
            next.promise.succeed(self.memory.publishNow(next.drafts))
            return true
        }

        func replay(channels: [ChannelName], positions: [UInt64]?, on eventLoop: any EventLoop) -> EventLoopFuture<[ChannelReplay]> {
            self.memory.replay(channels: channels, positions: positions, on: eventLoop)
        }

        func info(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<ChannelInfo?> {
            self.memory.info(channel, on: eventLoop)
        }

        func delete(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
            self.memory.delete(channel, on: eventLoop)
        }

        func closeStreams(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
            self.memory.closeStreams(channel, on: eventLoop)
        }
    }

    /// A gateway on `channel`'s loop whose broker is a ``DeferredBroker``.
    private static func deferredGateway(on channel: EmbeddedChannel) -> (GatewayContext, DeferredBroker) {
        let configuration = GatewayConfiguration()
        let stats = GatewayStats()
        let hub = Hub(group: channel.embeddedEventLoop, heartbeatInterval: .seconds(15), stats: stats)
        let broker = DeferredBroker(memory: MemoryBroker(limits: configuration.history, sink: hub))
        let gateway = GatewayContext(configuration: configuration, hub: hub, broker: broker, stats: stats,
                                     maxConnections: 100, logger: Logger(label: "test"))
        return (gateway, broker)
    }

    @Test("A publisher connection reads nothing more while its publish waits for the broker, and reads on after")
    func publisherReadsWaitForTheBroker() throws {
        let channel = EmbeddedChannel()
        let (gateway, broker) = Self.deferredGateway(on: channel)
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        try GatewayListener.addConnectionHandlers(to: channel, role: .publisher, gateway: gateway)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.read()
        let before = counter.reads
        #expect(before >= 1)

        let publish = "POST /pub/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
        try channel.writeInbound(ByteBuffer(string: publish))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "not answered yet")
        channel.read()
        #expect(counter.reads == before, "no read passes while the publish waits")

        #expect(broker.completeOne())
        let response = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(String(buffer: response).hasPrefix("HTTP/1.1 202 Accepted\r\n"))  // no subscribers
        #expect(counter.reads == before + 1, "the read asked for meanwhile passes once answered")
        #expect(channel.isActive)
    }
}

@available(*, unavailable)
extension ReadGateTests.ReadCounter: Sendable {}
