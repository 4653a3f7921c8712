import CometCore
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

@testable import CometGateway

/// The connection handler on an `EmbeddedChannel`: exact bytes out, timers driven by advancing the embedded clock.
@Suite("Connection handler (embedded)")
struct HandlerTests {
    /// A channel with the production pipeline, a hub on its loop and a memory broker.
    struct Harness {
        let channel: EmbeddedChannel
        let broker: MemoryBroker
        let stats: GatewayStats

        init(role: ListenerRole = .subscriber, configure: (inout GatewayConfiguration) -> Void = { _ in }) throws {
            var configuration = GatewayConfiguration()
            configure(&configuration)
            let channel = EmbeddedChannel()
            let stats = GatewayStats()
            let hub = Hub(group: channel.embeddedEventLoop, heartbeatInterval: .seconds(15), stats: stats)
            let broker = MemoryBroker(limits: configuration.history, sink: hub)
            let context = GatewayContext(configuration: configuration, hub: hub, broker: broker, stats: stats,
                                         maxConnections: 100, logger: Logger(label: "test"))
            try GatewayListener.addConnectionHandlers(to: channel, role: role, gateway: context)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            self.channel = channel
            self.broker = broker
            self.stats = stats
        }

        func send(_ text: String) throws {
            try self.channel.writeInbound(ByteBuffer(string: text))
        }

        /// Everything written so far, as text.
        func output() throws -> String {
            var text = ""
            while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) {
                text += String(buffer: buffer)
            }
            return text
        }

        func publish(_ channel: String, _ data: String) throws -> UInt64 {
            let receipts = self.broker.publishNow([MessageDraft(channel: try ChannelName(validating: channel),
                                                                data: ByteBuffer(string: data))])
            self.channel.embeddedEventLoop.run()
            return receipts[0].id
        }
    }

    @Test("An SSE subscriber gets the shared pre-encoded frame of each message")
    func sseFrames() throws {
        let harness = try Harness()
        try harness.send("GET /sub/c HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        let start = try harness.output()
        #expect(start.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(start.contains("Connection: close\r\n"))
        #expect(start.hasSuffix("\n\n"))
        let id = try harness.publish("c", "hi\nthere")
        #expect(try harness.output() == "data: hi\ndata: there\nid: \(id)\n\n")
        #expect(harness.channel.isActive)
    }

    @Test("Incomplete request heads are answered 408 and closed after request_timeout")
    func requestTimeout() throws {
        let harness = try Harness { $0.limits.requestTimeout = 5 }
        try harness.send("GET /sub/c HTTP/1.1\r\nHost: x")
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(try harness.output().isEmpty)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(httpStatusLine(try harness.output()) == "HTTP/1.1 408 Request Timeout")
        #expect(!harness.channel.isActive)
    }

    @Test("Idle keep-alive connections close after idle_timeout, not request_timeout")
    func idleTimeout() throws {
        let harness = try Harness { $0.limits.requestTimeout = 1; $0.limits.idleTimeout = 30 }
        try harness.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(httpStatusLine(try harness.output()) == "HTTP/1.1 200 OK")
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(harness.channel.isActive)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!harness.channel.isActive)
    }

    @Test("A held long poll times out with an empty batch and the cursor, then serves the next request")
    func pollTimeout() throws {
        let harness = try Harness()
        try harness.send("GET /sub/p?timeout=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try harness.output().isEmpty)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        let response = try harness.output()
        #expect(httpStatusLine(response) == "HTTP/1.1 200 OK")
        #expect(response.contains("{\"messages\":[],\"last_event_id\":\""))
        #expect(response.contains("Connection: keep-alive"))
        try harness.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(httpStatusLine(try harness.output()) == "HTTP/1.1 200 OK")
    }

    @Test("A subscriber whose socket is not writable is held up to max_outbound_bytes, then closed and counted")
    func slowConsumer() throws {
        let harness = try Harness { $0.limits.maxOutboundBytes = 4096 }
        try harness.send("GET /sub/s?transport=stream HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try harness.output()
        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        let payload = String(repeating: "x", count: 1000)
        for _ in 0..<3 { _ = try harness.publish("s", payload) }
        #expect(try harness.output().isEmpty, "held while not writable")
        harness.channel.isWritable = true
        harness.channel.pipeline.fireChannelWritabilityChanged()
        #expect(try harness.output().components(separatedBy: payload).count - 1 == 3, "written in order once writable")
        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        for _ in 0..<5 { _ = try harness.publish("s", payload) }
        #expect(!harness.channel.isActive)
        #expect(harness.stats.slowConsumerCloses.load(ordering: .relaxed) == 1)
    }

    @Test("Hostile request heads get the right status and close the connection", arguments: [
        ("BREW /coffee HTCPCP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        ("GET /sub/a HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"),  // no Host
        ("GET /sub/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        ("POST /pub/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 Not Implemented"),
        ("GET /sub/a HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported"),
        ("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 414 URI Too Long"),
        ("GET /\(String(repeating: "a", count: 9000))", "HTTP/1.1 414 URI Too Long"),  // refused before the line ends
        ("GET /sub/a HTTP/1.1\r\nHost: x\r\nX: \(String(repeating: "b", count: 20000))\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"),
        ("GET /sub/a HTTP/1.1\r\nHost: x\r\nX: \(String(repeating: "b", count: 20000))", "HTTP/1.1 431 Request Header Fields Too Large"),
    ])
    func hostileHeads(request: String, statusLine: String) throws {
        let harness = try Harness()
        try? harness.send(request)
        #expect(httpStatusLine(try harness.output()) == statusLine)
        #expect(!harness.channel.isActive)
    }

    @Test("Publisher paths are matched byte for byte: /pub/{channel} publishes, anything else is refused", arguments: [
        ("/pub/a", "HTTP/1.1 202 Accepted"),
        ("/pub/a%2Eb", "HTTP/1.1 202 Accepted"),  // the decoded path is matched
        ("/pub/", "HTTP/1.1 400 Bad Request"),  // empty channel name
        ("/pub/%CC%81", "HTTP/1.1 400 Bad Request"),  // a combining mark after the slash: still the channel prefix
        ("/pubx", "HTTP/1.1 404 Not Found"),
        ("/pu", "HTTP/1.1 404 Not Found"),
        ("/PUB/a", "HTTP/1.1 404 Not Found"),
        ("/x/pub/a", "HTTP/1.1 404 Not Found"),
    ])
    func publisherPaths(path: String, statusLine: String) throws {
        let harness = try Harness(role: .publisher)
        try harness.send("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi")
        #expect(httpStatusLine(try harness.output()) == statusLine)
    }

    @Test("A publish body over the limit is refused with 413 before it is read")
    func bodyTooLarge() throws {
        let harness = try Harness(role: .publisher) { $0.limits.maxPublishBodyBytes = 10 }
        try harness.send("POST /pub/c HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
        #expect(httpStatusLine(try harness.output()) == "HTTP/1.1 413 Content Too Large")
        #expect(!harness.channel.isActive)
        let chunked = try Harness(role: .publisher) { $0.limits.maxPublishBodyBytes = 10 }
        try chunked.send("POST /pub/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n")
        #expect(httpStatusLine(try chunked.output()) == "HTTP/1.1 413 Content Too Large")
    }
}

private func httpStatusLine(_ text: String) -> String {
    // "\r\n" is one Character in Swift: split on the string.
    text.components(separatedBy: "\r\n").first ?? ""
}

