import CometCore

/// What the hub knows of a subscriber: the channels it receives and the events it handles, on its own event loop.
///
/// The shard keeps, per channel, a list of subscribers with the channel's index in each one's channel list, and
/// stores each subscriber's position in those lists in the subscriber itself (``slots``), so removal is O(1).
protocol HubSubscriber: AnyObject {
    /// The channels, in the order of ``slots``.
    var channels: [ChannelName] { get }
    /// The subscriber's transport (metrics).
    var kind: SubscriberKind { get }
    /// The subscriber's index in each channel's list of its shard (maintained by the shard).
    var slots: [Int] { get set }
    /// A live message for the channel at `channelIndex` of ``channels``: the hot path.
    func receive(_ message: Message, channelIndex: Int)
    /// The end of a batch in which this subscriber asked for a flush (``LoopShard/needsFlush(_:)``).
    func flush()
    /// The channel was deleted by a publisher.
    func channelDeleted(_ channel: ChannelName)
    /// A publisher ended the channel's GRIP stream holds (EPCP's `http-stream` `action: "close"`).
    func streamsClosed(_ channel: ChannelName)
    /// Messages of the channel may have been missed: tell the subscriber (a gap notice).
    func gap(_ channel: ChannelName)
    /// Messages of channels the wildcard `pattern` brought may have been missed (only a pattern's subscribers get it).
    func gap(pattern: ChannelPattern)
}

/// Something the shard ticks every `transports.heartbeat_interval`: a stream that writes a heartbeat when idle, a
/// WebSocket that pings.
protocol HeartbeatReceiver: AnyObject {
    /// The receiver's index in its shard's heartbeat list, or -1 (maintained by the shard).
    var heartbeatSlot: Int { get set }
    /// One heartbeat interval passed.
    func heartbeatTick()
}
