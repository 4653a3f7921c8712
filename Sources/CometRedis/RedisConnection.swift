import NIOCore
import NIOPosix

/// One connection to Redis: commands are pipelined (sent at once, answered in order). Safe to use from any thread;
/// futures complete on the connection's event loop.
public final class RedisConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<RESPChannelHandler>
    private let commandTimeout: TimeAmount

    private init(channel: any Channel, handler: NIOLoopBound<RESPChannelHandler>, commandTimeout: TimeAmount) {
        self.channel = channel
        self.handler = handler
        self.commandTimeout = commandTimeout
    }

    /// Connects to `address` and logs in (`AUTH`, `SELECT`), each step within its timeout.
    public static func connect(
        to address: RedisAddress,
        on loop: any EventLoop,
        connectTimeout: TimeAmount,
        commandTimeout: TimeAmount,
        limits: RESPParser.Limits = .init()
    ) -> EventLoopFuture<RedisConnection> {
        ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RESPChannelHandler(limits: limits))
                }
            }
            .connect(host: address.host, port: address.port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: RESPChannelHandler.self)
                return RedisConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
                                       commandTimeout: commandTimeout)
            }
            .flatMap { (connection: RedisConnection) -> EventLoopFuture<RedisConnection> in
                connection.logIn(address).map { connection }.flatMapErrorThrowing { error in
                    connection.close()
                    throw error
                }
            }
    }

    private func logIn(_ address: RedisAddress) -> EventLoopFuture<Void> {
        var steps: [[RESPArgument]] = []
        if let password = address.password {
            steps.append(address.user.map { ["AUTH", .string($0), .string(password)] } ?? ["AUTH", .string(password)])
        }
        if address.database != 0 { steps.append(["SELECT", RESPArgument(address.database)]) }
        var done = self.channel.eventLoop.makeSucceededVoidFuture()
        for step in steps {
            done = done.flatMap { self.send(step).map { _ in } }
        }
        return done
    }

    /// Sends a command; its reply, or a ``RedisError`` (an error reply is ``RedisError/reply(_:)``). A command not
    /// answered within the command timeout closes the connection (the server is stuck) and fails with
    /// ``RedisError/timeout``.
    public func send(_ command: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        let loop = self.channel.eventLoop
        let promise = loop.makePromise(of: RESPValue.self)
        var bytes = self.channel.allocator.buffer(capacity: 64)
        RESPEncoder.write(command, into: &bytes)
        self.channel.writeAndFlush(RedisRequest(bytes: bytes, reply: promise), promise: nil)
        let handler = self.handler
        let channel = self.channel
        let timeout = loop.scheduleTask(in: self.commandTimeout) {
            if let context = try? channel.pipeline.syncOperations.context(handlerType: RESPChannelHandler.self) {
                handler.value.fail(with: .timeout, context: context)
            }
        }
        return promise.futureResult.always { _ in timeout.cancel() }.flatMapThrowing { value in
            if case .error(let text) = value { throw RedisError.reply(text) }
            return value
        }
    }

    /// Sends a command whose answer is a push (pub/sub connections: `SUBSCRIBE`, `UNSUBSCRIBE`).
    public func sendWithoutReply(_ command: [RESPArgument]) {
        var bytes = self.channel.allocator.buffer(capacity: 64)
        RESPEncoder.write(command, into: &bytes)
        self.channel.writeAndFlush(RedisRequest(bytes: bytes, reply: nil), promise: nil)
    }

    /// Makes this a pub/sub connection: from now on every value Redis sends goes to `pushes`, on the connection's
    /// event loop. Call before the first `SUBSCRIBE`.
    public func receivePushes(_ pushes: @escaping @Sendable (RESPValue) -> Void) -> EventLoopFuture<Void> {
        let handler = self.handler
        return self.channel.eventLoop.submit { handler.value.pushes = pushes }
    }

    /// Completes when the connection closed (for any reason).
    public var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }

    public var eventLoop: any EventLoop { self.channel.eventLoop }

    public func close() {
        self.channel.close(promise: nil)
    }
}
