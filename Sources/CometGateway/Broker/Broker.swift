import CometCore
import NIOCore

/// The result of publishing one message.
public struct PublishReceipt: Sendable, Equatable {
    /// The channel.
    public var channel: ChannelName
    /// The message id.
    public var id: UInt64
    /// How many subscriber connections the message was dispatched to.
    public var subscribers: Int

    /// Creates a receipt.
    public init(channel: ChannelName, id: UInt64, subscribers: Int) {
        self.channel = channel
        self.id = id
        self.subscribers = subscribers
    }
}

/// Where a broker hands sequenced messages for local delivery (the ``Hub``).
///
/// A broker calls ``dispatch(_:)`` for the messages of one channel in id order and never concurrently for the same
/// channel, so that every subscriber sees a channel's messages in order.
public protocol MessageSink: Sendable {
    /// Delivers a message to this node's subscribers of its channel; returns how many it was dispatched to.
    func dispatch(_ message: Message) -> Int
    /// Closes this node's subscribers of a deleted channel (after the messages already dispatched to them).
    func channelDeleted(_ channel: ChannelName) -> Int
    /// Ends this node's GRIP stream holds of a channel (after the messages already dispatched to them); returns how
    /// many subscribers it was dispatched to.
    func streamsClosed(_ channel: ChannelName) -> Int
    /// This node's subscriber connections of a channel.
    func subscriberCount(_ channel: ChannelName) -> Int
    /// Messages of the channel may have been missed on this node (its broker could not fill them in): its
    /// subscribers are told of the gap where they are.
    func gap(_ channel: ChannelName) -> Int
    /// Messages of channels that only a wildcard `pattern` brings to this node may have been missed (the broker
    /// cannot fill those in): the pattern's subscribers are told.
    func patternGap(_ pattern: ChannelPattern) -> Int
}

/// What a broker that subscribes per channel (Redis) learns from the hub: when a channel (or a wildcard pattern)
/// gains its first local subscriber and loses its last. Called in order, under the hub's lock: an implementation only
/// records and enqueues.
public protocol ChannelInterest: Sendable {
    func channelGained(_ channel: ChannelName)
    func channelLost(_ channel: ChannelName)
    func patternGained(_ pattern: ChannelPattern)
    func patternLost(_ pattern: ChannelPattern)
}

/// Sequences, retains and distributes messages. The embedded ``MemoryBroker`` serves one node; a shared broker
/// (Redis) lets several nodes share channels and history behind the same interface.
///
/// Every call takes the event loop to complete on, so an in-process broker answers without a thread hop.
public protocol Broker: Sendable {
    /// Publishes drafts in order, each atomically: sequenced, retained, then dispatched.
    func publish(_ drafts: [MessageDraft], on eventLoop: any EventLoop) -> EventLoopFuture<[PublishReceipt]>
    /// The replay for a new subscription: per channel (in the given order) the current head and, when `positions`
    /// is given, the retained messages after each position and whether any may be missing.
    func replay(
        channels: [ChannelName],
        positions: [UInt64]?,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<[ChannelReplay]>
    /// Information about a channel, or `nil` when the broker does not know it.
    func info(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<ChannelInfo?>
    /// Drops a channel's history and closes its subscribers; `false` when the channel was unknown.
    func delete(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<Bool>
    /// Ends the GRIP stream holds of a channel on every node, in order with the channel's messages (EPCP's
    /// `http-stream` `action: "close"`); the history stays.
    func closeStreams(_ channel: ChannelName, on eventLoop: any EventLoop) -> EventLoopFuture<Void>

    /// Publishes at once when the broker needs no I/O for it (an in-process broker), saving the future; `nil`
    /// means "use ``publish(_:on:)``". The default is `nil`.
    ///
    /// A non-`nil` result means every draft was published: it holds exactly one receipt per draft, in order. A broker
    /// that cannot publish all of them at once returns `nil` before publishing any, since the caller then publishes
    /// the whole batch through ``publish(_:on:)``.
    func publishImmediately(_ drafts: [MessageDraft]) -> [PublishReceipt]?
    /// Publishes one message at once when the broker needs no I/O for it; `nil` means "use ``publish(_:on:)``".
    /// The default publishes a one-message batch through ``publishImmediately(_:)-([MessageDraft])``, whose contract
    /// (one receipt per draft when not `nil`) makes its first receipt this draft's.
    func publishImmediately(_ draft: MessageDraft) -> PublishReceipt?
    /// The replay at once when the broker needs no I/O for it; `nil` means "use ``replay(channels:positions:on:)``".
    /// The default is `nil`.
    func replayImmediately(channels: [ChannelName], positions: [UInt64]?) -> [ChannelReplay]?
    /// Whether the broker can serve now (a networked broker: connected). The default is `true`.
    var isConnected: Bool { get }
    /// Starts the broker's connections, if it has any. The default does nothing.
    func start()
    /// Stops them. The default does nothing.
    func stop()
    /// Whether the broker answers every call at once: each `…Immediately` call returns a result, and every future it
    /// returns is already complete (an in-process broker). No response then waits for the broker, and publisher
    /// connections need no ``ReadGate``. The default is `false`.
    var answersImmediately: Bool { get }
}

extension Broker {
    public func publishImmediately(_ drafts: [MessageDraft]) -> [PublishReceipt]? { nil }
    public func publishImmediately(_ draft: MessageDraft) -> PublishReceipt? { self.publishImmediately([draft])?.first }
    public func replayImmediately(channels: [ChannelName], positions: [UInt64]?) -> [ChannelReplay]? { nil }
    public var answersImmediately: Bool { false }
    public var isConnected: Bool { true }
    public func start() {}
    public func stop() {}
}
