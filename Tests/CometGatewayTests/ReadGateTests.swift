import CometCore
import Foundation
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

    /// A publisher connection on `channel` with a ``DeferredBroker``, connected, after its first read.
    private static func publisherConnection(_ channel: EmbeddedChannel) throws -> (DeferredBroker, ReadCounter) {
        let (gateway, broker) = Self.deferredGateway(on: channel)
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        try GatewayListener.addConnectionHandlers(to: channel, role: .publisher, gateway: gateway)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        channel.read()
        #expect(counter.reads >= 1)
        return (broker, counter)
    }

    private static func publishRequest(_ channel: String, _ body: String, close: Bool = false) -> String {
        "POST /pub/\(channel) HTTP/1.1\r\nHost: x\r\n\(close ? "Connection: close\r\n" : "")Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// Everything written to the client so far, as text.
    private static func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test("A publisher connection reads on while publishes wait for the broker, stops at the limit, and reads again once the oldest is answered")
    func publisherReadsUpToTheLimit() throws {
        let channel = EmbeddedChannel()
        let (broker, counter) = try Self.publisherConnection(channel)
        let limit = PipelinedResponses.limit
        for index in 0..<(limit - 1) {
            try channel.writeInbound(ByteBuffer(string: Self.publishRequest("a", "m\(index)")))
        }
        #expect(broker.pending.withLock { $0.count } == limit - 1, "every publish went to the broker")
        #expect(try Self.written(channel).isEmpty, "none answered yet")
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before + 1, "reads pass below the limit")

        // The limit-th and one more arrive together: the first is taken, the second waits unparsed.
        try channel.writeInbound(ByteBuffer(string: Self.publishRequest("a", "last") + Self.publishRequest("a", "over")))
        #expect(broker.pending.withLock { $0.count } == limit)
        channel.read()
        #expect(counter.reads == before + 1, "no read passes at the limit")

        #expect(broker.completeOne())
        #expect(try Self.written(channel).hasPrefix("HTTP/1.1 202 Accepted\r\n"))
        #expect(counter.reads == before + 2, "the read asked for at the limit passes once the oldest is answered")
        #expect(broker.pending.withLock { $0.count } == limit, "the request held at the limit went to the broker")
        while broker.completeOne() {}
        let rest = try Self.written(channel)
        #expect(rest.components(separatedBy: "HTTP/1.1 202 Accepted\r\n").count - 1 == limit)
        #expect(channel.isActive)
    }

    @Test("Answers made at once that fill the queue also stop the reads; requests held meanwhile stay within the bound")
    func immediateAnswersFillTheQueue() throws {
        let channel = EmbeddedChannel()
        let (broker, counter) = try Self.publisherConnection(channel)
        var requests = Self.publishRequest("a", "slow")
        for _ in 1..<PipelinedResponses.limit { requests += "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" }
        try channel.writeInbound(ByteBuffer(string: requests))
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before, "no read passes while the queue is full")
        // A client that goes on pipelining past the bound is closed, as one that pipelines behind any answer.
        let filler = String(repeating: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", count: 3000)
        _ = try? channel.writeInbound(ByteBuffer(string: filler))
        #expect(!channel.isActive, "closed past HTTPConnectionStateMachine.maxHeldBytes")
        _ = broker.completeOne()
    }

    @Test("While the queue is full no request timer runs: a broker slower than the request timeout loses nothing")
    func noRequestTimeoutWhileFull() throws {
        let channel = EmbeddedChannel()
        let (broker, _) = try Self.publisherConnection(channel)
        var requests = ""
        for index in 0...PipelinedResponses.limit { requests += Self.publishRequest("a", "m\(index)") }
        try channel.writeInbound(ByteBuffer(string: requests))
        #expect(broker.pending.withLock { $0.count } == PipelinedResponses.limit)
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
        #expect(!(try Self.written(channel).contains("408")))
        while broker.completeOne() {}
        let answers = try Self.written(channel)
        #expect(answers.components(separatedBy: "HTTP/1.1 202 Accepted").count - 1 == PipelinedResponses.limit + 1)
    }

    @Test("Draining with answers waiting: they are written, the last says Connection: close, then the connection closes")
    func drainWithWaitingAnswers() throws {
        let channel = EmbeddedChannel()
        let (broker, _) = try Self.publisherConnection(channel)
        try channel.writeInbound(ByteBuffer(string: Self.publishRequest("a", "one") + Self.publishRequest("a", "two")))
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(channel.isActive, "open while answers wait")
        #expect(broker.completeOne())
        let first = try Self.written(channel)
        #expect(first.lowercased().contains("connection: keep-alive"))
        #expect(broker.completeOne())
        let last = try Self.written(channel)
        #expect(last.lowercased().contains("connection: close"))
        #expect(!channel.isActive)
    }

    @Test("A connection closed while a request waits behind pipelined answers lets it go")
    func closeReleasesTheWaitingRequest() throws {
        let channel = EmbeddedChannel()
        let (broker, _) = try Self.publisherConnection(channel)
        weak var handler: HTTPConnectionHandler?
        try {
            let installed = try channel.pipeline.syncOperations.handler(type: HTTPConnectionHandler.self)
            let epcp = #"{"items":[{"channel":"a","formats":{"http-stream":{"action":"close"}}}]}"#
            try channel.writeInbound(ByteBuffer(string: Self.publishRequest("a", "one")
                + "POST /publish/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(epcp.utf8.count)\r\n\r\n" + epcp))
            #expect(installed.afterPipelined != nil, "the chained EPCP publish waits for the answer before it")
            handler = installed
        }()
        _ = try channel.finish()
        #expect(handler == nil || handler?.afterPipelined == nil, "released with the connection")
        _ = broker.completeOne()
    }

    @Test("A 100 Continue for a pipelined request comes after the answers before it")
    func continueAfterWaitingAnswers() throws {
        let channel = EmbeddedChannel()
        let (broker, _) = try Self.publisherConnection(channel)
        try channel.writeInbound(ByteBuffer(string: Self.publishRequest("a", "one")
            + "POST /pub/a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"))
        #expect(try Self.written(channel).isEmpty, "no interim answer before the first request's answer")
        #expect(broker.completeOne())
        let written = try Self.written(channel)
        #expect(written.hasPrefix("HTTP/1.1 202 Accepted\r\n"))
        #expect(written.hasSuffix("HTTP/1.1 100 Continue\r\n\r\n"))
        try channel.writeInbound(ByteBuffer(string: "two"))
        #expect(broker.completeOne())
        #expect(try Self.written(channel).hasPrefix("HTTP/1.1 202 Accepted\r\n"))
    }

    @Test("Pipelined answers are written in request order whatever order the broker answers in; one answered at once waits behind them; Connection: close ends the connection after all")
    func pipelinedAnswersInOrder() throws {
        let channel = EmbeddedChannel()
        let (broker, _) = try Self.publisherConnection(channel)
        let requests = Self.publishRequest("a", "one") + Self.publishRequest("b", "two")
            + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + Self.publishRequest("a", "three", close: true)
        try channel.writeInbound(ByteBuffer(string: requests))
        #expect(broker.pending.withLock { $0.count } == 3, "every publish went to the broker, in order")
        #expect(try Self.written(channel).isEmpty)

        // The broker answers the second publish first: nothing is written until the first is answered.
        let second = broker.pending.withLock { $0.remove(at: 1) }
        second.promise.succeed(broker.memory.publishNow(second.drafts))
        #expect(try Self.written(channel).isEmpty, "the second answer waits for the first")
        #expect(broker.completeOne())
        let answers = try Self.written(channel)
        let heads = answers.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.components(separatedBy: "\r\n")[0] }
        #expect(heads == ["202 Accepted", "202 Accepted", "200 OK"])
        let channels = answers.components(separatedBy: "\"channel\":\"").dropFirst().map { $0.prefix(1) }
        #expect(channels == ["a", "b"], "in request order")
        #expect(channel.isActive)

        #expect(broker.completeOne(), "the Connection: close publish")
        let last = try Self.written(channel)
        #expect(last.hasPrefix("HTTP/1.1 202 Accepted\r\n"))
        #expect(last.lowercased().contains("connection: close"))
        #expect(!channel.isActive, "closed after the last answer")
    }
}

@available(*, unavailable)
extension ReadGateTests.ReadCounter: Sendable {}
