import CometCore
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import CometGateway

/// A request that answers from what its connection or client collected (a keep-alive poll resuming its parked
/// subscription, a Bayeux `/meta/connect`) holds every message whose publish was answered before it was sent, even
/// when its event loop has not yet run the task that delivers the message there.
@Suite("Acknowledged publishes reach the next answer")
struct AcknowledgedPublishOrderTests {
    private final class Node {
        let loop = EmbeddedEventLoop()
        let broker: MemoryBroker
        let gateway: GatewayContext
        let client: EmbeddedChannel
        var others: [EmbeddedChannel] = []

        init() throws {
            let configuration = GatewayConfiguration()
            let stats = GatewayStats()
            let hub = Hub(group: self.loop, heartbeatInterval: .hours(1), stats: stats)
            self.broker = MemoryBroker(limits: configuration.history, sink: hub)
            self.gateway = GatewayContext(configuration: configuration, hub: hub, broker: self.broker, stats: stats,
                                          maxConnections: .max, logger: Logger(label: "acknowledged-order-tests"))
            self.client = try Self.connection(on: self.loop, gateway: self.gateway, port: 1)
        }

        static func connection(on loop: EmbeddedEventLoop, gateway: GatewayContext, port: Int) throws -> EmbeddedChannel {
            let channel = EmbeddedChannel(loop: loop)
            try GatewayListener.addConnectionHandlers(to: channel, role: .subscriber, gateway: gateway)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: port)).wait()
            return channel
        }

        /// Another client connection to the same gateway.
        func otherConnection() throws -> EmbeddedChannel {
            let channel = try Self.connection(on: self.loop, gateway: self.gateway, port: 2 + self.others.count)
            self.others.append(channel)
            return channel
        }

        @discardableResult
        func publish(_ channel: String, _ text: String) throws -> UInt64 {
            self.broker.publishNow(MessageDraft(channel: try ChannelName(validating: channel), data: ByteBuffer(string: text))).id
        }

        /// Sends `request` and returns what the gateway wrote in answer, without running the loop's tasks.
        func send(_ request: String) throws -> String {
            try self.client.writeInbound(ByteBuffer(string: request))
            return try self.output()
        }

        func output() throws -> String {
            var text = ""
            while let buffer = try self.client.readOutbound(as: ByteBuffer.self) {
                text += String(buffer: buffer)
            }
            return text
        }

        func post(_ json: String, on channel: EmbeddedChannel? = nil) throws -> String {
            let channel = channel ?? self.client
            try channel.writeInbound(ByteBuffer(string: "POST /cometd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                                + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"))
            return try Self.output(of: channel)
        }

        static func output(of channel: EmbeddedChannel) throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                text += String(buffer: buffer)
            }
            return text
        }

        deinit {
            _ = try? self.client.finish()
            for channel in self.others { _ = try? channel.finish() }
        }
    }

    private static func value(_ key: String, in response: String) -> String? {
        guard let range = response.range(of: "\"\(key)\":\"") else { return nil }
        let rest = response[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    @Test("A resumed keep-alive poll holds a message posted to its loop but not yet delivered there")
    func resumedPoll() throws {
        let node = try Node()
        let start = try node.publish("order", "m0")
        #expect(try node.send("GET /sub/order?last_event_id=\(start) HTTP/1.1\r\nHost: x\r\n\r\n").isEmpty)  // held
        try node.publish("order", "m1")
        node.loop.run()
        let first = try node.output()
        #expect(first.contains("\"data\":\"m1\"}]"))
        let cursor = try #require(Self.value("last_event_id", in: first))

        // m2 reaches the parked subscription; m3 is posted to the loop, whose task has not run yet.
        try node.publish("order", "m2")
        node.loop.run()
        try node.publish("order", "m3")
        let second = try node.send("GET /sub/order?last_event_id=\(cursor) HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(second.contains("\"data\":\"m2\"},{") && second.contains("\"data\":\"m3\"}]"), "\(second)")
        node.loop.run()
        #expect(try node.output().isEmpty)  // delivered once
    }

    @Test("A Bayeux connect holds a message posted to its loop but not yet delivered there")
    func bayeuxConnect() throws {
        let node = try Node()
        let handshake = try node.post(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]"#)
        let client = try #require(Self.value("clientId", in: handshake))
        let subscribed = try node.post(#"[{"channel":"/meta/subscribe","clientId":"\#(client)","subscription":"/order"}]"#)
        #expect(subscribed.contains("\"successful\":true"))
        let connect = #"[{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling"}]"#
        #expect(try node.post(connect).contains("/meta/connect"))  // the first connect is answered at once

        // m1 is queued for the client; m2 is posted to the loop, whose task has not run yet.
        try node.publish("order", "m1")
        node.loop.run()
        try node.publish("order", "m2")
        let answer = try node.post(connect)
        #expect(answer.contains("\"data\":\"m1\"") && answer.contains("\"data\":\"m2\""), "\(answer)")
        node.loop.run()
        #expect(try node.output().isEmpty)  // delivered once
    }

    @Test("A Bayeux connect answered at once because its ack asks for a lost reply again also takes the posted message")
    func bayeuxConnectRedelivering() throws {
        let node = try Node()
        let handshake = try node.post(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"],"ext":{"ack":true}}]"#)
        let client = try #require(Self.value("clientId", in: handshake))
        #expect(try node.post(#"[{"channel":"/meta/subscribe","clientId":"\#(client)","subscription":"/order"}]"#)
            .contains("\"successful\":true"))
        let connect = { (ack: Int) in
            #"[{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling","ext":{"ack":\#(ack)}}]"#
        }
        let first = try node.post(#"[{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling"}]"#)
        let firstBatch = try #require(Self.ack(in: first))
        #expect(try node.post(connect(firstBatch)).isEmpty)  // held
        try node.publish("order", "e1")
        node.loop.run()
        #expect(try node.output().contains("\"data\":\"e1\""))  // the reply the client is taken to have lost

        // m1 is posted to the loop; the client's next connect acknowledges only the first batch.
        try node.publish("order", "m1")
        let answer = try node.post(connect(firstBatch))
        #expect(answer.contains("\"data\":\"e1\"") && answer.contains("\"data\":\"m1\""), "\(answer)")
        node.loop.run()
        #expect(try node.output().isEmpty)  // delivered once
    }

    private static func ack(in response: String) -> Int? {
        guard let range = response.range(of: "\"ack\":") else { return nil }
        return Int(response[range.upperBound...].prefix { $0.isNumber })
    }

    @Test("A Bayeux connect answered at once that replaces a held one takes the posted message; the held one does not")
    func bayeuxConnectReplacingHeld() throws {
        let node = try Node()
        let handshake = try node.post(#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]"#)
        let client = try #require(Self.value("clientId", in: handshake))
        #expect(try node.post(#"[{"channel":"/meta/subscribe","clientId":"\#(client)","subscription":"/order"}]"#)
            .contains("\"successful\":true"))
        let connect = #"[{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling","id":"c"}]"#
        #expect(try node.post(connect).contains("/meta/connect"))  // the first connect is answered at once
        #expect(try node.post(connect).isEmpty)  // held

        // m1 is posted to the loop; before its task runs, the client connects on another connection with no hold.
        try node.publish("order", "m1")
        let other = try node.otherConnection()
        let now = #"[{"channel":"/meta/connect","clientId":"\#(client)","connectionType":"long-polling","id":"n","advice":{"timeout":0}}]"#
        let answer = try node.post(now, on: other)
        #expect(answer.contains("\"data\":\"m1\""), "\(answer)")
        let replaced = try node.output()
        #expect(replaced.contains("\"id\":\"c\"") && !replaced.contains("m1"), "\(replaced)")
        node.loop.run()
        #expect(try node.output().isEmpty && Node.output(of: other).isEmpty)  // delivered once
    }
}

/// `Hub.deliverPending` called while the loop is delivering (a request served when an answer went out) must not
/// deliver inside the delivery: the subscribers the outer one has not reached would get later messages first.
@Suite("Delivering pending messages during a delivery")
struct NestedDeliveryTests {
    /// Records what it receives; the first one publishes another message and asks for pending deliveries when it gets
    /// its first message, as a request served during the delivery would.
    private final class Recorder: HubSubscriber {
        let channels: [ChannelName]
        let kind = SubscriberKind.stream
        var slots: [Int] = []
        var received: [String] = []
        var onFirst: (() -> Void)?

        init(_ channel: ChannelName) {
            self.channels = [channel]
            self.slots = [0]
        }

        func receive(_ message: Message, channelIndex: Int) {
            self.received.append(String(buffer: message.data))
            if let action = self.onFirst {
                self.onFirst = nil
                action()
            }
        }

        func flush() {}
        func channelDeleted(_ channel: ChannelName) {}
        func streamsClosed(_ channel: ChannelName) {}
        func gap(_ channel: ChannelName) {}
        func gap(pattern: ChannelPattern) {}
    }

    @Test("Every subscriber gets the messages in publish order when a subscriber asks for pending ones mid-delivery")
    func nestedCallKeepsOrder() throws {
        let loop = EmbeddedEventLoop()
        let stats = GatewayStats()
        let hub = Hub(group: loop, heartbeatInterval: .hours(1), stats: stats)
        let broker = MemoryBroker(limits: GatewayConfiguration().history, sink: hub)
        let channel = try ChannelName(validating: "nested")
        let shard = hub.shard(for: loop)
        let first = Recorder(channel)
        let second = Recorder(channel)
        hub.add(first, on: shard)
        hub.add(second, on: shard)
        first.onFirst = {
            _ = broker.publishNow(MessageDraft(channel: channel, data: ByteBuffer(string: "m2")))
            hub.deliverPending(on: shard)
        }
        _ = broker.publishNow(MessageDraft(channel: channel, data: ByteBuffer(string: "m1")))
        loop.run()
        #expect(first.received == ["m1", "m2"])
        #expect(second.received == ["m1", "m2"])
    }
}
