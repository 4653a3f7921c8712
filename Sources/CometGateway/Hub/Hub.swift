import CometCore
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Fans messages out to this node's subscribers: one ``LoopShard`` per event loop.
///
/// A published message is encoded once (``Message/wire``) and posted once to each event loop that has subscribers
/// of its channel; there the shard writes the same buffers to each subscriber's connection. No lock, allocation or
/// thread hop is taken per subscriber. The only shared state is the route table (which loops have subscribers of
/// which channel), touched once per publish and once per subscribe/unsubscribe.
public final class Hub: MessageSink, Sendable {
    private struct Route: Sendable {
        var perShard: [Int]
        var total: Int
    }

    /// Which loops have subscribers of which channel, and of which pattern (wildcard subscriptions).
    private struct Routes: Sendable {
        var channels: [ChannelName: Route] = [:]
        var patterns: [ChannelPattern: Route] = [:]
    }

    let inboxes: [ShardInbox]
    private let shardIndexByLoop: [ObjectIdentifier: Int]
    private let routes = NIOLockedValueBox(Routes())
    /// Told when a channel gains its first local subscriber and loses its last (a Redis broker subscribes then).
    private let interest = NIOLockedValueBox<(any ChannelInterest)?>(nil)
    /// Counters shared by the whole node.
    public let stats: GatewayStats

    /// Creates a hub with one shard per event loop of `group`.
    public init(group: any EventLoopGroup, heartbeatInterval: TimeAmount, stats: GatewayStats) {
        var inboxes: [ShardInbox] = []
        var indexByLoop: [ObjectIdentifier: Int] = [:]
        for (index, loop) in group.makeIterator().enumerated() {
            indexByLoop[ObjectIdentifier(loop)] = index
            inboxes.append(ShardInbox(index: index, loop: loop, heartbeatInterval: heartbeatInterval, stats: stats))
        }
        self.inboxes = inboxes
        self.shardIndexByLoop = indexByLoop
        self.stats = stats
    }

    /// Sets who is told of channels gaining and losing local subscribers (before any subscriber is added).
    public func setInterest(_ interest: any ChannelInterest) {
        self.interest.withLockedValue { $0 = interest }
    }

    /// The shard of the current event loop (call on one of the hub's loops).
    func shard(for loop: any EventLoop) -> LoopShard {
        guard let index = self.shardIndexByLoop[ObjectIdentifier(loop)] else {
            preconditionFailure("event loop does not belong to the hub's group")
        }
        return self.inboxes[index].shard.value
    }

    /// Registers a subscriber on its own event loop (`shard`'s) for live messages of its channels.
    func add(_ subscription: any HubSubscriber, on shard: LoopShard) {
        shard.add(subscription)
        let shardCount = self.inboxes.count
        let interest = self.interest.withLockedValue { $0 }
        self.routes.withLockedValue { routes in
            for channel in subscription.channels {
                if routes.channels[channel] == nil { interest?.channelGained(channel) }
                routes.channels[channel, default: Route(perShard: Array(repeating: 0, count: shardCount), total: 0)]
                    .perShard[shard.index] += 1
                routes.channels[channel]!.total += 1
            }
        }
        self.stats.subscribers.add(1, ordering: .relaxed)
        self.stats.subscribers(subscription.kind, add: 1)
    }

    /// Unregisters a subscriber (on its own event loop, `shard`'s).
    func remove(_ subscription: any HubSubscriber, on shard: LoopShard) {
        shard.remove(subscription)
        let interest = self.interest.withLockedValue { $0 }
        self.routes.withLockedValue { routes in
            for channel in subscription.channels {
                guard var route = routes.channels.removeValue(forKey: channel) else { continue }
                route.perShard[shard.index] -= 1
                route.total -= 1
                if route.total > 0 {
                    routes.channels[channel] = route
                } else {
                    interest?.channelLost(channel)
                }
            }
        }
        self.stats.subscribers.subtract(1, ordering: .relaxed)
        self.stats.subscribers(subscription.kind, add: -1)
    }

    /// Registers a subscriber of every channel that `pattern` matches (a wildcard subscription), on its own event
    /// loop (`shard`'s). Its ``HubSubscriber/receive(_:channelIndex:)`` gets channel index 0.
    ///
    /// Patterns cost each publish one match per distinct pattern of the node (none when there are none). A broker
    /// that subscribes per channel (Redis) is told when a pattern gains its first subscriber and loses its last.
    func add(_ subscriber: any HubSubscriber, pattern: ChannelPattern, on shard: LoopShard) {
        shard.add(subscriber, pattern: pattern)
        let shardCount = self.inboxes.count
        let interest = self.interest.withLockedValue { $0 }
        self.routes.withLockedValue { routes in
            if routes.patterns[pattern] == nil { interest?.patternGained(pattern) }
            routes.patterns[pattern, default: Route(perShard: Array(repeating: 0, count: shardCount), total: 0)]
                .perShard[shard.index] += 1
            routes.patterns[pattern]!.total += 1
        }
        self.stats.subscribers.add(1, ordering: .relaxed)
        self.stats.subscribers(subscriber.kind, add: 1)
    }

    /// Unregisters a wildcard subscription (on its own event loop, `shard`'s).
    func remove(_ subscriber: any HubSubscriber, pattern: ChannelPattern, on shard: LoopShard) {
        shard.remove(subscriber, pattern: pattern)
        let interest = self.interest.withLockedValue { $0 }
        self.routes.withLockedValue { routes in
            guard var route = routes.patterns.removeValue(forKey: pattern) else { return }
            route.perShard[shard.index] -= 1
            route.total -= 1
            if route.total > 0 {
                routes.patterns[pattern] = route
            } else {
                interest?.patternLost(pattern)
            }
        }
        self.stats.subscribers.subtract(1, ordering: .relaxed)
        self.stats.subscribers(subscriber.kind, add: -1)
    }

    /// Delivers now what is pending for `shard` (call on its loop) when it is a large fan-out, instead of when the
    /// loop next runs its tasks.
    ///
    /// A publisher connection calls this at the end of each read. A batch that writes to many connections (at least
    /// ``ShardInbox/promptDeliveries``) costs far more than the batching it could still gain, and the loop's
    /// remaining I/O events, which under load are hundreds of other requests, would delay every one of its writes.
    /// A small batch waits for the loop's task, so messages from several publisher connections still coalesce into
    /// one write per subscriber.
    func deliverLargeBatch(on shard: LoopShard) {
        self.inboxes[shard.index].drainIfLarge()
    }

    /// Delivers now whatever is posted to `shard` (call on its loop) and not yet delivered.
    ///
    /// A publish posts its message to each loop before it is acknowledged, but the loop delivers it only when it next
    /// runs its tasks. A keep-alive poll resuming its parked subscription and a Bayeux `/meta/connect` call this before
    /// they answer at once, so that the answer holds every message whose publish was acknowledged before the request
    /// was sent (one that waits is answered by the delivery itself). It costs one uncontended lock when nothing is
    /// pending.
    ///
    /// Called during a delivery on the same loop (a request served when an answer went out), it does nothing: a
    /// delivery inside another would hand later messages to the subscribers that the outer one has not reached yet,
    /// ahead of earlier ones. What is pending then goes out with the loop's task, in order.
    func deliverPending(on shard: LoopShard) {
        guard !shard.isWalking else { return }
        self.inboxes[shard.index].drainIfPending()
    }

    public func dispatch(_ message: Message) -> Int {
        self.post(.message(message), channel: message.channel)
    }

    public func channelDeleted(_ channel: ChannelName) -> Int {
        self.post(.deleted(channel), channel: channel)
    }

    public func streamsClosed(_ channel: ChannelName) -> Int {
        self.post(.streamsClosed(channel), channel: channel)
    }

    public func gap(_ channel: ChannelName) -> Int {
        self.post(.gap(channel), channel: channel)
    }

    public func patternGap(_ pattern: ChannelPattern) -> Int {
        guard let route = self.routes.withLockedValue({ $0.patterns[pattern] }) else { return 0 }
        for (index, count) in route.perShard.enumerated() where count > 0 {
            self.inboxes[index].post(.patternGap(pattern), deliveries: 0)
        }
        return route.total
    }

    private func post(_ event: ShardEvent, channel: ChannelName) -> Int {
        // Copying the route out retains its array; it does not allocate (unless wildcard subscriptions exist).
        guard let route = self.routes.withLockedValue({ routes in
            routes.patterns.isEmpty ? routes.channels[channel] : Self.route(of: channel, in: routes)
        }) else { return 0 }
        for (index, count) in route.perShard.enumerated() where count > 0 {
            self.inboxes[index].post(event, deliveries: count)
        }
        return route.total
    }

    /// The loops with subscribers of `channel`: of the channel itself and of every pattern that matches it.
    private static func route(of channel: ChannelName, in routes: Routes) -> Route? {
        let exact = routes.channels[channel]
        if routes.patterns.isEmpty { return exact }
        var merged: Route? = exact
        for (pattern, route) in routes.patterns where pattern.matches(channel) {
            if merged == nil { merged = Route(perShard: Array(repeating: 0, count: route.perShard.count), total: 0) }
            for (index, count) in route.perShard.enumerated() { merged!.perShard[index] += count }
            merged!.total += route.total
        }
        return merged
    }

    public func subscriberCount(_ channel: ChannelName) -> Int {
        self.routes.withLockedValue { Self.route(of: channel, in: $0)?.total ?? 0 }
    }

    /// The number of channels with at least one local subscriber (wildcard subscriptions not counted).
    public var channelCount: Int {
        self.routes.withLockedValue { $0.channels.count }
    }

    /// Starts each shard's heartbeat timer.
    func start() {
        for inbox in self.inboxes {
            inbox.loop.execute { inbox.shard.value.startHeartbeats() }
        }
    }

    /// Stops each shard's heartbeat timer.
    func stop() {
        for inbox in self.inboxes {
            inbox.loop.execute { inbox.shard.value.stopHeartbeats() }
        }
    }
}

/// What a shard receives from other threads.
enum ShardEvent: Sendable {
    case message(Message)
    case deleted(ChannelName)
    /// EPCP's `http-stream` `action: "close"`.
    case streamsClosed(ChannelName)
    /// Messages may have been missed (``MessageSink/gap(_:)``).
    case gap(ChannelName)
    /// Messages a wildcard brings may have been missed (``MessageSink/patternGap(_:)``).
    case patternGap(ChannelPattern)
}

/// The cross-thread entrance of a ``LoopShard``: events posted here are delivered on the shard's loop in order, in
/// batches (one loop task per batch, so bursts coalesce into one write and one flush per subscriber).
final class ShardInbox: Sendable {
    private struct Pending: Sendable {
        var events: [ShardEvent] = []
        /// The writes the pending events make on this shard (each event's local subscribers).
        var deliveries = 0
    }

    /// A pending batch making at least this many writes is delivered at the end of the publisher's read that made it
    /// (see ``Hub/deliverLargeBatch(on:)``).
    static let promptDeliveries = 64

    let index: Int
    let loop: any EventLoop
    let shard: NIOLoopBoundBox<LoopShard>
    private let pending = NIOLockedValueBox(Pending())

    init(index: Int, loop: any EventLoop, heartbeatInterval: TimeAmount, stats: GatewayStats) {
        self.index = index
        self.loop = loop
        self.shard = NIOLoopBoundBox.makeBoxSendingValue(
            LoopShard(index: index, loop: loop, heartbeatInterval: heartbeatInterval, stats: stats),
            eventLoop: loop
        )
    }

    func post(_ event: ShardEvent, deliveries: Int) {
        let scheduleDrain = self.pending.withLockedValue { pending in
            pending.events.append(event)
            pending.deliveries += deliveries
            return pending.events.count == 1
        }
        if scheduleDrain {
            self.loop.execute { self.drain() }
        }
    }

    /// Delivers the pending batch now if there is one (on the shard's loop).
    func drainIfPending() {
        if self.pending.withLockedValue({ !$0.events.isEmpty }) {
            self.drain()
        }
    }

    /// Delivers the pending batch now if it makes at least ``promptDeliveries`` writes (on the shard's loop); the
    /// scheduled task then finds nothing, or only what was posted since.
    func drainIfLarge() {
        if self.pending.withLockedValue({ $0.deliveries >= Self.promptDeliveries }) {
            self.drain()
        }
    }

    private func drain() {
        let shard = self.shard.value
        var batch = shard.takeSpareBatch()
        self.pending.withLockedValue { pending in
            swap(&pending.events, &batch)
            pending.deliveries = 0
        }
        shard.deliver(batch)
        batch.removeAll(keepingCapacity: true)
        shard.returnSpareBatch(batch)
    }
}
