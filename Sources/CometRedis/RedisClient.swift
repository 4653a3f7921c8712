import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A connection to Redis that keeps itself up: it reconnects after a failure with an exponential backoff (100 ms,
/// doubling, at most 5 s, each with ±20 % jitter so that several nodes do not come back in step). While there is no
/// connection, commands fail at once with ``RedisError/unavailable`` (callers answer `503` rather than wait).
///
/// `onConnect` runs on every new connection before it is used (a pub/sub client subscribes there).
public final class RedisClient: Sendable {
    /// How the client connects.
    public struct Options: Sendable {
        public var connectTimeout: TimeAmount
        public var commandTimeout: TimeAmount
        public var limits: RESPParser.Limits

        public init(connectTimeout: TimeAmount = .seconds(2), commandTimeout: TimeAmount = .seconds(5),
                    limits: RESPParser.Limits = .init()) {
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.limits = limits
        }
    }

    private struct State {
        var connection: RedisConnection?
        var stopped = false
        var attempt = 0
        var started = false
    }

    public let address: RedisAddress
    private let loop: any EventLoop
    private let options: Options
    private let logger: Logger
    private let onConnect: @Sendable (RedisConnection) -> EventLoopFuture<Void>
    private let state = NIOLockedValueBox(State())
    private let reconnectCount = NIOLockedValueBox(0)
    /// Called (on the client's loop) with each new usable connection, after `onConnect`.
    private let connected: (@Sendable (_ reconnect: Bool) -> Void)?

    public init(address: RedisAddress, loop: any EventLoop, options: Options = .init(), logger: Logger,
                onConnect: @escaping @Sendable (RedisConnection) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() },
                connected: (@Sendable (_ reconnect: Bool) -> Void)? = nil) {
        self.address = address
        self.loop = loop
        self.options = options
        self.logger = logger
        self.onConnect = onConnect
        self.connected = connected
    }

    /// Starts connecting (and reconnecting, until ``stop()``).
    public func start() {
        let first = self.state.withLockedValue { state -> Bool in
            defer { state.started = true }
            return !state.started
        }
        if first { self.connect() }
    }

    /// Closes the connection and stops reconnecting.
    public func stop() {
        let connection = self.state.withLockedValue { state -> RedisConnection? in
            state.stopped = true
            defer { state.connection = nil }
            return state.connection
        }
        connection?.close()
    }

    /// Whether a connection is up now.
    public var isConnected: Bool { self.state.withLockedValue { $0.connection != nil } }

    /// How many times a connection was made again after one was lost.
    public var reconnects: Int { self.reconnectCount.withLockedValue { $0 } }

    /// The current connection, if any.
    public var connection: RedisConnection? { self.state.withLockedValue { $0.connection } }

    /// Sends a command on the current connection; fails at once with ``RedisError/unavailable`` when there is none.
    public func send(_ command: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        guard let connection = self.connection else { return self.loop.makeFailedFuture(RedisError.unavailable) }
        return connection.send(command)
    }

    private func connect() {
        guard !self.state.withLockedValue({ $0.stopped }) else { return }
        RedisConnection.connect(to: self.address, on: self.loop, connectTimeout: self.options.connectTimeout,
                                commandTimeout: self.options.commandTimeout, limits: self.options.limits)
            .flatMap { connection in
                self.onConnect(connection).map { connection }.flatMapErrorThrowing { error in
                    connection.close()
                    throw error
                }
            }
            .whenComplete { result in
                switch result {
                case .success(let connection):
                    let (keep, reconnect) = self.state.withLockedValue { state -> (Bool, Bool) in
                        guard !state.stopped else { return (false, false) }
                        let reconnect = state.attempt > 0 || state.connection != nil
                        state.connection = connection
                        state.attempt = 0
                        return (true, reconnect)
                    }
                    guard keep else {
                        connection.close()
                        return
                    }
                    if reconnect { self.reconnectCount.withLockedValue { $0 += 1 } }
                    self.logger.info("redis connected", metadata: ["redis.host": "\(self.address.host):\(self.address.port)"])
                    connection.closeFuture.whenComplete { _ in self.lost(connection) }
                    self.connected?(reconnect)
                case .failure(let error):
                    self.logger.warning("redis connect failed", metadata: ["error": "\(error)"])
                    self.scheduleReconnect()
                }
            }
    }

    private func lost(_ connection: RedisConnection) {
        let mine = self.state.withLockedValue { state -> Bool in
            guard state.connection === connection else { return false }
            state.connection = nil
            return !state.stopped
        }
        if mine {
            self.logger.warning("redis connection lost")
            self.scheduleReconnect()
        }
    }

    private func scheduleReconnect() {
        let attempt = self.state.withLockedValue { state -> Int? in
            guard !state.stopped else { return nil }
            state.attempt += 1
            return state.attempt
        }
        guard let attempt else { return }
        let base = min(5_000.0, 100.0 * pow2(min(attempt - 1, 10)))
        let delay = base * Double.random(in: 0.8...1.2)
        self.loop.scheduleTask(in: .milliseconds(Int64(delay))) { self.connect() }
    }
}

private func pow2(_ exponent: Int) -> Double { Double(1 << exponent) }
