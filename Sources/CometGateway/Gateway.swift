import CometCore
import CometRedis
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
import Synchronization
#endif

/// The addresses a running gateway listens on.
public struct BoundAddresses: Sendable {
    /// The public (subscriber) listener.
    public var publicAddress: SocketAddress
    /// The publisher listener.
    public var publishAddress: SocketAddress
}

/// A gateway node: listeners, hub and broker built from a ``GatewayConfiguration``, run as a `Service`.
///
/// `run()` binds both listeners, serves until a graceful shutdown is triggered (SIGTERM/SIGINT through a
/// `ServiceGroup`), then drains: it stops accepting, answers held polls with their cursor, tells streams to
/// reconnect, and returns once every connection closed or `server.drain_timeout` passed.
public final class Gateway: Service {
    public let configuration: GatewayConfiguration
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let stats = GatewayStats()
    /// The running broker (set when ``run()`` starts).
    private let runningBroker = NIOLockedValueBox<(any Broker)?>(nil)

    /// Channels a Redis broker filled in from history after reconnecting (nil: not a Redis broker, or not running).
    public var brokerBackfills: Int? { (self.runningBroker.withLockedValue { $0 } as? RedisBroker)?.backfillCount }

    /// Whether the broker is connected (nil before ``run()`` built it).
    public var brokerConnected: Bool? { self.runningBroker.withLockedValue { $0?.isConnected } }
    private let bound: EventLoopPromise<BoundAddresses>

    /// Creates a gateway; nothing is bound until ``run()``.
    public init(configuration: GatewayConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let threads = configuration.server.threads > 0 ? configuration.server.threads : System.coreCount
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.bound = self.group.next().makePromise(of: BoundAddresses.self)
    }

    /// The bound addresses, once both listeners are up (fails if binding failed).
    public func boundAddresses() async throws -> BoundAddresses {
        try await self.bound.futureResult.get()
    }

    public func run() async throws {
        let configuration = self.configuration
        let hub = Hub(
            group: self.group,
            heartbeatInterval: .nanoseconds(Int64(configuration.transports.heartbeatInterval * 1_000_000_000)),
            stats: self.stats
        )
        let metrics = GatewayMetrics()
        let broker = try self.makeBroker(hub: hub, metrics: metrics)
        self.runningBroker.withLockedValue { $0 = broker }
        let context = GatewayContext(
            configuration: configuration,
            hub: hub,
            broker: broker,
            stats: self.stats,
            maxConnections: Self.connectionLimit(configured: configuration.server.maxConnections, logger: self.logger),
            logger: self.logger,
            metrics: metrics
        )
        // The listeners live in `serve` only: their quiescing helpers must be gone before the loops shut down.
        do {
            try await self.serve(context: context, hub: hub, broker: broker)
        } catch {
            try? await self.group.shutdownGracefully()
            throw error
        }
        try await self.group.shutdownGracefully()
        self.logger.info("stopped")
    }

    /// The broker `broker.type` names: the embedded one, or Redis (connecting in the background: until it is up,
    /// publishes and subscriptions are refused with `503`).
    private func makeBroker(hub: Hub, metrics: GatewayMetrics) throws -> any Broker {
        let configuration = self.configuration
        switch configuration.broker.type {
        case "redis":
            guard let address = RedisAddress(url: configuration.broker.redisURL) else {
                throw ConfigurationError(key: "broker.redis_url", message: "not a redis:// URL this gateway can use")
            }
            let options = RedisClient.Options(
                connectTimeout: .nanoseconds(Int64(configuration.broker.connectTimeout * 1_000_000_000)),
                commandTimeout: .nanoseconds(Int64(configuration.broker.commandTimeout * 1_000_000_000)))
            let broker = RedisBroker(address: address, keyPrefix: configuration.broker.keyPrefix,
                                     limits: configuration.history, sink: hub, loop: self.group.next(),
                                     options: options, logger: self.logger, latency: metrics.brokerLatency)
            hub.setInterest(broker)
            return broker
        default:
            return MemoryBroker(limits: configuration.history, sink: hub)
        }
    }

    private func serve(context: GatewayContext, hub: Hub, broker: any Broker) async throws {
        let configuration = self.configuration
        let publicListener = GatewayListener(gateway: context, group: self.group)
        let publishListener = GatewayListener(gateway: context, group: self.group)
        let publicChannel: any Channel
        let publishChannel: any Channel
        do {
            publicChannel = try await publicListener.bind(configuration.server.listen, role: .subscriber,
                                                          tls: try TLSSetup.serverContext(for: configuration))
            publishChannel = try await publishListener.bind(configuration.server.publishListen, role: .publisher)
        } catch {
            self.bound.fail(error)
            throw error
        }
        hub.start()
        broker.start()
        let memory = broker as? MemoryBroker
        let eviction = self.group.next().scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { _ in
            memory?.evictExpired()
        }
        let addresses = BoundAddresses(publicAddress: publicChannel.localAddress!, publishAddress: publishChannel.localAddress!)
        self.logger.info(
            "comet-gateway listening",
            metadata: [
                "comet.public": "\(addresses.publicAddress)",
                "comet.publish": "\(addresses.publishAddress)",
                "comet.threads": "\(self.group.makeIterator().map { $0 }.count)",
                "comet.max_connections": "\(context.maxConnections)",
            ]
        )
        self.bound.succeed(addresses)

        // Serve until a graceful shutdown (or cancellation).
        try? await gracefulShutdown()

        self.logger.info("draining", metadata: ["comet.drain_timeout": "\(configuration.server.drainTimeout)"])
        context.draining.store(true, ordering: .relaxed)
        context.bayeux.quiesce()
        eviction.cancel()
        hub.stop()
        let drained = publicListener.drain().and(publishListener.drain())
        // Whichever comes first: every connection closed, or the deadline. (A task group would not do: it waits for
        // all its children, and a future's `get()` does not end on cancellation, so a connection that never
        // finishes, such as a publish whose body stops arriving, would hold the shutdown past the deadline.)
        let loop = self.group.next()
        let outcome = loop.makePromise(of: Bool.self)
        let decided = NIOLockedValueBox(false)
        let decide: @Sendable (Bool) -> Void = { finished in
            let first = decided.withLockedValue { decided in
                defer { decided = true }
                return !decided
            }
            if first { outcome.succeed(finished) }
        }
        drained.whenComplete { _ in decide(true) }
        let deadline = loop.scheduleTask(in: .nanoseconds(Int64(configuration.server.drainTimeout * 1_000_000_000))) {
            decide(false)
        }
        let finishedInTime = (try? await outcome.futureResult.get()) ?? false
        deadline.cancel()
        if !finishedInTime {
            // Each connection closes itself at the same deadline (it started counting when it was told to drain).
            self.logger.warning("drain deadline passed: closing the remaining connections")
            _ = try? await drained.get()
        }
        broker.stop()
    }

    /// The connection limit: the configured one, or the file-descriptor limit (raised to its hard limit, the
    /// descriptor table grown to it: ``OpenFiles``) less a reserve for the publisher listener and the process's own files.
    static func connectionLimit(configured: Int, logger: Logger) -> Int {
        let files = OpenFiles.raiseLimit()
        if configured > 0 { return configured }
        return max(16, (files ?? 1024) - 128)
    }
}
