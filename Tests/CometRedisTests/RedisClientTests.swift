import CometRedis
import CometTestSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// The client against a real `redis-server` on loopback, and against a fake server that misbehaves.
@Suite("Redis client (live redis-server)", .serialized)
struct RedisClientTests {
    private let loop = MultiThreadedEventLoopGroup.singleton.next()
    private var logger: Logger {
        var logger = Logger(label: "redis-test")
        logger.logLevel = .critical
        return logger
    }

    private func waitUntil(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<400 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(25))
        }
        return false
    }

    @Test("Pipelined commands are answered in order; an error reply is an error; binary values round-trip")
    func commands() async throws {
        let server = try await RedisServer.start()
        let connection = try await RedisConnection.connect(
            to: RedisAddress(url: server.url)!, on: self.loop, connectTimeout: .seconds(2), commandTimeout: .seconds(5)).get()
        var futures: [EventLoopFuture<RESPValue>] = []
        for index in 0..<500 {
            futures.append(connection.send(["INCR", "counter"]))
            if index == 250 { futures.append(connection.send(["SET", "bin", .bytes(ByteBuffer(bytes: [0, 13, 10, 255]))])) }
        }
        var counts: [Int64] = []
        for future in futures { if let value = try await future.get().int { counts.append(value) } }
        #expect(counts.filter { $0 > 0 } == Array(1...500))
        #expect(try await connection.send(["GET", "bin"]).get().bytes == ByteBuffer(bytes: [0, 13, 10, 255]))
        await #expect(throws: RedisError.reply("ERR value is not an integer or out of range")) {
            _ = try await connection.send(["INCR", "bin"]).get()
        }
        connection.close()
        await server.stop()
    }

    @Test("A password is sent with AUTH; a wrong one fails the connection")
    func auth() async throws {
        let server = try await RedisServer.start(password: "pw-for-tests")
        let good = try await RedisConnection.connect(
            to: RedisAddress(url: server.url)!, on: self.loop, connectTimeout: .seconds(2), commandTimeout: .seconds(5)).get()
        #expect(try await good.send(["PING"]).get() == .simpleString("PONG"))
        good.close()
        var wrong = RedisAddress(url: server.url)!
        wrong.password = "nope"
        await #expect(throws: RedisError.self) {
            _ = try await RedisConnection.connect(to: wrong, on: self.loop, connectTimeout: .seconds(2),
                                                  commandTimeout: .seconds(5)).get()
        }
        await server.stop()
    }

    @Test("Pub/sub: a subscriber connection gets every push (subscribe acknowledgement, then messages)")
    func pubsub() async throws {
        let server = try await RedisServer.start()
        let address = RedisAddress(url: server.url)!
        let subscriber = try await RedisConnection.connect(to: address, on: self.loop, connectTimeout: .seconds(2),
                                                           commandTimeout: .seconds(5)).get()
        let pushes = NIOLockedValueBox<[RESPValue]>([])
        try await subscriber.receivePushes { value in pushes.withLockedValue { $0.append(value) } }.get()
        subscriber.sendWithoutReply(["SUBSCRIBE", "news"])
        #expect(try await self.waitUntil { pushes.withLockedValue { $0.count } == 1 })
        let publisher = try await RedisConnection.connect(to: address, on: self.loop, connectTimeout: .seconds(2),
                                                          commandTimeout: .seconds(5)).get()
        #expect(try await publisher.send(["PUBLISH", "news", "hello"]).get() == .integer(1))
        #expect(try await self.waitUntil { pushes.withLockedValue { $0.count } == 2 })
        let message = pushes.withLockedValue { $0[1] }.elements?.compactMap(\.string)
        #expect(message == ["message", "news", "hello"])
        subscriber.close()
        publisher.close()
        await server.stop()
    }

    @Test("Redis down: commands fail at once; Redis back: the client reconnects by itself")
    func reconnect() async throws {
        let server = try await RedisServer.start()
        let client = RedisClient(address: RedisAddress(url: server.url)!, loop: self.loop, logger: self.logger)
        client.start()
        #expect(try await self.waitUntil { client.isConnected })
        #expect(try await client.send(["PING"]).get() == .simpleString("PONG"))
        await server.stop()
        #expect(try await self.waitUntil { !client.isConnected })
        await #expect(throws: RedisError.unavailable) { _ = try await client.send(["PING"]).get() }
        try await server.start()
        #expect(try await self.waitUntil { client.isConnected }, "reconnected within the backoff")
        #expect(try await client.send(["PING"]).get() == .simpleString("PONG"))
        #expect(client.reconnects == 1)
        client.stop()
        await server.stop()
    }

    @Test("A fake server sending garbage, a huge length, or nothing: a clean error, never a crash or a hang")
    func hostileServer() async throws {
        for (answer, expected) in [("garbage\r\n", "protocol"), ("$99999999999\r\n", "protocol"), ("", "timeout")] {
            let fake = try await FakeServer.start(answer: answer)
            let connection = try await RedisConnection.connect(
                to: RedisAddress(host: "127.0.0.1", port: fake.port), on: self.loop, connectTimeout: .seconds(2),
                commandTimeout: .milliseconds(300),
                limits: .init(maxBulkBytes: 1 << 20)).get()
            do {
                _ = try await connection.send(["PING"]).get()
                Issue.record("\(answer.debugDescription) answered")
            } catch let error as RedisError {
                switch (error, expected) {
                case (.protocolError, "protocol"), (.timeout, "timeout"): break
                default: Issue.record("\(answer.debugDescription): \(error)")
                }
            }
            try await connection.closeFuture.get()  // the connection is closed, not left half-read
            try await fake.stop()
        }
    }
}

/// A TCP server that answers every read with the same bytes (or nothing).
private final class FakeServer: Sendable {
    let port: Int
    private let channel: any Channel

    private init(port: Int, channel: any Channel) {
        self.port = port
        self.channel = channel
    }

    static func start(answer: String) async throws -> FakeServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Answer(answer: answer))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FakeServer(port: channel.localAddress!.port!, channel: channel)
    }

    func stop() async throws {
        try await self.channel.close()
    }

    private final class Answer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let answer: String
        init(answer: String) { self.answer = answer }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !self.answer.isEmpty else { return }
            context.writeAndFlush(NIOAny(ByteBuffer(string: self.answer)), promise: nil)
        }
    }
}
