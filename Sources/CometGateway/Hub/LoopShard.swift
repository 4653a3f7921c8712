import CometCore
import NIOCore
import Synchronization

/// The subscribers of one event loop, indexed by channel. Confined to its loop: no locks.
final class LoopShard {
    /// One subscriber of a channel: the subscriber and the channel's index in its channel list.
    struct Entry {
        let subscriber: any HubSubscriber
        let channelIndex: Int
    }

    /// The subscribers of one channel on this loop. Removal swaps the last entry into the hole (O(1)).
    final class ChannelSubscribers {
        var entries: ContiguousArray<Entry> = []
    }

    /// A wildcard subscription on this loop.
    struct PatternEntry {
        let pattern: ChannelPattern
        let subscriber: any HubSubscriber
    }

    let index: Int
    let loop: any EventLoop
    let stats: GatewayStats
    private var channels: [ChannelName: ChannelSubscribers] = [:]
    /// Wildcard subscriptions, matched against each message's channel (few: one per Bayeux `/x/*` subscription).
    private var patterns: ContiguousArray<PatternEntry> = []
    private var deferredPatternRemovals: [PatternEntry] = []
    /// Streams and WebSockets, for heartbeats.
    private var heartbeats: ContiguousArray<any HeartbeatReceiver> = []
    private var delivering = false
    /// Whether a walk over the subscriber lists (a delivery, a heartbeat tick) is under way on this loop; what a
    /// subscriber does during it (answering a poll may serve the connection's next request) must not deliver again.
    var isWalking: Bool { self.delivering }
    /// The batch being delivered holds several events: writes are gathered and go out at its end, one system call
    /// per connection.
    private(set) var coalescing = false
    private var deferredRemovals: [any HubSubscriber] = []
    private var deferredHeartbeatRemovals: [any HeartbeatReceiver] = []
    /// Subscribers written to during the current batch, flushed once at its end.
    private var flushList: ContiguousArray<any HubSubscriber> = []
    private var spareBatch: [ShardEvent] = []
    private let heartbeatInterval: TimeAmount
    private var heartbeatTask: RepeatedTask?
    /// The `Date` header of responses written on this loop.
    let dateCache = HTTPDateCache()
    /// The poll response shared by this loop's pollers that get the same messages.
    let pollResponses = PollResponseCache()
    /// The fixed start of single publishes' response heads, with this loop's `Date`.
    private(set) lazy var publishHeads = PublishResponseHeads(dateCache: self.dateCache)
    /// The idle, request and poll deadlines of this loop's connections.
    let timers: ConnectionTimers
    private var upstreamPool: UpstreamPool?
    private var authorizerInstance: Authorizer?

    /// The application's authorization endpoint (`auth.authorize_url`) as seen from this loop, or nil when none is
    /// configured; made on first use.
    func authorizer(_ configuration: GatewayConfiguration) -> Authorizer? {
        if let authorizer = self.authorizerInstance { return authorizer }
        guard let url = configuration.auth.authorizeURL, let endpoint = try? AuthorizeEndpoint(parsing: url) else {
            return nil
        }
        let authorizer = Authorizer(loop: self.loop, endpoint: endpoint, configuration: configuration.auth,
                                    pool: self.upstreams(maxIdle: configuration.proxy.maxIdleConnections),
                                    timers: self.timers)
        self.authorizerInstance = authorizer
        return authorizer
    }

    /// Idle keep-alive connections to the application behind the gateway (`[[proxy.route]]`), at most `maxIdle` per
    /// upstream (`proxy.max_idle_connections`); made on first use.
    func upstreams(maxIdle: Int) -> UpstreamPool {
        if let pool = self.upstreamPool { return pool }
        let pool = UpstreamPool(loop: self.loop, maxIdle: maxIdle)
        self.upstreamPool = pool
        return pool
    }
    /// A buffer reused for responses that are written at once (see ``renderResponse(_:)``).
    private var responseBuffer = ByteBuffer()

    init(index: Int, loop: any EventLoop, heartbeatInterval: TimeAmount, stats: GatewayStats) {
        self.index = index
        self.loop = loop
        self.timers = ConnectionTimers(loop: loop)
        self.heartbeatInterval = heartbeatInterval
        self.stats = stats
    }

    /// Renders a response that is written at once: `render` writes it into this loop's response buffer, emptied,
    /// which is returned. Written straight to the socket and released, the bytes cost no allocation; a write that
    /// cannot complete keeps them (in NIO), and the next call then gets fresh storage (copy-on-write), so bytes
    /// still to be written are never overwritten.
    func renderResponse(_ render: (inout ByteBuffer) -> Void) -> ByteBuffer {
        self.responseBuffer.clear()
        render(&self.responseBuffer)
        return self.responseBuffer
    }

    func add(_ subscriber: any HubSubscriber) {
        for (channelIndex, channel) in subscriber.channels.enumerated() {
            let list: ChannelSubscribers
            if let existing = self.channels[channel] {
                list = existing
            } else {
                list = ChannelSubscribers()
                self.channels[channel] = list
            }
            subscriber.slots[channelIndex] = list.entries.count
            list.entries.append(Entry(subscriber: subscriber, channelIndex: channelIndex))
        }
    }

    func remove(_ subscriber: any HubSubscriber) {
        if self.delivering {
            self.deferredRemovals.append(subscriber)
            return
        }
        for (channelIndex, channel) in subscriber.channels.enumerated() {
            guard let list = self.channels[channel] else { continue }
            let slot = subscriber.slots[channelIndex]
            let last = list.entries.removeLast()
            if slot < list.entries.count {
                list.entries[slot] = last
                last.subscriber.slots[last.channelIndex] = slot
            }
            if list.entries.isEmpty {
                self.channels[channel] = nil
            }
        }
    }

    func add(_ subscriber: any HubSubscriber, pattern: ChannelPattern) {
        self.patterns.append(PatternEntry(pattern: pattern, subscriber: subscriber))
    }

    func remove(_ subscriber: any HubSubscriber, pattern: ChannelPattern) {
        if self.delivering {
            self.deferredPatternRemovals.append(PatternEntry(pattern: pattern, subscriber: subscriber))
            return
        }
        if let slot = self.patterns.firstIndex(where: { $0.subscriber === subscriber && $0.pattern == pattern }) {
            self.patterns.remove(at: slot)
        }
    }

    /// Ticks `receiver` every heartbeat interval until ``removeHeartbeat(_:)``.
    func addHeartbeat(_ receiver: any HeartbeatReceiver) {
        guard receiver.heartbeatSlot < 0 else { return }
        receiver.heartbeatSlot = self.heartbeats.count
        self.heartbeats.append(receiver)
    }

    func removeHeartbeat(_ receiver: any HeartbeatReceiver) {
        guard receiver.heartbeatSlot >= 0 else { return }
        if self.delivering {
            self.deferredHeartbeatRemovals.append(receiver)
            return
        }
        let slot = receiver.heartbeatSlot
        let last = self.heartbeats.removeLast()
        if slot < self.heartbeats.count {
            self.heartbeats[slot] = last
            last.heartbeatSlot = slot
        }
        receiver.heartbeatSlot = -1
    }

    /// Marks a subscriber as written to; it is flushed at the end of the batch.
    @inline(__always)
    func needsFlush(_ subscriber: any HubSubscriber) {
        self.flushList.append(subscriber)
    }

    func takeSpareBatch() -> [ShardEvent] {
        var batch: [ShardEvent] = []
        swap(&batch, &self.spareBatch)
        return batch
    }

    func returnSpareBatch(_ batch: [ShardEvent]) {
        self.spareBatch = batch
    }

    /// Delivers a batch of events in order: the hot path.
    func deliver(_ events: [ShardEvent]) {
        self.delivering = true
        self.coalescing = events.count > 1
        for event in events {
            switch event {
            case .message(let message):
                if !self.patterns.isEmpty { self.deliverToPatterns(message) }
                guard let list = self.channels[message.channel] else { continue }
                // Subscriptions closed during the loop stay in the list until the batch ends (removal is
                // deferred), so the indices are stable; a closed subscription ignores what it receives.
                for entry in list.entries {
                    entry.subscriber.receive(message, channelIndex: entry.channelIndex)
                }
                self.stats.deliveries.add(list.entries.count, ordering: .relaxed)
            case .deleted(let channel):
                guard let list = self.channels[channel] else { continue }
                for entry in list.entries {
                    entry.subscriber.channelDeleted(channel)
                }
            case .streamsClosed(let channel):
                guard let list = self.channels[channel] else { continue }
                for entry in list.entries {
                    entry.subscriber.streamsClosed(channel)
                }
            case .patternGap(let pattern):
                for entry in self.patterns where entry.pattern == pattern {
                    entry.subscriber.gap(pattern: pattern)
                }
            case .gap(let channel):
                for entry in self.patterns where entry.pattern.matches(channel) {
                    entry.subscriber.gap(channel)
                }
                guard let list = self.channels[channel] else { continue }
                for entry in list.entries {
                    entry.subscriber.gap(channel)
                }
            }
        }
        for subscriber in self.flushList {
            subscriber.flush()
        }
        self.flushList.removeAll(keepingCapacity: true)
        self.coalescing = false
        self.finishIteration()
    }

    /// A message to the wildcard subscriptions that match its channel (before its channel's own subscribers).
    private func deliverToPatterns(_ message: Message) {
        var count = 0
        for entry in self.patterns where entry.pattern.matches(message.channel) {
            entry.subscriber.receive(message, channelIndex: 0)
            count += 1
        }
        self.stats.deliveries.add(count, ordering: .relaxed)
    }

    /// Ends a walk over the subscriber lists: applies the removals deferred while walking.
    private func finishIteration() {
        self.delivering = false
        if !self.deferredPatternRemovals.isEmpty {
            let removals = self.deferredPatternRemovals
            self.deferredPatternRemovals.removeAll()
            for entry in removals {
                self.remove(entry.subscriber, pattern: entry.pattern)
            }
        }
        if !self.deferredRemovals.isEmpty {
            let removals = self.deferredRemovals
            self.deferredRemovals.removeAll()
            for subscriber in removals {
                self.remove(subscriber)
            }
        }
        if !self.deferredHeartbeatRemovals.isEmpty {
            let removals = self.deferredHeartbeatRemovals
            self.deferredHeartbeatRemovals.removeAll()
            for receiver in removals {
                self.removeHeartbeat(receiver)
            }
        }
    }

    func startHeartbeats() {
        guard self.heartbeatTask == nil else { return }
        let interval = self.heartbeatInterval
        self.heartbeatTask = self.loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) {
            [loopBoundSelf = NIOLoopBound(self, eventLoop: self.loop)] _ in
            loopBoundSelf.value.heartbeat()
        }
    }

    func stopHeartbeats() {
        self.heartbeatTask?.cancel()
        self.heartbeatTask = nil
    }

    /// Ticks every stream (which writes a heartbeat when it was not written to since the last tick) and WebSocket.
    private func heartbeat() {
        self.delivering = true
        for receiver in self.heartbeats {
            receiver.heartbeatTick()
        }
        self.finishIteration()
    }
}

@available(*, unavailable)
extension LoopShard: Sendable {}
