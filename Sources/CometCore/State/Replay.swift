/// What a broker returns for one channel when a subscription starts.
public struct ChannelReplay: Sendable {
    /// The channel's newest id when the replay was taken (a position that is current for this channel; for a channel
    /// with no message yet, the broker's clock).
    public var head: UInt64
    /// The retained messages after the subscriber's cursor, oldest first (empty without a cursor).
    public var messages: [Message]
    /// Whether messages after the cursor may be missing (it is older than the history, or unknown).
    public var gap: Bool

    /// Creates a replay.
    public init(head: UInt64, messages: [Message] = [], gap: Bool = false) {
        self.head = head
        self.messages = messages
        self.gap = gap
    }
}

/// Channel information for `GET /pub/{channel}`.
public struct ChannelInfo: Sendable, Equatable {
    /// Retained messages.
    public var retainedMessages: Int
    /// Retained payload bytes.
    public var retainedBytes: Int
    /// The newest message id, if any message was ever published.
    public var lastID: UInt64?

    /// Creates channel information.
    public init(retainedMessages: Int, retainedBytes: Int, lastID: UInt64?) {
        self.retainedMessages = retainedMessages
        self.retainedBytes = retainedBytes
        self.lastID = lastID
    }
}
