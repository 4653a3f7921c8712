import CometCore
import NIOConcurrencyHelpers
import NIOCore

/// The embedded single-node broker: per-channel history in memory, no other service.
///
/// Channels are spread over lock stripes; a publish holds its channel's stripe lock while it assigns the id, appends
/// to history and dispatches to the hub, which makes each message atomic and keeps a channel's messages in order.
/// A node restart loses history: every position issued before it is below the new histories' floor (the start time)
/// and resumes as a gap.
public final class MemoryBroker: Broker {
    private struct ChannelState: Sendable {
        var history: ChannelHistory
        /// Deleted and not published to since (`GET /pub/{channel}` answers 404).
        var deleted = false
    }

    private let stripes: [NIOLockedValueBox<[ChannelName: ChannelState]>]
    private let limits: HistoryLimits
    private let clock: BrokerClock
    private let sink: any MessageSink
    /// Ids at or below this were issued before this broker started (by an earlier run).
    public let startFloor: UInt64

    /// Creates a broker.
    /// - Parameters:
    ///   - limits: Per-channel history bounds.
    ///   - sink: Where sequenced messages are delivered (the hub).
    ///   - clock: The id clock.
    public init(limits: HistoryLimits, sink: any MessageSink, clock: BrokerClock = BrokerClock()) {
        self.stripes = (0..<64).map { _ in NIOLockedValueBox([:]) }
        self.limits = limits
        self.clock = clock
        self.sink = sink
        self.startFloor = clock.next()
    }

    private func stripe(for channel: ChannelName) -> NIOLockedValueBox<[ChannelName: ChannelState]> {
        self.stripes[Int(UInt(bitPattern: channel.hashValue) % UInt(self.stripes.count))]
    }

    /// Publishes synchronously (the in-process path behind ``publish(_:on:)``).
    public func publishNow(_ drafts: [MessageDraft]) -> [PublishReceipt] {
        var receipts: [PublishReceipt] = []
        receipts.reserveCapacity(drafts.count)
        for draft in drafts {
            receipts.append(self.publishNow(draft))
        }
        return receipts
    }

    /// Publishes one message synchronously.
    public func publishNow(_ draft: MessageDraft) -> PublishReceipt {
        self.stripe(for: draft.channel).withLockedValue { channels in
            let floor = self.startFloor
            return Self.append(draft, to: &channels[draft.channel, default: ChannelState(history: .init(floor: floor))],
                               clock: self.clock, limits: self.limits, sink: self.sink)
        }
    }

    private static func append(
        _ draft: MessageDraft,
        to state: inout ChannelState,
        clock: BrokerClock,
        limits: HistoryLimits,
        sink: any MessageSink
    ) -> PublishReceipt {
        let now = clock.next()
        let id = max(now, state.history.lastID + 1)
        let message = Message(
            channel: draft.channel,
            id: id,
            event: draft.event,
            contentType: draft.contentType,
            data: draft.data,
            publishedAt: now,  // the clock is wall-clock microseconds, never behind
            grip: draft.grip
        )
        state.history.append(message, limits: limits, now: message.publishedAt)
        state.deleted = false
        let subscribers = sink.dispatch(message)
        return PublishReceipt(channel: draft.channel, id: id, subscribers: subscribers)
    }

    public func publishImmediately(_ drafts: [MessageDraft]) -> [PublishReceipt]? {
        self.publishNow(drafts)
    }

    public func publishImmediately(_ draft: MessageDraft) -> PublishReceipt? {
        self.publishNow(draft)
    }

    public func replayImmediately(channels: [ChannelName], positions: [UInt64]?) -> [ChannelReplay]? {
        self.replayNow(channels: channels, positions: positions)
    }

    /// Always: every call completes in process, and every future it returns is already succeeded.
    public var answersImmediately: Bool { true }

    public func publish(_ drafts: [MessageDraft], on eventLoop: any EventLoop) -> EventLoopFuture<[PublishReceipt]> {
        eventLoop.makeSucceededFuture(self.publishNow(drafts))
    }

    /// The replay, synchronously (see ``Broker/replay(channels:positions:on:)``).
    public func replayNow(channels: [ChannelName], positions: [UInt64]?) -> [ChannelReplay] {
        var replays: [ChannelReplay] = []
        replays.reserveCapacity(channels.count)
        for (index, channel) in channels.enumerated() {
            let position = positions?[index]
            let replay = self.stripe(for: channel).withLockedValue { channels -> ChannelReplay? in
                guard channels[channel] != nil else { return nil }
                let now = BrokerClock.wallMicroseconds()
                channels[channel]!.history.evictExpired(limits: self.limits, now: now)
                let history = channels[channel]!.history
                guard let position else { return ChannelReplay(head: history.lastID) }
                let (messages, gap) = history.messages(after: position)
                return ChannelReplay(head: history.lastID, messages: messages, gap: gap)
            }
            if let replay {
                replays.append(replay)
            } else {
                // Never published to (since this broker started): the current time is a position that no message
                // of this channel precedes.
                let head = self.clock.next()
                let gap = position.map { $0 < self.startFloor || $0 > head } ?? false
                replays.append(ChannelReplay(head: head, messages: [], gap: gap))
            }
        }
        return replays
    }

    public func replay(
        channels: [ChannelName],
        positions: [UInt64]?,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<[ChannelReplay]> {
        eventLoop.makeSucceededFuture(self.replayNow(channels: channels, positions: positions))
    }

    public func info(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<ChannelInfo?> {
        let info = self.stripe(for: channel).withLockedValue { channels -> ChannelInfo? in
            guard channels[channel] != nil, !channels[channel]!.deleted else { return nil }
            channels[channel]!.history.evictExpired(limits: self.limits, now: BrokerClock.wallMicroseconds())
            let history = channels[channel]!.history
            return ChannelInfo(retainedMessages: history.count, retainedBytes: history.byteCount, lastID: history.lastID)
        }
        return eventLoop.makeSucceededFuture(info)
    }

    public func delete(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        let existed = self.stripe(for: channel).withLockedValue { channels -> Bool in
            let known = channels[channel].map { !$0.deleted } ?? false
            if known {
                channels[channel]!.history.removeAll()
                channels[channel]!.deleted = true
            }
            // Inside the lock, so that no message of the channel is dispatched after the close.
            let closed = self.sink.channelDeleted(channel)
            return known || closed > 0
        }
        return eventLoop.makeSucceededFuture(existed)
    }

    public func closeStreams(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        // Inside the channel's lock: after every message of the channel published before it, before any after it.
        self.stripe(for: channel).withLockedValue { _ in _ = self.sink.streamsClosed(channel) }
        return eventLoop.makeSucceededVoidFuture()
    }

    /// Evicts expired messages of every channel (run periodically, so idle channels release memory).
    public func evictExpired() {
        let now = BrokerClock.wallMicroseconds()
        for stripe in self.stripes {
            stripe.withLockedValue { channels in
                for key in channels.keys {
                    channels[key]!.history.evictExpired(limits: self.limits, now: now)
                }
            }
        }
    }
}
