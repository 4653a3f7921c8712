import NIOCore

/// The bounded history of one channel and the bookkeeping that makes resume exact.
///
/// Messages are kept in id order. ``floor`` is the highest id that may have been lost to this history: the id of the
/// newest evicted message, or the time the history was created (after a restart, everything before it is lost).
/// A resume from cursor position `p` is exact when `p >= floor`; otherwise it is a gap.
public struct ChannelHistory: Sendable {
    private var messages: CircularBuffer<Message>
    private var bytes = 0
    /// The highest id that may have been lost: a cursor position below it cannot be resumed exactly.
    public private(set) var floor: UInt64
    /// The id of the newest message ever appended (or ``floor`` when none was).
    public private(set) var lastID: UInt64

    /// Creates an empty history.
    /// - Parameter floor: The highest id that may already have been lost (the broker's start time for a new channel).
    public init(floor: UInt64) {
        self.messages = CircularBuffer(initialCapacity: 4)
        self.floor = floor
        self.lastID = floor
    }

    /// The number of retained messages.
    public var count: Int { self.messages.count }
    /// The payload bytes of the retained messages.
    public var byteCount: Int { self.bytes }
    /// The oldest retained message, if any.
    public var first: Message? { self.messages.first }

    /// Appends a message (its id must be greater than ``lastID``) and evicts what the limits no longer allow.
    public mutating func append(_ message: Message, limits: HistoryLimits, now: UInt64) {
        precondition(message.id > self.lastID, "message ids must increase")
        self.lastID = message.id
        guard limits.maxMessages > 0, message.payloadByteCount <= limits.maxBytes else {
            self.floor = message.id
            self.evictExpired(limits: limits, now: now)
            return
        }
        self.messages.append(message)
        self.bytes += message.payloadByteCount
        while self.messages.count > limits.maxMessages || self.bytes > limits.maxBytes {
            self.evictFirst()
        }
        self.evictExpired(limits: limits, now: now)
    }

    /// Evicts messages older than `limits.maxAge`.
    public mutating func evictExpired(limits: HistoryLimits, now: UInt64) {
        // No age limit when it cannot be expressed in microseconds (infinity, or beyond UInt64).
        let microseconds = max(0, limits.maxAge) * 1_000_000
        guard microseconds.isFinite, microseconds < Double(UInt64.max) else { return }
        let maxAge = UInt64(microseconds)
        while let oldest = self.messages.first, now >= oldest.publishedAt, now - oldest.publishedAt > maxAge {
            self.evictFirst()
        }
    }

    private mutating func evictFirst() {
        let evicted = self.messages.removeFirst()
        self.bytes -= evicted.payloadByteCount
        self.floor = max(self.floor, evicted.id)
    }

    /// Drops every retained message; everything up to ``lastID`` counts as lost for later resumes.
    public mutating func removeAll() {
        self.messages.removeAll(keepingCapacity: false)
        self.bytes = 0
        self.floor = self.lastID
    }

    /// The retained messages after `position`, oldest first, and whether messages after `position` may be missing.
    ///
    /// A position newer than ``lastID`` is unknown (it was not issued by this history) and also reports a gap.
    public func messages(after position: UInt64) -> (messages: [Message], gap: Bool) {
        let gap = position < self.floor || position > self.lastID
        // Binary search for the first message with id > position.
        var low = 0
        var high = self.messages.count
        while low < high {
            let mid = (low + high) / 2
            if self.messages[self.messages.index(self.messages.startIndex, offsetBy: mid)].id <= position {
                low = mid + 1
            } else {
                high = mid
            }
        }
        if gap && position > self.lastID {
            return (Array(self.messages), true)
        }
        guard low < self.messages.count else { return ([], gap) }
        var result: [Message] = []
        result.reserveCapacity(self.messages.count - low)
        var index = self.messages.index(self.messages.startIndex, offsetBy: low)
        while index != self.messages.endIndex {
            result.append(self.messages[index])
            index = self.messages.index(after: index)
        }
        return (result, gap)
    }
}
