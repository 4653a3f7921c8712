import CometCore
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import CometGateway

/// Long pollers of one channel on one event loop that get the same messages share one rendered response (the
/// ``PollResponseCache``), and every poller still gets exactly its own response: its CORS headers, its connection
/// mode, its messages.
@Suite("Shared poll responses (embedded)")
struct SharedPollResponseTests {
    /// Several connections on one embedded loop, sharing one hub shard and one memory broker.
    final class Loop {
        let loop = EmbeddedEventLoop()
        let broker: MemoryBroker
        let gateway: GatewayContext

        init() {
            var configuration = GatewayConfiguration()
            configuration.transports.allowedOrigins = ["https://app.example"]
            let stats = GatewayStats()
            let hub = Hub(group: self.loop, heartbeatInterval: .seconds(15), stats: stats)
            self.broker = MemoryBroker(limits: configuration.history, sink: hub)
            self.gateway = GatewayContext(configuration: configuration, hub: hub, broker: self.broker, stats: stats,
                                          maxConnections: 100, logger: Logger(label: "test"))
        }

        func connect() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel(loop: self.loop)
            try GatewayListener.addConnectionHandlers(to: channel, role: .subscriber, gateway: self.gateway)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            return channel
        }

        @discardableResult
        func publish(_ data: String) throws -> UInt64 {
            let receipts = self.broker.publishNow([MessageDraft(channel: try ChannelName(validating: "c"),
                                                                data: ByteBuffer(string: data))])
            self.loop.run()
            return receipts[0].id
        }
    }

    /// The one buffer a connection wrote since the last call (a poll response is written in one piece; a closing
    /// connection also writes an empty buffer, to learn when the response is out).
    private func response(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        var written: [ByteBuffer] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            if buffer.readableBytes > 0 { written.append(buffer) }
        }
        #expect(written.count == 1, "a response in \(written.count) writes")
        return try #require(written.first, "no response written")
    }

    private func send(_ channel: EmbeddedChannel, _ request: String) throws {
        try channel.writeInbound(ByteBuffer(string: request))
    }

    private func storage(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
    }

    private func body(_ buffer: ByteBuffer) throws -> [String: Any] {
        let text = String(buffer: buffer)
        let range = try #require(text.range(of: "\r\n\r\n"))
        return try jsonObject(String(text[range.upperBound...]))
    }

    private func data(_ buffer: ByteBuffer) throws -> [String] {
        let messages = try #require(try self.body(buffer)["messages"] as? [[String: Any]])
        return messages.compactMap { $0["data"] as? String }
    }

    @Test("Caught-up pollers share one response; CORS, Connection: close and a poller behind get their own")
    func sharedAndOwnResponses() throws {
        let loop = Loop()
        let plain = try loop.connect(), plain2 = try loop.connect()
        let cors = try loop.connect(), closing = try loop.connect()
        let behind = try loop.connect(), behind2 = try loop.connect()
        let poll = "GET /sub/c?transport=poll HTTP/1.1\r\nHost: x\r\n"
        for channel in [plain, plain2, behind, behind2] {
            try self.send(channel, poll + "\r\n")
        }
        try self.send(cors, poll + "Origin: https://app.example\r\n\r\n")
        try self.send(closing, poll + "Connection: close\r\n\r\n")

        let first = try loop.publish("m1")
        let a = try self.response(plain), a2 = try self.response(plain2)
        #expect(a == a2)
        #expect(self.storage(a) == self.storage(a2), "the same rendered buffer, not two renderings")
        #expect(try self.data(a) == ["m1"])
        #expect(try self.body(a)["last_event_id"] as? String == "\(first)")
        #expect(String(buffer: a).contains("Connection: keep-alive\r\n"))
        #expect(!String(buffer: a).contains("Access-Control-Allow-Origin"))

        let c = try self.response(cors)
        #expect(String(buffer: c).contains("Access-Control-Allow-Origin: https://app.example\r\n"))
        #expect(try self.data(c) == ["m1"])
        let d = try self.response(closing)
        #expect(String(buffer: d).contains("Connection: close\r\n"))
        #expect(try self.data(d) == ["m1"])
        #expect(try self.data(try self.response(behind)) == ["m1"])
        #expect(try self.data(try self.response(behind2)) == ["m1"])

        // `plain` polls on and gets the next message alone; the two others fall behind by two messages, and both get
        // the same two-message response when they come back.
        try self.send(plain, "GET /sub/c?transport=poll&last_event_id=\(first) HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try loop.publish("m2")
        let third = try loop.publish("m3")
        #expect(try self.data(try self.response(plain)) == ["m2"])
        let resume = "GET /sub/c?transport=poll&last_event_id=\(first) HTTP/1.1\r\nHost: x\r\n\r\n"
        try self.send(behind, resume)
        try self.send(behind2, resume)
        let e = try self.response(behind), e2 = try self.response(behind2)
        #expect(try self.data(e) == ["m2", "m3"])
        #expect(try self.body(e)["last_event_id"] as? String == "\(third)")
        #expect(e == e2)
        #expect(self.storage(e) == self.storage(e2))
    }

    @Test("The cache renders again for other messages, another connection mode or another second")
    func cacheKey() throws {
        let cache = PollResponseCache()
        let dates = HTTPDateCache()
        func message(_ id: UInt64) throws -> Message {
            Message(channel: try ChannelName(validating: "k"), id: id, event: nil, contentType: nil,
                    data: ByteBuffer(string: "x"), publishedAt: 0)
        }
        let m1 = try message(1), m2 = try message(2), m3 = try message(3)
        var renders = 0
        func get(_ messages: [Message], keepAlive: Bool = true) -> ByteBuffer {
            cache.response(for: messages.map { ($0, 0) }, variant: "", keepAlive: keepAlive, dateCache: dates) { date in
                renders += 1
                return ByteBuffer(string: "\(messages.map(\.id)) \(keepAlive) \(date)")
            }
        }
        // A second boundary between two calls would render once more for a reason of its own: retry once if so.
        for _ in 0..<2 {
            renders = 0
            _ = dates.current
            let second = dates.second
            #expect(get([m1]) == get([m1]))
            _ = get([m1, m2])
            _ = get([m1, m3, m2].filter { $0 !== m3 })  // the same two messages: cached
            _ = get([m1, m3])  // the same count and first message, another last one
            _ = get([m1, m3], keepAlive: false)
            _ = get([m1, m3], keepAlive: false)
            _ = dates.current
            if dates.second == second { break }
        }
        #expect(renders == 4)

        // The next second renders again (with its own Date).
        let before = get([m1, m3], keepAlive: false)
        let start = dates.second
        for _ in 0..<300 where dates.second == start {
            usleep(10_000)
            _ = dates.current
        }
        #expect(dates.second != start)
        #expect(get([m1, m3], keepAlive: false) != before)
    }
}
