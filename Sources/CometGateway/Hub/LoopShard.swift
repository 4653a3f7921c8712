import CometCore
import NIOCore

/// The subscribers of one event loop, indexed by channel. Confined to its loop: no locks.
final class LoopShard {
    /// One subscriber of a channel: the subscription and the channel's index in its channel list.
    struct Entry {
        let subscription: Subscription
        let channelIndex: Int
    }

    /// The subscribers of one channel on this loop. Removal swaps the last entry into the hole (O(1)).
    final class ChannelSubscribers {
        var entries: ContiguousArray<Entry> = []
    }

    let index: Int
    let loop: any EventLoop
    let stats: GatewayStats
    private var channels: [ChannelName: ChannelSubscribers] = [:]
    /// Stream subscriptions, for heartbeats.
    private var streams: ContiguousArray<Subscription> = []
    private var delivering = false
    /// The batch being delivered holds several events: writes are gathered and go out at its end, one system call
    /// per connection.
    private(set) var coalescing = false
    private var deferredRemovals: [Subscription] = []
    /// Subscriptions written to during the current batch, flushed once at its end.
    private var flushList: ContiguousArray<Subscription> = []
    private var spareBatch: [ShardEvent] = []
    private let heartbeatInterval: TimeAmount
    private var heartbeatTask: RepeatedTask?
    /// The `Date` header of responses written on this loop.
    let dateCache = HTTPDateCache()
    /// The poll response shared by this loop's pollers that get the same messages.
    let pollResponses = PollResponseCache()
    /// The fixed start of single publishes' response heads, with this loop's `Date`.
    private(set) lazy var publishHeads = PublishResponseHeads(dateCache: self.dateCache)
    /// A buffer reused for responses that are written at once (see ``renderResponse(_:)``).
    private var responseBuffer = ByteBuffer()

    init(index: Int, loop: any EventLoop, heartbeatInterval: TimeAmount, stats: GatewayStats) {
        self.index = index
        self.loop = loop
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

    func add(_ subscription: Subscription) {
        for (channelIndex, channel) in subscription.channels.enumerated() {
            let list: ChannelSubscribers
            if let existing = self.channels[channel] {
                list = existing
            } else {
                list = ChannelSubscribers()
                self.channels[channel] = list
            }
            subscription.slots[channelIndex] = list.entries.count
            list.entries.append(Entry(subscription: subscription, channelIndex: channelIndex))
        }
        if subscription.transport.connectionKind == .stream {
            subscription.streamSlot = self.streams.count
            self.streams.append(subscription)
        }
    }

    func remove(_ subscription: Subscription) {
        if self.delivering {
            self.deferredRemovals.append(subscription)
            return
        }
        for (channelIndex, channel) in subscription.channels.enumerated() {
            guard let list = self.channels[channel] else { continue }
            let slot = subscription.slots[channelIndex]
            let last = list.entries.removeLast()
            if slot < list.entries.count {
                list.entries[slot] = last
                last.subscription.slots[last.channelIndex] = slot
            }
            if list.entries.isEmpty {
                self.channels[channel] = nil
            }
        }
        if subscription.streamSlot >= 0 {
            let slot = subscription.streamSlot
            let last = self.streams.removeLast()
            if slot < self.streams.count {
                self.streams[slot] = last
                last.streamSlot = slot
            }
            subscription.streamSlot = -1
        }
    }

    /// Marks a subscription as written to; it is flushed at the end of the batch.
    @inline(__always)
    func needsFlush(_ subscription: Subscription) {
        self.flushList.append(subscription)
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
                guard let list = self.channels[message.channel] else { continue }
                // Subscriptions closed during the loop stay in the list until the batch ends (removal is
                // deferred), so the indices are stable; a closed subscription ignores what it receives.
                for entry in list.entries {
                    entry.subscription.receive(message, channelIndex: entry.channelIndex)
                }
            case .deleted(let channel):
                guard let list = self.channels[channel] else { continue }
                for entry in list.entries {
                    entry.subscription.channelDeleted(channel)
                }
            }
        }
        for subscription in self.flushList {
            subscription.flush()
        }
        self.flushList.removeAll(keepingCapacity: true)
        self.coalescing = false
        self.finishIteration()
    }

    /// Ends a walk over the subscriber lists: applies the removals deferred while walking.
    private func finishIteration() {
        self.delivering = false
        guard !self.deferredRemovals.isEmpty else { return }
        let removals = self.deferredRemovals
        self.deferredRemovals.removeAll()
        for subscription in removals {
            self.remove(subscription)
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

    /// Writes a heartbeat to every stream that was not written to since the last tick.
    private func heartbeat() {
        self.delivering = true
        for subscription in self.streams {
            subscription.heartbeatTick()
        }
        self.finishIteration()
    }
}

@available(*, unavailable)
extension LoopShard: Sendable {}
