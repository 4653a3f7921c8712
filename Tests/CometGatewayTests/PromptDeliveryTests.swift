import CometCore
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import CometGateway

/// When a publisher's read makes a large fan-out on its own event loop, the messages go out at the end of that read;
/// a small one waits for the loop's task, so that publishes from several connections coalesce into one write.
@Suite("Prompt delivery of large fan-outs")
struct PromptDeliveryTests {
    private final class Node {
        let loop = EmbeddedEventLoop()
        let context: GatewayContext
        var subscribers: [EmbeddedChannel] = []
        let publisher: EmbeddedChannel

        init(subscribers count: Int) throws {
            let configuration = GatewayConfiguration()
            let stats = GatewayStats()
            let hub = Hub(group: self.loop, heartbeatInterval: .hours(1), stats: stats)
            let broker = MemoryBroker(limits: configuration.history, sink: hub)
            self.context = GatewayContext(configuration: configuration, hub: hub, broker: broker, stats: stats,
                                          maxConnections: .max, logger: Logger(label: "prompt-delivery-tests"))
            for _ in 0..<count {
                let channel = EmbeddedChannel(loop: self.loop)
                try GatewayListener.addConnectionHandlers(to: channel, role: .subscriber, gateway: self.context)
                try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
                try channel.writeInbound(ByteBuffer(string: "GET /sub/news?transport=sse HTTP/1.1\r\nHost: x\r\n\r\n"))
                self.subscribers.append(channel)
            }
            self.publisher = EmbeddedChannel(loop: self.loop)
            try GatewayListener.addConnectionHandlers(to: self.publisher, role: .publisher, gateway: self.context)
            try self.publisher.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
            self.loop.run()
            for channel in self.subscribers {
                _ = try Self.drain(channel)  // the response start
            }
        }

        /// Publishes `count` messages in one read of the publisher connection (pipelined requests).
        func publish(_ texts: [String]) throws {
            var requests = ByteBuffer()
            for text in texts {
                requests.writeString("POST /pub/news HTTP/1.1\r\nHost: x\r\nContent-Length: \(text.utf8.count)\r\n\r\n\(text)")
            }
            try self.publisher.writeInbound(requests)
        }

        static func drain(_ channel: EmbeddedChannel) throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                text += String(buffer: buffer)
            }
            return text
        }

        /// Expects that no subscriber has received anything since the last drain.
        func expectNothingReceived(_ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
            for channel in self.subscribers {
                #expect(try Node.drain(channel).isEmpty, comment, sourceLocation: sourceLocation)
            }
        }

        /// Expects that every subscriber has received `text` as an event's data exactly once since the last drain.
        func expectEachReceivedOnce(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            for channel in self.subscribers {
                #expect(PromptDeliveryTests.occurrences(of: "data: \(text)\n", in: try Node.drain(channel)) == 1,
                        sourceLocation: sourceLocation)
            }
        }

        deinit {
            for channel in self.subscribers { _ = try? channel.finish() }
            _ = try? self.publisher.finish()
        }
    }

    @Test("A read whose messages go to at least 64 connections of the loop delivers them before the loop's tasks run")
    func largeFanOutGoesOutAtTheEndOfTheRead() throws {
        let node = try Node(subscribers: ShardInbox.promptDeliveries)
        try node.publish(["one", "two"])
        // No loop.run(): the loop's tasks have not run yet.
        for channel in node.subscribers {
            let received = try Node.drain(channel)
            #expect(received.contains("data: one\n") && received.contains("data: two\n"))
        }
        node.loop.run()
        try node.expectNothingReceived("nothing is delivered twice")
    }

    @Test("A read whose messages go to few connections is delivered by the loop's task, every message once")
    func smallFanOutWaitsForTheTask() throws {
        let node = try Node(subscribers: 3)
        try node.publish(["one", "two"])
        try node.expectNothingReceived()
        node.loop.run()
        for channel in node.subscribers {
            let received = try Node.drain(channel)
            #expect(Self.occurrences(of: "data: one\n", in: received) == 1)
            #expect(Self.occurrences(of: "data: two\n", in: received) == 1)
        }
    }

    @Test("The threshold is exact: one message to 64 connections goes out at the end of the read, to 63 it waits")
    func thresholdIsExact() throws {
        let atThreshold = try Node(subscribers: ShardInbox.promptDeliveries)
        try atThreshold.publish(["one"])
        try atThreshold.expectEachReceivedOnce("one")
        let below = try Node(subscribers: ShardInbox.promptDeliveries - 1)
        try below.publish(["one"])
        try below.expectNothingReceived()
        below.loop.run()
        try below.expectEachReceivedOnce("one")
    }

    @Test("Pending writes add up across reads: a second small read that crosses the threshold delivers both, in order, once")
    func pendingWritesAddUpAcrossReads() throws {
        let node = try Node(subscribers: ShardInbox.promptDeliveries - 1)
        try node.publish(["one"])
        try node.expectNothingReceived()
        try node.publish(["two"])  // 2 × 63 pending writes: delivered at the end of this read
        for channel in node.subscribers {
            let received = try Node.drain(channel)
            let one = received.range(of: "data: one\n")
            let two = received.range(of: "data: two\n")
            #expect(one != nil && two != nil)
            if let one, let two { #expect(one.lowerBound < two.lowerBound) }
        }
        // The task scheduled by the first read now finds nothing; a later small read waits again.
        node.loop.run()
        try node.expectNothingReceived("nothing is delivered twice")
        try node.publish(["three"])
        try node.expectNothingReceived()
        node.loop.run()
        try node.expectEachReceivedOnce("three")
    }

    fileprivate static func occurrences(of needle: String, in text: String) -> Int {
        var count = 0
        var rest = text[...]
        while let range = rest.range(of: needle) {
            count += 1
            rest = rest[range.upperBound...]
        }
        return count
    }
}
